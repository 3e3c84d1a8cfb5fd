"""Message schedules (nats-server 2.12 `allow_msg_schedules`): `Nats-Schedule: @at <RFC 3339>`.

Owns the publish-time checks of the schedule headers (`Nats-Schedule`, `Nats-Schedule-TTL`,
`Nats-Schedule-Target`, `Nats-Schedule-Next`), the table of live schedules of one stream
(subject -> sequence and due time; a schedule is the last message on its subject) and the
timer that, when a schedule falls due, stores its payload on the target subject with
`Nats-Scheduler` and `Nats-Schedule-Next: purge`, which purges the schedule itself.

2.12 knows only the one-shot `@at` form; cron patterns, `@every`, time zones, sources and
rollups of schedules came in later releases and are refused here as an invalid pattern, as 2.12
refuses them. Time comes from the stream's clock; the timer from the loop (injectable). It keeps
no state on disk: after a restart the table is rebuilt from the stored messages (the last message
of each subject). It must not store anything itself except through the stream's ingest path.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any, Protocol

from pyjetstream.gotime import parse_rfc3339
from pyjetstream.jetstream import errors
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.pubheaders import HDR_ROLLUP, add_header, parse_headers, parse_msg_ttl
from pyjetstream.jetstream.schemas import StreamConfig
from pyjetstream.jetstream.store.base import StreamStore
from pyjetstream.subjects import is_valid_literal_subject, subjects_overlap


class ConfiguredStream(Protocol):
    """What the publish-time checks read of a stream."""

    @property
    def config(self) -> StreamConfig: ...


class ScheduleStream(ConfiguredStream, Protocol):
    """What the schedules need of their stream (stream.Stream); a protocol, so that this module
    does not import stream.py, which imports it."""

    @property
    def store(self) -> StreamStore: ...

    @property
    def closed(self) -> bool: ...

    def clock(self) -> int: ...

    def store_scheduled(self, subject: str, hdr: bytes, payload: bytes) -> bool: ...

HDR_SCHEDULE = "Nats-Schedule"
HDR_SCHEDULE_TTL = "Nats-Schedule-TTL"
HDR_SCHEDULE_TARGET = "Nats-Schedule-Target"
HDR_SCHEDULER = "Nats-Scheduler"
HDR_SCHEDULE_NEXT = "Nats-Schedule-Next"
NEXT_PURGE = "purge"

# nats-server does not fire more often than this, so a burst of schedules cannot starve ingest
MIN_FIRE_DELAY_S = 0.25
# schedules fired in one turn of the loop; more that are due wait for the next turn
MAX_FIRE_PER_RUN = 1000

CallLater = Callable[[float, Callable[[], None]], Any]


def schedule_time(value: str) -> int | None:
    """The due time (Unix ns) of a `Nats-Schedule` value; None when the pattern is invalid."""
    if not value.startswith("@at "):
        return None
    try:
        return parse_rfc3339(value[4:])
    except ValueError:
        return None


def check_publish(stream: ConfiguredStream, subject: str, h: dict[str, str], hdr: bytes) -> bytes:
    """nats-server 2.12's checks of a published message's schedule headers; returns the header
    block to store (a schedule without a roll-up gets `Nats-Rollup: sub`). Raises the ApiError."""
    cfg = stream.config
    value = h.get(HDR_SCHEDULE, "")
    if value:
        due = schedule_time(value)
        if not cfg.allow_msg_schedules:
            raise errors.by_constant("JSMessageSchedulesDisabledErr")
        if due is None:
            raise errors.by_constant("JSMessageSchedulesPatternInvalidErr")
        ttl = h.get(HDR_SCHEDULE_TTL, "")
        if ttl:
            try:
                parse_msg_ttl(ttl)
            except ApiError:
                raise errors.by_constant("JSMessageSchedulesTTLInvalidErr") from None
            if not cfg.allow_msg_ttl:
                raise errors.message_ttl_disabled()
        target = h.get(HDR_SCHEDULE_TARGET, "")
        if not target or not is_valid_literal_subject(target) or subjects_overlap(target, subject):
            raise errors.by_constant("JSMessageSchedulesTargetInvalidErr")
        if not any(subjects_overlap(s, target) for s in cfg.subjects):
            raise errors.by_constant("JSMessageSchedulesTargetInvalidErr")
        rollup = h.get(HDR_ROLLUP, "")
        if not rollup:
            hdr = add_header(hdr, HDR_ROLLUP.encode(), b"sub")
            h[HDR_ROLLUP] = "sub"
        elif rollup != "sub":
            raise errors.by_constant("JSMessageSchedulesRollupInvalidErr")
    if h.get(HDR_SCHEDULE_NEXT) == NEXT_PURGE and not cfg.allow_msg_schedules:
        raise errors.by_constant("JSMessageSchedulesDisabledErr")
    return hdr


def _strip(hdr: bytes) -> bytes:
    """The schedule's headers minus those that describe the schedule or its publish."""
    lines = hdr.split(b"\r\n")
    kept = [lines[0]]
    for ln in lines[1:]:
        if not ln:
            continue
        key = ln.partition(b":")[0]
        if key == b"Nats-Schedule" or key.startswith((b"Nats-Schedule-", b"Nats-Expected-")) or key in (
                b"Nats-Msg-Id", b"Nats-TTL", b"Nats-Rollup"):
            continue
        kept.append(ln)
    return b"\r\n".join(kept) + b"\r\n\r\n"


class MsgSchedules:
    """The live schedules of one stream and the timer that fires them."""

    def __init__(self, stream: ScheduleStream, call_later: CallLater | None = None) -> None:
        self.stream = stream
        self._call_later = call_later
        self.entries: dict[str, tuple[int, int]] = {}  # schedule subject -> (seq, due ns)
        # (due ns, seq, subject), earliest first; entries replaced or ended stay here until
        # they reach the top and are found stale (cheaper than removing them)
        self._heap: list[tuple[int, int, str]] = []
        self._timer: Any = None
        self._deadline = 0
        self._running = False

    def on_stored(self, seq: int, subject: str, hdr: bytes) -> None:
        """Track a stored message: a schedule replaces its subject's, any other message
        (except a fired one, which names its scheduler) ends it."""
        if hdr and b"Nats-Schedule:" in hdr:
            due = schedule_time(parse_headers(hdr).get(HDR_SCHEDULE, ""))
            if due is not None:
                self.entries[subject] = (seq, due)
                heapq.heappush(self._heap, (due, seq, subject))
                self._arm()
                return
        if subject in self.entries and not (hdr and b"Nats-Scheduler:" in hdr):
            del self.entries[subject]

    def rebuild(self) -> int:
        """After recovery: each subject's last message is a schedule or not. Returns the count."""
        store = self.stream.store
        self.entries.clear()
        self._heap.clear()
        for subject in store.subjects_state(">"):
            m = store.load_last_msg(subject)
            if m is not None:
                self.on_stored(m.seq, m.subject, m.hdr)
        self._arm()
        return len(self.entries)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = 0

    def _next_due(self) -> int | None:
        heap = self._heap
        while heap:
            due, seq, subj = heap[0]
            if self.entries.get(subj) == (seq, due):
                return due
            heapq.heappop(heap)  # replaced, ended or fired
        return None

    def _arm(self, min_delay: float = MIN_FIRE_DELAY_S) -> None:
        if self._running:
            return
        nxt = self._next_due()
        if nxt is None:
            self.stop()
            return
        now = self.stream.clock()
        delay = max(min_delay, (nxt - now) / 1e9)
        deadline = now + int(delay * 1e9)
        # a timer already due earlier stays: re-arming later on every publish could starve it
        if self._timer is not None and self._deadline and deadline > self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._timer = call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self.run()

    def run(self) -> int:
        """Fire every schedule that is due; returns how many messages were stored."""
        s = self.stream
        if self._timer is not None:
            self._timer.cancel()  # a no-op when it is the timer that called
        self._timer, self._deadline = None, 0
        if s.closed:
            return 0
        now = s.clock()
        due: list[tuple[int, str]] = []
        while len(due) < MAX_FIRE_PER_RUN:
            at = self._next_due()
            if at is None or at > now:
                break
            _, seq, subj = heapq.heappop(self._heap)
            due.append((seq, subj))
        due.sort()  # in the order the schedules were stored, as nats-server fires them
        fired = 0
        self._running = True
        try:
            for seq, subj in due:
                del self.entries[subj]
                m = s.store.load_msg(seq)
                if m is None:
                    continue
                h = parse_headers(m.hdr)
                target = h.get(HDR_SCHEDULE_TARGET, "")
                if not target:
                    continue
                hdr = _strip(m.hdr)
                hdr = add_header(hdr, HDR_SCHEDULER.encode(), subj.encode())
                hdr = add_header(hdr, HDR_SCHEDULE_NEXT.encode(), NEXT_PURGE.encode())
                ttl = h.get(HDR_SCHEDULE_TTL, "")
                if ttl:
                    hdr = add_header(hdr, b"Nats-TTL", ttl.encode())
                if s.store_scheduled(target, hdr, m.data):
                    fired += 1
        finally:
            self._running = False
        more = self._next_due()
        # a capped turn continues on the next loop turn, not after the usual minimum delay
        self._arm(0.0 if more is not None and more <= now else MIN_FIRE_DELAY_S)
        return fired
