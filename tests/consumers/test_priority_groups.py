"""Priority groups (nats-server 2.11+) in the pure state machine with a fake clock: overflow's
thresholds, the pinned client's pin (given, kept alive by its holder's requests, lapsing after
priority_timeout, dropped by UNPIN), 423s, the Nats-Pin-Id header, config checks."""

from __future__ import annotations

import json
import random

import pytest

from pyjetstream.jetstream.consumer import Consumer, Delivery, Status, _parse_pull
from pyjetstream.jetstream.consumer_config import ConsumerConfig, StreamView, apply_defaults, check_config
from pyjetstream.jetstream.errors import ApiError

from .fakes import NS, FakeClock, MemStore
from .test_state_machine import fill

OVER = {"durable_name": "O", "ack_policy": "explicit", "priority_policy": "overflow", "priority_groups": ["A"]}
PIN = {"durable_name": "P", "ack_policy": "explicit", "priority_policy": "pinned_client", "priority_groups": ["G"],
       "priority_timeout": 2 * NS}


def make(cfg: dict, store: MemStore, clock: FakeClock) -> Consumer:
    c = ConsumerConfig.from_json(cfg)
    apply_defaults(c)
    check_config(c, StreamView("S", ["foo.>"]))
    return Consumer("S", c.durable_name, c, store, clock.now, stream_subjects=["foo.>"], account_name="ACC",
                    rng=random.Random(7))


def pull(c: Consumer, reply: str, now: int, **body: object) -> None:
    c.on_pull_request(reply, json.dumps({"batch": 1, "expires": 10 * NS, **body}).encode(), now)


def split(c: Consumer) -> tuple[list[Delivery], list[Status], list]:
    out, adv, _ = c.take_outputs()
    return [o for o in out if isinstance(o, Delivery)], [o for o in out if isinstance(o, Status)], adv


def pin_of(d: Delivery) -> str:
    assert d.hdr is not None
    lines = d.hdr.decode().split("\r\n")
    return next(line.split(": ", 1)[1] for line in lines if line.startswith("Nats-Pin-Id:"))


def config_error(cfg: dict) -> int:
    c = ConsumerConfig.from_json(cfg)
    apply_defaults(c)
    with pytest.raises(ApiError) as e:
        check_config(c, StreamView("S", ["foo.>"]))
    return e.value.err_code


def test_config_checks_and_defaults() -> None:
    assert config_error({**OVER, "deliver_subject": "d"}) == 10178
    assert config_error({"priority_policy": "overflow"}) == 10159
    assert config_error({**OVER, "priority_groups": [""]}) == 10161
    assert config_error({**OVER, "priority_groups": ["a.b"]}) == 10162
    assert config_error({**OVER, "priority_groups": ["x" * 17]}) == 10162
    assert config_error({"priority_groups": ["A"]}) == 10196
    assert config_error({"priority_timeout": NS}) == 10197
    with pytest.raises(ApiError) as e:
        ConsumerConfig.from_json({"priority_policy": "first", "priority_groups": ["A"]})
    assert e.value.err_code == 10025
    c = ConsumerConfig.from_json({**PIN, "priority_timeout": 0})
    apply_defaults(c)
    assert c.priority_timeout == 120 * NS
    assert c.to_json()["priority_policy"] == "pinned_client"
    none = ConsumerConfig.from_json({"priority_policy": "none"})
    assert "priority_policy" not in none.to_json()


def test_priority_fields_of_a_pull_request() -> None:
    *_, pg = _parse_pull(b'{"batch":1,"group":"A","min_pending":3,"min_ack_pending":4,"id":"x","priority":2}')
    assert pg is not None and (pg.group, pg.min_pending, pg.min_ack_pending, pg.id, pg.priority) == ("A", 3, 4, "x", 2)
    assert _parse_pull(b"5")[-1] is None
    with pytest.raises(ValueError, match=r"Go struct field \.min_pending of type int64"):
        _parse_pull(b'{"min_pending": 1.5}')


def test_overflow_serves_a_request_only_past_its_thresholds() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 5)
    c = make(OVER, store, clock)
    pull(c, "_I.hi", clock.now, group="A", min_pending=6)  # 5 pending: not yet
    pull(c, "_I.any", clock.now, group="A")  # no threshold: served
    assert c.poll(clock.now) == 1
    msgs, _, _ = split(c)
    assert [m.dest for m in msgs] == ["_I.any"]
    assert [w.reply for w in c.waiting] == ["_I.hi"]
    fill(store, clock, 2)  # now 6 not yet delivered
    c.on_new_msg(6, "foo.a", clock.now)
    c.on_new_msg(7, "foo.a", clock.now)
    assert c.poll(clock.now) == 1
    msgs, _, _ = split(c)
    assert [m.dest for m in msgs] == ["_I.hi"]
    # min_ack_pending: the two deliveries above are unacked, so 2 is reached and 3 is not,
    # until the first of these two requests got its message
    pull(c, "_I.ack3", clock.now, group="A", min_ack_pending=3)
    pull(c, "_I.ack2", clock.now, group="A", min_ack_pending=2)
    assert c.poll(clock.now) == 2  # ack2 first, then ack3 sees 3 unacked
    msgs, _, _ = split(c)
    assert [m.dest for m in msgs] == ["_I.ack2", "_I.ack3"]
    assert all(m.hdr is None for m in msgs)  # no pin header on overflow


def test_overflow_request_checks() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 1)
    c = make(OVER, store, clock)
    for body, text in (({}, "Priority Group missing"), ({"group": "B"}, "Invalid Priority Group"),
                       ({"group": "A", "id": "x"}, "Not a Pinned Client Priority consumer"),
                       ({"group": "A", "priority": -1}, "Priority must be between 0 and 9")):
        pull(c, "_I.bad", clock.now, **body)
        _, statuses, _ = split(c)
        assert [s.hdr for s in statuses] == [f"NATS/1.0 400 Bad Request - {text}\r\n\r\n".encode()]
    plain = make({"durable_name": "N", "ack_policy": "explicit"}, store, clock)
    pull(plain, "_I.x", clock.now, group="A", min_ack_pending=1)
    _, statuses, _ = split(plain)
    assert [s.hdr for s in statuses] == [b"NATS/1.0 400 Bad Request - Not a Overflow Priority consumer\r\n\r\n"]


def test_pin_is_given_kept_alive_lapses_and_is_dropped_by_unpin() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 10)
    c = make(PIN, store, clock)
    pull(c, "_I.a", clock.now, group="G", batch=2)
    pull(c, "_I.b", clock.now, group="G")
    assert c.poll(clock.now) == 2
    msgs, _, adv = split(c)
    pin = pin_of(msgs[0])
    assert [m.dest for m in msgs] == ["_I.a", "_I.a"] and pin_of(msgs[1]) == pin and len(pin) == 22
    assert [(a.subject, a.fields) for a in adv] == [("$JS.EVENT.ADVISORY.CONSUMER.PINNED.S.P", {
        "account": "ACC", "stream": "S", "consumer": "P", "group": "G", "pinned_id": pin})]
    assert c.priority_state() == [{"group": "G", "pinned_client_id": pin, "pinned_ts": c.priority_state()[0]["pinned_ts"]}]
    assert c.next_deadline() == clock.now + 2 * NS  # the pin's lapse (earlier than the requests' expiry)
    # _I.b has no pin id: it waits while the pin is held
    assert [w.reply for w in c.waiting] == ["_I.b"]
    # a stale id is refused at once
    pull(c, "_I.c", clock.now, group="G", id="stale")
    _, statuses, _ = split(c)
    assert [s.hdr for s in statuses] == [b"NATS/1.0 423 Nats-Pin-Id mismatch\r\n\r\n"]
    # the holder asks again after 1.5 s: the pin lives 2 s from then
    clock.advance(1.5)
    pull(c, "_I.a2", clock.now, group="G", id=pin)
    assert c.poll(clock.now) == 1
    msgs, _, _ = split(c)
    assert [(m.dest, pin_of(m)) for m in msgs] == [("_I.a2", pin)]
    clock.advance(1.9)
    c.poll(clock.now)
    assert c.pin_id == pin
    clock.advance(0.1)
    assert c.poll(clock.now) == 1  # lapsed: _I.b gets a new pin and the message
    msgs, _, adv = split(c)
    assert [a.fields.get("reason") for a in adv] == ["timeout", None]
    assert msgs[0].dest == "_I.b" and pin_of(msgs[0]) == c.pin_id != pin
    # the old holder comes back with its old id: 423 Nats-Wrong-Pin-Id once a message is there
    c.unpin("G", clock.now)
    _, _, adv = split(c)
    assert [(a.subject, a.fields["reason"]) for a in adv] == [("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.P", "admin")]
    assert c.priority_state() == [{"group": "G", "pinned_ts": "0001-01-01T00:00:00Z"}]
    pull(c, "_I.old", clock.now, group="G", id=pin)
    pull(c, "_I.new", clock.now, group="G")
    assert c.poll(clock.now) == 1
    msgs, statuses, _ = split(c)
    assert [s.hdr for s in statuses] == [
        b"NATS/1.0 423 Nats-Wrong-Pin-Id\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: 0\r\n\r\n"]
    assert [m.dest for m in msgs] == ["_I.new"]


def test_pin_header_is_added_to_a_message_with_headers() -> None:
    clock, store = FakeClock(), MemStore()
    store.store_msg("foo.a", b"NATS/1.0\r\nX: 1\r\n\r\n", b"x", clock.now)
    c = make(PIN, store, clock)
    pull(c, "_I.a", clock.now, group="G")
    c.poll(clock.now)
    msgs, _, _ = split(c)
    assert msgs[0].hdr == f"NATS/1.0\r\nX: 1\r\nNats-Pin-Id: {c.pin_id}\r\n\r\n".encode()


def test_prioritized_serves_the_lowest_priority_first_and_round_robins_within_one() -> None:
    clock, store = FakeClock(), MemStore()
    c = make({"durable_name": "R", "ack_policy": "explicit", "priority_policy": "prioritized",
              "priority_groups": ["A"]}, store, clock)
    pull(c, "_I.p5", clock.now, group="A", priority=5, batch=2)
    pull(c, "_I.p1", clock.now, group="A", priority=1)
    pull(c, "_I.p5b", clock.now, group="A", priority=5)
    c.on_pull_request("_I.none", b"1", clock.now)  # no priority group: after every priority
    pull(c, "_I.p0", clock.now, group="A")  # priority 0 is the default
    assert [w.reply for w in c.waiting] == ["_I.p0", "_I.p1", "_I.p5", "_I.p5b", "_I.none"]
    fill(store, clock, 6)
    assert c.poll(clock.now) == 6
    msgs, _, _ = split(c)
    # _I.p5 gets one, goes behind _I.p5b (same priority), and gets its second after it
    assert [m.dest for m in msgs] == ["_I.p0", "_I.p1", "_I.p5", "_I.p5b", "_I.p5", "_I.none"]
