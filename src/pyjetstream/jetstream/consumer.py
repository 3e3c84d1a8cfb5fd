"""The consumer state machine: what to deliver next, what is pending, what to redeliver when.

Owns one consumer's delivery state (next stream/consumer sequences, ack floors, pending acks,
redelivery counts and queue, waiting pull requests, flow control, heartbeats, replay pacing,
rate limiting, inactivity) and the wire bytes it emits. It is PURE: no asyncio, no sockets, no
clock reads. Every entry point takes `now` (monotonic nanoseconds); messages are read only
through the StreamStore interface; outputs are queued on `outbox` (messages to publish),
`advisories` and `stream_acks` (retention), and drained by the runner, which also re-arms one
timer at `next_deadline()`. Semantics follow nats-server's consumer (2.9 wire behaviour, with the
later fixes for max-deliver ack floors and redelivery of removed messages); consumer info reports
delivered and ack floor from the stored view, as 2.10+ do (see info_seqs).
"""

from __future__ import annotations

import heapq
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyjetstream.gotime import ZERO_TIME, format_duration, format_rfc3339, parse_duration
from pyjetstream.jetstream import advisories, gojson
from pyjetstream.jetstream.consumer_config import (
    MS,
    NS,
    ConsumerConfig,
)
from pyjetstream.jetstream.store.base import ConsumerState, SequencePair, StoredMsg
from pyjetstream.subjects import is_subset, subject_matches

FC_MAX_PENDING = 32 * 1024 * 1024  # flow-control window limit; the window starts at 1/16
ACK_WAIT_DELAY = 1 * MS  # fire redelivery checks a little late so bursts share one wake-up

_NO_PRIORITY = 1 << 31  # where a `prioritized` consumer queues a request without a priority group
_ACK = b"+ACK"
_OK = b"+OK"
_NAK = b"-NAK"
_WPI = b"+WPI"
_TERM = b"+TERM"
_NXT = b"+NXT"


def status_hdr(code: int, text: str, extra: list[tuple[str, Any]] | None = None) -> bytes:
    lines = [f"NATS/1.0 {code} {text}"]
    for k, v in extra or ():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# The ack subject of a delivery: $JS.ACK.<stream>.<consumer>.<delivery count>.<stream seq>.
# <consumer seq>.<timestamp>.<pending> (nats-server's v1 form); its tokens by index:
ACK_TOKEN_DELIVERIES = 4
ACK_TOKEN_STREAM_SEQ = 5
ACK_TOKEN_CONSUMER_SEQ = 6


class Delivery(NamedTuple):
    """A stream message for a client: routed by `dest` (the deliver subject, or a pull
    request's reply subject) while the client sees the message's own `subject`; `reply` is
    the ack subject."""

    dest: str
    reply: str
    hdr: bytes | None
    payload: bytes
    subject: str


class Status(NamedTuple):
    """A status or control message to `dest`: a heartbeat, a flow-control request (its reply
    subject in `reply`), a pull request's 404/408/409."""

    dest: str
    reply: str
    hdr: bytes
    payload: bytes


@dataclass(slots=True)
class Priority:
    """A pull request's priority group fields (nats-server 2.11+). A request whose body is not a
    JSON object has none (None), which nats-server treats apart from an empty one."""

    group: str = ""
    min_pending: int = 0
    min_ack_pending: int = 0
    id: str = ""  # the pin id the requester holds
    priority: int = 0


@dataclass(slots=True)
class PullRequest:
    reply: str
    n: int  # messages still wanted
    max_bytes: int  # bytes still allowed, 0 = no limit
    expires: int  # deadline (now-based ns), 0 = never
    no_wait: bool
    hb: int  # heartbeat interval ns, 0 = none
    hb_at: int  # next heartbeat deadline
    received: int
    delivered: int = 0
    pg: Priority | None = None


class Pending:
    __slots__ = ("dseq", "ts", "deadline")

    def __init__(self, dseq: int, ts: int, deadline: int) -> None:
        self.dseq = dseq  # delivery sequence of the FIRST delivery (nats-server keeps it)
        self.ts = ts  # wall ns of the latest delivery, persisted
        self.deadline = deadline  # now-based ns at which it is due for redelivery


class Consumer:
    """One consumer's state machine. See the module docstring for the contract."""

    def __init__(
        self,
        stream_name: str,
        name: str,
        config: ConsumerConfig,
        store: Any,
        now: int,
        *,
        wall_offset: int = 0,
        retention: str = "limits",
        stream_subjects: list[str] | None = None,
        has_interest: Callable[[str], bool] | None = None,
        state: ConsumerState | None = None,
        rng: random.Random | None = None,
        account_name: str = "",
        file_state: bool = False,
    ) -> None:
        self.stream_name = stream_name
        self.name = name
        self._ack_prefix = f"$JS.ACK.{stream_name}.{name}."
        self.cfg = config
        self.store = store
        self.wall_offset = wall_offset  # wall ns = now + wall_offset
        self.retention = retention
        self.stream_subjects: list[str] = []
        self._filters: list[str] = config.filters
        self.has_interest = has_interest or (lambda _s: True)
        self.rng = rng or random.Random()

        self.outbox: list[Delivery | Status] = []
        self.advisories: list[advisories.Advisory] = []
        self.stream_acks: list[int] = []
        self.ack_replies: list[str] = []  # ack-sync replies, sent once the ack is durable
        self.dirty = False  # state changed since the runner last persisted
        self.closed = False
        self.delete_requested = False  # inactivity threshold passed

        # Field names as in nats-server's consumer.go, so the two read side by side.
        self.sseq = 1  # next stream seq to look at
        self.dseq = 1  # next delivery seq
        self.adflr = 0  # ack floor, delivery seq: everything at or below is acked
        self.asflr = 0  # ack floor, stream seq
        self.pending: dict[int, Pending] = {}
        self.rdc: dict[int, int] = {}  # stream seq -> redeliveries so far (delivery count - 1)
        # What consumer info reports as the delivered and ack-floor stream sequences: nats-server
        # 2.10+ reads them from its consumer store, which moves only when a message is delivered
        # (UpdateDelivered) or acked (UpdateAcks), while sseq/asflr above also follow a filtered
        # scan past the messages the filter leaves out (docs/design.md, "Consumer info from the
        # stored view"). The consumer sequences need no copy: the store's equal dseq-1 / adflr.
        self.info_ds = 0  # the store's delivered stream seq (SetStarting, then each delivery)
        self.info_as = 0  # the store's ack floor stream seq
        self.info_ac = 0  # the store's ack floor consumer seq (adflr but after max deliveries)
        # nats-server's HasState: a file consumer store has state from its creation on (its
        # SetStarting writes the file); a memory one once it delivered or starts past seq 1.
        # Without state, info reports the in-memory delivered sequences.
        self.file_state = file_state
        self.rdq: dict[int, None] = {}  # redelivery queue, insertion ordered
        self._heap: list[tuple[int, int]] = []  # (deadline, sseq), lazily invalidated
        self.lss: deque[int] | None = None  # last-per-subject start list
        self.lss_resume = 0  # where the stream walk resumes once lss is used up
        self.waiting: deque[PullRequest] = deque()
        self.last_delivered_wall = 0
        self.last_ack_wall = 0

        # push
        self.active = True  # interest on deliver_subject
        self.pbytes = 0  # bytes delivered and not yet confirmed by a flow-control reply
        self.pblimit = FC_MAX_PENDING if config.flow_control else 0  # the window's upper bound
        self.maxpb = max(1, self.pblimit // 16) if self.pblimit else 0  # the current window
        self.fcid = ""  # reply subject of the flow-control request in flight ("" = none)
        self.fcsz = 0  # pbytes when that request was sent
        self.hb_at = 0

        # pacing
        self.replay = config.replay_policy == "original"
        self.replay_lseq = 0
        self.lts: int | None = None  # timestamp of the last delivered message (replay pacing)
        self._replay_seq = 0
        self._replay_at = 0
        self._rl_next = 0

        # num_pending, cached: matching messages not yet delivered (valid until a change it
        # cannot follow, e.g. a purge or a filter update)
        self.npc = 0
        self.npc_valid = False
        self._map_stalled = False
        self.set_stream_subjects(stream_subjects or [])

        # inactivity
        self.last_activity = now
        self.inactive_since = 0  # push: when interest went away, 0 while interested

        # pause (nats-server 2.11): now-based end of the pause; 0 = not paused, or the pause
        # ended and its advisory went out
        self.pause_at = 0
        self._set_pause(config, now)

        # priority groups (nats-server 2.11): the one pin of a pinned_client consumer (as
        # nats-server, one pin whatever the number of groups), when it was given (wall ns) and
        # when it lapses unless its holder asks again (now-based ns)
        self.account_name = account_name
        self.pin_id = ""
        self.pinned_ts = 0
        self.pin_deadline = 0

        if state is not None and (state.delivered.stream_seq or state.delivered.consumer_seq or state.pending):
            self._apply_state(state, now)
        else:
            self._select_start()
        if self.replay:
            self.replay_lseq = self.store.state().last_seq
        if config.idle_heartbeat and config.deliver_subject:
            self.hb_at = now + config.idle_heartbeat

    # ------------------------------------------------------------------ helpers
    @property
    def is_push(self) -> bool:
        return bool(self.cfg.deliver_subject)

    @property
    def ack_none(self) -> bool:
        return self.cfg.ack_policy == "none"

    def wall(self, now: int) -> int:
        return now + self.wall_offset

    def _set_pause(self, cfg: ConsumerConfig, now: int) -> None:
        until = cfg.pause_until_ns
        # a deadline already passed is no pause at all (and no resume advisory later)
        self.pause_at = until - self.wall_offset if until and until - self.wall_offset > now else 0

    def is_paused(self, now: int) -> bool:
        return bool(self.pause_at) and now < self.pause_at

    def announce_pause(self, now: int) -> None:
        """A create (or update) through the API answered while the consumer is paused: nats-server
        sends a pause advisory then too."""
        if self.is_paused(now):
            self.advisories.append(advisories.consumer_pause(
                self.stream_name, self.name, True, self.cfg.pause_until or ZERO_TIME))

    def _end_pause(self, now: int) -> None:
        """The pause deadline passed: say so once, as nats-server's unpause timer does."""
        if self.pause_at and now >= self.pause_at:
            self.pause_at = 0
            self.advisories.append(advisories.consumer_pause(
                self.stream_name, self.name, False, self.cfg.pause_until or ZERO_TIME))

    def set_stream_subjects(self, subjects: list[str]) -> None:
        """The stream's subjects (again, after a stream update): a filter that covers all of them
        is no filter at all, which keeps reads and pending counts on the stores' fast paths."""
        self.stream_subjects = list(subjects)
        fs = self.cfg.filters
        if fs and subjects and all(any(is_subset(s, f) for f in fs) for s in subjects):
            self._filters = []
        else:
            self._filters = fs
        self._matched: dict[str, bool] = {}  # subject -> matches(subject), for these filters
        self.npc_valid = False

    def matches(self, subject: str) -> bool:
        fs = self._filters
        if not fs:
            return True
        # Asked per stored message and per consumer (pending counts, interest retention);
        # streams see the same few subjects again and again, so the answers are kept.
        hit = self._matched.get(subject)
        if hit is None:
            if len(self._matched) >= 4096:
                self._matched.clear()
            hit = self._matched[subject] = any(subject_matches(f, subject) for f in fs)
        return hit

    def is_filtered(self) -> bool:
        fs = self.cfg.filters
        if not fs:
            return False
        if len(fs) == 1 and len(self.stream_subjects) == 1 and fs[0] == self.stream_subjects[0]:
            return False
        return True

    def _load_next(self, start: int) -> tuple[StoredMsg | None, int]:
        """Next matching message at or after start, and the seq searched up to on EOF."""
        fs = self._filters
        if len(fs) <= 1:
            m = self.store.load_next_msg(fs[0] if fs else "", start)
        else:
            m = None
            for f in fs:
                c = self.store.load_next_msg(f, start)
                if c is not None and (m is None or c.seq < m.seq):
                    m = c
        if m is not None:
            return m, m.seq
        return None, self.store.last_seq  # not state(): a caught-up consumer asks on every poll

    def _select_start(self) -> None:
        st = self.store.state()
        cfg = self.cfg
        dp = cfg.deliver_policy
        if cfg.opt_start_seq and dp == "by_start_sequence":
            seq = cfg.opt_start_seq
        elif dp == "all":
            seq = st.first_seq
        elif dp == "last":
            seq = st.last_seq
            fs = cfg.filters
            if fs:
                lasts = [self.store.filtered_state(1, f).last for f in fs]
                seq = max(lasts) if lasts else 0
        elif dp == "last_per_subject":
            seqs: set[int] = set()
            for f in cfg.filters or [">"]:
                for ss in self.store.subjects_state(f).values():
                    seqs.add(ss.last)
            if seqs:
                self.lss = deque(sorted(seqs))
                self.lss_resume = st.last_seq
                seq = self.lss[0]
            else:
                seq = st.last_seq
        elif dp == "by_start_time":
            seq = self._seq_from_time(cfg.opt_start_time_ns)
        else:  # new
            seq = st.last_seq + 1
        if st.first_seq == 0 and st.last_seq == 0:
            seq = 1
        elif seq < st.first_seq:
            seq = st.first_seq
        elif seq > st.last_seq:
            seq = st.last_seq + 1
        self.sseq = seq
        self.dseq = 1
        # nats-server reports a fresh consumer's ack floor as 0/0 whatever its start (its
        # stored state only records the starting delivered sequence).
        self.adflr = 0
        self.asflr = 0
        self.info_ds = seq - 1  # SetStarting(sseq - 1)
        self.info_as = self.info_ac = 0
        self.dirty = True

    def _seq_from_time(self, ts: int) -> int:
        st = self.store.state()
        seq = st.first_seq
        # Binary search over stored timestamps; gaps are skipped by load_next_msg.
        lo, hi = st.first_seq, st.last_seq + 1
        while lo < hi:
            mid = (lo + hi) // 2
            m = self.store.load_next_msg("", mid)
            if m is None:
                hi = mid
            elif m.ts >= ts:
                hi = mid
            else:
                lo = m.seq + 1
        seq = lo
        return seq

    def _apply_state(self, state: ConsumerState, now: int) -> None:
        self.sseq = max(self.sseq, state.delivered.stream_seq + 1)
        self.dseq = state.delivered.consumer_seq + 1
        self.adflr = state.ack_floor.consumer_seq
        self.asflr = state.ack_floor.stream_seq
        wall = self.wall(now)
        for sseq, (dseq, ts) in state.pending.items():
            remaining = ts + self._wait_for(sseq) - wall
            # Restored pending are checked soon (as nats-server does), never later than due.
            deadline = now + max(0, min(remaining, NS))
            self.pending[sseq] = Pending(dseq, ts, deadline)
            heapq.heappush(self._heap, (deadline, sseq))
        self.rdc = {s: c for s, c in state.redelivered.items() if s > self.asflr}
        if state.info_seqs is not None:
            self.info_ds, self.info_as, self.info_ac = state.info_seqs
        else:  # written before info_seqs were kept
            self.info_ds, self.info_as = state.delivered.stream_seq, state.ack_floor.stream_seq
            self.info_ac = self.adflr

    def snapshot(self) -> ConsumerState:
        return ConsumerState(
            delivered=SequencePair(self.dseq - 1, self.sseq - 1),
            ack_floor=SequencePair(self.adflr, self.asflr),
            pending={s: (p.dseq, p.ts) for s, p in self.pending.items()},
            redelivered=dict(self.rdc),
            info_seqs=(self.info_ds, self.info_as, self.info_ac),
        )

    def _store_whole_state(self) -> None:
        """nats-server writes its in-memory state over the stored one (writeStoreState) after a
        purge, and after its pending check dropped entries below the stream's first sequence;
        an older state (a lower ack floor) is ignored, as its store's Update does."""
        asflr = self.asflr if self.pending else self.sseq - 1
        if asflr >= self.info_as:
            self.info_ds, self.info_as = self.sseq - 1, asflr
            self.info_ac = self.adflr if self.pending else self.dseq - 1

    def info_seqs(self) -> tuple[SequencePair, SequencePair]:
        """(delivered, ack floor) as consumer info reports them: from the stored view (nats-server
        2.10+'s infoWithSnapAndReply, o.store.BorrowState()), the delivered pair from memory
        while the store has no state yet."""
        dc = self.dseq - 1
        if self.file_state or dc or self.info_ds:
            delivered = SequencePair(dc, self.info_ds)
        else:
            delivered = SequencePair(dc, self.sseq - 1)
        return delivered, SequencePair(self.info_ac, self.info_as)

    def _wait_for(self, sseq: int) -> int:
        bo = self.cfg.backoff
        if bo:
            i = self.rdc.get(sseq, 0)
            return bo[min(i, len(bo) - 1)]
        return self.cfg.ack_wait

    def _track(self, sseq: int, dseq: int, now: int) -> None:
        deadline = now + (self._wait_for(sseq) if self.cfg.backoff else self.cfg.ack_wait)
        p = self.pending.get(sseq)
        ts = now + self.wall_offset
        if p is None:
            self.pending[sseq] = Pending(dseq, ts, deadline)
        else:
            p.ts = ts
            p.deadline = deadline
        heapq.heappush(self._heap, (deadline, sseq))

    # ------------------------------------------------------------------ info
    def num_pending(self) -> int:
        if not self.npc_valid:
            self.npc = self._count_pending()
            self.npc_valid = True
        return self.npc

    def _count_pending(self) -> int:
        if self.cfg.deliver_policy == "last_per_subject":
            n = 0
            for f in self._filters or [">"]:
                for ss in self.store.subjects_state(f).values():
                    if ss.last >= self.sseq:
                        n += 1
            return n
        fs = self._filters
        if len(fs) <= 1:
            return self.store.filtered_state(self.sseq, fs[0] if fs else "").msgs
        return sum(self.store.filtered_state(self.sseq, f).msgs for f in fs)

    def pending_plan(self) -> tuple[bool, list[str], int]:
        """What _count_pending counts, for a caller that counts in slices (fair.count_pending):
        (one per subject?, filters, from stream seq)."""
        per_subject = self.cfg.deliver_policy == "last_per_subject"
        return per_subject, list(self._filters or ([">"] if per_subject else [""])), self.sseq

    def info_state(self, now: int, num_pending: int | None = None) -> dict[str, Any]:
        """`num_pending` when the caller counted it already (in slices)."""
        """The state half of ConsumerInfo (config, name, created are the runner's)."""
        if not self.is_push:
            self._process_waiting(now, eos=False)
        dpair, apair = self.info_seqs()
        delivered: dict[str, Any] = {"consumer_seq": dpair.consumer_seq, "stream_seq": dpair.stream_seq}
        if self.last_delivered_wall:
            delivered["last_active"] = format_rfc3339(self.last_delivered_wall)
        ack_floor: dict[str, Any] = {"consumer_seq": apair.consumer_seq, "stream_seq": apair.stream_seq}
        if self.last_ack_wall:
            ack_floor["last_active"] = format_rfc3339(self.last_ack_wall)
        out: dict[str, Any] = {
            "delivered": delivered,
            "ack_floor": ack_floor,
            "num_ack_pending": len(self.pending),
            "num_redelivered": len(self.rdc),
            "num_waiting": len(self.waiting) if not self.is_push else 0,
            "num_pending": self._count_pending() if num_pending is None else num_pending,
        }
        if self.is_push and self.active:
            out["push_bound"] = True
        if self.is_paused(now):
            out["paused"] = True
            out["pause_remaining"] = self.pause_at - now
        return out

    # ------------------------------------------------------------------ stream events
    def on_new_msg(self, seq: int, subject: str, now: int) -> None:
        """A message was stored; delivery happens in poll()."""
        if not self.npc_valid:
            return
        if self.cfg.deliver_policy == "last_per_subject":
            self.npc_valid = False
        elif seq >= self.sseq and self.matches(subject):
            self.npc += 1

    def on_purged(self, first_seq: int, now: int) -> None:
        """The stream was purged (or compacted) up to first_seq (exclusive)."""
        self.npc_valid = False
        if self.sseq < first_seq:
            self.sseq = first_seq
        if self.asflr < first_seq:
            self.asflr = first_seq - 1
            self.adflr = self.dseq - 1
        self._drop_missing(first_seq)
        if self.lss:
            self.lss = deque(s for s in self.lss if s >= first_seq) or None
        self._store_whole_state()
        self.dirty = True

    def on_msgs_removed(self, first_seq: int, now: int) -> None:
        """Messages were removed by limits or deletes: forget pending ones below the new first
        sequence now. This runs on every publish into a full stream, so it must not scan:
        pending is insertion-ordered by stream sequence, so its first key is its lowest.
        Interior deletions are noticed when the message comes due (as in nats-server)."""
        self.npc_valid = False
        pending = self.pending
        dropped = False
        while pending:
            s = next(iter(pending))
            if s >= first_seq:
                break
            p = pending.pop(s)
            self.rdc.pop(s, None)
            self.rdq.pop(s, None)
            self._move_ack_floor(p.dseq, s)
            self.dirty = True
            dropped = True
        if self.rdq and next(iter(self.rdq)) < first_seq:
            for s in [s for s in self.rdq if s < first_seq]:
                del self.rdq[s]
        if not pending and self.asflr < first_seq - 1 and self.sseq >= first_seq:
            self.asflr = first_seq - 1
            self.adflr = self.dseq - 1
        if dropped:
            self._store_whole_state()

    def _drop_missing(self, first_seq: int) -> None:
        gone = [s for s in self.pending if s < first_seq or self.store.load_msg(s) is None]
        for s in gone:
            p = self.pending.pop(s)
            self.rdc.pop(s, None)
            self.rdq.pop(s, None)
            self._move_ack_floor(p.dseq, s)
            self.dirty = True
        for s in [s for s in self.rdc if s < first_seq]:
            del self.rdc[s]
        for s in [s for s in self.rdq if s < first_seq]:
            del self.rdq[s]
        if not self.pending and self.asflr < first_seq - 1 and self.sseq >= first_seq:
            self.asflr = first_seq - 1
            self.adflr = self.dseq - 1

    def needs_ack(self, seq: int, subject: str) -> bool:
        """Interest retention: does this consumer still hold an interest in seq?"""
        if self.is_filtered():
            if not subject:
                m = self.store.load_msg(seq)
                if m is None:
                    return False
                subject = m.subject
            if not self.matches(subject):
                return False
        if self.cfg.ack_policy in ("none", "all"):
            return seq > self.asflr or seq in self.rdc
        if seq > self.asflr:
            if seq >= self.sseq or seq in self.pending:
                return True
        # A message that used up max_deliver is never acked, yet stays (nats-server's needAck
        # checks its redelivery count the same way).
        return seq in self.rdc

    # ------------------------------------------------------------------ interest
    def set_interest(self, interest: bool, now: int) -> None:
        if not self.is_push:
            return
        if interest and not self.active:
            self.hb_at = now + self.cfg.idle_heartbeat if self.cfg.idle_heartbeat else 0
        self.active = interest
        if interest:
            self.inactive_since = 0
        elif not self.inactive_since:
            self.inactive_since = now

    def did_not_deliver(self, sseq: int, now: int) -> None:
        """Nobody received a delivery: a push consumer pauses, a pull one retries at once."""
        if self.is_push:
            self.set_interest(False, now)
        elif sseq in self.pending and sseq not in self.rdq:
            self.rdq[sseq] = None

    # ------------------------------------------------------------------ acks
    def on_ack(self, subject: str, reply: str, body: bytes, now: int) -> None:
        """An ack-subject message: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>."""
        self.on_acks([(subject, reply.encode() if reply else b"", body)], now)

    def _on_ack(self, subject: str, reply: str, body: bytes, now: int) -> None:
        """Every kind of ack body (the plain explicit ack is settled by on_acks itself)."""
        toks = subject.split(".")
        sseq = dseq = dc = 0
        if len(toks) == 9 and toks[0] == "$JS" and toks[1] == "ACK":
            try:
                dc, sseq, dseq = int(toks[4]), int(toks[5]), int(toks[6])
            except ValueError:
                dc = sseq = dseq = 0
            if dc < 0 or sseq < 0 or dseq < 0:
                dc = sseq = dseq = 0
        skip_reply = sseq == 0
        self.last_activity = now
        if self.inactive_since and self.is_push:
            # Ack activity postpones the clean-up of a consumer nobody listens to.
            self.inactive_since = now
        msg = body.strip() if body else b""
        if not msg or msg == _ACK or msg == _OK:
            self._process_ack(sseq, dseq, dc, now, sample=True)
        elif msg.startswith(_NXT):
            self._process_ack(sseq, dseq, dc, now, sample=True)
            if reply:
                self.on_pull_request(reply, msg[len(_NXT):], now)
            skip_reply = True
        elif msg.startswith(_NAK):
            self._process_nak(sseq, dseq, dc, msg, now)
        elif msg == _WPI:
            p = self.pending.get(sseq)
            if p is not None:
                p.ts = self.wall(now)
                p.deadline = now + self._wait_for(sseq)
                heapq.heappush(self._heap, (p.deadline, sseq))
                self.dirty = True
        elif msg.startswith(_TERM):
            reason = msg[len(_TERM):].strip().decode(errors="replace")
            self._process_term(sseq, dseq, dc, reason, now)
        if reply and not skip_reply:
            self.ack_replies.append(reply)

    def on_acks(self, acks: list[tuple[str, bytes, bytes]], now: int) -> None:
        """Ack-subject messages that arrived together, in order: (subject, reply, body).
        The same as on_ack for each; plain explicit acks, nearly all of them under load,
        are settled in this loop with the per-ack bookkeeping done once."""
        cfg = self.cfg
        if cfg.ack_policy != "explicit" or cfg.sample_freq:
            for subject, reply, body in acks:
                self._on_ack(subject, reply.decode("utf-8", "replace") if reply else "", body, now)
            return
        pending = self.pending
        interest = self.retention != "limits"
        settled = False
        for subject, reply, body in acks:
            if not body or body == _ACK:
                toks = subject.split(".")
                if len(toks) == 9 and toks[0] == "$JS" and toks[1] == "ACK":
                    try:
                        dc, sseq, dseq = int(toks[4]), int(toks[5]), int(toks[6])
                    except ValueError:
                        sseq = 0
                    else:
                        if dc < 0 or dseq < 0:
                            sseq = 0
                    if 0 < sseq < self.sseq:
                        p = pending.pop(sseq, None)
                        if p is not None:
                            self._move_ack_floor(p.dseq, sseq)
                            if interest:
                                self.stream_acks.append(sseq)
                        if self.rdc:
                            self.rdc.pop(sseq, None)
                        if self.rdq:
                            self.rdq.pop(sseq, None)
                        if reply:
                            self.ack_replies.append(reply.decode("utf-8", "replace"))
                        settled = True
                        continue
            self._on_ack(subject, reply.decode("utf-8", "replace") if reply else "", body, now)
        if settled:
            self.last_activity = now
            if self.inactive_since and self.is_push:
                self.inactive_since = now
            self.last_ack_wall = now + self.wall_offset
            self.dirty = True

    def _process_ack(self, sseq: int, dseq: int, dc: int, now: int, sample: bool) -> None:
        if sseq == 0 or sseq >= self.sseq:
            return
        pol = self.cfg.ack_policy
        if pol == "explicit":
            p = self.pending.pop(sseq, None)
            if p is not None:
                if sample and self.cfg.sample_freq:
                    self._sample_ack(sseq, dseq, dc, p, now)
                self._move_ack_floor(p.dseq, sseq)
                if self.retention != "limits":
                    self.stream_acks.append(sseq)
            if self.rdc:
                self.rdc.pop(sseq, None)
            if self.rdq:
                self.rdq.pop(sseq, None)
        elif pol == "all":
            # By stream sequence only: nats-server also refuses an ack whose delivery sequence
            # is below the floor, so after a redelivery was acked, an older delivery of a later
            # message could never be acked (only redelivered). The consumer floor never moves back.
            if sseq <= self.asflr:
                return
            if sample and self.cfg.sample_freq and sseq in self.pending:
                self._sample_ack(sseq, dseq, dc, self.pending[sseq], now)
            old = self.asflr
            if sseq in self.pending:  # the store moves its floor only for a pending message
                self.info_ac, self.info_as = dseq, sseq
            self.adflr, self.asflr = max(self.adflr, dseq), sseq
            if sseq - old > len(self.pending):
                acked = sorted(s for s in self.pending if s <= sseq)
            else:
                acked = [s for s in range(old + 1, sseq + 1) if s in self.pending]
            for s in acked:
                del self.pending[s]
                self.rdc.pop(s, None)
                self.rdq.pop(s, None)
            if self.retention != "limits":
                self.stream_acks.extend(acked if sseq in acked else [*acked, sseq])
        else:
            return
        self.last_ack_wall = now + self.wall_offset
        self.dirty = True

    def _move_ack_floor(self, dseq: int, sseq: int, store: bool = True) -> None:
        """The in-memory floors after sseq left pending; and, when `store` (an ack), the stored
        view's as its UpdateAcks moves it. The two agree on the consumer sequence until a
        message used up max_deliver (store=False: nats-server's store drops it from its pending
        without moving its floor); from then on, until they meet again, the stored view takes
        its own, slower path."""
        if store and self.info_ac != self.adflr:
            self._store_ack(dseq, sseq)
            store = False
        if store:
            self._move_both_floors(dseq, sseq)
            return
        moved = self._floor_after(self.adflr, dseq, sseq, self.sseq - 1)
        if moved is not None:
            self.adflr, self.asflr = moved

    def _store_ack(self, dseq: int, sseq: int) -> None:
        """nats-server's consumer store UpdateAcks (explicit ack) for a message it held pending
        (its pending set is ours)."""
        moved = self._floor_after(self.info_ac, dseq, sseq, self.info_ds)
        if moved is not None:
            self.info_ac, self.info_as = moved

    def _floor_after(self, floor: int, dseq: int, sseq: int, empty_at: int) -> tuple[int, int] | None:
        """An ack floor (consumer seq `floor`) after (dseq, sseq) left pending, as nats-server's
        store moves it: with nothing pending, to the last delivery and stream seq `empty_at`;
        when dseq is the next above the floor, past it up to below the next pending message;
        else it stays (None)."""
        if not self.pending:
            return self.dseq - 1, empty_at
        if dseq != floor + 1:
            return None
        above = [s for s in self.pending if s > sseq]
        if above:
            nxt = min(above)
            pd = self.pending[nxt].dseq
            if pd > 0:
                return pd - 1, nxt - 1
        return dseq, sseq

    def _move_both_floors(self, dseq: int, sseq: int) -> None:
        if not self.pending:
            self.adflr, self.asflr = self.dseq - 1, self.sseq - 1
            # the store's floor: its last delivered message, not the scan's position
            self.info_ac, self.info_as = self.adflr, self.info_ds
        elif dseq == self.adflr + 1:
            self.adflr, self.asflr = dseq, sseq
            self.info_as = sseq
            nxt = None
            if sseq + 1 in self.pending:  # acks in delivery order: the next one is pending
                p = self.pending[sseq + 1]
                if p.dseq > 0:
                    self.adflr, self.asflr = p.dseq - 1, sseq
                self.info_ac = self.adflr
                return
            for ss in range(sseq + 2, min(sseq + 64, self.sseq)):
                if ss in self.pending:
                    nxt = ss
                    break
            if nxt is None:
                above = [s for s in self.pending if s > sseq]
                nxt = min(above) if above else None
            if nxt is not None:
                p = self.pending[nxt]
                if p.dseq > 0:
                    self.adflr, self.asflr = p.dseq - 1, nxt - 1
                    self.info_as = nxt - 1
            self.info_ac = self.adflr

    def _sample_ack(self, sseq: int, dseq: int, dc: int, p: Pending, now: int) -> None:
        pct = self.cfg.sample_percent
        if pct <= 0 or (pct < 100 and self.rng.randrange(100) > pct):
            return
        self.advisories.append(advisories.consumer_ack_metric(
            self.stream_name, self.name, dseq, sseq, self.wall(now) - p.ts, dc))

    def _process_nak(self, sseq: int, dseq: int, dc: int, msg: bytes, now: int) -> None:
        if dseq <= self.adflr or dseq >= self.dseq:
            return
        if self.pending and sseq not in self.pending:
            return
        self.advisories.append(advisories.msg_naked(self.stream_name, self.name, dseq, sseq, dc))
        arg = msg[len(_NAK):].strip()
        if arg:
            delay: int | None = None
            try:
                if arg[:1] == b"{":
                    delay = int(json.loads(arg).get("delay", 0))
                else:
                    delay = parse_duration(arg.decode())
            except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
                delay = None  # a bad delay counts as a plain NAK
            if delay is not None and delay > 0:
                self.rdq.pop(sseq, None)
                p = self.pending.get(sseq)
                if p is not None:
                    p.deadline = now + delay
                    p.ts = self.wall(now) - self.cfg.ack_wait + delay
                    heapq.heappush(self._heap, (p.deadline, sseq))
                    self.dirty = True
                return
        if sseq not in self.rdq:
            self.rdq[sseq] = None

    def _process_term(self, sseq: int, dseq: int, dc: int, reason: str, now: int) -> None:
        self._process_ack(sseq, dseq, dc, now, sample=False)
        self.advisories.append(advisories.msg_terminated(self.stream_name, self.name, dseq, sseq, dc, reason))

    def on_flow_control_reply(self, subject: str, now: int) -> None:
        if subject != self.fcid:
            return
        if self.maxpb < self.pblimit:
            self.maxpb = min(self.maxpb * 2, self.pblimit)
        self.pbytes = max(0, self.pbytes - self.fcsz)
        self.fcid, self.fcsz = "", 0

    # ------------------------------------------------------------------ pull requests
    def on_pull_request(self, reply: str, body: bytes, now: int) -> None:
        if not reply:
            return
        self.last_activity = now

        def send_err(code: int, text: str) -> None:
            self.outbox.append(Status(reply, "", status_hdr(code, text), b""))

        if self.is_push:
            send_err(409, "Consumer is push based")
            return
        try:
            batch, expires, max_bytes, no_wait, hb, pg = _parse_pull(body)
        except ValueError as e:
            send_err(400, f"Bad Request - {e}")
            return
        cfg = self.cfg
        if cfg.max_batch > 0 and batch > cfg.max_batch:
            send_err(409, f"Exceeded MaxRequestBatch of {cfg.max_batch}")
            return
        if expires and cfg.max_expires > 0 and expires > cfg.max_expires:
            send_err(409, f"Exceeded MaxRequestExpires of {format_duration(cfg.max_expires)}")
            return
        if max_bytes > 0 and cfg.max_bytes > 0 and max_bytes > cfg.max_bytes:
            send_err(409, f"Exceeded MaxRequestMaxBytes of {cfg.max_bytes}")
            return
        policy = cfg.priority_policy
        if pg is not None:
            if (pg.min_pending or pg.min_ack_pending) and policy != "overflow":
                send_err(400, "Bad Request - Not a Overflow Priority consumer")
                return
            if pg.id and policy != "pinned_client":
                send_err(400, "Bad Request - Not a Pinned Client Priority consumer")
                return
            if pg.priority < 0 or pg.priority > 9:
                send_err(400, "Bad Request - Priority must be between 0 and 9")
                return
            if policy:
                if not pg.group:
                    send_err(400, "Bad Request - Priority Group missing")
                    return
                if pg.group not in (cfg.priority_groups or ()):
                    send_err(400, "Bad Request - Invalid Priority Group")
                    return
                if self.pin_id:
                    if pg.id == self.pin_id:
                        # the holder is still there: the pin lives on
                        self.pin_deadline = now + cfg.priority_timeout
                    elif pg.id:
                        send_err(423, "Nats-Pin-Id mismatch")
                        return
        if len(self.waiting) >= cfg.max_waiting:
            self._process_waiting(now, eos=False)
        if no_wait:
            msgs_pending = self.num_pending() + len(self.rdq)
            if msgs_pending == 0 and not expires:
                send_err(404, "No Messages")
                return
            if msgs_pending > 0:
                brp = self._process_waiting(now, eos=False)
                if msgs_pending < brp:
                    send_err(408, "Requests Pending")
                    return
        if len(self.waiting) >= cfg.max_waiting:
            send_err(409, "Exceeded MaxWaiting")
            return
        wr = PullRequest(
            reply=reply, n=batch, max_bytes=max_bytes, expires=now + expires if expires else 0,
            no_wait=no_wait, hb=hb, hb_at=now + hb if hb else 0, received=now, pg=pg,
        )
        if policy == "prioritized":
            self._insert_prioritized(wr)
        else:
            self.waiting.append(wr)

    def _process_waiting(self, now: int, eos: bool, stalled: bool = False, paused: bool = False) -> int:
        """Expire requests (408), drop ones nobody listens for, send due heartbeats.
        Returns the number of messages the remaining requests still want.

        `eos`: no message is left to deliver; `stalled`: max_ack_pending holds the rest back.
        A no_wait request is a one-shot and is answered the moment it can get no more: at the
        end of the stream once it got something, and when stalled once it got something or
        has no `expires` to wait for. nats-server ends the stalled ones only at its next timer
        tick (the request's heartbeat or expiry), so a client's fetch saw a heartbeat instead,
        returned, and left the request behind to swallow later messages.

        `paused`: the consumer is paused; a no_wait request gets 404 No Messages unless it has
        an `expires` to wait out and got nothing yet (nats-server 2.11+)."""
        brp = 0
        keep: deque[PullRequest] = deque()
        for wr in self.waiting:
            if paused and wr.no_wait and (not wr.expires or wr.delivered > 0) and not (
                    wr.expires and now >= wr.expires):
                self.outbox.append(Status(wr.reply, "", status_hdr(404, "No Messages"), b""))
                continue
            one_shot_done = wr.no_wait and (
                (eos and wr.delivered > 0) or (stalled and (wr.delivered > 0 or not wr.expires)))
            if one_shot_done or (wr.expires and now >= wr.expires):
                self.outbox.append(Status(wr.reply, "", status_hdr(408, "Request Timeout", [
                    ("Nats-Pending-Messages", wr.n), ("Nats-Pending-Bytes", wr.max_bytes)]), b""))
                continue
            if not self.has_interest(wr.reply):
                continue
            brp += wr.n
            if wr.hb and now >= wr.hb_at:
                self._send_heartbeat(wr.reply)
                wr.hb_at = now + wr.hb
            keep.append(wr)
        self.waiting = keep
        return brp

    def _next_waiting(self, size: int, now: int, num_pending: int = 0) -> PullRequest | None:
        """The request the next message goes to (nats-server's nextWaiting), with the priority
        group rules: a pinned_client consumer serves only its pin's holder (pinning the first
        request without a pin id when there is no pin, 423 to a stale pin id); an overflow
        consumer skips a request whose min_pending / min_ack_pending are not reached.
        `num_pending`: what overflow's min_pending is compared with."""
        cfg = self.cfg
        policy = cfg.priority_policy
        need_new_pin = policy == "pinned_client" and not self.pin_id
        cycled = 0
        while self.waiting:
            wr = self.waiting[0]
            assigned = False
            live = not wr.expires or now < wr.expires
            if live and policy:
                pg = wr.pg
                skip = False
                if need_new_pin:
                    if pg is None or not pg.id:
                        if pg is not None and pg.group:
                            self._pin(pg, now)
                        assigned = True
                    else:
                        self._wrong_pin(wr)
                        continue
                elif self.pin_id:
                    if pg is not None and pg.id == self.pin_id:
                        pass
                    elif pg is None or not pg.id:
                        skip = True
                    else:
                        self._wrong_pin(wr)
                        continue
                if not skip and policy == "overflow" and pg is not None and (
                        pg.min_pending > 0 or pg.min_ack_pending > 0) and not (
                        (pg.min_pending > 0 and pg.min_pending <= num_pending)
                        or (pg.min_ack_pending > 0 and pg.min_ack_pending <= len(self.pending))):
                    skip = True
                if skip:
                    # to the back of the queue; once every request was looked at, none fits
                    self.waiting.rotate(-1)
                    cycled += 1
                    if cycled >= len(self.waiting):
                        return None
                    continue
            if wr.max_bytes > 0:
                if size > wr.max_bytes:
                    self.outbox.append(Status(wr.reply, "", status_hdr(409, "Message Size Exceeds MaxBytes", [
                        ("Nats-Pending-Messages", wr.n), ("Nats-Pending-Bytes", wr.max_bytes)]), b""))
                    if assigned and self.pin_id:
                        self.pin_id, self.pinned_ts, self.pin_deadline = "", 0, 0
                    self.waiting.popleft()
                    continue
            if live and self.has_interest(wr.reply):
                if wr.max_bytes > 0:
                    wr.max_bytes -= size
                    if wr.max_bytes == 0:
                        wr.n = 1
                wr.n -= 1
                wr.delivered += 1
                self.waiting.popleft()
                if wr.n > 0:
                    # Round-robin among waiting requests, as nats-server does; `prioritized`
                    # round-robins within the request's priority only.
                    if policy == "prioritized":
                        self._insert_prioritized(wr)
                    else:
                        self.waiting.append(wr)
                    if wr.hb:
                        wr.hb_at = now + wr.hb
                return wr
            if wr.expires and now >= wr.expires:
                self.outbox.append(Status(wr.reply, "", status_hdr(408, "Request Timeout", [
                    ("Nats-Pending-Messages", wr.n), ("Nats-Pending-Bytes", wr.max_bytes)]), b""))
            self.waiting.popleft()
        return None

    # ------------------------------------------------------------------ priority groups
    def _pin(self, pg: Priority, now: int) -> None:
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        self.pin_id = "".join(digits[self.rng.randrange(62)] for _ in range(22))  # a nuid's shape
        self.pinned_ts = self.wall(now)
        self.pin_deadline = now + self.cfg.priority_timeout
        pg.id = self.pin_id
        self.advisories.append(advisories.consumer_group_pinned(
            self.account_name, self.stream_name, self.name, pg.group, self.pin_id))

    def _insert_prioritized(self, wr: PullRequest) -> None:
        """`prioritized` (2.12): the queue is kept in priority order (0 first; a request without
        a priority group last), first come first served within one priority."""
        p = wr.pg.priority if wr.pg is not None else _NO_PRIORITY
        for i, other in enumerate(self.waiting):
            if (other.pg.priority if other.pg is not None else _NO_PRIORITY) > p:
                self.waiting.insert(i, wr)
                return
        self.waiting.append(wr)

    def _wrong_pin(self, wr: PullRequest) -> None:
        self.outbox.append(Status(wr.reply, "", status_hdr(423, "Nats-Wrong-Pin-Id", [
            ("Nats-Pending-Messages", wr.n), ("Nats-Pending-Bytes", wr.max_bytes)]), b""))
        self.waiting.popleft()

    def _unpin(self, group: str, reason: str) -> None:
        self.pin_id, self.pinned_ts, self.pin_deadline = "", 0, 0
        self.advisories.append(advisories.consumer_group_unpinned(
            self.account_name, self.stream_name, self.name, group, reason))

    def unpin(self, group: str, now: int) -> None:
        """`$JS.API.CONSUMER.UNPIN`: drop the pin (if any; the advisory goes out either way, as
        in nats-server); the next request without a pin id gets a new one."""
        self._unpin(group, "admin")

    def priority_state(self) -> list[dict[str, Any]] | None:
        """ConsumerInfo's `priority_groups`: the first group only, holding the one pin (as
        nats-server reports it); None when the consumer has no groups."""
        groups = self.cfg.priority_groups
        if not groups:
            return None
        g: dict[str, Any] = {"group": groups[0]}
        if self.pin_id:
            g["pinned_client_id"] = self.pin_id
        # a Go time.Time is never omitted: the zero time when nobody holds the pin
        g["pinned_ts"] = format_rfc3339(self.pinned_ts) if self.pin_id else ZERO_TIME
        return [g]

    # ------------------------------------------------------------------ timers
    def _check_pending(self, now: int) -> None:
        heap = self._heap
        pending = self.pending
        expired: list[int] = []
        while heap and heap[0][0] <= now:
            deadline, sseq = heapq.heappop(heap)
            p = pending.get(sseq)
            if p is None or p.deadline != deadline:
                continue  # stale heap entry
            if self._has_max_deliveries(sseq, p):
                continue
            if sseq not in self.rdq:
                expired.append(sseq)
        if expired:
            expired.sort()
            for s in expired:
                self.rdq[s] = None
        if len(heap) > 4 * len(pending) + 64:
            self._heap = [(p.deadline, s) for s, p in pending.items()]
            heapq.heapify(self._heap)

    def _has_max_deliveries(self, sseq: int, p: Pending) -> bool:
        md = self.cfg.max_deliver
        if md <= 0:
            return False
        dc = self.rdc.get(sseq, 0) + 1
        if dc < md:
            return False
        self.advisories.append(advisories.max_deliver(self.stream_name, self.name, sseq, dc))
        del self.pending[sseq]
        self.rdq.pop(sseq, None)
        # nats-server's store drops it from its pending (UpdateDelivered with a count above
        # max_deliver) but does not move its floor: info's floor stays below it until the
        # store's pending empties or the acks below it close the gap
        self._move_ack_floor(p.dseq, sseq, store=False)
        self.rdc[sseq] = dc
        # Not an ack: on interest and work-queue streams the message stays (needs_ack keeps
        # it through rdc), as in nats-server; only an ack, a purge or a delete removes it.
        self.dirty = True
        return True

    def next_deadline(self) -> int | None:
        """Earliest now-based ns at which poll() has timed work to do, or None."""
        cands: list[int] = []
        while self._heap:
            d, s = self._heap[0]
            p = self.pending.get(s)
            if p is None or p.deadline != d:
                heapq.heappop(self._heap)
                continue
            cands.append(d + ACK_WAIT_DELAY)
            break
        if self.is_push:
            if self.hb_at and self.active:
                cands.append(self.hb_at)
            if self.inactive_since and self.cfg.inactive_threshold > 0:
                cands.append(self.inactive_since + self.cfg.inactive_threshold)
        else:
            for wr in self.waiting:
                if wr.expires:
                    cands.append(wr.expires)
                if wr.hb:
                    cands.append(wr.hb_at)
            if self.cfg.inactive_threshold > 0:
                cands.append(self.last_activity + self.cfg.inactive_threshold)
        if self._replay_at:
            cands.append(self._replay_at)
        if self._rl_next and self.cfg.rate_limit_bps:
            cands.append(self._rl_next)
        if self.pause_at:
            cands.append(self.pause_at)
        if self.pin_id and self.pin_deadline:
            cands.append(self.pin_deadline)
        return min(cands) if cands else None

    def _check_inactive(self, now: int) -> None:
        thr = self.cfg.inactive_threshold
        if thr <= 0 or self.delete_requested:
            return
        if self.is_push:
            if not self.active and self.inactive_since and now - self.inactive_since >= thr:
                self.delete_requested = True
        elif not self.waiting and now - self.last_activity >= thr:
            self.delete_requested = True

    # ------------------------------------------------------------------ delivery
    def poll(self, now: int, max_msgs: int = 1 << 30) -> int:
        """Run timers and deliver what can be delivered now. Returns messages delivered."""
        if self.closed:
            return 0
        self._check_pending(now)
        self._end_pause(now)
        if self.pin_id and now >= self.pin_deadline:
            self._unpin(self.cfg.priority_groups[0] if self.cfg.priority_groups else "", "timeout")
        # Paused: nothing goes out, but timers still run (heartbeats, pull request expiry,
        # redelivery bookkeeping), as in nats-server's delivery loop.
        paused = bool(self.pause_at)
        n = 0
        cfg = self.cfg
        self._map_stalled = False
        eof = False
        push = self.is_push
        ack_prefix = self._ack_prefix
        outbox = self.outbox
        # Per-poll constants, read once: this loop runs for every delivery.
        ack_none = cfg.ack_policy == "none"
        limits = self.retention == "limits"
        headers_only = cfg.headers_only
        rate = cfg.rate_limit_bps
        max_ack_pending = 0 if ack_none else cfg.max_ack_pending
        pending = self.pending
        heap = self._heap
        load_msg = self.store.load_msg
        dest = cfg.deliver_subject
        # without back-off every delivery of this poll is due at the same time
        backoff = bool(cfg.backoff)
        deadline = now + cfg.ack_wait
        wall_now = now + self.wall_offset
        while n < max_msgs and not paused:
            if push:
                if not self.active or (self.maxpb and self.pbytes > self.maxpb):
                    break
            elif not self.waiting:
                break
            if rate and self._rl_next > now:
                break
            # Fast path: nothing to redeliver and the next sequence exists and matches.
            msg = None
            if not self.rdq and not self.lss and (max_ack_pending <= 0 or len(pending) < max_ack_pending):
                msg = load_msg(self.sseq)
                if msg is not None and self._filters and not self.matches(msg.subject):
                    msg = None
            if msg is not None:
                dc, kind = 1, "new"
            else:
                cand = self._candidate()
                if cand is None:
                    eof = not self._map_stalled
                    break
                msg, dc, kind = cand
            seq, msubj, hdr, payload, mts = msg  # one unpack: the fields are read below
            if self.replay and self.lts is not None:
                delay = mts - self.lts
                if delay > MS:
                    if self._replay_seq != seq:
                        self._replay_seq, self._replay_at = seq, now + delay
                    if now < self._replay_at:
                        break
            dseq = self.dseq
            if not self.npc_valid:
                self.npc = self._count_pending()
                self.npc_valid = True
            pending_after = self.npc
            if kind != "rdq" and pending_after:
                pending_after -= 1
            reply = f"{ack_prefix}{dc}.{seq}.{dseq}.{mts}.{pending_after}"
            if headers_only:
                hdr = _headers_only(hdr, len(payload))
                payload = b""
            if not push:
                size = len(msubj) + len(reply) + len(hdr) + len(payload)
                # overflow's min_pending compares with the matching messages not yet delivered,
                # this one included (nats-server: npc+1 after its decrement for a first delivery)
                wr = self._next_waiting(size, now, self.npc + (0 if dc == 1 else 1))
                if wr is None:
                    break
                dest = wr.reply
                if cfg.priority_policy == "pinned_client":
                    hdr = _with_header(hdr, "Nats-Pin-Id", self.pin_id)
            if kind == "new":
                if self.npc_valid and self.npc > 0:
                    self.npc -= 1
                self.sseq = seq + 1
            else:
                self._commit(msg, dc, kind)
            if self.replay:
                self._replay_seq = self._replay_at = 0
                self.lts = mts
            if rate:
                size = len(msubj) + len(reply) + len(hdr) + len(payload)
                self._rl_next = max(self._rl_next, now) + size * 8 * NS // rate
            self.dseq = dseq + 1
            if ack_none:  # UpdateDelivered sets the floor too
                self.info_ac = dseq
            if seq > self.info_ds:  # UpdateDelivered
                self.info_ds = seq
                if ack_none:
                    self.info_as = seq
            outbox.append(Delivery(dest, reply, hdr or None, payload, msubj))
            if ack_none:
                self.adflr, self.asflr = dseq, seq
                if not limits:
                    self.stream_acks.append(seq)
            elif not backoff:
                p = pending.get(seq)
                if p is None:
                    pending[seq] = Pending(dseq, wall_now, deadline)
                else:
                    p.ts = wall_now
                    p.deadline = deadline
                heapq.heappush(heap, (deadline, seq))
            else:
                self._track(seq, dseq, now)
            if self.maxpb:
                psz = len(dest) + len(reply) + len(hdr) + len(payload)
                self.pbytes += psz
                if not self.fcid and self.pbytes > self.maxpb // 2:
                    self._send_flow_control()
                elif self.fcid and self.pbytes - self.fcsz >= self.maxpb:
                    self.fcsz += psz
            n += 1
        if n:
            self.last_delivered_wall = self.wall(now)
            self.last_activity = now
            if push and cfg.idle_heartbeat:
                self.hb_at = now + cfg.idle_heartbeat
            self.dirty = True
        if self.replay and self.sseq > self.replay_lseq and not self.rdq:
            self.replay = False
            self._replay_at = 0
        if push:
            if self.hb_at and now >= self.hb_at:
                if self.active:
                    self._send_heartbeat(cfg.deliver_subject)
                self.hb_at = now + cfg.idle_heartbeat
        else:
            self._process_waiting(now, eos=eof, stalled=self._map_stalled, paused=paused)
        self._check_inactive(now)
        return n

    def _candidate(self) -> tuple[StoredMsg, int, str] | None:
        """The next message to deliver, without committing to it (peek)."""
        while self.rdq:
            seq = next(iter(self.rdq))
            p = self.pending.get(seq)
            if p is None and not self.ack_none:
                del self.rdq[seq]
                continue
            if p is not None and self._has_max_deliveries(seq, p):
                continue
            msg = self.store.load_msg(seq)
            if msg is None:
                del self.rdq[seq]
                if p is not None:
                    self.pending.pop(seq, None)
                    self.rdc.pop(seq, None)
                    self._move_ack_floor(p.dseq, seq)
                    self.dirty = True
                continue
            return msg, self.rdc.get(seq, 0) + 2, "rdq"
        if not self.ack_none and self.cfg.max_ack_pending > 0 and len(self.pending) >= self.cfg.max_ack_pending:
            self._map_stalled = True
            return None
        while self.lss:
            seq = self.lss[0]
            msg = self.store.load_msg(seq)
            if msg is not None:
                return msg, 1, "lss"
            self._lss_advance()
        # Fast path: the next sequence usually exists and matches.
        msg = self.store.load_msg(self.sseq)
        if msg is not None and (not self._filters or self.matches(msg.subject)):
            return msg, 1, "new"
        msg, upto = self._load_next(self.sseq)
        if msg is None:
            if upto >= self.sseq:
                self.sseq = upto + 1
            return None
        return msg, 1, "new"

    def _lss_advance(self) -> None:
        assert self.lss is not None
        self.lss.popleft()
        if not self.lss:
            self.sseq = max(self.sseq, self.lss_resume + 1)
            self.lss = None
        else:
            self.sseq = self.lss[0]

    def _commit(self, msg: StoredMsg, dc: int, kind: str) -> None:
        if kind != "rdq" and self.npc_valid and self.npc > 0:
            self.npc -= 1
        if kind == "rdq":
            del self.rdq[msg.seq]
            self.rdc[msg.seq] = dc - 1
        elif kind == "lss":
            self.sseq = msg.seq + 1
            self._lss_advance()
        else:
            self.sseq = msg.seq + 1

    def _send_heartbeat(self, subject: str) -> None:
        extra: list[tuple[str, Any]] = [("Nats-Last-Consumer", self.dseq - 1), ("Nats-Last-Stream", self.sseq - 1)]
        if self.fcid:
            extra.append(("Nats-Consumer-Stalled", self.fcid))
        self.outbox.append(Status(subject, "", status_hdr(100, "Idle Heartbeat", extra), b""))

    def _send_flow_control(self) -> None:
        rn = self.rng.getrandbits(62)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        tok = "".join(digits[(rn >> (6 * i)) % 62] for i in range(4))
        self.fcid = f"$JS.FC.{self.stream_name}.{self.name}.{tok}"
        self.fcsz = self.pbytes
        self.outbox.append(Status(self.cfg.deliver_subject, self.fcid, b"NATS/1.0 100 FlowControl Request\r\n\r\n", b""))

    # ------------------------------------------------------------------ config / lifecycle
    def update_config(self, cfg: ConsumerConfig, now: int) -> None:
        old = self.cfg
        self.cfg = cfg
        if cfg.pause_until_ns != old.pause_until_ns:
            self._set_pause(cfg, now)
            self.advisories.append(advisories.consumer_pause(
                self.stream_name, self.name, self.is_paused(now), cfg.pause_until or ZERO_TIME))
        self.set_stream_subjects(self.stream_subjects)
        if cfg.deliver_subject != old.deliver_subject and self.is_push:
            # A new deliver subject gets every pending message again.
            for s, p in self.pending.items():
                p.deadline = now
                heapq.heappush(self._heap, (now, s))
            self.active = self.has_interest(cfg.deliver_subject)
        if cfg.ack_wait != old.ack_wait or cfg.backoff != old.backoff:
            for s, p in self.pending.items():
                p.deadline = min(p.deadline, now + self._wait_for(s))
                heapq.heappush(self._heap, (p.deadline, s))
        self.last_activity = now
        self.dirty = True

    def stop(self, deleted: bool, now: int) -> None:
        """Stop delivering; tell waiting pull requests the consumer is gone."""
        if self.closed:
            return
        self.closed = True
        if deleted:
            for wr in self.waiting:
                self.outbox.append(Status(wr.reply, "", status_hdr(409, "Consumer Deleted"), b""))
        self.waiting.clear()

    def take_ack_replies(self) -> list[str]:
        r = self.ack_replies
        if r:
            self.ack_replies = []
        return r

    def take_outputs(self) -> tuple[list[Delivery | Status], list[advisories.Advisory], list[int]]:
        out, adv, acks = self.outbox, self.advisories, self.stream_acks
        if out:
            self.outbox = []
        if adv:
            self.advisories = []
        if acks:
            self.stream_acks = []
        return out, adv, acks


def _parse_pull(body: bytes) -> tuple[int, int, int, bool, int, Priority | None]:
    """(batch, expires ns, max_bytes, no_wait, heartbeat ns) from a MSG.NEXT body, as
    nats-server's nextReqFromMsg reads it: a JSON object with Go's field types (ValueError with
    the decoder's text otherwise), or a plain number (strconv.Atoi; a batch of 1 if not one)."""
    req = body.strip() if body else b""
    if not req:
        return 1, 0, 0, False, 0, None
    if req[:1] == b"{":
        d = gojson.loads(req)  # GoJSONError is a ValueError
        if not isinstance(d, dict):
            raise ValueError("json: cannot unmarshal into Go value of type JSApiConsumerGetNextRequest")
        s = "JSApiConsumerGetNextRequest"
        expires = gojson.int_field(d, "expires", "time.Duration", s)
        batch = gojson.int_field(d, "batch", "int", s)
        max_bytes = gojson.int_field(d, "max_bytes", "int", s)
        no_wait = gojson.bool_field(d, "no_wait", s)
        hb = gojson.int_field(d, "idle_heartbeat", "time.Duration", s)
        # the embedded PriorityGroup's fields: Go names them without a struct (".min_pending")
        pg = Priority(
            group=gojson.str_field(d, "group", ""),
            min_pending=gojson.int_field(d, "min_pending", "int64", ""),
            min_ack_pending=gojson.int_field(d, "min_ack_pending", "int64", ""),
            id=gojson.str_field(d, "id", ""),
            priority=gojson.int_field(d, "priority", "int", ""),
        )
        if hb > 0 and hb * 2 > expires:
            raise ValueError("heartbeat value too large")
        # a heartbeat that is not positive is none (nats-server only arms one when > 0)
        return batch, expires, max_bytes, no_wait, max(hb, 0), pg
    n = gojson.atoi(req)
    return (n, 0, 0, False, 0, None) if n is not None else (1, 0, 0, False, 0, None)


def _with_header(hdr: bytes, key: str, value: str) -> bytes:
    """hdr with one more header line (nats-server's genHeader), a header block made if none."""
    base = hdr[:-2] if hdr else b"NATS/1.0\r\n"
    return base + f"{key}: {value}\r\n\r\n".encode()


def _headers_only(hdr: bytes, size: int) -> bytes:
    base = hdr[:-2] if hdr else b"NATS/1.0\r\n"
    return base + b"Nats-Msg-Size: " + str(size).encode() + b"\r\n\r\n"


