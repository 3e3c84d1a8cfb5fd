"""The pure consumer state machine, driven by a fake clock and an in-memory store."""

from __future__ import annotations

import json

import pytest

from pyjetstream.gotime import parse_duration as parse_go_duration
from pyjetstream.jetstream.consumer import Consumer
from pyjetstream.jetstream.consumer_config import (
    ConsumerConfig,
    StreamView,
    apply_defaults,
    check_config,
    check_update,
)
from pyjetstream.jetstream.errors import ApiError

from .fakes import NS, FakeClock, MemStore

MS = NS // 1000


def make(cfg: dict, store: MemStore, clock: FakeClock, *, retention: str = "limits",
         interest=None, state=None, subjects=("foo.>",)) -> Consumer:
    c = ConsumerConfig.from_json(cfg)
    apply_defaults(c)
    check_config(c, StreamView("S", list(subjects), retention))
    return Consumer("S", c.durable_name or c.name or "C", c, store, clock.now, retention=retention,
                    stream_subjects=list(subjects), has_interest=interest, state=state)


def fill(store: MemStore, clock: FakeClock, n: int, subject: str = "foo.a", data: bytes = b"x") -> None:
    for i in range(n):
        store.store_msg(subject, b"", data + str(i).encode(), clock.now + i)


def deliveries(c: Consumer) -> list[tuple[str, str, bytes | None, bytes]]:
    out, _adv, _acks = c.take_outputs()
    d = [o for o in out if o[1].startswith("$JS.ACK.")]
    assert all(len(o) == 5 and o[4].startswith("foo.") for o in d)  # the original subject rides along
    return [o[:4] for o in d]


def drain(c: Consumer):
    return c.take_outputs()


def ack(c: Consumer, reply: str, body: bytes = b"+ACK", now: int = 0, ack_reply: str = "") -> None:
    c.on_ack(reply, ack_reply, body, now)


def info(c: Consumer, now: int) -> dict:
    i = c.info_state(now)
    i["delivered"].pop("last_active", None)
    i["ack_floor"].pop("last_active", None)
    return i


PUSH = {"durable_name": "D", "deliver_subject": "dlv", "ack_policy": "explicit"}


def test_explicit_ack_floor_and_counts_exact():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 5)
    c = make(PUSH, store, clock)
    assert c.poll(clock.now) == 5
    d = deliveries(c)
    assert [r.split(".")[5] for _, r, _, _ in d] == ["1", "2", "3", "4", "5"]
    # num_pending token counts what remains after each delivery
    assert [r.split(".")[8] for _, r, _, _ in d] == ["4", "3", "2", "1", "0"]
    assert info(c, clock.now) == {
        "delivered": {"consumer_seq": 5, "stream_seq": 5},
        "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
        "num_ack_pending": 5, "num_redelivered": 0, "num_waiting": 0, "num_pending": 0,
        "push_bound": True,
    }
    ack(c, d[1][1], now=clock.now)  # out of order: floor stays
    assert info(c, clock.now)["ack_floor"] == {"consumer_seq": 0, "stream_seq": 0}
    ack(c, d[0][1], now=clock.now)  # floor jumps over the already-acked 2
    assert info(c, clock.now)["ack_floor"] == {"consumer_seq": 2, "stream_seq": 2}
    assert info(c, clock.now)["num_ack_pending"] == 3
    for _, r, _, _ in d[2:]:
        ack(c, r, now=clock.now)
    i = info(c, clock.now)
    assert i["ack_floor"] == {"consumer_seq": 5, "stream_seq": 5} and i["num_ack_pending"] == 0
    # acking again is ignored
    ack(c, d[0][1], now=clock.now)
    assert info(c, clock.now)["ack_floor"] == {"consumer_seq": 5, "stream_seq": 5}


def test_ack_wait_redelivery_counts_and_timer():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({**PUSH, "ack_wait": 2 * NS}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    ack(c, d[0][1], now=clock.now)
    assert c.next_deadline() == clock.now + 2 * NS + MS
    clock.advance(1.9)
    assert c.poll(clock.now) == 0
    clock.advance(0.2)
    assert c.poll(clock.now) == 1
    (r,) = deliveries(c)
    tok = r[1].split(".")
    assert tok[4] == "2" and tok[5] == "2" and tok[6] == "3"  # dc=2, sseq=2, dseq=3
    i = info(c, clock.now)
    assert i["num_redelivered"] == 1 and i["num_ack_pending"] == 1
    assert i["delivered"] == {"consumer_seq": 3, "stream_seq": 2}
    ack(c, r[1], now=clock.now)
    i = info(c, clock.now)
    assert i["num_redelivered"] == 0 and i["num_ack_pending"] == 0
    assert i["ack_floor"] == {"consumer_seq": 3, "stream_seq": 2}
    assert c.next_deadline() is None or c.next_deadline() > clock.now  # nothing due


def test_backoff_schedule_then_max_deliver_advisory_and_floor():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 1)
    c = make({**PUSH, "backoff": [1 * NS, 5 * NS], "max_deliver": 3}, store, clock)
    assert c.cfg.ack_wait == 1 * NS
    t0 = clock.now
    c.poll(clock.now)
    assert len(deliveries(c)) == 1
    clock.now = t0 + NS - 1
    assert c.poll(clock.now) == 0
    clock.now = t0 + NS
    assert c.poll(clock.now) == 1  # second delivery after backoff[0]
    t1 = clock.now
    drain(c)
    clock.now = t1 + 5 * NS - 1
    assert c.poll(clock.now) == 0
    clock.now = t1 + 5 * NS
    assert c.poll(clock.now) == 1  # third after backoff[1]
    t2 = clock.now
    drain(c)
    clock.now = t2 + 5 * NS  # last backoff value repeats; max_deliver reached now
    assert c.poll(clock.now) == 0
    out, adv, _ = c.take_outputs()
    assert [a[0] for a in adv] == ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.D"]
    assert adv[0].type == "io.nats.jetstream.advisory.v1.max_deliver"
    assert adv[0].fields["stream_seq"] == 1 and adv[0].fields["deliveries"] == 3
    i = info(c, clock.now)
    assert i["num_ack_pending"] == 0
    # info: nats-server's consumer store drops the message from its pending without moving its
    # floor, which stays below it (2.9.10, 2.12.4, 2.15.1); in memory it moved past
    assert i["ack_floor"] == {"consumer_seq": 0, "stream_seq": 0}
    assert (c.adflr, c.asflr) == (3, 1)
    clock.advance(100)
    assert c.poll(clock.now) == 0


def test_nak_immediate_and_with_delay():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    c = make(PUSH, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    ack(c, d[0][1], b"-NAK", clock.now)
    assert c.poll(clock.now) == 1
    (r,) = deliveries(c)
    assert r[1].split(".")[4:7] == ["2", "1", "4"]
    _o, adv, _ = drain(c)
    ack(c, d[1][1], b'-NAK {"delay": 3000000000}', clock.now)
    ack(c, d[2][1], b"-NAK 1.5s", clock.now)
    _o, adv, _ = drain(c)
    assert [a[0].split(".")[4] for a in adv] == ["MSG_NAKED", "MSG_NAKED"]
    clock.advance(1.4)
    assert c.poll(clock.now) == 0
    clock.advance(0.2)
    assert c.poll(clock.now) == 1
    assert deliveries(c)[0][1].split(".")[5] == "3"
    clock.advance(1.5)
    assert c.poll(clock.now) == 1
    assert deliveries(c)[0][1].split(".")[5] == "2"
    # a bad delay counts as a plain NAK
    ack(c, r[1], b"-NAK {bad", clock.now)
    assert c.poll(clock.now) == 1


def test_wpi_extends_and_term_stops_with_advisory_and_ack_sync():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({**PUSH, "ack_wait": 2 * NS}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    clock.advance(1.5)
    ack(c, d[0][1], b"+WPI", clock.now)
    ack(c, d[1][1], b"+TERM too big", clock.now, ack_reply="_INBOX.sync")
    out, adv, _ = drain(c)
    assert out == [] and c.take_ack_replies() == ["_INBOX.sync"]
    assert adv[0][0] == "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.D"
    assert adv[0].fields["reason"] == "too big" and adv[0].fields["stream_seq"] == 2
    clock.advance(1.0)  # 2.5 s since delivery, 1.0 s since +WPI
    assert c.poll(clock.now) == 0
    clock.advance(1.1)
    assert c.poll(clock.now) == 1
    i = info(c, clock.now)
    assert i["num_ack_pending"] == 1 and i["num_redelivered"] == 1


def test_ack_all_acks_everything_below():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 4)
    c = make({**PUSH, "ack_policy": "all"}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    ack(c, d[2][1], now=clock.now)
    i = info(c, clock.now)
    assert i["ack_floor"] == {"consumer_seq": 3, "stream_seq": 3} and i["num_ack_pending"] == 1
    ack(c, d[1][1], now=clock.now)  # below the floor: ignored
    assert info(c, clock.now)["num_ack_pending"] == 1


def test_ack_none_moves_floor_on_delivery():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    c = make({"deliver_subject": "dlv", "ack_policy": "none"}, store, clock)
    c.poll(clock.now)
    i = info(c, clock.now)
    assert i["ack_floor"] == {"consumer_seq": 3, "stream_seq": 3} and i["num_ack_pending"] == 0
    assert c.cfg.inactive_threshold == 5 * NS  # ephemeral default


def test_max_ack_pending_stalls_then_resumes():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 5)
    c = make({**PUSH, "max_ack_pending": 2}, store, clock)
    assert c.poll(clock.now) == 2
    d = deliveries(c)
    store.store_msg("foo.a", b"", b"new", clock.now)
    c.on_new_msg(6, "foo.a", clock.now)
    assert c.poll(clock.now) == 0
    assert info(c, clock.now)["num_pending"] == 4
    ack(c, d[0][1], now=clock.now)
    assert c.poll(clock.now) == 1
    drain(c)
    # redeliveries are not held back by max_ack_pending
    clock.advance(31)
    assert c.poll(clock.now) == 2
    assert all(r[1].split(".")[4] == "2" for r in deliveries(c))


@pytest.mark.parametrize(
    ("policy", "extra", "expect"),
    [
        ("all", {}, [1, 2, 3, 4, 5, 6]),
        ("last", {}, [6]),
        ("new", {}, []),
        ("by_start_sequence", {"opt_start_seq": 4}, [4, 5, 6]),
        ("by_start_time", {"opt_start_time": "1970-01-01T00:16:40.000000003Z"}, [4, 5, 6]),
        ("last_per_subject", {"filter_subject": "foo.*"}, [3, 6]),
    ],
)
def test_deliver_policies(policy, extra, expect):
    clock, store = FakeClock(), MemStore()
    base = clock.now  # timestamps base+0 .. base+5
    for i, subj in enumerate(["foo.a", "foo.a", "foo.a", "foo.b", "foo.b", "foo.b"]):
        store.store_msg(subj, b"", b"x", base + i)
    c = make({**PUSH, "deliver_policy": policy, **extra}, store, clock)
    c.poll(clock.now)
    assert [int(r.split(".")[5]) for _, r, _, _ in deliveries(c)] == expect
    assert info(c, clock.now)["num_pending"] == 0
    store.store_msg("foo.c", b"", b"x", base + 10)
    c.on_new_msg(7, "foo.c", clock.now)
    assert c.poll(clock.now) == 1


def test_last_per_subject_pending_counts_subjects():
    clock, store = FakeClock(), MemStore()
    for subj in ["foo.a", "foo.b", "foo.a", "foo.c"]:
        store.store_msg(subj, b"", b"x", clock.now)
    c = make({"deliver_subject": "dlv", "ack_policy": "none", "deliver_policy": "last_per_subject",
              "filter_subject": "foo.>", "flow_control": True, "idle_heartbeat": NS}, store, clock)
    assert info(c, clock.now)["num_pending"] == 3
    c.poll(clock.now)
    d = deliveries(c)
    assert [r.split(".")[5] for _, r, _, _ in d] == ["2", "3", "4"]
    assert [r.split(".")[8] for _, r, _, _ in d] == ["2", "1", "0"]


def test_filters_single_and_multiple():
    clock, store = FakeClock(), MemStore()
    for subj in ["foo.a", "foo.b", "foo.c", "foo.a", "foo.b"]:
        store.store_msg(subj, b"", b"x", clock.now)
    c = make({**PUSH, "filter_subjects": ["foo.a", "foo.c"]}, store, clock)
    assert info(c, clock.now)["num_pending"] == 3
    c.poll(clock.now)
    assert [int(r.split(".")[5]) for _, r, _, _ in deliveries(c)] == [1, 3, 4]
    i = info(c, clock.now)
    # the scan went on to the end of the stream, but info reports the last delivered message,
    # as nats-server 2.10+ (its consumer store) does
    assert c.sseq == 6
    assert i["delivered"]["stream_seq"] == 4
    c2 = make({**PUSH, "durable_name": "E", "filter_subject": "foo.b"}, store, clock)
    c2.poll(clock.now)
    assert [int(r.split(".")[5]) for _, r, _, _ in deliveries(c2)] == [2, 5]


def _seqs(i: dict) -> tuple[int, int, int, int]:
    return (i["delivered"]["consumer_seq"], i["delivered"]["stream_seq"],
            i["ack_floor"]["consumer_seq"], i["ack_floor"]["stream_seq"])


@pytest.mark.parametrize("file_state", [True, False])
def test_info_reports_the_stored_view_not_the_scan(file_state):
    """nats-server 2.10+: delivered and ack floor move only on deliveries and acks, so a stream
    ending in messages the filter skips does not move them; the in-memory scan position (what
    delivery uses) does. The view is kept across a restart (snapshot and restore)."""
    clock, store = FakeClock(), MemStore()
    for subj in ["foo.a", "foo.b", "foo.a", "foo.b"]:
        store.store_msg(subj, b"", b"x", clock.now)

    def new(cfg: dict, state=None) -> Consumer:
        cc = ConsumerConfig.from_json(cfg)
        apply_defaults(cc)
        return Consumer("S", cc.durable_name, cc, store, clock.now, stream_subjects=["foo.>"], state=state,
                        file_state=file_state)

    none = new({**PUSH, "durable_name": "N", "filter_subject": "foo.c"})
    none.poll(clock.now)
    assert none.sseq == 5
    # a file consumer store has its starting state from creation on; a memory one none yet
    assert _seqs(info(none, clock.now)) == ((0, 0, 0, 0) if file_state else (0, 4, 0, 0))
    c = new({**PUSH, "filter_subject": "foo.a"})
    c.poll(clock.now)
    d = deliveries(c)
    assert [int(r.split(".")[5]) for _, r, _, _ in d] == [1, 3] and c.sseq == 5
    assert _seqs(info(c, clock.now)) == (2, 3, 0, 0)
    ack(c, d[1][1])
    assert _seqs(info(c, clock.now)) == (2, 3, 0, 0)
    ack(c, d[0][1])
    assert _seqs(info(c, clock.now)) == (2, 3, 2, 3)
    assert (c.adflr, c.asflr) == (2, 4)  # in memory: the scan's position, as before
    again = new({**PUSH, "filter_subject": "foo.a"}, state=c.snapshot())
    assert again.sseq == 5 and _seqs(info(again, clock.now)) == (2, 3, 2, 3)
    # a purge writes the in-memory position over the stored view, as nats-server's does
    store.purge()
    again.on_purged(store.state().first_seq, clock.now)
    assert _seqs(info(again, clock.now)) == (2, 4, 2, 4)
    # ack none: the store sets the floor with each delivery
    n = new({**PUSH, "durable_name": "AN", "ack_policy": "none", "deliver_policy": "all",
             "filter_subject": "foo.a"})
    store.store_msg("foo.a", b"", b"x", clock.now)
    store.store_msg("foo.b", b"", b"x", clock.now)
    n.poll(clock.now)
    assert _seqs(info(n, clock.now)) == (1, 5, 1, 5) and n.sseq == 7


def test_headers_only_adds_size_header():
    clock, store = FakeClock(), MemStore()
    store.store_msg("foo.a", b"NATS/1.0\r\nA: b\r\n\r\n", b"12345", clock.now)
    store.store_msg("foo.a", b"", b"123", clock.now)
    c = make({**PUSH, "headers_only": True}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    assert d[0][2] == b"NATS/1.0\r\nA: b\r\nNats-Msg-Size: 5\r\n\r\n" and d[0][3] == b""
    assert d[1][2] == b"NATS/1.0\r\nNats-Msg-Size: 3\r\n\r\n"


# ---------------------------------------------------------------------------- pull

PULL = {"durable_name": "P", "ack_policy": "explicit"}


def test_pull_batch_and_no_wait_and_expiry_statuses():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    c = make(PULL, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 2}', clock.now)
    assert c.poll(clock.now) == 2
    d = deliveries(c)
    assert {x[0] for x in d} == {"_I.1"}
    assert info(c, clock.now)["num_waiting"] == 0
    c.on_pull_request("_I.2", b'{"batch": 5, "expires": 2000000000}', clock.now)
    assert c.poll(clock.now) == 1
    assert info(c, clock.now)["num_waiting"] == 1
    clock.advance(2.0)
    c.poll(clock.now)
    out, _, _ = drain(c)
    assert out[-1] == ("_I.2", "", b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 4\r\n"
                       b"Nats-Pending-Bytes: 0\r\n\r\n", b"")
    c.on_pull_request("_I.3", b'{"batch": 1, "no_wait": true}', clock.now)
    out, _, _ = drain(c)
    assert out == [("_I.3", "", b"NATS/1.0 404 No Messages\r\n\r\n", b"")]
    assert info(c, clock.now)["num_waiting"] == 0


def test_pull_no_wait_with_messages_ends_with_408():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make(PULL, store, clock)
    c.on_pull_request("_I.1", b'{"batch": 5, "no_wait": true}', clock.now)
    assert c.poll(clock.now) == 2
    out, _, _ = drain(c)
    assert out[-1][0] == "_I.1" and out[-1][2].startswith(b"NATS/1.0 408 Request Timeout")
    assert b"Nats-Pending-Messages: 3" in out[-1][2]


def test_pull_limits_and_bad_requests():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 1, data=b"x" * 100)
    c = make({**PULL, "max_waiting": 1, "max_batch": 10, "max_expires": 5 * NS, "max_bytes": 1000},
             store, clock)

    def reply_to(body: bytes, reply: str = "_I.x") -> bytes:
        c.on_pull_request(reply, body, clock.now)
        out, _, _ = drain(c)
        return out[0][2] if out else b""

    assert reply_to(b'{"batch": 11}') == b"NATS/1.0 409 Exceeded MaxRequestBatch of 10\r\n\r\n"
    assert reply_to(b'{"batch": 1, "expires": 6000000000}') == b"NATS/1.0 409 Exceeded MaxRequestExpires of 5s\r\n\r\n"
    assert reply_to(b'{"batch": 1, "max_bytes": 2000}') == b"NATS/1.0 409 Exceeded MaxRequestMaxBytes of 1000\r\n\r\n"
    assert reply_to(b'{"batch": 1, "expires": 1000000000, "idle_heartbeat": 600000000}') == (
        b"NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n")
    assert reply_to(b"{nope").startswith(b"NATS/1.0 400 Bad Request - ")
    assert reply_to(b'{"batch": 1, "max_bytes": 50}', "_I.a") == b""  # queued
    c.poll(clock.now)
    out, _, _ = drain(c)
    assert out == [("_I.a", "", b"NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 1\r\n"
                    b"Nats-Pending-Bytes: 50\r\n\r\n", b"")]
    store.purge()
    c.on_purged(2, clock.now)
    assert reply_to(b'{"batch": 1, "expires": 1000000000}', "_I.b") == b""
    assert reply_to(b'{"batch": 1, "expires": 1000000000}', "_I.c") == b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n"
    pc = make(PUSH, store, clock)
    pc.on_pull_request("_I.p", b"", clock.now)
    assert pc.take_outputs()[0] == [("_I.p", "", b"NATS/1.0 409 Consumer is push based\r\n\r\n", b"")]


def test_pull_requests_pending_and_heartbeats_and_interest():
    clock, store = FakeClock(), MemStore()
    interest = {"_I.1": True, "_I.2": True}
    c = make(PULL, store, clock, interest=lambda s: interest.get(s, True))
    c.on_pull_request("_I.1", b'{"batch": 3, "expires": 10000000000, "idle_heartbeat": 1000000000}', clock.now)
    c.poll(clock.now)
    assert c.next_deadline() == clock.now + NS
    clock.advance(1)
    c.poll(clock.now)
    out, _, _ = drain(c)
    assert out == [("_I.1", "", b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n", b"")]
    fill(store, clock, 1)
    c.on_new_msg(1, "foo.a", clock.now)
    c.on_pull_request("_I.2", b'{"batch": 1, "no_wait": true}', clock.now)
    out, _, _ = drain(c)
    assert out == [("_I.2", "", b"NATS/1.0 408 Requests Pending\r\n\r\n", b"")]
    interest["_I.1"] = False  # the requester went away: its request is dropped silently
    assert c.poll(clock.now) == 0
    assert info(c, clock.now)["num_waiting"] == 0
    assert drain(c)[0] == []


def test_pull_round_robin_between_requests():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 4)
    c = make(PULL, store, clock)
    c.on_pull_request("_I.a", b"2", clock.now)
    c.on_pull_request("_I.b", b"2", clock.now)
    c.poll(clock.now)
    assert [x[0] for x in deliveries(c)] == ["_I.a", "_I.b", "_I.a", "_I.b"]


def test_ack_next_acks_and_requests():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make(PULL, store, clock)
    c.on_pull_request("_I.a", b"", clock.now)
    c.poll(clock.now)
    (d,) = deliveries(c)
    c.on_ack(d[1], "_I.next", b"+NXT", clock.now)
    c.poll(clock.now)
    out, _, _ = drain(c)
    assert [o[0] for o in out] == ["_I.next"]  # no ack-sync reply for +NXT, the message instead
    assert info(c, clock.now)["ack_floor"] == {"consumer_seq": 1, "stream_seq": 1}


# ---------------------------------------------------------------------------- push extras

def test_push_heartbeat_and_flow_control_stall():
    clock, store = FakeClock(), MemStore()
    c = make({"deliver_subject": "dlv", "ack_policy": "none", "flow_control": True,
              "idle_heartbeat": 2 * NS}, store, clock)
    c.maxpb = 1000  # small window to exercise the stall
    c.pblimit = 4000
    fill(store, clock, 30, data=b"y" * 100)
    n = c.poll(clock.now)
    out, _, _ = drain(c)
    fc = [o for o in out if o[2] == b"NATS/1.0 100 FlowControl Request\r\n\r\n"]
    assert len(fc) == 1 and fc[0][1].startswith("$JS.FC.S.")
    assert 0 < n < 30
    assert c.poll(clock.now) == 0  # stalled
    clock.advance(2)
    c.poll(clock.now)
    out, _, _ = drain(c)
    assert len(out) == 1 and b"Idle Heartbeat" in out[0][2]
    assert f"Nats-Consumer-Stalled: {fc[0][1]}".encode() in out[0][2]
    c.on_flow_control_reply(fc[0][1], clock.now)
    assert c.maxpb == 2000
    assert c.poll(clock.now) > 0


def test_push_pauses_without_interest_and_inactive_threshold():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({"deliver_subject": "dlv", "ack_policy": "explicit", "inactive_threshold": 3 * NS}, store, clock)
    c.set_interest(False, clock.now)
    assert c.poll(clock.now) == 0
    assert "push_bound" not in info(c, clock.now)
    clock.advance(2)
    c.set_interest(True, clock.now)
    assert c.poll(clock.now) == 2
    d = deliveries(c)
    c.set_interest(False, clock.now)
    clock.advance(2)
    ack(c, d[0][1], now=clock.now)  # activity postpones the clean-up
    clock.advance(2)
    c.poll(clock.now)
    assert not c.delete_requested
    clock.advance(1)
    c.poll(clock.now)
    assert c.delete_requested


def test_pull_ephemeral_inactive_threshold():
    clock, store = FakeClock(), MemStore()
    c = make({"ack_policy": "explicit"}, store, clock)
    assert c.next_deadline() == clock.now + 5 * NS
    clock.advance(4)
    c.on_pull_request("_I.a", b'{"batch": 1, "expires": 3000000000}', clock.now)
    clock.advance(3)
    c.poll(clock.now)  # request expired, but the pull was activity
    assert not c.delete_requested
    clock.advance(5)
    c.poll(clock.now)
    assert c.delete_requested


def test_replay_original_paces_by_timestamps():
    clock, store = FakeClock(), MemStore()
    store.store_msg("foo.a", b"", b"1", 0)
    store.store_msg("foo.a", b"", b"2", 2 * NS)
    store.store_msg("foo.a", b"", b"3", 2 * NS + 500)
    c = make({"deliver_subject": "dlv", "ack_policy": "none", "replay_policy": "original"}, store, clock)
    assert c.poll(clock.now) == 1
    assert c.next_deadline() == clock.now + 2 * NS
    clock.advance(1.999)
    assert c.poll(clock.now) == 0
    clock.advance(0.001)
    assert c.poll(clock.now) == 2  # the 500 ns gap is below the 1 ms pacing threshold
    assert not c.replay


def test_rate_limit_spaces_deliveries():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3, data=b"z" * 100)
    c = make({"deliver_subject": "dlv", "ack_policy": "none", "rate_limit_bps": 8000}, store, clock)
    assert c.poll(clock.now) == 1
    nd = c.next_deadline()
    assert nd is not None and nd > clock.now
    assert c.poll(clock.now) == 0
    clock.now = nd
    assert c.poll(clock.now) == 1


# ---------------------------------------------------------------------------- retention, purge, restart

def test_interest_retention_acks_and_needs_ack():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    c = make({**PUSH, "filter_subject": "foo.a"}, store, clock, retention="interest")
    assert c.needs_ack(1, "foo.a") and not c.needs_ack(1, "foo.b")
    c.poll(clock.now)
    d = deliveries(c)
    ack(c, d[1][1], now=clock.now)
    _, _, acks = drain(c)
    assert acks == [2]
    assert not c.needs_ack(2, "foo.a") and c.needs_ack(1, "foo.a") and c.needs_ack(9, "foo.a")


def test_purge_drops_pending_and_moves_floors():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 4)
    c = make(PUSH, store, clock)
    c.poll(clock.now)
    drain(c)
    store.purge()
    c.on_purged(5, clock.now)
    i = info(c, clock.now)
    assert i["num_ack_pending"] == 0 and i["ack_floor"] == {"consumer_seq": 4, "stream_seq": 4}
    clock.advance(60)
    assert c.poll(clock.now) == 0


def test_removed_pending_message_is_not_redelivered():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 3)
    c = make(PUSH, store, clock)
    c.poll(clock.now)
    drain(c)
    store.remove_msg(1)
    c.on_msgs_removed(2, clock.now)
    i = info(c, clock.now)
    assert i["num_ack_pending"] == 2 and i["ack_floor"] == {"consumer_seq": 1, "stream_seq": 1}
    store.remove_msg(3)  # interior delete, noticed when it is due
    clock.advance(31)
    assert c.poll(clock.now) == 1
    assert deliveries(c)[0][1].split(".")[5] == "2"
    assert info(c, clock.now)["num_ack_pending"] == 1


def test_state_snapshot_restores_pending_and_acks():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 4)
    c = make({**PUSH, "ack_wait": 10 * NS}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    ack(c, d[0][1], now=clock.now)
    ack(c, d[2][1], now=clock.now)
    ack(c, d[1][1], b"-NAK", clock.now)
    c.poll(clock.now)
    drain(c)
    state = c.snapshot()
    assert set(state.pending) == {2, 4} and state.redelivered == {2: 1}
    # a fresh machine from the persisted state: nothing acked comes back, everything unacked does
    clock.advance(5)
    c2 = make({**PUSH, "ack_wait": 10 * NS}, store, clock, state=state)
    assert info(c2, clock.now) == info(c, clock.now) | {}
    assert c2.poll(clock.now) == 0
    clock.advance(1.01)
    c2.poll(clock.now)
    got = sorted(int(r.split(".")[5]) for _, r, _, _ in deliveries(c2))
    assert got == [2, 4]
    fill(store, clock, 1)
    c2.on_new_msg(5, "foo.a", clock.now)
    c2.poll(clock.now)
    assert [int(r.split(".")[5]) for _, r, _, _ in deliveries(c2)] == [5]


# ---------------------------------------------------------------------------- config rules

@pytest.mark.parametrize(
    ("cfg", "err_code"),
    [
        ({"deliver_subject": "d", "max_waiting": 5}, 10080),
        ({"deliver_subject": "foo.x"}, 10081),
        ({"deliver_subject": "d.*"}, 10079),
        ({"deliver_subject": "d", "idle_heartbeat": 50 * MS}, 10083),
        ({"deliver_subject": "d", "flow_control": True}, 10108),
        ({"idle_heartbeat": NS}, 10088),
        ({"flow_control": True}, 10089),
        ({"rate_limit_bps": 10}, 10086),
        ({"deliver_policy": "by_start_sequence"}, 10094),
        ({"deliver_policy": "last_per_subject"}, 10094),
        ({"deliver_policy": "all", "opt_start_seq": 3}, 10094),
        ({"ack_policy": "explicit", "backoff": [NS, NS], "max_deliver": 2}, 10116),
        ({"filter_subject": "bar.x"}, 10093),
        ({"filter_subject": "foo.a", "filter_subjects": ["foo.b"]}, 10136),
        ({"filter_subjects": ["foo.*", "foo.a"]}, 10138),
        ({"durable_name": "a", "name": "b"}, 10132),
        ({"durable_name": "a.b"}, 10103),
        ({"num_replicas": 3}, 10126),
        ({"sample_freq": "abc"}, 10095),
        ({"ack_policy": "explicit", "ack_wait": -1}, 10183),
        ({"metadata": {"k": "v" * (128 * 1024)}}, 10135),
    ],
)
def test_config_errors(cfg, err_code):
    c = ConsumerConfig.from_json(cfg)
    apply_defaults(c)
    with pytest.raises(ApiError) as ei:
        check_config(c, StreamView("S", ["foo.>"], num_replicas=1))
    assert ei.value.err_code == err_code


def test_defaults_and_json_round_trip():
    c = ConsumerConfig.from_json({"durable_name": "d", "ack_policy": "explicit", "metadata": {"a": "b"}})
    apply_defaults(c)
    j = c.to_json()
    assert j["ack_wait"] == 30 * NS and j["max_deliver"] == -1 and j["max_ack_pending"] == 1000
    assert j["max_waiting"] == 512 and "inactive_threshold" not in j and j["num_replicas"] == 0
    assert ConsumerConfig.from_json(json.loads(json.dumps(j))) == c


def test_update_rules():
    old = ConsumerConfig.from_json({"durable_name": "d", "ack_policy": "explicit", "deliver_subject": "x"})
    new = old.copy()
    new.max_deliver = 5
    new.description = "ok"
    check_update(old, new)
    for field, val, text in [
        ("ack_policy", "all", "ack policy can not be updated"),
        ("deliver_policy", "new", "deliver policy can not be updated"),
        ("deliver_subject", "", "can not update push consumer to pull based"),
    ]:
        bad = old.copy()
        setattr(bad, field, val)
        with pytest.raises(ApiError) as ei:
            check_update(old, bad)
        assert ei.value.err_code == 10012 and ei.value.description == text


def test_go_durations():
    assert parse_go_duration("1.5s") == 1_500_000_000
    assert parse_go_duration("1m30s") == 90 * NS
    assert parse_go_duration("250ms") == 250 * MS
    with pytest.raises(ValueError):
        parse_go_duration("5 parsecs")


def test_filter_covering_the_stream_is_no_filter_until_the_stream_grows():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2, "foo.a")
    c = make({**PUSH, "filter_subject": "foo.>"}, store, clock)
    assert c._filters == []
    c.poll(clock.now)
    assert len(deliveries(c)) == 2
    store.store_msg("bar.x", b"", b"x", clock.now)  # the stream now also captures bar.>
    store.store_msg("foo.b", b"", b"x", clock.now)
    c.set_stream_subjects(["foo.>", "bar.>"])
    assert c._filters == ["foo.>"]
    c.on_new_msg(4, "foo.b", clock.now)
    assert info(c, clock.now)["num_pending"] == 1
    c.poll(clock.now)
    assert [int(r.split(".")[5]) for _, r, _, _ in deliveries(c)] == [4]


def test_sample_freq_emits_ack_metrics():
    clock, store = FakeClock(), MemStore()
    fill(store, clock, 2)
    c = make({**PUSH, "sample_freq": "100%"}, store, clock)
    c.poll(clock.now)
    d = deliveries(c)
    clock.advance(0.25)
    ack(c, d[0][1], now=clock.now)
    _, adv, _ = drain(c)
    assert [a[0] for a in adv] == ["$JS.EVENT.METRIC.CONSUMER.ACK.S.D"]
    assert adv[0].type == "io.nats.jetstream.metric.v1.consumer_ack"
    m = adv[0].fields
    assert (m["stream_seq"], m["consumer_seq"], m["deliveries"], m["ack_time"]) == (1, 1, 1, NS // 4)
    c2 = make({**PUSH, "durable_name": "E", "sample_freq": "0"}, store, clock)
    c2.poll(clock.now)
    ack(c2, deliveries(c2)[0][1], now=clock.now)
    assert drain(c2)[1] == []


@pytest.mark.parametrize("retention", ["limits", "interest"])
def test_a_batch_of_acks_settles_as_the_same_acks_one_by_one(retention):
    """on_acks (the runner's batch) must leave what on_ack for each would: plain acks, ack-sync
    replies, NAK, TERM, +WPI, an ack of an unknown sequence and a malformed subject mixed."""
    clock = FakeClock()
    ends = []
    for batched in (False, True):
        store = MemStore()
        fill(store, clock, 8)
        c = make({**PUSH, "ack_wait": 30 * NS}, store, clock, retention=retention, interest=lambda s: True)
        c.set_interest(True, clock.now)
        c.poll(clock.now)
        replies = [d[1] for d in deliveries(c)]
        bad = replies[0].replace(".1.1.1.", ".x.1.1.")
        batch = [(replies[0], "", b""), (replies[1], "_INBOX.sync", b"+ACK"), (replies[2], "", b"-NAK"),
                 (replies[3], "", b"+TERM gone"), (replies[4], "", b"+WPI"), (bad, "", b""),
                 (replies[5].replace(".6.6.", ".99.6."), "", b"+ACK"), (replies[6], "", b"+ACK")]
        if batched:
            c.on_acks([(s, r.encode(), b) for s, r, b in batch], clock.now)
        else:
            for s, r, b in batch:
                ack(c, s, b, clock.now, r)
        out, adv, stream_acks = c.take_outputs()
        ends.append((info(c, clock.now), c.snapshot(), c.take_ack_replies(), stream_acks,
                     [a[0] for a in adv], sorted(c.rdq)))
    assert ends[0] == ends[1]
    assert ends[1][2] == ["_INBOX.sync"]
    assert ends[1][1].ack_floor.stream_seq == 2


def test_filter_matches_follow_a_filter_update():
    """matches() remembers answers per subject; a new filter must not see the old ones."""
    clock = FakeClock()
    store = MemStore()
    c = make({**PUSH, "filter_subject": "foo.a"}, store, clock)
    assert [c.matches(s) for s in ("foo.a", "foo.b", "foo.a")] == [True, False, True]
    new = ConsumerConfig.from_json({**PUSH, "filter_subject": "foo.b"})
    apply_defaults(new)
    c.update_config(new, clock.now)
    assert [c.matches(s) for s in ("foo.a", "foo.b")] == [False, True]
    c.set_stream_subjects(["foo.b"])  # the filter now covers the whole stream: no filter at all
    assert c.matches("foo.a") and c.matches("foo.b")
