"""Message counters: the increment rules, the arithmetic on the stored totals (arbitrary
precision), a broken total, PubAcks with "val", and counters across a restart of the stream."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from typing import Any

import nats
import pytest

from pyjetstream.jetstream import counter
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.store.memory import MemoryStore

from .conftest import FakeServer, hdrs
from .procs import own_server_available, start_js


async def create(server: FakeServer, name: str = "C", **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, "subjects": ["c.>"],
                                                   "allow_msg_counter": True, **cfg})
    assert "error" not in r, r
    return r


async def incr(server: FakeServer, subject: str, value: str, data: bytes = b"", **h: str) -> Any:
    return (await server.request(subject, data, hdr=hdrs(Nats_Incr=value, **h))).json()


def test_check_publish_rules() -> None:
    assert counter.check_publish(True, {}, b"") is None
    assert counter.check_publish(True, {"Nats-Incr": ""}, b"") is None
    assert counter.check_publish(True, {"Nats-Incr": "-007"}, b"") == -7
    for bad in ("1.0", "1e3", " ", "0x10", "1_0", "--1", "+"):
        with pytest.raises(ApiError) as e:
            counter.check_publish(True, {"Nats-Incr": bad}, b"")
        assert e.value.err_code == 10171, bad
    with pytest.raises(ApiError) as e:
        counter.check_publish(False, {"Nats-Incr": "1"}, b"")
    assert e.value.err_code == 10168
    with pytest.raises(ApiError) as e:
        counter.check_publish(True, {"Nats-Incr": "1"}, b"x")
    assert e.value.err_code == 10170
    # an empty expectation header is no expectation
    assert counter.check_publish(True, {"Nats-Incr": "1", "Nats-Expected-Last-Sequence": ""}, b"") == 1


def test_current_reads_the_last_total() -> None:
    store = MemoryStore()
    assert counter.current(store, "c.a") == 0
    for data, want in ((b'{"val":"42"}', 42), (b'{"VAL":"-3"}', -3), (b"{}", 0), (b'{"val":"x"}', 0)):
        store.store_msg("c.a", b"", data, 1, 0)
        assert counter.current(store, "c.a") == want, data
    for broken in (b"nope", b'{"val":5}', b"[1]"):
        store.store_msg("c.a", b"", broken, 1, 0)
        with pytest.raises(ApiError) as e:
            counter.current(store, "c.a")
        assert e.value.err_code == 10172, broken


async def test_counters_add_up_per_subject(server: FakeServer, js: Any) -> None:
    await create(server)
    assert await incr(server, "c.a", "5") == {"stream": "C", "seq": 1, "val": "5"}
    assert await incr(server, "c.b", "1") == {"stream": "C", "seq": 2, "val": "1"}
    assert await incr(server, "c.a", str(2**100)) == {"stream": "C", "seq": 3, "val": str(2**100 + 5)}
    assert await incr(server, "c.a", str(-(2**100) - 10)) == {"stream": "C", "seq": 4, "val": "-5"}
    got = await server.api("STREAM.MSG.GET.C", {"last_by_subj": "c.a"})
    assert base64.b64decode(got["message"]["data"]) == b'{"val":"-5"}'


async def test_broken_total_refuses_the_increment(server: FakeServer, js: Any) -> None:
    await create(server)
    stream = js.accounts["$G"].streams["C"]
    stream.store.store_msg("c.a", b"", b"not a counter", 1, 0)
    r = await incr(server, "c.a", "1")
    assert r["error"] == {"code": 400, "err_code": 10172, "description": "message counter is broken"}
    assert stream.store.state().msgs == 1


async def test_counter_stream_refuses_plain_publishes(server: FakeServer, js: Any) -> None:
    await create(server)
    r = (await server.request("c.a", b"")).json()  # no headers at all: the fast path must not take it
    assert r["error"]["err_code"] == 10169
    r = (await server.request("c.a", b"", hdr=hdrs(Nats_Msg_Id="x"))).json()
    assert r["error"]["err_code"] == 10169


async def test_counter_config_rules(server: FakeServer, js: Any) -> None:
    await server.api("STREAM.CREATE.O", {"name": "O", "subjects": ["o"]})
    r = await server.api("STREAM.CREATE.SRC", {"name": "SRC", "allow_msg_counter": True,
                                               "sources": [{"name": "O"}]})
    assert r["error"]["description"] == "counter streams with sources are not supported by this server"
    cfg = (await create(server))["config"]
    r = await server.api("STREAM.UPDATE.C", {**cfg, "allow_msg_counter": False})
    assert r["error"]["description"] == "stream configuration update can not change message counter setting"


@pytest.mark.skipif(not own_server_available(), reason="no server yet")
async def test_nats_py_counter_over_real_sockets_survives_restart(tmp_path: Any) -> None:
    store = str(tmp_path / "store")
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        r = await nc.request("$JS.API.STREAM.CREATE.C", json.dumps(
            {"name": "C", "subjects": ["c.>"], "allow_msg_counter": True}).encode(), timeout=5)
        assert json.loads(r.data)["config"]["allow_msg_counter"] is True
        # many increments in flight at once: each PubAck's val is the running total at its seq
        acks = await asyncio.gather(*(nc.request("c.hits", b"", headers={"Nats-Incr": str(i)}, timeout=10)
                                      for i in range(1, 51)))
        vals = sorted((json.loads(a.data)["seq"], int(json.loads(a.data)["val"])) for a in acks)
        # in sequence order, consecutive totals differ by exactly the increments sent, each once
        steps = [val - prev for (_, val), prev in zip(vals, [0] + [v for _, v in vals[:-1]], strict=True)]
        assert sorted(steps) == list(range(1, 51))
        assert vals[-1][1] == sum(range(1, 51))
        await nc.close()
    finally:
        proc.stop(signal.SIGKILL)
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        r = await nc.request("c.hits", b"", headers={"Nats-Incr": "-275"}, timeout=5)
        assert json.loads(r.data)["val"] == "1000"
        await nc.close()
    finally:
        proc.stop()
