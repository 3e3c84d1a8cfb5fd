"""Property tests of the consumer state machine: random interleavings of publishes, pulls,
acks, naks, terms, progress and time must keep the bookkeeping consistent and deliver every
message until it is acked (at-least-once), never past max_deliver."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyjetstream.jetstream.consumer import Consumer
from pyjetstream.jetstream.consumer_config import ConsumerConfig, StreamView, apply_defaults, check_config

from .fakes import NS, FakeClock, MemStore

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("pub"), st.sampled_from(["foo.a", "foo.b"])),
        st.tuples(st.just("pull"), st.integers(1, 4)),
        st.tuples(st.sampled_from(["ack", "nak", "term", "wpi", "naklater"]), st.integers(0, 30)),
        st.tuples(st.just("tick"), st.sampled_from([0.1, 0.5, 1.0, 2.5])),
    ),
    max_size=80,
)


def _consumer(store: MemStore, clock: FakeClock, ack_policy: str, max_deliver: int, filt: str,
              push: bool = False) -> Consumer:
    extra = {"deliver_subject": "dlv", "flow_control": True, "idle_heartbeat": NS} if push else {}
    cfg = ConsumerConfig.from_json({"durable_name": "P", "ack_policy": ack_policy, "ack_wait": NS,
                                    "max_deliver": max_deliver, "max_ack_pending": 5,
                                    "filter_subject": filt, **extra})
    apply_defaults(cfg)
    check_config(cfg, StreamView("S", ["foo.>"]))
    return Consumer("S", "P", cfg, store, clock.now, stream_subjects=["foo.>"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, ack_policy=st.sampled_from(["explicit", "all"]), max_deliver=st.sampled_from([-1, 2, 3]),
       filt=st.sampled_from(["", "foo.a"]), push=st.booleans())
def test_bookkeeping_stays_consistent(ops, ack_policy, max_deliver, filt, push):
    clock, store = FakeClock(), MemStore()
    c = _consumer(store, clock, ack_policy, max_deliver, filt, push)
    replies: list[str] = []  # every delivery's ack subject, in order
    deliveries: dict[int, int] = {}  # stream seq -> deliveries seen
    done: set[int] = set()  # acked (or termed) stream seqs, as far as the client knows

    def drain() -> None:
        out, _adv, _acks = c.take_outputs()
        c.take_ack_replies()
        for o in out:
            if o[1].startswith("$JS.FC."):
                c.on_flow_control_reply(o[1], clock.now)  # the client answers at once
            if o[1].startswith("$JS.ACK."):
                tok = o[1].split(".")
                seq, dc = int(tok[5]), int(tok[4])
                deliveries[seq] = deliveries.get(seq, 0) + 1
                assert dc == deliveries[seq], "delivery count token must count deliveries"
                replies.append(o[1])

    for op, arg in ops:
        if op == "pub":
            seq = store.store_msg(arg, b"", b"x", clock.now)
            c.on_new_msg(seq, arg, clock.now)
        elif op == "pull":
            c.on_pull_request("_I.r", str(arg).encode(), clock.now)
        elif op == "tick":
            clock.advance(arg)
        elif replies:
            reply = replies[arg % len(replies)]
            body = {"ack": b"+ACK", "nak": b"-NAK", "term": b"+TERM", "wpi": b"+WPI",
                    "naklater": b'-NAK {"delay": 1500000000}'}[op]
            c.on_ack(reply, "", body, clock.now)
            if op in ("ack", "term"):
                seq = int(reply.split(".")[5])
                if ack_policy == "all":
                    done.update(s for s in deliveries if s <= seq)
                else:
                    done.add(seq)
        c.poll(clock.now)
        drain()

        info = c.info_state(clock.now)
        drain()
        pend = c.pending
        assert info["num_ack_pending"] == len(pend) <= 5 or any(
            deliveries.get(s, 0) > 1 for s in pend)  # redeliveries may exceed max_ack_pending
        assert info["ack_floor"]["stream_seq"] <= info["delivered"]["stream_seq"]
        assert info["ack_floor"]["consumer_seq"] <= info["delivered"]["consumer_seq"]
        assert all(s > info["ack_floor"]["stream_seq"] for s in pend)
        if ack_policy == "explicit" and not pend:
            # nothing outstanding: the floor has caught up with every delivery (in memory; what
            # info reports, nats-server's stored view, stays below a message that used up
            # max_deliver until a later ack)
            assert c.adflr == c.dseq - 1
            if max_deliver <= 0:
                assert info["ack_floor"]["consumer_seq"] == info["delivered"]["consumer_seq"]
        assert all(s < c.sseq for s in pend)
        assert not (set(pend) & done), "an acked message is still pending"
        assert set(c.rdc) <= set(pend) | set(deliveries)
        assert info["num_redelivered"] == len(c.rdc)
        if max_deliver > 0:
            assert all(n <= max_deliver for n in deliveries.values())
        matching = [s for s, m in store.msgs.items() if not filt or m.subject == filt]
        assert info["num_pending"] == len([s for s in matching if s >= c.sseq])

    # Drive to quiescence, now acking every delivery as it arrives (what a healthy client does).
    for _ in range(40):
        c.on_pull_request("_I.r", b"10", clock.now)
        clock.advance(2.0)
        c.poll(clock.now)
        start = len(replies)
        drain()
        for reply in replies[start:]:
            c.on_ack(reply, "", b"+ACK", clock.now)
            done.add(int(reply.split(".")[5]))
    c.poll(clock.now)
    drain()
    matching = {s for s, m in store.msgs.items() if not filt or m.subject == filt}
    for s in matching:
        # at-least-once: every message was delivered, and redelivered until acked or max_deliver
        assert deliveries.get(s, 0) >= 1, f"seq {s} never delivered"
        assert s in done or (max_deliver > 0 and deliveries[s] == max_deliver), f"seq {s} abandoned"
    assert not c.pending
