"""Message schedules: the table of live schedules and its timer, driven by the stream's (fake)
clock and an injected call_later; the header rewriting of a fired message; rebuild after a
restart; and, over real sockets with nats-py, a schedule that fires after a SIGKILL restart."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import nats
import pytest

from pyjetstream.gotime import format_rfc3339
from pyjetstream.jetstream.schedule import MsgSchedules, schedule_time

from .conftest import FakeClock, FakeServer, hdrs
from .procs import own_server_available, start_js
from .test_atomic_batch import FakeTimers


async def create(server: FakeServer, name: str = "S", **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, "subjects": ["s.>"],
                                                   "allow_msg_schedules": True, **cfg})
    assert "error" not in r, r
    return r


def at(clock: FakeClock, seconds: float) -> str:
    return "@at " + format_rfc3339(clock() + int(seconds * 1e9))


async def pub(server: FakeServer, subject: str, data: bytes = b"x", **h: str) -> Any:
    return (await server.request(subject, data, hdr=hdrs(**h) if h else None)).json()


def wired(js: Any) -> tuple[Any, FakeTimers]:
    stream = js.accounts["$G"].streams["S"]
    timers = FakeTimers()
    stream.schedules = MsgSchedules(stream, call_later=timers)
    return stream, timers


def test_schedule_time_forms() -> None:
    assert schedule_time("@at 2020-01-01T00:00:00Z") == 1_577_836_800_000_000_000
    assert schedule_time("@at 2020-01-01T01:00:00+01:00") == 1_577_836_800_000_000_000
    # forms of later releases, and anything else, are invalid in 2.12
    for bad in ("@every 1s", "0 * * * * *", "@at", "@at 2020-01-01", "at 2020-01-01T00:00:00Z", ""):
        assert schedule_time(bad) is None, bad


async def test_schedule_fires_when_due_and_purges_itself(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server, allow_msg_ttl=True)
    stream, timers = wired(js)
    r = await pub(server, "s.sched", b"body", Nats_Schedule=at(clock, 60), Nats_Schedule_Target="s.out",
                  Nats_Schedule_TTL="1h", Nats_Expected_Last_Sequence="0", Custom="v")
    assert r == {"stream": "S", "seq": 1}
    assert timers.delays == [60.0]
    clock.advance(30)
    assert stream.schedules.run() == 0  # fired early (a timer of the loop): nothing is due yet
    assert timers.delays[-1] == 30.0  # re-armed for the rest
    clock.advance(30)
    assert stream.schedules.run() == 1
    m = stream.store.load_last_msg("s.out")
    assert m is not None and m.data == b"body" and m.seq == 2
    lines = sorted(m.hdr.decode().split("\r\n")[1:-2])
    assert lines == ["Custom: v", "Nats-Schedule-Next: purge", "Nats-Scheduler: s.sched", "Nats-TTL: 1h"]
    assert stream.store.load_last_msg("s.sched") is None
    assert stream.schedules.entries == {}
    assert timers.fire_live() == 0  # nothing left to fire


async def test_earliest_schedule_fires_first_and_in_sequence_order(server: FakeServer, js: Any,
                                                                   clock: FakeClock) -> None:
    await create(server)
    stream, timers = wired(js)
    await pub(server, "s.a", b"a", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out.a")
    await pub(server, "s.b", b"b", Nats_Schedule=at(clock, 5), Nats_Schedule_Target="s.out.b")
    await pub(server, "s.c", b"c", Nats_Schedule=at(clock, 100), Nats_Schedule_Target="s.out.c")
    # the second, earlier schedule moved the timer forward; the later third did not
    live = [d for h, d in zip(timers.handles, timers.delays, strict=True) if not h.cancelled]
    assert live == [5.0]
    clock.advance(20)
    assert stream.schedules.run() == 2
    outs = [stream.store.load_msg(s) for s in (4, 5)]
    assert [m.subject for m in outs if m] == ["s.out.a", "s.out.b"]  # by schedule sequence
    assert list(stream.schedules.entries) == ["s.c"]


async def test_past_schedule_waits_the_minimum_delay(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server)
    _, timers = wired(js)
    await pub(server, "s.a", Nats_Schedule=at(clock, -3600), Nats_Schedule_Target="s.out")
    assert timers.delays == [0.25]


async def test_new_schedule_or_plain_message_replaces_the_old(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server)
    stream, _ = wired(js)
    await pub(server, "s.a", b"1", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out")
    await pub(server, "s.a", b"2", Nats_Schedule=at(clock, 20), Nats_Schedule_Target="s.out")
    assert stream.store.state().msgs == 1  # the roll-up added to a schedule replaced the first
    assert stream.schedules.entries["s.a"][0] == 2
    await pub(server, "s.a", b"plain", X="1")
    assert stream.schedules.entries == {}
    clock.advance(30)
    assert stream.schedules.run() == 0


async def test_deleted_schedule_does_not_fire(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server)
    stream, _ = wired(js)
    await pub(server, "s.a", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out")
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 1})
    assert r.get("success") is True, r
    clock.advance(30)
    assert stream.schedules.run() == 0
    assert stream.store.state().msgs == 0


async def test_rebuild_finds_the_live_schedules(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server)
    stream, timers = wired(js)
    await pub(server, "s.a", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out")
    await pub(server, "s.b", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out")
    await pub(server, "s.b", b"plain")
    fresh = MsgSchedules(stream, call_later=timers)
    assert fresh.rebuild() == 1
    assert list(fresh.entries) == ["s.a"]


async def test_client_purge_header_needs_schedules(server: FakeServer, js: Any) -> None:
    r = await server.api("STREAM.CREATE.P", {"name": "P", "subjects": ["p.>"]})
    assert "error" not in r
    r = await pub(server, "p.x", Nats_Schedule_Next="purge", Nats_Scheduler="p.y")
    assert r["error"]["err_code"] == 10188


async def test_update_enabling_schedules_starts_the_table(server: FakeServer, js: Any, clock: FakeClock) -> None:
    r = await server.api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    cfg = r["config"]
    r = await server.api("STREAM.UPDATE.S", {**cfg, "allow_msg_schedules": True})
    assert r["config"]["allow_msg_schedules"] is True and r["config"]["allow_rollup_hdrs"] is True
    stream = js.accounts["$G"].streams["S"]
    assert stream.schedules is not None
    timers = FakeTimers()
    stream.schedules._call_later = timers
    await pub(server, "s.a", Nats_Schedule=at(clock, 1), Nats_Schedule_Target="s.out")
    clock.advance(2)
    assert stream.schedules.run() == 1


@pytest.mark.skipif(not own_server_available(), reason="no server yet")
async def test_schedule_survives_a_hard_kill(tmp_path: Any) -> None:
    store = str(tmp_path / "store")
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        r = await nc.request("$JS.API.STREAM.CREATE.S", json.dumps(
            {"name": "S", "subjects": ["s.>"], "allow_msg_schedules": True}).encode(), timeout=5)
        assert "error" not in json.loads(r.data)
        due = "@at " + format_rfc3339(time.time_ns() + 2_000_000_000)
        r = await nc.request("s.sched", b"later", headers={"Nats-Schedule": due, "Nats-Schedule-Target": "s.out"},
                             timeout=5)
        assert json.loads(r.data) == {"stream": "S", "seq": 1}
        await nc.close()
    finally:
        proc.stop(signal.SIGKILL)
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        js = nc.jetstream()
        sub = await js.subscribe("s.out", stream="S")
        m = await sub.next_msg(timeout=20)  # fires at the due time (about 2 s after the publish)
        assert m.data == b"later" and m.headers is not None and m.headers["Nats-Scheduler"] == "s.sched"
        await asyncio.sleep(0)
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.S", b"", timeout=5)).data)
        assert info["state"]["messages"] == 1  # the schedule itself was purged
        await nc.close()
    finally:
        proc.stop()


async def test_schedule_inside_an_atomic_batch(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server, allow_atomic=True)
    stream, _ = wired(js)
    bh = {"Nats_Batch_Id": "b"}
    await pub(server, "s.a", b"old", Nats_Schedule=at(clock, 10), Nats_Schedule_Target="s.out")
    staged = await server.request("s.x", b"1", hdr=hdrs(Nats_Batch_Sequence="1", **bh))
    assert staged.payload == b""
    r = await pub(server, "s.a", b"new", Nats_Batch_Sequence="2", Nats_Batch_Commit="1",
                  Nats_Schedule=at(clock, 5), Nats_Schedule_Target="s.out", **bh)
    assert r == {"stream": "S", "seq": 3, "batch": "b", "count": 2}
    assert stream.store.state().msgs == 2  # the implied roll-up replaced the older schedule
    assert stream.schedules.entries == {"s.a": (3, clock() + 5_000_000_000)}
    await server.request("s.y", b"1", hdr=hdrs(Nats_Batch_Sequence="1", Nats_Batch_Id="c"))
    r = await pub(server, "s.y", b"2", Nats_Batch_Sequence="2", Nats_Batch_Commit="1", Nats_Batch_Id="c",
                  Nats_Schedule="@every 1s", Nats_Schedule_Target="s.out")
    assert r["error"]["err_code"] == 10189


async def test_a_burst_of_due_schedules_is_fired_in_turns(server: FakeServer, js: Any, clock: FakeClock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pyjetstream.jetstream import schedule as schedule_mod

    monkeypatch.setattr(schedule_mod, "MAX_FIRE_PER_RUN", 2)
    await create(server)
    stream, timers = wired(js)
    for i in range(5):
        await pub(server, f"s.sched.{i}", b"%d" % i, Nats_Schedule=at(clock, 1), Nats_Schedule_Target=f"s.out.{i}")
    # a replaced schedule leaves a stale heap entry behind; it must not fire
    await pub(server, "s.sched.4", b"later", Nats_Schedule=at(clock, 100), Nats_Schedule_Target="s.out.4")
    clock.advance(2)
    assert stream.schedules.run() == 2
    assert timers.delays[-1] == 0.0  # the rest goes on the next loop turn
    assert stream.schedules.run() == 2
    assert stream.schedules.run() == 0
    assert timers.delays[-1] == 98.0
    assert [m.subject for m in (stream.store.load_last_msg(f"s.out.{i}") for i in range(5)) if m] == [
        "s.out.0", "s.out.1", "s.out.2", "s.out.3"]
