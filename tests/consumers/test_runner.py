"""The asyncio shell: one timer at the state machine's earliest deadline, coalesced wake-ups,
publishing, stream acks and persistence, with a fake server, fake stream and fake clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from pyjetstream.jetstream.consumer_config import ConsumerConfig, apply_defaults
from pyjetstream.jetstream.consumer_runner import ConsumerRunner
from pyjetstream.jetstream.store.base import ConsumerState, resolve_state
from pyjetstream.subjects import subject_matches

from .fakes import NS, MemStore


class Bus:
    """The server as the runner sees it (seams.MessageBus)."""

    server_name = "bus"

    def __init__(self) -> None:
        self.accounts = {"$G": SimpleNamespace(name="$G")}
        self.global_account = self.accounts["$G"]
        self.subs: list[tuple[str, object]] = []
        self.sent: list[tuple[str, str, bytes | None, bytes]] = []
        self.listening: set[str] = set()
        self.watchers: list[tuple[str, object]] = []

    def subscribe_internal(self, account, subject, cb, queue=None, raw=False, clients_only=False):
        if raw:  # present the server's raw form to the runner, keep the tests' plain form
            def plain(sub, client, subj, reply, hdr, payload, cb=cb):
                cb(subj, reply.encode(), len(hdr or b""), (hdr or b"") + payload + b"\r\n")
            cb = plain
        self.subs.append((subject, cb))
        return (subject, cb)

    def unsubscribe_internal(self, sub):
        self.subs.remove(sub)

    def has_interest(self, account, subject):
        return subject in self.listening

    def watch_interest(self, account, subject, callback):
        self.watchers.append((subject, callback))

    def unwatch_interest(self, account, subject, callback):
        self.watchers.remove((subject, callback))

    def route(self, account, subject, subject_b, reply_b, hdr_len, size_tok, body, origin, internal=True):
        data = body[:-2]
        assert size_tok == b"%d" % len(data)
        return self.publish(account, subject, reply_b.decode(), data[:hdr_len], data[hdr_len:])

    def sole_subscriber(self, account, subject):
        return None  # no client connections: every delivery is routed

    def flush_output(self):
        pass  # deliveries are recorded as they are made: nothing is buffered

    def respond(self, account, subject, hdr, payload):
        return self.publish(account, subject, "", hdr, payload)

    def publish(self, account, subject, reply, hdr, payload):
        n = 0
        for s, cb in list(self.subs):
            if subject_matches(s, subject):
                cb(None, None, subject, reply, hdr, payload)
                n += 1
        if subject in self.listening:
            self.sent.append((subject, reply, hdr, payload))
            n += 1
        return n


class Clock:
    def __init__(self) -> None:
        self.t = 10 * NS

    def now(self) -> int:
        return self.t

    def wall(self) -> int:
        return 1_700_000_000 * NS + self.t


class CStore:
    def __init__(self) -> None:
        self.states: list[ConsumerState] = []
        self.configs: list[bytes] = []
        self.closed = self.deleted = False

    def update(self, st):
        # record the state as it is now, as if the store wrote at once
        self.states.append(resolve_state(st))

    def update_config(self, raw):
        self.configs.append(raw)

    def commit(self, on_durable):
        on_durable()

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def delete(self):
        self.deleted = True


def test_bus_double_is_a_message_bus():
    from pyjetstream.jetstream.seams import MessageBus

    bus = Bus()
    members = [n for n in vars(MessageBus) if not n.startswith("_")]
    assert [n for n in members if not hasattr(bus, n)] == []
    assert isinstance(bus, MessageBus)


def make_stream(store: MemStore, retention: str = "limits"):
    bus = Bus()
    acked: list[int] = []
    stream = SimpleNamespace(
        name="S", store=store, config=SimpleNamespace(retention=retention, subjects=["foo.>"]),
        jsa=SimpleNamespace(server=bus, account=bus.global_account),
        subjects_exhaustive=True,
        ack_msg=lambda seq, c: acked.append(seq),
        after_durable=lambda cb: cb(),
        removed=[], remove_consumer=lambda name: stream.removed.append(name),
    )
    return stream, bus, acked


def cfg(**kw) -> ConsumerConfig:
    c = ConsumerConfig.from_json({"durable_name": "D", "deliver_subject": "dlv", "ack_policy": "explicit", **kw})
    apply_defaults(c)
    return c


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_acks_coalesce_into_one_run_and_timer_tracks_deadline():
    store = MemStore()
    for _ in range(5):
        store.store_msg("foo.a", b"", b"x", 1)
    stream, bus, acked = make_stream(store, retention="interest")
    bus.listening.add("dlv")
    clock, cs = Clock(), CStore()
    r = ConsumerRunner(stream, "D", cfg(ack_wait=2 * NS), cstore=cs, clock=clock)
    runs = 0
    orig = r.core.poll

    def counting(now, max_msgs=1 << 30):
        nonlocal runs
        runs += 1
        return orig(now, max_msgs)

    r.core.poll = counting
    await settle()
    assert [d[1].split(".")[5] for d in bus.sent] == ["1", "2", "3", "4", "5"]
    assert r._timer_at == r.core.next_deadline() == clock.now() + 2 * NS + 1_000_000
    runs = 0
    ack_cb = bus.subs[0][1]
    for _, reply, _, _ in bus.sent[:3]:
        ack_cb(None, None, reply, "", None, b"+ACK")
    await settle()
    assert runs == 1, runs  # three acks, one wake-up
    assert acked == [1, 2, 3]  # interest retention hears of each ack
    assert cs.states[-1].ack_floor.stream_seq == 3 and set(cs.states[-1].pending) == {4, 5}
    # the timer fires at the deadline and the two unacked messages come back
    bus.sent.clear()
    clock.t += 3 * NS
    r._on_timer()
    assert sorted(d[1].split(".")[5] for d in bus.sent) == ["4", "5"]
    assert all(d[1].split(".")[4] == "2" for d in bus.sent)
    r.stop()
    assert cs.closed and not bus.subs and r._timer is None


async def test_no_listener_pauses_then_resumes_and_inactive_consumer_deletes_itself():
    store = MemStore()
    store.store_msg("foo.a", b"", b"x", 1)
    stream, bus, _ = make_stream(store)
    clock = Clock()
    r = ConsumerRunner(stream, "E", cfg(durable_name="", inactive_threshold=NS), clock=clock)
    await settle()
    assert bus.sent == [] and "push_bound" not in r.info()
    bus.listening.add("dlv")
    clock.t += 200_000_000
    r._on_timer()  # the interest re-check finds the subscriber
    assert len(bus.sent) == 1 and r.info()["push_bound"]
    bus.listening.clear()
    assert "push_bound" not in r.info()
    clock.t += NS + 1
    r._on_timer()
    assert stream.removed == ["E"] and r.closed


async def test_ack_sync_reply_waits_for_the_state_store():
    store = MemStore()
    store.store_msg("foo.a", b"", b"x", 1)
    stream, bus, _ = make_stream(store)
    bus.listening.update({"dlv", "_INBOX.ack"})
    later: list = []
    cs = CStore()
    cs.commit = later.append  # durability arrives when we say so
    r = ConsumerRunner(stream, "D", cfg(), cstore=cs, clock=Clock())
    await settle()
    reply = bus.sent[0][1]
    bus.subs[0][1](None, None, reply, "_INBOX.ack", None, b"+ACK")
    await settle()
    assert [s for s in bus.sent if s[0] == "_INBOX.ack"] == []
    later[0]()
    assert [s[0] for s in bus.sent if s[0] == "_INBOX.ack"] == ["_INBOX.ack"]
    r.stop(delete=True)
    assert cs.deleted


async def test_ack_sync_reply_on_interest_stream_waits_for_the_removal_to_be_durable():
    store = MemStore()
    store.store_msg("foo.a", b"", b"x", 1)
    for retention in ("interest", "workqueue"):
        stream, bus, acked = make_stream(store, retention=retention)
        events: list[str] = []
        stream_durable: list = []
        stream.ack_msg = lambda seq, c, acked=acked, events=events: (acked.append(seq), events.append("removed"))

        def after_durable(cb, events=events, stream_durable=stream_durable):
            events.append("after_durable")
            stream_durable.append(cb)

        stream.after_durable = after_durable
        bus.listening.update({"dlv", "_INBOX.ack"})
        state_durable: list = []
        cs = CStore()
        cs.commit = state_durable.append
        r = ConsumerRunner(stream, "D", cfg(), cstore=cs, clock=Clock())
        await settle()
        bus.subs[0][1](None, None, bus.sent[0][1], "_INBOX.ack", None, b"+ACK")
        await settle()
        assert acked == [1]
        # the wait on the stream is asked for after the removal, so its commit covers it
        assert events == ["removed", "after_durable"]
        state_durable[0]()  # the consumer's state alone is not enough
        assert [s for s in bus.sent if s[0] == "_INBOX.ack"] == []
        stream_durable[0]()
        assert [s[0] for s in bus.sent if s[0] == "_INBOX.ack"] == ["_INBOX.ack"]
        r.stop(delete=True)
        acked.clear()


async def test_eventing_shaped_consumer_never_waits_for_a_timer_to_deliver():
    # The eventing dispatcher's consumer: push, flow control, 60 s heartbeat, ack_wait 30 s,
    # max_ack_pending 10 on an interest stream. Every delivery must follow from the event that
    # allows it (a new message, an ack freeing a slot) in the same loop turn: the fake clock
    # never moves, so a delivery that waited for a timer would not happen at all.
    store = MemStore()
    stream, bus, acked = make_stream(store, retention="interest")
    bus.listening.add("dlv")
    clock = Clock()
    r = ConsumerRunner(stream, "D", cfg(flow_control=True, idle_heartbeat=60 * NS, ack_wait=30 * NS,
                                        max_ack_pending=10), clock=clock)
    await settle()
    for i in range(25):
        seq = store.store_msg("foo.a", b"", b"e%d" % i, 1)
        r.on_new_msg(seq, "foo.a")
        await settle()
    delivered = [d for d in bus.sent if d[1]]
    assert len(delivered) == 10 and len(r.core.pending) == 10
    ack_cb = bus.subs[0][1]
    for k in range(15):
        ack_cb(None, None, delivered[k][1], "", None, b"+ACK")
        await settle()
        delivered = [d for d in bus.sent if d[1]]
        assert len(delivered) == 11 + k  # the freed slot is used at once
    assert [int(d[1].split(".")[5]) for d in delivered] == list(range(1, 26))
    assert acked == list(range(1, 16))
    # the only timer armed is for real deadlines (ack wait, heartbeat), not a polling loop
    assert r._timer_at - clock.now() >= NS
    r.stop()


async def test_queued_acks_are_taken_before_any_other_event():
    """Acks wait for the next run, but whatever looks at or changes the consumer first (info,
    a pull request, stop, a new message) sees them settled, in arrival order."""
    store = MemStore()
    for _ in range(3):
        store.store_msg("foo.a", b"", b"x", 1)
    stream, bus, _ = make_stream(store)
    bus.listening.add("dlv")
    cs = CStore()
    r = ConsumerRunner(stream, "D", cfg(), cstore=cs, clock=Clock())
    await settle()
    ack_cb = bus.subs[0][1]
    for _, reply, _, _ in bus.sent[:2]:
        ack_cb(None, None, reply, "", None, b"+ACK")
    assert r.core.asflr == 0  # queued, not yet run
    info = r.info()
    assert info["ack_floor"]["stream_seq"] == 2 and info["num_ack_pending"] == 1
    ack_cb(None, None, bus.sent[2][1], "", None, b"+ACK")
    store.store_msg("foo.a", b"", b"x", 1)
    r.on_new_msg(4, "foo.a")
    assert r.core.asflr == 3
    r.stop()
    assert cs.states[-1].ack_floor.stream_seq == 3
