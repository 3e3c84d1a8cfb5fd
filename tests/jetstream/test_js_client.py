"""nats-py's JetStream client against a real server process: ours, and nats-server for parity.

The same assertions run on both, so a test that passes on nats-server and fails on ours is
a wire-compatibility bug in ours.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import nats
import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from .procs import NATS_SERVER, own_server_available, start_js

KINDS = [
    pytest.param("pyjetstream", marks=pytest.mark.skipif(not own_server_available(), reason="no server yet")),
    pytest.param("nats-server", marks=pytest.mark.skipif(not os.path.exists(NATS_SERVER),
                                                         reason="nats-server not installed")),
]


@pytest.fixture(params=KINDS)
async def nc(request: Any, tmp_path: Any) -> Any:
    proc = start_js(request.param, str(tmp_path / "store"))
    client = await nats.connect(proc.url)
    yield client
    await client.close()
    proc.stop()


async def test_add_stream_publish_get_purge_delete(nc: Any) -> None:
    js = nc.jetstream()
    si = await js.add_stream(name="ORDERS", subjects=["orders.*"])
    assert si.config.name == "ORDERS" and si.config.subjects == ["orders.*"]
    assert si.config.retention == RetentionPolicy.LIMITS and si.config.storage == StorageType.FILE
    assert si.config.duplicate_window == 120.0 and si.config.max_msgs == -1
    acks = [await js.publish(f"orders.{i % 2}", b"msg %d" % i) for i in range(4)]
    assert [a.seq for a in acks] == [1, 2, 3, 4] and {a.stream for a in acks} == {"ORDERS"}
    m = await js.get_msg("ORDERS", 2)
    assert (m.subject, m.seq, m.data) == ("orders.1", 2, b"msg 1")
    last = await js.get_last_msg("ORDERS", "orders.0")
    assert last.seq == 3
    info = await js.stream_info("ORDERS")
    assert info.state.messages == 4 and info.state.last_seq == 4
    assert await js.delete_msg("ORDERS", 1)
    assert await js.purge_stream("ORDERS", subject="orders.1")
    info = await js.stream_info("ORDERS")
    assert info.state.messages == 1
    assert await js.delete_stream("ORDERS")
    with pytest.raises(NotFoundError):
        await js.stream_info("ORDERS")


async def test_publish_without_stream_is_no_responders(nc: Any) -> None:
    js = nc.jetstream()
    with pytest.raises(NoStreamResponseError):
        await js.publish("nowhere.x", b"x", timeout=2)


async def test_dedupe_and_expectations(nc: Any) -> None:
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s.>"])
    a = await js.publish("s.a", b"1", headers={"Nats-Msg-Id": "x"})
    b = await js.publish("s.a", b"1", headers={"Nats-Msg-Id": "x"})
    assert (a.seq, b.seq, b.duplicate) == (1, 1, True)
    with pytest.raises(APIError) as e:
        await js.publish("s.a", b"2", headers={"Nats-Expected-Last-Sequence": "7"})
    assert e.value.err_code == 10071
    with pytest.raises(APIError) as e:
        await js.publish("s.a", b"2", stream="OTHER")
    assert e.value.err_code == 10060


async def test_stream_errors_map_to_client_errors(nc: Any) -> None:
    js = nc.jetstream()
    await js.add_stream(name="A", subjects=["a.>"])
    with pytest.raises(BadRequestError) as e:
        await js.add_stream(name="B", subjects=["a.b"])
    assert e.value.err_code == 10065
    with pytest.raises(BadRequestError) as e:
        await js.add_stream(name="A", subjects=["a.>"], max_msgs=3)
    assert e.value.err_code == 10058
    with pytest.raises(APIError) as e:
        await js.update_stream(StreamConfig(name="A", subjects=["a.>"], storage=StorageType.MEMORY))
    assert e.value.err_code == 10052


async def test_limits_discard_new(nc: Any) -> None:
    js = nc.jetstream()
    await js.add_stream(name="L", subjects=["l"], max_msgs=2, discard=DiscardPolicy.NEW)
    await js.publish("l", b"1")
    await js.publish("l", b"2")
    with pytest.raises(APIError) as e:
        await js.publish("l", b"3")
    assert e.value.err_code == 10077 and e.value.description == "maximum messages exceeded"


async def test_key_value_basics(nc: Any) -> None:
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="cfg", history=2)
    r1 = await kv.put("k", b"v1")
    r2 = await kv.put("k", b"v2")
    assert (r1, r2) == (1, 2)
    e = await kv.get("k")
    assert (e.value, e.revision) == (b"v2", 2)
    await kv.create("new", b"n")
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises KeyWrongLastSequenceError here
        await kv.create("new", b"again")
    await kv.update("new", b"n2", last=3)
    assert (await kv.get("new")).value == b"n2"
    status = await kv.status()
    assert status.bucket == "cfg"


async def test_many_async_publishes_all_acked_in_order(nc: Any) -> None:
    js = nc.jetstream()
    await js.add_stream(name="F", subjects=["f"])
    futs = [await js.publish_async("f", b"%d" % i) for i in range(300)] if hasattr(js, "publish_async") else None
    if futs is not None:
        acks = await asyncio.gather(*futs)
    else:
        acks = await asyncio.gather(*[js.publish("f", b"%d" % i) for i in range(300)])
    assert sorted(a.seq for a in acks) == list(range(1, 301))
    m = await js.get_msg("F", 300)
    assert m.seq == 300


async def wait_for_messages(js: Any, stream: str, want: int) -> int:
    """Acks are processed asynchronously on both servers: poll the stream with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        n = (await js.stream_info(stream)).state.messages
        if n == want or loop.time() > deadline:
            return n
        await asyncio.sleep(0.02)


async def test_workqueue_ack_removes_messages(nc: Any) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig

    js = nc.jetstream()
    await js.add_stream(name="WQ", subjects=["wq.>"], retention=RetentionPolicy.WORK_QUEUE)
    for i in range(3):
        await js.publish("wq.a", b"%d" % i)
    psub = await js.pull_subscribe("wq.>", durable="w", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
    msgs = await psub.fetch(2, timeout=2)
    for m in msgs:
        await m.ack_sync()
    assert await wait_for_messages(js, "WQ", 1) == 1
    info = await js.stream_info("WQ")
    assert info.state.first_seq == 3


async def test_interest_retention(nc: Any) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig

    js = nc.jetstream()
    await js.add_stream(name="IN", subjects=["in.>"], retention=RetentionPolicy.INTEREST)
    ack = await js.publish("in.a", b"nobody listens")
    assert ack.seq == 1
    assert (await js.stream_info("IN")).state.messages == 0
    psub = await js.pull_subscribe("in.>", durable="c1", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
    await js.publish("in.a", b"kept")
    assert (await js.stream_info("IN")).state.messages == 1
    msgs = await psub.fetch(1, timeout=2)
    assert msgs[0].data == b"kept"
    await msgs[0].ack_sync()
    assert await wait_for_messages(js, "IN", 0) == 0


@pytest.mark.skipif(not own_server_available(), reason="no server yet")
async def test_kv_limit_markers_reach_watchers(tmp_path: Any) -> None:
    """nats-py turns limit_marker_ttl into subject_delete_marker_ttl (API level >= 1): an
    expired key shows up in a watch as a PURGE. nats-server 2.9 has no markers, so ours only."""
    from nats.js.api import KeyValueConfig

    proc = start_js("pyjetstream", str(tmp_path / "store"))
    client = await nats.connect(proc.url)
    try:
        js = client.jetstream()
        kv = await js.create_key_value(KeyValueConfig(bucket="m", ttl=0.3, limit_marker_ttl=1.0))
        assert (await js.stream_info("KV_m")).config.subject_delete_marker_ttl == 1.0
        w = await kv.watch("k")
        await kv.put("k", b"v")
        ops = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(ops) < 2 and loop.time() < deadline:
            try:
                e = await w.updates(timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            if e is not None:
                ops.append((e.key, e.operation, e.revision))
        assert ops == [("k", None, 1), ("k", "PURGE", 2)]
    finally:
        await client.close()
        proc.stop()


async def test_interest_needs_every_consumer_and_forgets_deleted_ones(nc: Any) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig

    js = nc.jetstream()
    await js.add_stream(name="IN2", subjects=["in2.>"], retention=RetentionPolicy.INTEREST)
    a = await js.pull_subscribe("in2.>", durable="a", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
    await js.pull_subscribe("in2.>", durable="b", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
    for i in range(3):
        await js.publish("in2.x", b"%d" % i)
    for m in await a.fetch(3, timeout=2):
        await m.ack_sync()
    # b has not acked anything: all three stay
    assert await wait_for_messages(js, "IN2", 3) == 3
    await js.delete_consumer("IN2", "b")
    # with b gone nobody else needs them
    assert await wait_for_messages(js, "IN2", 0) == 0


async def test_republish_reaches_subscribers(nc: Any) -> None:
    from nats.js.api import RePublish

    js = nc.jetstream()
    await js.add_stream(name="RP", subjects=["rp.>"], republish=RePublish(src="rp.*.>", dest="out.$1.>"))
    sub = await nc.subscribe("out.>")
    await js.publish("rp.a.b", b"one")
    await js.publish("rp.a.b", b"two")
    msgs = [await sub.next_msg(timeout=2) for _ in range(2)]
    assert [(m.subject, m.data) for m in msgs] == [("out.a.b", b"one"), ("out.a.b", b"two")]
    h = msgs[1].headers
    assert (h["Nats-Stream"], h["Nats-Subject"], h["Nats-Sequence"], h["Nats-Last-Sequence"]) == (
        "RP", "rp.a.b", "2", "1")


async def test_mirror_and_sources(nc: Any) -> None:
    from nats.js.api import StreamSource

    js = nc.jetstream()
    await js.add_stream(name="ORIG", subjects=["orig.*"])
    for i in range(3):
        await js.publish(f"orig.{i}", b"%d" % i)
    await js.add_stream(name="MIR", mirror=StreamSource(name="ORIG"))
    await js.add_stream(name="SRC", subjects=["src"], sources=[StreamSource(name="ORIG", filter_subject="orig.1")])
    await js.publish("orig.1", b"live")
    assert await wait_for_messages(js, "MIR", 4) == 4
    assert await wait_for_messages(js, "SRC", 2) == 2
    m = await js.get_msg("MIR", 4)
    assert (m.subject, m.data) == ("orig.1", b"live")
    s = await js.get_msg("SRC", 2)
    assert s.data == b"live" and s.headers["Nats-Stream-Source"].split()[:2] == ["ORIG", "4"]
    info = await js.stream_info("MIR")
    assert info.mirror is not None and info.mirror.name == "ORIG"


async def test_source_from_interest_stream(nc: Any) -> None:
    from nats.js.api import StreamSource

    js = nc.jetstream()
    await js.add_stream(name="IO", subjects=["io"], retention=RetentionPolicy.INTEREST)
    await js.add_stream(name="IS", sources=[StreamSource(name="IO")])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    # nats-server creates its internal source consumer asynchronously: retry until it stores
    while (await js.stream_info("IS")).state.messages == 0 and loop.time() < deadline:
        await js.publish("io", b"x")
        await asyncio.sleep(0.05)
    assert (await js.stream_info("IS")).state.messages >= 1
    assert await wait_for_messages(js, "IO", 0) == 0


@pytest.mark.parametrize("kind", [
    pytest.param("nats-server", marks=pytest.mark.skipif(not os.path.exists(NATS_SERVER), reason="no nats-server")),
    pytest.param("pyjetstream", marks=pytest.mark.skipif(not own_server_available(), reason="no server yet")),
])
async def test_consumer_filter_on_a_stream_with_sources(kind: str, tmp_path: Any) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig, StreamSource

    proc = start_js(kind, str(tmp_path / "store"))
    client = await nats.connect(proc.url)
    try:
        js = client.jetstream()
        await js.add_stream(name="S1", subjects=["s1.*"])
        await js.publish("s1.a", b"from s1")
        await js.add_stream(name="AGG", subjects=["agg"], sources=[StreamSource(name="S1")])
        await js.publish("agg", b"own")
        assert await wait_for_messages(js, "AGG", 2) == 2
        psub = await js.pull_subscribe("agg", durable="f", stream="AGG",
                                       config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
        msgs = await psub.fetch(5, timeout=1)
        assert [(m.subject, m.data) for m in msgs] == [("agg", b"own")]
    finally:
        await client.close()
        proc.stop()
