"""Backend-independent stream-store logic: accounting, per-subject bookkeeping and queries.

Owns what both backends must agree on: first/last sequence rules, message and byte counts, the
per-subject (count, first, last) table with lazily repaired first/last, filtered loads, purge and
compact semantics (nats-server's PurgeEx/Compact), TTL and max-age expiry. A backend supplies only
a handful of primitives (liveness, reading one message or its metadata, ordered metadata scans)
and the persistence hooks. Must not do IO itself and must not know how a backend stores records.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterator
from typing import Any

from pyjetstream.jetstream.store._match import is_all, is_literal, matcher
from pyjetstream.jetstream.store.base import (
    MAX_SEQ,
    ErrSeqExhausted,
    ErrStoreClosed,
    LostData,
    SimpleState,
    StoredMsg,
    StoreError,
    StreamState,
)

# Above this many distinct subjects, wildcard queries scan records instead of first consulting
# the subject table (iterating a huge table per query would cost more than the scan saves).
_SUBJECT_TABLE_LIMIT = 4096
# How many live messages a wildcard load probes before using the subject table to jump ahead.
_PROBE = 32
# Subjects with at most this many messages find their next message by following per-message
# links back from their last one (KV buckets with history); bigger ones scan forward.
_WALK_LIMIT = 64

# A per-subject entry is (count, first, last). A first/last <= 0 means "stale": the message that
# held it was removed and the true value is > -first (resp. < -last); it is found again only when
# someone asks (as nats-server does, so removals stay O(1)): by walking the backend's links to
# the previous message on the same subject when the subject is small, else by a scan.
# A tuple, replaced on every change, not a list changed in place: the garbage collector stops
# following a tuple of ints after the first collection it survives, but walks a list at every
# full collection for as long as it lives (a million subjects, a KV bucket's keys, cost a
# 170-240 ms pause each time; docs/design.md, "Garbage-collector pauses").
Entry = tuple[int, int, int]

# Entries release_later frees per loop pass (about a millisecond of deallocation).
_RELEASE_CHUNK = 4096


def release_later(*tables: dict[Any, Any]) -> None:
    """Let go of tables the caller has just replaced by empty ones, a chunk per loop pass:
    dropping a million entries at once (a purge or delete of a big stream) is 50-90 ms of
    deallocation in one pass of the event loop. Small tables, and callers outside a running
    loop (recovery, tools), free at once as the caller drops them."""
    big = [t for t in tables if len(t) > _RELEASE_CHUNK]
    if not big:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_soon(_release_step, loop, big)


def _release_step(loop: asyncio.AbstractEventLoop, tables: list[dict[Any, Any]]) -> None:
    budget = _RELEASE_CHUNK
    while tables and budget > 0:
        t = tables[-1]
        n = min(budget, len(t))
        for _ in range(n):
            t.popitem()
        budget -= n
        if not t:
            tables.pop()
    if tables:
        loop.call_soon(_release_step, loop, tables)
Meta = tuple[int, str, int, int, int]  # seq, subject, size, ts, ttl_ns


class StoreCore:
    """Shared state and algorithms. Subclasses implement the `_b_*` primitives."""

    def __init__(self, first_seq: int = 1) -> None:
        if first_seq < 1:
            first_seq = 1
        self._subj: dict[str, Entry] = {}
        self._first = first_seq
        self._last = first_seq - 1
        self._last_ts = 0
        self._msgs = 0
        self._bytes = 0
        self._ttl_heap: list[tuple[int, int]] = []  # (deadline ns, seq); stale entries skipped lazily
        self._lost: LostData | None = None
        self._closed = False
        self._first_ts_cache = (0, 0)  # (seq, ts): state() is asked far more often than first moves

    # ---- cheap accessors (no record reads), for per-publish limit checks ---------------------

    @property
    def num_msgs(self) -> int:
        return self._msgs

    @property
    def num_bytes(self) -> int:
        return self._bytes

    @property
    def first_seq(self) -> int:
        return self._first

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def last_ts(self) -> int:
        return self._last_ts

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        """What storing this message adds to state().bytes (nats-server's memory-store formula;
        the file store overrides it with its record size). Limit checks should use this."""
        return len(subject) + len(hdr or b"") + len(data) + 16

    def subject_msgs(self, subject: str) -> int:
        """Messages stored on one literal subject (max_msgs_per_subject checks)."""
        ss = self._subj.get(subject)
        return ss[0] if ss is not None else 0

    # ---- primitives a backend provides -------------------------------------------------------

    def _b_live(self, seq: int) -> bool:
        raise NotImplementedError

    def _b_get(self, seq: int) -> StoredMsg | None:
        raise NotImplementedError

    def _b_iter(self, start: int, end: int) -> Iterator[Meta]:
        """Live messages with start <= seq <= end, ascending."""
        raise NotImplementedError

    def _b_iter_rev(self, end: int, start: int) -> Iterator[Meta]:
        """Live messages with start <= seq <= end, descending."""
        raise NotImplementedError

    def _b_next_live(self, seq: int, end: int) -> int:
        """Smallest live seq in [seq, end], or 0."""
        raise NotImplementedError

    def _b_prev_live(self, seq: int, start: int) -> int:
        """Largest live seq in [start, seq], or 0."""
        raise NotImplementedError

    def _b_count_live(self, start: int, end: int) -> int:
        raise NotImplementedError

    def _b_deleted(self) -> list[int]:
        """Interior gaps between first and last, ascending."""
        raise NotImplementedError

    def _b_prev_same(self, seq: int) -> int:
        """The previous sequence stored on seq's subject, 0 when none or unknown."""
        return 0

    def _b_find(self, subject: str, start: int, end: int) -> int:
        """Smallest live seq in [start, end] stored on exactly this subject, or 0. Backends may
        override with something cheaper than a metadata scan."""
        for seq, s, _sz, _ts, _ttl in self._b_iter(start, end):
            if s == subject:
                return seq
        return 0

    def _b_find_rev(self, subject: str, end: int, start: int) -> int:
        """Largest live seq in [start, end] stored on exactly this subject, or 0."""
        for seq, s, _sz, _ts, _ttl in self._b_iter_rev(end, start):
            if s == subject:
                return seq
        return 0

    # ---- accounting used by the public mutators and by recovery ------------------------------

    def _acct_add(self, seq: int, subject: str, size: int, ts: int, ttl: int) -> None:
        if self._msgs == 0:
            self._first = seq
        self._msgs += 1
        self._bytes += size
        if seq > self._last:
            self._last = seq
            self._last_ts = ts
        ss = self._subj.get(subject)
        self._subj[subject] = (1, seq, seq) if ss is None else (ss[0] + 1, ss[1], seq)
        if ttl > 0:
            heapq.heappush(self._ttl_heap, (ts + ttl, seq))

    def _acct_remove(self, seq: int, subject: str, size: int) -> None:
        self._msgs -= 1
        self._bytes -= size
        ss = self._subj.get(subject)
        if ss is not None:
            if ss[0] <= 1:
                del self._subj[subject]
            else:
                self._subj[subject] = (ss[0] - 1, -seq if ss[1] == seq else ss[1],
                                       -seq if ss[2] == seq else ss[2])
        if self._msgs == 0:
            self._first = self._last + 1
            self._ttl_heap.clear()
        elif seq == self._first:
            self._first = self._b_next_live(seq + 1, self._last) or self._last + 1

    def _acct_compact(self, floor: int) -> int:
        """Forget every message below floor (state only); returns how many were live."""
        if floor > self._last + 1:
            self._last = floor - 1
        if floor <= self._first:
            if self._msgs == 0:
                self._first = max(self._first, floor)
            return 0
        removed = 0
        if self._msgs == 0 or floor > self._last:
            removed = self._msgs
            release_later(self._subj)
            self._subj = {}
            self._ttl_heap.clear()
            self._msgs = 0
            self._bytes = 0
            self._first = self._last + 1
            return removed
        gone = list(self._b_iter(self._first, floor - 1))
        subj = self._subj
        for seq, subject, size, _ts, _ttl in gone:
            self._msgs -= 1
            self._bytes -= size
            ss = subj.get(subject)
            if ss is not None:
                if ss[0] <= 1:
                    del subj[subject]
                else:
                    subj[subject] = (ss[0] - 1, -(floor - 1) if ss[1] == seq or ss[1] <= 0 else ss[1],
                                     -seq if ss[2] == seq else ss[2])
        removed = len(gone)
        if self._msgs == 0:
            self._first = self._last + 1
        else:
            self._first = self._b_next_live(floor, self._last) or self._last + 1
        return removed

    def _subject_info(self, subject: str) -> Entry | None:
        """The per-subject entry with first/last repaired (scanning only when stale)."""
        ss = self._subj.get(subject)
        if ss is None or (ss[1] > 0 and ss[2] > 0):
            return ss
        count, first, last = ss
        if count == 1 and (first > 0 or last > 0):
            one = first if first > 0 else last
            ss = self._subj[subject] = (1, one, one)
            return ss
        if last <= 0:
            # The last was removed: its predecessor on the subject is the first candidate.
            hi = min(-last - 1, self._last)
            lo = max(first, self._first)
            found = 0
            s = self._b_prev_same(-last)
            while s and s >= lo:
                if self._b_live(s):
                    found = s
                    break
                s = self._b_prev_same(s)
            last = found or self._b_find_rev(subject, hi, lo)
        if first <= 0:
            lo = max(-first + 1, self._first)
            found = self._walk_first(count, last, lo)
            if found < 0:
                found = self._b_find(subject, lo, last if last > 0 else self._last)
            if found:
                first = found
        ss = self._subj[subject] = (count, first, last)
        return ss

    def _walk_first(self, count: int, last: int, start: int) -> int:
        """Smallest live seq >= start on the subject of entry ss, by walking back from its last
        along the previous-on-subject links; -1 when the links cannot answer (then scan).
        Used only for subjects with few messages, where the walk is a handful of steps."""
        if count > _WALK_LIMIT or last <= 0:
            return -1
        best = 0
        seen = 0
        s = last
        while s >= start:
            if self._b_live(s):
                best = s
                seen += 1
            p = self._b_prev_same(s)
            if not p:
                # The chain ends here: complete only if it visited every live message.
                return best if seen == count else -1
            s = p
        return best

    def _check_open(self) -> None:
        if self._closed:
            raise ErrStoreClosed("store is closed")

    def _skip_check(self, seq: int, num: int) -> None:
        self._check_open()
        if seq != self._last + 1:
            raise StoreError(f"skip sequence mismatch: expected {self._last + 1}, got {seq}")
        if num < 1:
            raise StoreError("skip count must be positive")
        if seq + num - 1 > MAX_SEQ:
            raise ErrSeqExhausted(f"stream sequence would pass {MAX_SEQ}")

    def _acct_skip(self, new_last: int) -> None:
        if new_last > self._last:
            self._last = new_last
            if self._msgs == 0:
                self._first = new_last + 1

    # ---- queries -----------------------------------------------------------------------------

    def load_msg(self, seq: int) -> StoredMsg | None:
        # once per delivery: the closed check inline rather than a call to _check_open
        if self._closed:
            raise ErrStoreClosed("store is closed")
        if seq < self._first or seq > self._last:
            return None
        return self._b_get(seq)

    def load_next_msg(self, filter_subject: str, start: int) -> StoredMsg | None:
        if self._closed:
            raise ErrStoreClosed("store is closed")
        if start < self._first:
            start = self._first
        if filter_subject == "" or filter_subject == ">":
            # The unfiltered consumer's path: no matching, no retries needed beyond a dropped record.
            while start <= self._last:
                seq = self._b_next_live(start, self._last)
                if not seq:
                    return None
                m = self._b_get(seq)
                if m is not None:
                    return m
                start = seq + 1
            return None
        if not is_literal(filter_subject) and start <= self._last:
            # A wildcard consumer reading forward mostly hits a match at once: try the next live
            # message before any scan, and hand it out if it matches.
            seq = self._b_next_live(start, self._last)
            if not seq:
                return None
            m = self._b_get(seq)
            if m is not None and matcher(filter_subject)(m.subject):
                return m
            start = seq + 1
        while True:
            seq = self._next_match(filter_subject, start)
            if not seq:
                return None
            m = self._b_get(seq)
            if m is not None:
                return m
            # The record failed its checksum and was just dropped; look further.
            start = seq + 1

    def _next_match(self, filter_subject: str, start: int) -> int:
        if start < self._first:
            start = self._first
        last = self._last
        if self._msgs == 0 or start > last:
            return 0
        if is_all(filter_subject):
            return self._b_next_live(start, last)
        if is_literal(filter_subject):
            ss = self._subject_info(filter_subject)
            if ss is None or ss[2] < start:
                return 0
            if ss[1] >= start:
                return ss[1]
            found = self._walk_first(ss[0], ss[2], start)
            return found if found >= 0 else self._b_find(filter_subject, start, ss[2])
        match = matcher(filter_subject)
        # Consumers mostly read forward through messages that match; a short probe finds those
        # without touching the subject table.
        probed = 0
        hi = last
        for seq, s, _sz, _ts, _ttl in self._b_iter(start, last):
            if match(s):
                return seq
            probed += 1
            if probed >= _PROBE:
                start = seq + 1
                break
        else:
            return 0
        names: set[str] | None = None
        if len(self._subj) <= _SUBJECT_TABLE_LIMIT:
            names = set()
            best = 0
            hi = 0
            for name in list(self._subj):
                if not match(name):
                    continue
                ss = self._subject_info(name)
                if ss is None or ss[2] < start:
                    continue
                hi = max(hi, ss[2])
                if ss[1] >= start:
                    best = ss[1] if best == 0 else min(best, ss[1])
                else:
                    names.add(name)
            if not names:
                return best
            if best:
                hi = best
        for seq, s, _sz, _ts, _ttl in self._b_iter(start, hi):
            if (s in names) if names is not None else match(s):
                return seq
        return 0

    def load_last_msg(self, filter_subject: str) -> StoredMsg | None:
        self._check_open()
        if self._msgs == 0:
            return None
        if is_all(filter_subject):
            seq = self._b_prev_live(self._last, self._first)
            return self._b_get(seq) if seq else None
        if is_literal(filter_subject):
            ss = self._subject_info(filter_subject)
            return self._b_get(ss[2]) if ss else None
        match = matcher(filter_subject)
        if len(self._subj) <= _SUBJECT_TABLE_LIMIT:
            best = 0
            for name in list(self._subj):
                if match(name):
                    ss = self._subject_info(name)
                    if ss is not None and ss[2] > best:
                        best = ss[2]
            return self._b_get(best) if best else None
        for seq, s, _sz, _ts, _ttl in self._b_iter_rev(self._last, self._first):
            if match(s):
                return self._b_get(seq)
        return None

    def load_prev_msg(self, seq: int) -> StoredMsg | None:
        """The message at seq, or the closest one below it."""
        self._check_open()
        if self._msgs == 0 or seq < self._first:
            return None
        s = self._b_prev_live(min(seq, self._last), self._first)
        return self._b_get(s) if s else None

    def state(self, deleted: bool = False) -> StreamState:
        self._check_open()
        st = StreamState(
            msgs=self._msgs,
            bytes=self._bytes,
            first_seq=self._first,
            last_seq=self._last,
            last_ts=self._last_ts,
            num_subjects=len(self._subj),
        )
        if self._msgs:
            if self._first_ts_cache[0] != self._first:
                m = self._b_get(self._first)
                self._first_ts_cache = (self._first, m.ts if m is not None else 0)
            st.first_ts = self._first_ts_cache[1]
            st.num_deleted = self._last - self._first + 1 - self._msgs
        if deleted and st.num_deleted:
            st.deleted = self._b_deleted()
        if self._lost is not None:
            st.lost = LostData(list(self._lost.msgs), self._lost.bytes)
        return st

    def subjects_state(self, filter_subject: str) -> dict[str, SimpleState]:
        self._check_open()
        if not is_all(filter_subject) and is_literal(filter_subject):
            ss = self._subject_info(filter_subject)  # the per-publish limit checks land here
            return {filter_subject: SimpleState(ss[0], ss[1], ss[2])} if ss is not None else {}
        match = matcher(filter_subject)
        out: dict[str, SimpleState] = {}
        for name in list(self._subj):
            if match(name):
                ss = self._subject_info(name)
                if ss is not None:
                    out[name] = SimpleState(ss[0], ss[1], ss[2])
        return out

    def filtered_state(self, start: int, filter_subject: str) -> SimpleState:
        self._check_open()
        if start < self._first:
            start = self._first
        last = self._last
        if self._msgs == 0 or start > last:
            return SimpleState(0, 0, 0)
        if is_all(filter_subject):
            lo = self._b_next_live(start, last)
            if not lo:
                return SimpleState(0, 0, 0)
            hi = self._b_prev_live(last, lo)
            n = self._msgs if start <= self._first else self._b_count_live(lo, hi)
            return SimpleState(n, lo, hi)
        if is_literal(filter_subject):
            ss = self._subject_info(filter_subject)
            if ss is None or ss[2] < start:
                return SimpleState(0, 0, 0)
            if ss[1] >= start:
                return SimpleState(ss[0], ss[1], ss[2])
            return self._scan_state(start, ss[2], filter_subject.__eq__)
        match = matcher(filter_subject)
        if len(self._subj) > _SUBJECT_TABLE_LIMIT:
            return self._scan_state(start, last, match)
        n = first = lastm = 0
        partial: set[str] = set()
        hi = 0
        for name in list(self._subj):
            if not match(name):
                continue
            ss = self._subject_info(name)
            if ss is None or ss[2] < start:
                continue
            if ss[1] >= start:
                n += ss[0]
                first = ss[1] if first == 0 else min(first, ss[1])
                lastm = max(lastm, ss[2])
            else:
                partial.add(name)
                hi = max(hi, ss[2])
        if partial:
            part = self._scan_state(start, hi, partial.__contains__)
            n += part.msgs
            if part.msgs:
                first = part.first if first == 0 else min(first, part.first)
                lastm = max(lastm, part.last)
        return SimpleState(n, first, lastm)

    def _scan_state(self, start: int, end: int, pred: Callable[[str], bool]) -> SimpleState:
        n = first = lastm = 0
        for seq, s, _sz, _ts, _ttl in self._b_iter(start, end):
            if pred(s):
                n += 1
                if first == 0:
                    first = seq
                lastm = seq
        return SimpleState(n, first, lastm)

    def expired(self, now: int, max_age_ns: int = 0, limit: int = 0) -> list[int]:
        """Sequences to expire at `now` (unix ns), ascending.

        A message with a per-message TTL (ttl_ns > 0) expires at ts + ttl and ignores max_age; a
        TTL of -1 ("never") exempts it from max_age. Others expire once ts <= now - max_age_ns.
        The caller is expected to remove what is returned: due TTL entries are consumed.
        limit > 0: at most that many, so that a caller can remove a big backlog in bounded steps
        (a lowered max_age may make a whole stream due at once); later calls return the rest.
        """
        self._check_open()
        return self._expired(now - max_age_ns if max_age_ns > 0 else None, now, limit or MAX_SEQ)

    def _expired(self, cutoff: int | None, now: int, limit: int) -> list[int]:
        out: list[int] = []
        heap = self._ttl_heap
        while heap and heap[0][0] <= now and len(out) < limit:
            _d, seq = heapq.heappop(heap)
            if seq >= self._first and self._b_live(seq):
                out.append(seq)
        if cutoff is not None and self._msgs and len(out) < limit:
            seen = set(out)
            # Timestamps grow with sequences (mostly), so stop at the first young message.
            for seq, _s, _sz, ts, ttl in self._b_iter(self._first, self._last):
                if ts > cutoff:
                    break
                if ttl == 0 and seq not in seen:
                    out.append(seq)
                    if len(out) >= limit:
                        break
            out.sort()
        return out

    def next_ttl_deadline(self) -> int:
        """Earliest per-message TTL deadline (unix ns) among stored messages, 0 when none; lets
        the stream arm its expiry timer after a restart without knowing the TTLs itself."""
        self._check_open()
        heap = self._ttl_heap
        while heap and not (heap[0][1] >= self._first and self._b_live(heap[0][1])):
            heapq.heappop(heap)
        return heap[0][0] if heap else 0

    # ---- bounded pieces of long queries (jetstream/fair.py cuts long requests into slices) ----

    def scans_records(self, filter_subject: str) -> bool:
        """True when a query with this filter reads records rather than the subject table (a
        wildcard over more subjects than the table path serves): its cost grows with the stream."""
        return (not is_all(filter_subject) and not is_literal(filter_subject)
                and len(self._subj) > _SUBJECT_TABLE_LIMIT)

    def next_match_in(self, filter_subject: str, start: int, end: int) -> int:
        """Smallest live seq in [start, end] whose subject matches, 0 when none."""
        self._check_open()
        match = matcher(filter_subject)
        for seq, s, _sz, _ts, _ttl in self._b_iter(max(start, self._first), min(end, self._last)):
            if match(s):
                return seq
        return 0

    def prev_match_in(self, filter_subject: str, end: int, start: int) -> int:
        """Largest live seq in [start, end] whose subject matches, 0 when none."""
        self._check_open()
        match = matcher(filter_subject)
        for seq, s, _sz, _ts, _ttl in self._b_iter_rev(min(end, self._last), max(start, self._first)):
            if match(s):
                return seq
        return 0

    def matches_in(self, filter_subject: str, start: int, end: int, limit: int) -> list[int]:
        """Up to `limit` live seqs in [start, end] whose subject matches, ascending."""
        self._check_open()
        match = matcher(filter_subject)
        out: list[int] = []
        for seq, s, _sz, _ts, _ttl in self._b_iter(max(start, self._first), min(end, self._last)):
            if match(s):
                out.append(seq)
                if len(out) >= limit:
                    break
        return out

    def subjects_in(self, start: int, end: int) -> list[tuple[int, str]]:
        """(seq, subject) of every live message in [start, end], ascending."""
        self._check_open()
        return [(seq, s) for seq, s, _sz, _ts, _ttl in self._b_iter(max(start, self._first), min(end, self._last))]

    def header_candidates(self, start: int, end: int) -> list[int]:
        """Live messages in [start, end] with headers. This generic form loads each message;
        a store that can tell from a record's header alone overrides it."""
        self._check_open()
        out: list[int] = []
        seq = max(start, self._first)
        end = min(end, self._last)
        while seq <= end:
            seq = self._b_next_live(seq, end)
            if not seq:
                break
            m = self._b_get(seq)
            if m is not None and m.hdr:
                out.append(seq)
            seq += 1
        return out

    def state_in(self, filter_subject: str, start: int, end: int) -> SimpleState:
        """filtered_state restricted to [start, end], by reading records."""
        self._check_open()
        return self._scan_state(max(start, self._first), min(end, self._last), matcher(filter_subject))

    def subject_names(self) -> list[str]:
        """Every stored subject, as of now (a copy: the table changes under a sliced reader)."""
        return list(self._subj)

    def subject_state(self, subject: str) -> SimpleState | None:
        """One literal subject's (count, first, last), None when it has no message."""
        self._check_open()
        ss = self._subject_info(subject)
        return SimpleState(ss[0], ss[1], ss[2]) if ss is not None else None

    # ---- purge helpers -----------------------------------------------------------------------

    def _purge_plan(self, subject: str, seq: int, keep: int) -> tuple[int, list[int]]:
        """(compact floor or 0, explicit seqs to remove) for nats-server PurgeEx semantics."""
        if is_all(subject):
            if keep > 0:
                if keep >= self._msgs:
                    return 0, []
                kept = 0
                floor = 0
                for s, _n, _sz, _ts, _ttl in self._b_iter_rev(self._last, self._first):
                    kept += 1
                    if kept == keep:
                        floor = s
                        break
                if seq > 0:
                    floor = min(floor, seq)
                return floor, []
            if seq > 0:
                return seq, []
            return self._last + 1, []
        fs = self.filtered_state(self._first, subject)
        todo = fs.msgs - keep if keep > 0 else fs.msgs
        if todo <= 0:
            return 0, []
        hi = fs.last if seq <= 0 else min(fs.last, seq - 1)
        match = matcher(subject)
        seqs: list[int] = []
        for s, name, _sz, _ts, _ttl in self._b_iter(fs.first, hi):
            if match(name):
                seqs.append(s)
                if len(seqs) >= todo:
                    break
        return 0, seqs
