"""Consumers end to end: nats-py push, pull and ordered consumers against our server."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError
from servers import flushed

from .conftest import eventually

MEM = StorageType.MEMORY


async def _stream(js, name="S", subjects=("foo.>",), **kw):
    await js.add_stream(StreamConfig(name=name, subjects=list(subjects), storage=MEM, **kw))


async def _publish(js, n, subject="foo.a", prefix=b"m"):
    for i in range(n):
        await js.publish(subject, prefix + str(i).encode())


async def test_push_explicit_ack_nak_and_info(nc):
    js = nc.jetstream()
    await _stream(js)
    await _publish(js, 5)
    sub = await js.subscribe("foo.>", durable="d", manual_ack=True)
    msgs = [await sub.next_msg(timeout=2) for _ in range(5)]
    assert [m.data for m in msgs] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.metadata.sequence.stream for m in msgs] == [1, 2, 3, 4, 5]
    assert msgs[4].metadata.num_pending == 0 and msgs[0].metadata.num_pending == 4
    await msgs[0].ack()
    await msgs[1].ack_sync()
    await msgs[2].nak()
    again = await sub.next_msg(timeout=2)
    assert again.data == b"m2" and again.metadata.num_delivered == 2
    await again.ack_sync()
    info = await js.consumer_info("S", "d")
    assert info.delivered.consumer_seq == 6 and info.delivered.stream_seq == 5
    assert info.ack_floor.stream_seq == 3 and info.num_ack_pending == 2
    assert info.num_redelivered == 0 and info.num_pending == 0 and info.push_bound
    await msgs[3].term()
    await msgs[4].ack_sync()
    info = await js.consumer_info("S", "d")
    assert info.ack_floor.stream_seq == 5 and info.ack_floor.consumer_seq == 6 and info.num_ack_pending == 0


async def test_redelivery_after_ack_wait_then_max_deliver_advisory(nc):
    js = nc.jetstream()
    await _stream(js)
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.r")
    await _publish(js, 1)
    sub = await js.subscribe("foo.>", durable="r", manual_ack=True,
                             config=ConsumerConfig(ack_wait=0.2, max_deliver=2))
    first = await sub.next_msg(timeout=2)
    second = await sub.next_msg(timeout=2)
    assert (first.metadata.num_delivered, second.metadata.num_delivered) == (1, 2)
    a = json.loads((await adv.next_msg(timeout=3)).data)
    assert a["type"] == "io.nats.jetstream.advisory.v1.max_deliver"
    assert a["stream_seq"] == 1 and a["deliveries"] == 2
    info = await js.consumer_info("S", "r")
    # nats-server's consumer store drops the message from its pending without moving its ack
    # floor, and info reports that (2.9.10, 2.12.4 and 2.15.1 alike; test_consumer_info_diff.py)
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == 0
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.3)


async def test_pull_fetch_batches_and_no_messages(nc):
    js = nc.jetstream()
    await _stream(js)
    await _publish(js, 25)
    psub = await js.pull_subscribe("foo.>", durable="p")
    seen = []
    while len(seen) < 25:
        batch = await psub.fetch(10, timeout=2)
        for m in batch:
            seen.append(m.metadata.sequence.stream)
            await m.ack()
    assert seen == list(range(1, 26))
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(5, timeout=0.5)
    # the raw statuses: no_wait on an empty consumer is 404, an expired wait is 408
    r = await nc.request("$JS.API.CONSUMER.MSG.NEXT.S.p", b'{"batch":1,"no_wait":true}', timeout=2)
    assert r.headers[nats.js.api.Header.STATUS] == "404"
    inbox = nc.new_inbox()
    s = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.p", b'{"batch":3,"expires":200000000}', reply=inbox)
    st = await s.next_msg(timeout=2)
    assert st.headers["Status"] == "408" and st.headers["Nats-Pending-Messages"] == "3"
    info = await js.consumer_info("S", "p")
    assert info.num_waiting == 0 and info.ack_floor.stream_seq == 25


async def test_pull_max_waiting_and_consumer_deleted_status(nc):
    js = nc.jetstream()
    await _stream(js)
    await js.add_consumer("S", ConsumerConfig(durable_name="w", ack_policy=AckPolicy.EXPLICIT, max_waiting=1))
    inbox = nc.new_inbox()
    s = await nc.subscribe(inbox + ".*")
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.w", b'{"batch":1,"expires":5000000000}', reply=inbox + ".1")
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.w", b'{"batch":1,"expires":5000000000}', reply=inbox + ".2")
    st = await s.next_msg(timeout=2)
    assert st.subject == inbox + ".2" and st.headers["Status"] == "409"
    assert st.headers.get("Description") == "Exceeded MaxWaiting"
    assert (await js.consumer_info("S", "w")).num_waiting == 1
    await js.delete_consumer("S", "w")
    st = await s.next_msg(timeout=2)
    assert st.subject == inbox + ".1" and st.headers["Status"] == "409"


async def test_ordered_consumer_reads_everything(nc):
    js = nc.jetstream()
    await _stream(js)
    for i in range(300):
        await nc.publish(f"foo.{i % 7}", str(i).encode())
    await flushed(nc)
    sub = await js.subscribe("foo.>", ordered_consumer=True)
    got = [int((await sub.next_msg(timeout=2)).data) for _ in range(300)]
    assert got == list(range(300))


async def test_queue_group_push_splits_messages(nc):
    js = nc.jetstream()
    await _stream(js)
    s1 = await js.subscribe("foo.>", queue="qd", manual_ack=True)
    s2 = await js.subscribe("foo.>", queue="qd", manual_ack=True)
    await _publish(js, 40)
    got: list[int] = []

    async def drain(sub):
        n = 0
        while True:
            try:
                m = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                return n
            got.append(m.metadata.sequence.stream)
            await m.ack()
            n += 1

    n1, n2 = await asyncio.gather(drain(s1), drain(s2))
    assert sorted(got) == list(range(1, 41))
    assert n1 > 0 and n2 > 0
    info = await js.consumer_info("S", "qd")
    assert info.config.deliver_group == "qd" and info.push_bound


async def test_ephemeral_push_consumer_goes_away_without_interest(nc):
    js = nc.jetstream()
    await _stream(js)
    sub = await js.subscribe("foo.>", inactive_threshold=0.3)
    name = (await sub.consumer_info()).name
    assert name in await _names(js)
    await sub.unsubscribe()
    await eventually(lambda: _gone(js, name), timeout=5)


async def _names(js):
    return [c.name for c in await js.consumers_info("S")]


async def _gone(js, name):
    return name not in await _names(js)


async def test_interest_and_workqueue_retention(nc):
    js = nc.jetstream()
    await _stream(js, "I", ["int.>"], retention=RetentionPolicy.INTEREST)
    await js.publish("int.a", b"no-one-listens")  # not stored: no consumer yet
    await js.add_consumer("I", ConsumerConfig(durable_name="a", ack_policy=AckPolicy.EXPLICIT))
    await js.add_consumer("I", ConsumerConfig(durable_name="b", ack_policy=AckPolicy.EXPLICIT))
    await js.publish("int.a", b"1")
    assert (await js.stream_info("I")).state.messages == 1
    pa = await js.pull_subscribe_bind("a", "I")
    pb = await js.pull_subscribe_bind("b", "I")
    (m,) = await pa.fetch(1, timeout=2)
    await m.ack_sync()
    assert (await js.stream_info("I")).state.messages == 1
    (m,) = await pb.fetch(1, timeout=2)
    await m.ack_sync()
    assert (await js.stream_info("I")).state.messages == 0

    await _stream(js, "W", ["wq.>"], retention=RetentionPolicy.WORK_QUEUE)
    await js.add_consumer("W", ConsumerConfig(durable_name="w1", ack_policy=AckPolicy.EXPLICIT,
                                              filter_subject="wq.a"))
    with pytest.raises(APIError) as ei:
        await js.add_consumer("W", ConsumerConfig(durable_name="w2", ack_policy=AckPolicy.EXPLICIT,
                                                  filter_subject="wq.*"))
    assert ei.value.err_code == 10100
    with pytest.raises(APIError) as ei:
        await js.add_consumer("W", ConsumerConfig(durable_name="w3", ack_policy=AckPolicy.EXPLICIT))
    assert ei.value.err_code == 10099
    with pytest.raises(APIError) as ei:
        await js.add_consumer("W", ConsumerConfig(durable_name="w4", ack_policy=AckPolicy.ALL,
                                                  filter_subject="wq.b"))
    assert ei.value.err_code == 10098
    await js.publish("wq.a", b"job")
    pw = await js.pull_subscribe_bind("w1", "W")
    (m,) = await pw.fetch(1, timeout=2)
    await m.ack_sync()
    assert (await js.stream_info("W")).state.messages == 0


async def test_consumer_api_crud_and_errors(nc):
    js = nc.jetstream()
    await _stream(js)
    await _publish(js, 3, "foo.b")
    ci = await js.add_consumer("S", ConsumerConfig(durable_name="c1", ack_policy=AckPolicy.EXPLICIT,
                                                   deliver_policy=DeliverPolicy.LAST, filter_subject="foo.b"))
    assert ci.num_pending == 1 and ci.config.max_ack_pending == 1000 and ci.config.ack_wait == 30
    # identical create is idempotent; a changed updatable field is applied
    ci = await js.add_consumer("S", ConsumerConfig(durable_name="c1", ack_policy=AckPolicy.EXPLICIT,
                                                   deliver_policy=DeliverPolicy.LAST, filter_subject="foo.b",
                                                   description="now with words"))
    assert ci.config.description == "now with words"
    with pytest.raises(APIError) as ei:
        await js.add_consumer("S", ConsumerConfig(durable_name="c1", ack_policy=AckPolicy.ALL,
                                                  deliver_policy=DeliverPolicy.LAST, filter_subject="foo.b"))
    assert ei.value.err_code == 10012 and ei.value.description == "ack policy can not be updated"
    with pytest.raises(NotFoundError):
        await js.consumer_info("S", "nope")
    with pytest.raises(NotFoundError):
        await js.add_consumer("NOPE", ConsumerConfig(durable_name="x"))
    r = json.loads((await nc.request("$JS.API.CONSUMER.CREATE.S.c2", json.dumps(
        {"stream_name": "S", "action": "update", "config": {"durable_name": "c2", "ack_policy": "explicit"}}
    ).encode())).data)
    assert r["error"]["err_code"] == 10149
    r = json.loads((await nc.request("$JS.API.CONSUMER.CREATE.S.c1", json.dumps(
        {"stream_name": "S", "action": "create", "config": {"durable_name": "c1", "ack_policy": "explicit"}}
    ).encode())).data)
    assert r["error"]["err_code"] == 10148
    r = json.loads((await nc.request("$JS.API.CONSUMER.CREATE.S.c3.foo.x", json.dumps(
        {"stream_name": "S", "config": {"durable_name": "c3", "filter_subject": "foo.y"}}).encode())).data)
    assert r["error"]["err_code"] == 10131
    r = json.loads((await nc.request("$JS.API.CONSUMER.CREATE.T", json.dumps(
        {"stream_name": "S", "config": {}}).encode())).data)
    assert r["error"]["err_code"] == 10056
    names = json.loads((await nc.request("$JS.API.CONSUMER.NAMES.S", b"")).data)
    assert names["consumers"] == ["c1"] and names["total"] == 1
    assert await js.delete_consumer("S", "c1")
    with pytest.raises(NotFoundError):
        await js.delete_consumer("S", "c1")


async def test_pull_heartbeats_and_max_bytes(nc):
    js = nc.jetstream()
    await _stream(js)
    await js.publish("foo.a", b"x" * 200)
    await js.add_consumer("S", ConsumerConfig(durable_name="h", ack_policy=AckPolicy.EXPLICIT))
    inbox = nc.new_inbox()
    s = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.h",
                     b'{"batch":1,"max_bytes":50,"expires":2000000000}', reply=inbox)
    st = await s.next_msg(timeout=2)
    assert st.headers["Status"] == "409" and st.headers["Description"] == "Message Size Exceeds MaxBytes"
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.h",
                     b'{"batch":2,"expires":1000000000,"idle_heartbeat":200000000}', reply=inbox)
    m = await s.next_msg(timeout=2)
    assert m.data == b"x" * 200
    hb = await s.next_msg(timeout=2)
    assert hb.headers["Status"] == "100" and hb.headers["Nats-Last-Stream"] == "1"


async def test_flow_control_handshake_with_large_replay(nc):
    js = nc.jetstream()
    await _stream(js)
    big = b"z" * 60_000
    for i in range(60):  # ~3.6 MB: past the first flow-control window (1 MiB request, 2 MiB stall)
        await js.publish("foo.big", big + str(i).encode())
    fc_replies = []
    orig_publish = nc.publish

    async def spy(subject, payload=b"", reply="", headers=None):
        if subject.startswith("$JS.FC."):
            fc_replies.append(subject)
        return await orig_publish(subject, payload, reply, headers)

    nc.publish = spy
    sub = await js.subscribe("foo.big", ordered_consumer=True)
    got = [await sub.next_msg(timeout=5) for _ in range(60)]
    assert [m.data[60_000:] for m in got] == [str(i).encode() for i in range(60)]
    assert fc_replies, "the client never had to answer a flow-control request"


async def test_push_idle_heartbeat_headers(nc):
    js = nc.jetstream()
    await _stream(js)
    await js.publish("foo.a", b"1")
    sub = await nc.subscribe("hb.dlv")
    await js.add_consumer("S", ConsumerConfig(durable_name="hb", deliver_subject="hb.dlv",
                                              ack_policy=AckPolicy.NONE, idle_heartbeat=0.1,
                                              flow_control=True))
    m = await sub.next_msg(timeout=2)
    assert m.data == b"1" and m.subject == "foo.a"
    hb = await sub.next_msg(timeout=2)
    assert hb.headers["Status"] == "100" and hb.headers["Description"] == "Idle Heartbeat"
    assert hb.headers["Nats-Last-Consumer"] == "1" and hb.headers["Nats-Last-Stream"] == "1"


async def test_consumer_advisories(nc):
    js = nc.jetstream()
    await _stream(js)
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.>")
    await js.publish("foo.a", b"1")
    await js.add_consumer("S", ConsumerConfig(durable_name="ad", ack_policy=AckPolicy.EXPLICIT))
    psub = await js.pull_subscribe_bind("ad", "S")
    (m,) = await psub.fetch(1, timeout=2)
    await m.nak()
    (m,) = await psub.fetch(1, timeout=2)
    await m.term()
    await flushed(nc)
    await js.delete_consumer("S", "ad")
    seen = []
    for _ in range(4):
        a = await adv.next_msg(timeout=2)
        seen.append((a.subject, json.loads(a.data)["type"]))
    assert seen == [
        ("$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.ad", "io.nats.jetstream.advisory.v1.consumer_action"),
        ("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.ad", "io.nats.jetstream.advisory.v1.nak"),
        ("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.ad", "io.nats.jetstream.advisory.v1.terminated"),
        ("$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.ad", "io.nats.jetstream.advisory.v1.consumer_action"),
    ]


async def test_idle_ephemeral_push_consumer_is_cleaned_up_without_any_request(nc, ours):
    js = nc.jetstream()
    await _stream(js)
    sub = await js.subscribe("foo.>", inactive_threshold=0.3)
    name = (await sub.consumer_info()).name
    await sub.unsubscribe()
    stream = ours.jetstream.accounts["$G"].streams["S"]
    # no API calls, no publishes: the consumer must notice on its own
    await eventually(lambda: name not in stream.consumers, timeout=5, interval=0.1)


async def test_ephemeral_pull_consumer_goes_away_when_idle(nc, ours):
    js = nc.jetstream()
    await _stream(js)
    ci = await js.add_consumer("S", ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, inactive_threshold=0.3))
    assert ci.config.inactive_threshold == pytest.approx(0.3)
    stream = ours.jetstream.accounts["$G"].streams["S"]
    assert ci.name in stream.consumers
    await eventually(lambda: ci.name not in stream.consumers, timeout=5, interval=0.05)


async def test_deliver_by_start_time(nc):
    import datetime

    js = nc.jetstream()
    await _stream(js)
    await _publish(js, 3, prefix=b"old")
    await asyncio.sleep(0.05)  # the only way to put wall-clock distance between stored messages
    cut = datetime.datetime.now(datetime.UTC)
    await asyncio.sleep(0.05)
    await _publish(js, 2, prefix=b"new")
    psub = await js.pull_subscribe("foo.>", durable="t", config=ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=cut))
    msgs = await psub.fetch(5, timeout=1)
    assert [m.data for m in msgs] == [b"new0", b"new1"]
