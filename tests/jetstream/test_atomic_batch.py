"""Atomic batch publish: staging, the commit's checks over the whole batch, one group commit,
abandonment by timer (injected), limits, and the helpers that read the batch headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyjetstream.jetstream import batch as batch_mod
from pyjetstream.jetstream.batch import AtomicBatches, batch_id, header_value

from .conftest import FakeServer, hdrs, settle


async def create(server: FakeServer, name: str = "S", **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, "allow_atomic": True, **cfg})
    assert "error" not in r, r
    return r


def bh(bid: str, seq: int, commit: str = "", **extra: str) -> bytes:
    kv = {"Nats_Batch_Id": bid, "Nats_Batch_Sequence": str(seq), **extra}
    if commit:
        kv["Nats_Batch_Commit"] = commit
    return hdrs(**kv)


async def send(server: FakeServer, subject: str, hdr: bytes, data: bytes = b"x") -> Any:
    r = await server.request(subject, data, hdr=hdr)
    return r.json() if r.payload else ""


async def msgs(server: FakeServer, name: str = "S") -> int:
    return int((await server.api(f"STREAM.INFO.{name}"))["state"]["messages"])


class FakeTimers:
    """call_later stand-in: records callbacks; tests fire them instead of waiting."""

    class Handle:
        def __init__(self, cb: Any) -> None:
            self.cb = cb
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.handles: list[FakeTimers.Handle] = []
        self.delays: list[float] = []

    def __call__(self, delay: float, cb: Any) -> Handle:
        h = FakeTimers.Handle(cb)
        self.handles.append(h)
        self.delays.append(delay)
        return h

    def fire_live(self) -> int:
        live = [h for h in self.handles if not h.cancelled]
        for h in live:
            h.cb()
        return len(live)


def with_timers(js: Any, name: str = "S") -> FakeTimers:
    timers = FakeTimers()
    stream = js.accounts["$G"].streams[name]
    stream.atomic = AtomicBatches(stream, call_later=timers)
    return timers


def test_header_helpers() -> None:
    h = hdrs(Nats_Batch_Id="abc", Nats_Batch_Sequence="7")
    assert batch_id(h) == "abc"
    assert header_value(h, b"Nats-Batch-Sequence") == b"7"
    assert header_value(h, b"Nats-Batch-Commit") is None
    assert batch_id(hdrs(Nats_Batch_Id="")) == ""
    assert batch_id(None) == ""
    # the lookup is by exact key, as nats-server's
    assert batch_id(b"NATS/1.0\r\nnats-batch-id: abc\r\n\r\n") == ""


async def test_nothing_is_stored_or_durable_before_the_commit(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    stream = js.accounts["$G"].streams["S"]
    assert await send(server, "o.1", bh("b", 1)) == ""
    assert await send(server, "o.2", bh("b", 2)) == ""
    assert stream.store.state().msgs == 0
    held: list[Any] = []
    stream.store.commit = held.append  # the fsync has not finished yet
    inbox = server.new_inbox()
    server.publish(server.global_account, "o.3", inbox, bh("b", 3, "1"), b"x")
    await settle()
    assert stream.store.state().msgs == 3  # stored in one run ...
    assert server.replies(inbox) == []  # ... but acknowledged only once durable
    assert len(held) == 1  # one commit for the whole batch
    held[0]()
    assert server.replies(inbox)[0].json() == {"stream": "S", "seq": 3, "batch": "b", "count": 3}


async def test_batches_interleave_with_plain_publishes(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    assert await send(server, "o.a", bh("A", 1)) == ""
    assert await send(server, "o.b", bh("B", 1)) == ""
    assert (await send(server, "o.p", b"NATS/1.0\r\nX: 1\r\n\r\n"))["seq"] == 1
    assert await send(server, "o.b", bh("B", 2, "1")) == {"stream": "S", "seq": 3, "batch": "B", "count": 2}
    assert await send(server, "o.a", bh("A", 2, "1")) == {"stream": "S", "seq": 5, "batch": "A", "count": 2}
    subjects = [(await server.api("STREAM.MSG.GET.S", {"seq": s}))["message"]["subject"] for s in range(1, 6)]
    assert subjects == ["o.p", "o.b", "o.b", "o.a", "o.a"]


async def test_abandoned_batch_is_dropped_with_an_advisory(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    timers = with_timers(js)
    server.listening.add("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.S")
    assert await send(server, "o.1", bh("b", 1)) == ""
    assert await send(server, "o.1", bh("b", 2)) == ""
    # each message re-arms the inactivity timer: only the newest is live
    assert timers.delays == [batch_mod.MAX_BATCH_TIMEOUT_S] * 2
    assert [h.cancelled for h in timers.handles] == [True, False]
    assert timers.fire_live() == 1
    adv = [d for d in server.outbox if d.subject.endswith("BATCH_ABANDONED.S")]
    assert len(adv) == 1
    doc = json.loads(adv[0].payload)
    assert (doc["type"], doc["batch"], doc["reason"]) == (
        "io.nats.jetstream.advisory.v1.stream_batch_abandoned", "b", "timeout")
    r = await send(server, "o.1", bh("b", 3, "1"))
    assert r["error"]["err_code"] == 10176
    assert await msgs(server) == 0
    assert js.accounts["$G"].streams["S"].atomic.batches == {}


async def test_committed_batch_cancels_its_timer(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    timers = with_timers(js)
    await send(server, "o.1", bh("b", 1))
    await send(server, "o.1", bh("b", 2, "1"))
    assert all(h.cancelled for h in timers.handles)
    assert timers.fire_live() == 0


async def test_inflight_limits(server: FakeServer, js: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_mod, "MAX_INFLIGHT_PER_STREAM", 2)
    await create(server, subjects=["o.>"])
    base = batch_mod._inflight_total
    assert await send(server, "o.1", bh("a", 1)) == ""
    assert await send(server, "o.1", bh("b", 1)) == ""
    r = await send(server, "o.1", bh("c", 1))
    assert r["error"] == {"code": 429, "err_code": 10210, "description": "atomic publish too many inflight"}
    assert batch_mod._inflight_total == base + 2
    # the server-wide count is given back when the stream goes
    await server.api("STREAM.DELETE.S")
    assert batch_mod._inflight_total == base


async def test_server_wide_inflight_limit(server: FakeServer, js: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    await create(server, "S1", subjects=["a.>"])
    await create(server, "S2", subjects=["b.>"])
    monkeypatch.setattr(batch_mod, "MAX_INFLIGHT_TOTAL", batch_mod._inflight_total + 1)
    assert await send(server, "a.1", bh("x", 1)) == ""
    r = await send(server, "b.1", bh("x", 1))
    assert r["error"]["err_code"] == 10210
    assert (await send(server, "a.1", bh("x", 2, "1")))["count"] == 2
    assert await send(server, "b.1", bh("x", 1)) == ""  # room again after the commit


async def test_too_large_batch(server: FakeServer, js: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_mod, "MAX_BATCH_SIZE", 2)
    await create(server, subjects=["o.>"])
    server.listening.add("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.S")
    await send(server, "o.1", bh("b", 1))
    await send(server, "o.1", bh("b", 2))
    r = await send(server, "o.1", bh("b", 3, "1"))
    assert r["error"] == {"code": 400, "err_code": 10199, "description": "atomic publish batch is too large: 2"}
    reasons = [json.loads(d.payload)["reason"] for d in server.outbox if "BATCH_ABANDONED" in d.subject]
    assert reasons == ["large"]
    # the end-of-batch marker does not count toward the size
    await send(server, "o.1", bh("e", 1))
    await send(server, "o.1", bh("e", 2))
    assert (await send(server, "o.1", bh("e", 3, "eob")))["count"] == 2
    assert await msgs(server) == 2


async def test_expected_last_sequence_only_on_the_first_message(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    await send(server, "o.1", bh("a", 1, Nats_Expected_Last_Sequence="0"))
    assert (await send(server, "o.1", bh("a", 2, "1")))["seq"] == 2
    await send(server, "o.1", bh("b", 1))
    # 3 is what the stream's last sequence will be when this message is stored; still refused
    r = await send(server, "o.1", bh("b", 2, "1", Nats_Expected_Last_Sequence="3"))
    assert r["error"] == {"code": 400, "err_code": 10164, "description": "wrong last sequence"}
    assert await msgs(server) == 2


async def test_whole_batch_refused_by_discard_new(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"], discard="new", max_msgs=3)
    assert (await send(server, "o.1", bh("a", 1, "1")))["seq"] == 1
    for i in (1, 2):
        await send(server, "o.1", bh("b", i))
    r = await send(server, "o.1", bh("b", 3, "1"))
    assert r["error"]["err_code"] == 10077
    assert r["error"]["description"] == "maximum messages exceeded"
    assert await msgs(server) == 1  # none of the three


async def test_rollup_rules_inside_a_batch(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"], allow_rollup_hdrs=True)
    await send(server, "o.1", bh("a", 1))
    r = await send(server, "o.1", bh("a", 2, "1", Nats_Rollup="sub"))
    assert r["error"]["description"] == "batch rollup sub invalid"
    # a roll-up on the first message of the batch replaces what the stream held
    await send(server, "o.1", b"NATS/1.0\r\nX: 1\r\n\r\n")
    await send(server, "o.1", bh("b", 1, Nats_Rollup="all"))
    assert (await send(server, "o.2", bh("b", 2, "1")))["seq"] == 3
    assert await msgs(server) == 2


async def test_headers_refused_inside_a_batch(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["o.>"])
    for extra, code in (({"Nats_Schedule": "@at 2030-01-01T00:00:00Z"}, 10188), ({"Nats_Incr": "1"}, 10168),
                        ({"Nats_TTL": "1h"}, 10166), ({"Nats_Expected_Stream": "T"}, 10060),
                        ({"Nats_Stream_Source": "X 1"}, 10227)):
        await send(server, "o.1", bh("h", 1))
        r = await send(server, "o.1", bh("h", 2, "1", **extra))
        assert r["error"]["err_code"] == code, (extra, r)
    assert await msgs(server) == 0


async def test_transform_and_no_ack(server: FakeServer, js: Any) -> None:
    await create(server, subjects=["in.>"], subject_transform={"src": "in.>", "dest": "out.>"}, no_ack=True)
    inbox = server.new_inbox()
    for i, commit in ((1, ""), (2, "1")):
        server.publish(server.global_account, "in.x", inbox, bh("t", i, commit), b"x")
    await settle()
    assert server.replies(inbox) == []  # no acks on a no-ack stream, not even the commit's
    got = await server.api("STREAM.MSG.GET.S", {"seq": 2})
    assert got["message"]["subject"] == "out.x"


async def test_sealed_stream_refuses_batches(server: FakeServer, js: Any) -> None:
    cfg = (await create(server, subjects=["o.>"]))["config"]
    await send(server, "o.1", bh("s", 1))
    r = await server.api("STREAM.UPDATE.S", {**cfg, "sealed": True})
    assert "error" not in r, r
    r = await send(server, "o.1", bh("s", 2, "1"))
    assert r["error"]["err_code"] == 10109


async def test_disabling_atomic_publish_drops_inflight_batches(server: FakeServer, js: Any) -> None:
    cfg = (await create(server, subjects=["o.>"]))["config"]
    base = batch_mod._inflight_total
    await send(server, "o.1", bh("d", 1))
    assert batch_mod._inflight_total == base + 1
    await server.api("STREAM.UPDATE.S", {**cfg, "allow_atomic": False})
    assert batch_mod._inflight_total == base
    r = await send(server, "o.1", bh("d", 2, "1"))
    assert r["error"]["err_code"] == 10174


async def test_staged_bytes_are_capped_server_wide(server: FakeServer, js: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    await create(server, subjects=["o.>"])
    base = batch_mod._staged_bytes
    monkeypatch.setattr(batch_mod, "MAX_STAGED_BYTES_TOTAL", base + 3000)
    server.listening.add("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.S")
    assert await send(server, "o.1", bh("a", 1), b"x" * 1000) == ""
    assert await send(server, "o.1", bh("b", 1), b"x" * 1000) == ""
    r = await send(server, "o.1", bh("a", 2), b"x" * 1000)
    assert r["error"] == {"code": 429, "err_code": 10210, "description": "atomic publish too many inflight"}
    reasons = [json.loads(d.payload)["reason"] for d in server.outbox if "BATCH_ABANDONED" in d.subject]
    assert reasons == ["large"]
    # the refused batch gave its bytes back; the other one still commits and frees its own
    assert (await send(server, "o.1", bh("b", 2, "1"), b"x" * 1000))["count"] == 2
    assert batch_mod._staged_bytes == base
