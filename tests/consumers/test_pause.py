"""Consumer pause/resume (nats-server 2.11+): the pure state machine with a fake clock, and the
runner's one timer waking the consumer at the deadline without polling in between."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from pyjetstream.gotime import format_rfc3339
from pyjetstream.jetstream.consumer import Delivery, Status
from pyjetstream.jetstream.consumer_config import ConsumerConfig
from pyjetstream.jetstream.consumer_runner import ConsumerRunner
from pyjetstream.jetstream.errors import ApiError

from .fakes import NS, FakeClock, MemStore
from .test_runner import Clock as RunnerClock
from .test_runner import CStore, cfg, make_stream, settle
from .test_state_machine import fill, make

PULL = {"durable_name": "P", "ack_policy": "explicit"}
PUSH = {"durable_name": "D", "deliver_subject": "dlv", "ack_policy": "explicit", "idle_heartbeat": 5 * NS}


def split(c) -> tuple[list[Delivery], list[Status], list]:
    out, adv, _ = c.take_outputs()
    return [o for o in out if isinstance(o, Delivery)], [o for o in out if isinstance(o, Status)], adv


def until(ns: int) -> str:
    # FakeClock and make() use wall_offset 0: wall ns == now
    return format_rfc3339(ns)


def test_pause_until_is_normalised_to_utc_and_bad_times_are_invalid_json() -> None:
    c = ConsumerConfig.from_json({"pause_until": "2030-01-02T03:04:05.5+02:00"})
    assert c.pause_until == "2030-01-02T01:04:05.5Z"
    assert c.to_json()["pause_until"] == "2030-01-02T01:04:05.5Z"
    # at or before the Unix epoch the time is still kept as given (nats-py resumes with the epoch)
    assert ConsumerConfig.from_json({"pause_until": "1970-01-01T01:00:00+01:00"}).pause_until == "1970-01-01T00:00:00Z"
    assert ConsumerConfig.from_json({"pause_until": "1969-12-31T23:59:59.25Z"}).pause_until == "1969-12-31T23:59:59.25Z"
    assert ConsumerConfig.from_json({"pause_until": "0001-01-01T00:00:00Z"}).pause_until_ns == 0
    for bad in ("tomorrow", 5, True):
        with pytest.raises(ApiError) as e:
            ConsumerConfig.from_json({"pause_until": bad})
        assert e.value.err_code == 10025


def test_push_created_paused_sends_nothing_but_heartbeats_then_resumes_at_the_deadline() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    end = clock.now + 10 * NS
    c = make({**PUSH, "pause_until": until(end)}, store, clock)
    assert c.poll(clock.now) == 0
    assert c.info_state(clock.now)["paused"] is True
    assert c.info_state(clock.now)["pause_remaining"] == 10 * NS
    assert c.next_deadline() == clock.now + 5 * NS  # the heartbeat first
    clock.advance(5)
    assert c.poll(clock.now) == 0
    msgs, statuses, adv = split(c)
    assert msgs == [] and adv == [] and statuses[0].hdr.startswith(b"NATS/1.0 100 Idle Heartbeat")
    assert c.next_deadline() == end  # the pause's end is a deadline of its own
    clock.now = end - 1
    assert c.poll(clock.now) == 0 and c.is_paused(clock.now)
    clock.now = end
    assert c.poll(clock.now) == 3
    msgs, _, adv = split(c)
    assert len(msgs) == 3
    # the resume advisory, once
    assert [(a.subject, a.fields) for a in adv] == [(
        "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.D",
        {"stream": "S", "consumer": "D", "paused": False, "pause_until": until(end)})]
    i = c.info_state(clock.now)
    assert "paused" not in i and "pause_remaining" not in i
    c.poll(clock.now + NS)
    assert split(c)[2] == []


def test_a_pause_in_the_past_is_no_pause_and_sends_no_advisory() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({**PUSH, "pause_until": until(clock.now - NS)}, store, clock)
    assert c.pause_at == 0 and c.poll(clock.now) == 2
    assert split(c)[2] == []
    assert "paused" not in c.info_state(clock.now)


def test_pull_requests_wait_while_paused_and_are_served_on_resume() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 4)
    c = make(PULL, store, clock)
    new = c.cfg.copy()
    new.pause_until = until(clock.now + 3 * NS)
    c.update_config(new, clock.now)
    _, _, adv = split(c)
    assert [a.fields["paused"] for a in adv] == [True]
    c.on_pull_request("_I.1", b'{"batch": 2, "expires": 10000000000}', clock.now)
    assert c.poll(clock.now) == 0
    assert c.info_state(clock.now)["num_waiting"] == 1
    # expires shorter than the pause: a 408, as a request that found nothing
    c.on_pull_request("_I.2", b'{"batch": 1, "expires": 1000000000}', clock.now)
    clock.advance(1)
    assert c.poll(clock.now) == 0
    _, statuses, _ = split(c)
    assert [(s.dest, s.hdr.split(b"\r\n")[0]) for s in statuses] == [("_I.2", b"NATS/1.0 408 Request Timeout")]
    clock.advance(2)
    assert c.poll(clock.now) == 2
    msgs, _, adv = split(c)
    assert [m.dest for m in msgs] == ["_I.1", "_I.1"]
    assert [a.fields["paused"] for a in adv] == [False]


def test_no_wait_while_paused_gets_404_unless_it_can_wait_out_its_expires() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({**PULL, "pause_until": until(clock.now + 60 * NS)}, store, clock)
    c.on_pull_request("_I.nw", b'{"batch": 1, "no_wait": true}', clock.now)
    c.on_pull_request("_I.nwx", b'{"batch": 1, "no_wait": true, "expires": 2000000000}', clock.now)
    c.poll(clock.now)
    _, statuses, _ = split(c)
    assert [(s.dest, s.hdr) for s in statuses] == [("_I.nw", b"NATS/1.0 404 No Messages\r\n\r\n")]
    clock.advance(2)
    c.poll(clock.now)
    _, statuses, _ = split(c)
    assert [(s.dest, s.hdr.split(b"\r\n")[0]) for s in statuses] == [("_I.nwx", b"NATS/1.0 408 Request Timeout")]


def test_resume_by_update_lifts_the_pause_at_once_and_says_so() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 1)
    c = make({**PUSH, "pause_until": until(clock.now + 60 * NS)}, store, clock)
    assert c.poll(clock.now) == 0
    new = c.cfg.copy()
    new.pause_until = None
    c.update_config(new, clock.now)
    assert c.poll(clock.now) == 1
    _, _, adv = split(c)
    assert [(a.fields["paused"], a.fields["pause_until"]) for a in adv] == [(False, "0001-01-01T00:00:00Z")]
    # the same deadline again is no change: no advisory
    same = c.cfg.copy()
    c.update_config(same, clock.now)
    assert split(c)[2] == []


def test_pause_keeps_redelivery_bookkeeping_but_holds_redeliveries() -> None:
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 1)
    c = make({**PUSH, "ack_wait": NS}, store, clock)
    assert c.poll(clock.now) == 1
    split(c)
    new = c.cfg.copy()
    new.pause_until = until(clock.now + 10 * NS)
    c.update_config(new, clock.now)
    clock.advance(2)
    assert c.poll(clock.now) == 0 and list(c.rdq) == [1]
    clock.advance(8)
    assert c.poll(clock.now) == 1
    msgs, _, _ = split(c)
    assert msgs[0].reply.split(".")[4] == "2"  # the second delivery


async def test_runner_pause_arms_the_timer_at_the_deadline_and_resumes_from_it() -> None:
    store = MemStore()
    store.store_msg("foo.a", b"", b"x", 1)
    stream, bus, _ = make_stream(store)
    stream.jsa.js = SimpleNamespace(domain="")
    bus.listening.update({"dlv", "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.D"})
    clock = RunnerClock()
    r = ConsumerRunner(stream, "D", cfg(), cstore=CStore(), clock=clock)
    paused, remaining = r.pause(format_rfc3339(clock.wall() + 30 * NS))
    await settle()
    assert (paused, remaining) == (True, 30 * NS)
    assert r.info()["paused"] and r.info()["pause_remaining"] == 30 * NS
    sent = [s for s in bus.sent if s[0] == "dlv"]
    assert [s for s in sent if s[1].startswith("$JS.ACK")] == []
    adv = [json.loads(s[3]) for s in bus.sent if s[0].startswith("$JS.EVENT")]
    assert [(a["type"], a["paused"]) for a in adv] == [("io.nats.jetstream.advisory.v1.consumer_pause", True)]
    # one timer, at the pause's end (no interest re-checks while it has a subscriber)
    assert r._timer_at == clock.now() + 30 * NS
    bus.sent.clear()
    clock.t += 30 * NS
    r._on_timer()
    assert [s[0] for s in bus.sent if s[1].startswith("$JS.ACK")] == ["dlv"]
    adv = [json.loads(s[3]) for s in bus.sent if s[0].startswith("$JS.EVENT")]
    assert [a["paused"] for a in adv] == [False]
    assert json.loads(r.cstore.configs[-1])["config"]["pause_until"] == format_rfc3339(
        clock.wall() - clock.now() + 10 * NS + 30 * NS)
    r.stop()


async def test_a_pause_set_through_the_api_survives_a_restart(tmp_path) -> None:
    import nats
    from nats.js.api import StorageType, StreamConfig

    from .conftest import start_server

    store_dir = str(tmp_path / "js")
    srv = await start_server(store_dir)
    port = srv.port
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="R", subjects=["r.>"], storage=StorageType.FILE))
        await js.publish("r.x", b"held")
        await nc.request("$JS.API.CONSUMER.CREATE.R.dur", json.dumps(
            {"stream_name": "R", "config": {"durable_name": "dur", "ack_policy": "explicit"}}).encode(), timeout=3)
        r = await js.pause_consumer("R", "dur", "2099-01-01T00:00:00Z")
        assert r.paused
    finally:
        await nc.close()
        await srv.shutdown()
    srv = await start_server(store_dir, port)
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        info = json.loads((await nc.request("$JS.API.CONSUMER.INFO.R.dur", b"", timeout=3)).data)
        assert info["paused"] is True and info["config"]["pause_until"] == "2099-01-01T00:00:00Z"
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.R.dur", b'{"batch":1,"no_wait":true}', reply=inbox)
        m = await sub.next_msg(timeout=3)
        assert (m.headers or {}).get("Status") == "404"  # still paused: nothing delivered
    finally:
        await nc.close()
        await srv.shutdown()
