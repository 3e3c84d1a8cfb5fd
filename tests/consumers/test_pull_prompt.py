"""Pull requests are answered promptly (issue 12): a no_wait request ends the moment it can
get no more messages, also when max_ack_pending holds the rest back, so no request is left on
the consumer after the client's fetch returned. The pure state machine with a fake clock; the
nats-py sequence that found it runs against both servers in
tests/differential/test_js_pull_prompt_diff.py."""

from __future__ import annotations

from nats.js.api import ConsumerConfig

from pyjetstream.jetstream.consumer import Consumer, Delivery, Status

from .fakes import FakeClock, MemStore
from .test_state_machine import fill, info, make

PULL5 = {"durable_name": "P", "ack_policy": "explicit", "max_ack_pending": 5, "max_waiting": 5}
TIMEOUT_408 = b"NATS/1.0 408 Request Timeout\r\n"


def outputs(c: Consumer) -> tuple[list[Delivery], list[Status]]:
    out, _adv, _acks = c.take_outputs()
    return [o for o in out if isinstance(o, Delivery)], [o for o in out if isinstance(o, Status)]


def ack_all(c: Consumer, msgs: list[Delivery], now: int) -> None:
    for m in msgs:
        c.on_ack(m.reply, "", b"+ACK", now)


def test_no_wait_stalled_by_max_ack_pending_after_some_messages_ends_at_once() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 20)
    c = make(PULL5, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 2}', clock.now)
    c.poll(clock.now)
    held, _ = outputs(c)
    assert len(held) == 2  # two unacked: room for three more
    c.on_pull_request("_I.2", b'{"batch": 4, "expires": 1000000000, "idle_heartbeat": 100000000, '
                              b'"no_wait": true}', clock.now)
    assert c.poll(clock.now) == 3
    msgs, statuses = outputs(c)
    assert [m.dest for m in msgs] == ["_I.2"] * 3
    # the 408 comes in the same poll, before any heartbeat was due
    assert statuses == [Status("_I.2", "", TIMEOUT_408 + b"Nats-Pending-Messages: 1\r\n"
                                             b"Nats-Pending-Bytes: 0\r\n\r\n", b"")]
    assert info(c, clock.now)["num_waiting"] == 0
    # nothing is left to take a message freed later by an ack
    ack_all(c, held, clock.now)
    assert c.poll(clock.now) == 0


def test_no_wait_without_expires_stalled_before_any_message_gets_408() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 10)
    c = make(PULL5, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 5}', clock.now)
    c.poll(clock.now)
    outputs(c)
    c.on_pull_request("_I.2", b'{"batch": 1, "no_wait": true}', clock.now)
    assert c.poll(clock.now) == 0
    msgs, statuses = outputs(c)
    assert msgs == [] and [s.dest for s in statuses] == ["_I.2"]
    assert statuses[0].hdr.startswith(TIMEOUT_408)
    assert info(c, clock.now)["num_waiting"] == 0


def test_no_wait_with_expires_stalled_before_any_message_lingers_until_an_ack() -> None:
    """nats-server's one-shot with expires: it waits (with heartbeats) and returns as soon as
    it got something; here an ack frees a slot, one message goes out, and the request ends."""
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 10)
    c = make(PULL5, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 5}', clock.now)
    c.poll(clock.now)
    held, _ = outputs(c)
    c.on_pull_request("_I.2", b'{"batch": 3, "expires": 1000000000, "idle_heartbeat": 100000000, '
                              b'"no_wait": true}', clock.now)
    assert c.poll(clock.now) == 0
    assert outputs(c) == ([], [])
    assert info(c, clock.now)["num_waiting"] == 1
    clock.advance(0.1)
    c.poll(clock.now)
    msgs, statuses = outputs(c)
    assert msgs == [] and len(statuses) == 1 and b"100 Idle Heartbeat" in statuses[0].hdr
    ack_all(c, held[:1], clock.now)
    assert c.poll(clock.now) == 1
    msgs, statuses = outputs(c)
    assert [m.dest for m in msgs] == ["_I.2"]
    assert len(statuses) == 1 and statuses[0].hdr.startswith(TIMEOUT_408)
    assert b"Nats-Pending-Messages: 2\r\n" in statuses[0].hdr
    assert info(c, clock.now)["num_waiting"] == 0


def test_lingering_request_is_not_ended_by_the_ack_pending_limit() -> None:
    """Only one-shots end when stalled: a plain pull keeps waiting for its expiry."""
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 10)
    c = make(PULL5, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 8, "expires": 2000000000}', clock.now)
    assert c.poll(clock.now) == 5
    msgs, statuses = outputs(c)
    assert statuses == [] and info(c, clock.now)["num_waiting"] == 1
    ack_all(c, msgs[:2], clock.now)
    assert c.poll(clock.now) == 2
    clock.advance(2)
    c.poll(clock.now)
    _, statuses = outputs(c)
    assert len(statuses) == 1 and b"Nats-Pending-Messages: 1\r\n" in statuses[0].hdr


def _fetch(c: Consumer, clock: FakeClock, reply: str, batch: int, hb: bool = False) -> list[Delivery]:
    """What nats-py's fetch sends first: a no_wait probe with the whole timeout as expires."""
    body = f'{{"batch": {batch}, "expires": 999900000, "no_wait": true'
    body += ', "idle_heartbeat": 100000000}' if hb else "}"
    c.on_pull_request(reply, body.encode(), clock.now)
    c.poll(clock.now)
    msgs, _ = outputs(c)
    return msgs


def test_the_issue_sequence_leaves_no_request_behind() -> None:
    """fetch(5)+ack, fetch(1) (kept), fetch(20)+ack, fetch(4) with heartbeats, three times:
    after each probe that got messages nothing waits on the consumer any more."""
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 200)
    c = make(PULL5, store, clock)
    got: list[int] = []
    for cycle in range(3):
        for i, (batch, keep, hb) in enumerate(((5, False, False), (1, True, False), (20, False, False),
                                              (4, False, True))):
            msgs = _fetch(c, clock, f"_I.{cycle}.{i}", batch, hb)
            got.append(len(msgs))
            if msgs:
                assert info(c, clock.now)["num_waiting"] == 0
            if not keep:
                ack_all(c, msgs, clock.now)
            clock.advance(0.01)
    # each fetch(1) keeps one message unacked: the room shrinks by one every cycle
    assert got == [5, 1, 4, 4, 4, 1, 3, 3, 3, 1, 2, 2]
    assert len(c.pending) == 3 and not c.waiting


async def test_stalled_no_wait_without_expires_is_answered_over_the_wire(nc) -> None:
    """Over a real socket: with max_ack_pending used up, a bare no_wait request gets its 408
    (nats-server 2.9.10 leaves it unanswered until an ack frees a slot)."""
    js = nc.jetstream()
    await js.add_stream(name="W", subjects=["w"], storage="memory")
    for i in range(3):
        await js.publish("w", b"%d" % i)
    await js.add_consumer("W", ConsumerConfig(durable_name="d", ack_policy="explicit", max_ack_pending=1))
    # deliveries keep the stream subject, so the replies are read off a plain inbox subscription
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.W.d", b'{"batch": 1, "no_wait": true}', reply=inbox)
    first = await sub.next_msg(timeout=2)
    assert first.data == b"0" and first.reply.startswith("$JS.ACK.W.d.")
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.W.d", b'{"batch": 1, "no_wait": true}', reply=inbox)
    probe = await sub.next_msg(timeout=2)
    assert probe.headers is not None and probe.headers.get("Status") == "408"
    info = await js.consumer_info("W", "d")
    assert info.num_waiting == 0 and info.num_ack_pending == 1
