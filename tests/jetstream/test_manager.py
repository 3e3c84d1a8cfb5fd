"""The manager on the real file store: create, publish, stop, restart, and everything is back."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pyjetstream.jetstream.manager import JetStream
from pyjetstream.jetstream.store import layout

from .conftest import AccountLimits, FakeClock, FakeServer, JsOptions, hdrs


async def wait_for(pred: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def start(server: FakeServer, path: str, clock: FakeClock, sync: float | None = None) -> JetStream:
    js = JetStream(server, JsOptions(store_dir=path, sync_interval=sync), clock=clock)
    js.enable_account(server.global_account, AccountLimits())
    await js.start()
    return js


async def request(server: FakeServer, subject: str, body: Any = b"", hdr: bytes | None = None) -> Any:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    inbox = server.new_inbox()
    server.publish(server.global_account, subject, inbox, hdr, body)
    await wait_for(lambda: server.replies(inbox))
    return server.replies(inbox)[0]


async def test_restart_restores_streams_config_and_messages(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    cfg = {"name": "ORDERS", "subjects": ["orders.*"], "max_msgs_per_subject": 5, "description": "d",
           "allow_rollup_hdrs": True, "metadata": {"owner": "team"}}
    created = json.loads((await request(server, "$JS.API.STREAM.CREATE.ORDERS", cfg)).payload)
    assert created["did_create"] is True
    await request(server, "$JS.API.STREAM.CREATE.MEM", {"name": "MEM", "storage": "memory"})
    for i in range(10):
        ack = json.loads((await request(server, f"orders.{i % 3}", b"m%d" % i,
                                        hdr=hdrs(Nats_Msg_Id=f"id{i}"))).payload)
        assert ack == {"stream": "ORDERS", "seq": i + 1}
    await request(server, "$JS.API.STREAM.MSG.DELETE.ORDERS", {"seq": 4})
    assert os.path.isfile(tmp_path / "jetstream" / "%24G" / "streams" / "ORDERS" / "meta.json")
    await js.stop()
    assert server.subs == []

    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    info = json.loads((await request(server2, "$JS.API.STREAM.INFO.ORDERS")).payload)
    assert info["config"] == created["config"]
    assert info["created"] == created["created"]
    st = info["state"]
    assert (st["messages"], st["first_seq"], st["last_seq"], st["num_deleted"]) == (9, 1, 10, 1)
    # memory streams do not survive a restart, as in nats-server
    names = json.loads((await request(server2, "$JS.API.STREAM.NAMES")).payload)
    assert names["streams"] == ["ORDERS"]
    got = json.loads((await request(server2, "$JS.API.STREAM.MSG.GET.ORDERS", {"seq": 10})).payload)
    assert got["message"]["subject"] == "orders.0"
    # the recovered stream keeps capturing its subjects
    ack = json.loads((await request(server2, "orders.1", b"after")).payload)
    assert ack == {"stream": "ORDERS", "seq": 11}
    await js2.stop()


async def test_deleted_stream_stays_deleted(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S"})
    await request(server, "S", b"x")
    await request(server, "$JS.API.STREAM.DELETE.S")
    await js.stop()
    assert not os.path.exists(tmp_path / "jetstream" / "%24G" / "streams" / "S")
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    r = json.loads((await request(server2, "$JS.API.STREAM.INFO.S")).payload)
    assert r["error"]["err_code"] == 10059
    await js2.stop()


async def test_update_is_persisted(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock, sync=2.0)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S"})
    await request(server, "$JS.API.STREAM.UPDATE.S", {"name": "S", "max_msgs": 9, "subjects": ["s.>"]})
    await js.stop()
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    r = json.loads((await request(server2, "$JS.API.STREAM.INFO.S")).payload)
    assert r["config"]["max_msgs"] == 9 and r["config"]["subjects"] == ["s.>"]
    await js2.stop()


async def test_corrupt_meta_skips_only_that_stream(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.A", {"name": "A"})
    await request(server, "$JS.API.STREAM.CREATE.B", {"name": "B"})
    await js.stop()
    (tmp_path / "jetstream" / "%24G" / "streams" / "A" / "meta.json").write_bytes(b"{garbage")
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    assert list(js2.accounts["$G"].streams) == ["B"]
    await js2.stop()


async def test_dedupe_survives_restart(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "duplicate_window": 60_000_000_000})
    await request(server, "S", b"a", hdr=hdrs(Nats_Msg_Id="early"))
    clock.advance(120)
    await request(server, "S", b"b", hdr=hdrs(Nats_Msg_Id="late"))
    await js.stop()
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    dup = json.loads((await request(server2, "S", b"b", hdr=hdrs(Nats_Msg_Id="late"))).payload)
    assert dup == {"stream": "S", "seq": 2, "duplicate": True}
    fresh = json.loads((await request(server2, "S", b"a", hdr=hdrs(Nats_Msg_Id="early"))).payload)
    assert fresh == {"stream": "S", "seq": 3}  # outside the window when the server went down
    r = json.loads((await request(server2, "S", b"c", hdr=hdrs(Nats_Expected_Last_Msg_Id="early"))).payload)
    assert r["seq"] == 4
    await js2.stop()


async def test_mirror_and_source_resume_after_restart(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.O", {"name": "O", "subjects": ["o.*"]})
    await request(server, "$JS.API.STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}})
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "sources": [{"name": "O"}]})
    for i in range(3):
        await request(server, f"o.{i}", b"%d" % i)
    streams = js.accounts["$G"].streams
    await wait_for(lambda: streams["M"].store.state().msgs == 3 and streams["S"].store.state().msgs == 3)
    await js.stop()

    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    streams = js2.accounts["$G"].streams
    await request(server2, "o.x", b"after")
    await wait_for(lambda: streams["M"].store.state().msgs == 4 and streams["S"].store.state().msgs == 4)
    m = streams["M"].store.load_msg(4)
    s = streams["S"].store.load_msg(4)
    assert m is not None and m.data == b"after"
    assert s is not None and b"Nats-Stream-Source: O 4 > > o.x\r\n" in s.hdr
    await js2.stop()


async def test_monitoring_documents(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.Z", {"name": "Z", "subjects": ["z"]})
    await request(server, "z", b"hi")
    v = js.varz()
    assert v["config"]["sync_always"] is True and v["config"]["store_dir"].endswith("jetstream")
    assert v["stats"]["accounts"] == 1 and v["stats"]["api"]["total"] == 1 and v["stats"]["storage"] > 0
    doc = js.jsz()
    assert (doc["streams"], doc["consumers"], doc["messages"]) == (1, 0, 1) and "account_details" not in doc
    doc = js.jsz(accounts=True, streams=True, config=True)
    (acc,) = doc["account_details"]
    (sd,) = acc["stream_detail"]
    assert acc["name"] == "$G" and sd["name"] == "Z" and sd["config"]["subjects"] == ["z"]
    assert sd["state"]["messages"] == 1 and "consumer_detail" not in sd
    assert "config" not in js.jsz(accounts=True, streams=True)["account_details"][0]["stream_detail"][0]
    await js.stop()


async def test_limits_are_applied_at_recovery(tmp_path: Any, clock: FakeClock) -> None:
    """A stream recovered with more than its limits allow (a config tightened by hand while
    the server was down) is trimmed at start-up, oldest first, before anything is published."""
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.*"]})
    for i in range(10):
        await request(server, f"s.{'ab'[i % 2]}", b"m%d" % i)
    await js.stop()
    sdir = str(tmp_path / "jetstream" / "%24G" / "streams" / "S")
    meta = json.loads(layout.read_meta(sdir))
    meta["config"].update(max_msgs=3, max_msgs_per_subject=2)
    layout.write_meta(sdir, json.dumps(meta).encode())

    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    st = json.loads((await request(server2, "$JS.API.STREAM.INFO.S")).payload)["state"]
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (3, 8, 10)
    await js2.stop()
