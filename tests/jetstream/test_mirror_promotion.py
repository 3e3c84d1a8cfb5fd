"""Removing a mirror by update (nats-server 2.12): the mirror becomes a normal stream that keeps
its messages, stops following its origin and may take subjects and sources; changing or adding
a mirror is still refused (10055)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import pytest

from .conftest import FakeClock, FakeServer, settle
from .procs import own_server_available, start_js
from .test_manager import request, start, wait_for


async def _cfg(server: FakeServer, name: str) -> dict[str, Any]:
    return dict((await server.api(f"STREAM.INFO.{name}"))["config"])


async def _ready(server: FakeServer) -> None:
    assert "error" not in await server.api("STREAM.CREATE.O", {"name": "O", "subjects": ["o.*"]})
    for i in range(3):
        await server.request(f"o.{i}", b"%d" % i)
    assert "error" not in await server.api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}})
    await settle()


async def test_changing_or_adding_a_mirror_is_refused(server: FakeServer, js: Any) -> None:
    await _ready(server)
    cfg = await _cfg(server, "M")
    for mirror in ({"name": "O", "filter_subject": "o.1"}, {"name": "X"},
                   {"name": "O", "subject_transforms": [{"src": "o.*", "dest": "m.$1"}]}):
        r = await server.api("STREAM.UPDATE.M", {**cfg, "mirror": mirror})
        assert r["error"] == {"code": 400, "err_code": 10055,
                              "description": "stream mirror configuration can not be updated"}
    o = await _cfg(server, "O")
    o.pop("subjects")
    assert "error" not in await server.api("STREAM.CREATE.N", {"name": "N", "subjects": ["n"]})
    r = await server.api("STREAM.UPDATE.N", {**(await _cfg(server, "N")), "subjects": [], "mirror": {"name": "O"}})
    assert r["error"]["err_code"] == 10055  # a normal stream does not become a mirror
    r = await server.api("STREAM.UPDATE.M", {**cfg, "subjects": ["m"]})
    assert r["error"]["err_code"] == 10034  # still a mirror: no subjects


async def test_promoted_mirror_keeps_messages_and_stops_following(server: FakeServer, js: Any) -> None:
    await _ready(server)
    cfg = await _cfg(server, "M")
    assert "duplicate_window" not in cfg  # a mirror has none, as nats-server's
    cfg.pop("mirror")
    r = await server.api("STREAM.UPDATE.M", {**cfg, "subjects": ["m.>"]})
    assert "error" not in r, r
    assert "mirror" not in r and "mirror" not in r["config"] and r["config"]["subjects"] == ["m.>"]
    assert r["config"]["duplicate_window"] == 120_000_000_000  # a normal stream's default
    assert r["state"]["messages"] == 3
    await server.request("o.9", b"not copied any more")
    ack = (await server.request("m.own", b"own", hdr=None)).json()
    assert ack == {"stream": "M", "seq": 4}
    await settle()
    st = (await server.api("STREAM.INFO.M"))["state"]
    assert (st["messages"], st["last_seq"]) == (4, 4)
    m = (await server.api("STREAM.MSG.GET.M", {"seq": 4}))["message"]
    assert m["subject"] == "m.own"
    # the origin lost its reader: nothing of it points at M any more
    assert js.accounts["$G"].streams["O"]._sourcing == []


async def test_promoted_mirror_may_take_sources_at_once(server: FakeServer, js: Any) -> None:
    await _ready(server)
    cfg = await _cfg(server, "M")
    cfg.pop("mirror")
    r = await server.api("STREAM.UPDATE.M", {**cfg, "sources": [{"name": "O", "filter_subject": "o.2"}]})
    assert "error" not in r, r
    await settle()
    await server.request("o.2", b"again")
    await settle()
    st = (await server.api("STREAM.INFO.M"))["state"]
    # its three mirrored messages, then o.2 twice through the new source (it has no source
    # headers to resume from, so it starts at the origin's beginning, as nats-server does)
    assert (st["messages"], st["last_seq"]) == (5, 5)
    info = await server.api("STREAM.INFO.M")
    assert "mirror" not in info and [s["name"] for s in info["sources"]] == ["O"]


async def test_promotion_survives_a_restart(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.O", {"name": "O", "subjects": ["o.*"]})
    await request(server, "$JS.API.STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}})
    await request(server, "o.a", b"1")
    streams = js.accounts["$G"].streams
    await wait_for(lambda: streams["M"].store.state().msgs == 1)
    cfg = json.loads((await request(server, "$JS.API.STREAM.INFO.M")).payload)["config"]
    cfg.pop("mirror")
    r = json.loads((await request(server, "$JS.API.STREAM.UPDATE.M", {**cfg, "subjects": ["m"]})).payload)
    assert "error" not in r, r
    await js.stop()
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    streams = js2.accounts["$G"].streams
    assert streams["M"].config.mirror is None and streams["M"].links == []
    await request(server2, "o.b", b"2")
    ack = json.loads((await request(server2, "m", b"own")).payload)
    assert ack == {"stream": "M", "seq": 2}
    await js2.stop()


@pytest.mark.skipif(not own_server_available(), reason="no server")
async def test_nats_py_promotes_a_mirror(tmp_path: Any) -> None:
    proc = start_js("pyjetstream", str(tmp_path / "store"))
    nc = await nats.connect(proc.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.>"])
        await js.publish("o.1", b"one")
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.M",
                                         json.dumps({"name": "M", "mirror": {"name": "O"}}).encode())).data)
        assert "error" not in r, r
        for _ in range(100):
            if (await js.stream_info("M")).state.messages == 1:
                break
            await asyncio.sleep(0.02)
        cfg = json.loads((await nc.request("$JS.API.STREAM.INFO.M", b"")).data)["config"]
        cfg.pop("mirror")
        cfg["subjects"] = ["m.>"]
        r = json.loads((await nc.request("$JS.API.STREAM.UPDATE.M", json.dumps(cfg).encode())).data)
        assert "error" not in r, r
        ack = await js.publish("m.x", b"mine")
        assert (ack.stream, ack.seq) == ("M", 2)
        await js.publish("o.2", b"two")
        si = await js.stream_info("M")
        assert si.mirror is None and si.state.messages == 2
    finally:
        await nc.close()
        proc.stop()
