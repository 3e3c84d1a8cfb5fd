"""The memory backends: a stream store and a consumer store that keep everything in Python objects.

Owns nothing but dicts: seq -> message (insertion order is sequence order) and the per-message
TTLs. Semantics come from the shared core, so it passes the same contract suite as the file
store. Must not touch the disk; commit() completes at once (there is nothing to make durable).
Must not keep an object per message that the garbage collector has to walk (see _Rec).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from pyjetstream.jetstream.store._core import Meta, StoreCore, release_later
from pyjetstream.jetstream.store.base import (
    MAX_SEQ,
    ConsumerState,
    ErrSeqExhausted,
    StateSource,
    StoredMsg,
    resolve_state,
)

# A stored message as the table holds it: a plain tuple (seq, subject, hdr, data, ts), the
# fields of StoredMsg, made a StoredMsg only when read. The garbage collector stops following a
# plain tuple of strings, bytes and ints after the first collection it survives; a StoredMsg (a
# tuple subclass) it walks at every full collection for as long as the message lives, and a
# million of them made each full pass 150-290 ms (docs/design.md, "Garbage-collector pauses").
_Rec = tuple[int, str, bytes, bytes, int]
_tuple_new = tuple.__new__  # StoredMsg from a record without the generated __new__'s argument handling


def _size(r: _Rec) -> int:
    # StoredMsg.size: nats-server's memory-store accounting
    return len(r[1]) + len(r[2]) + len(r[3]) + 16


class MemoryStore(StoreCore):
    def __init__(self, first_seq: int = 1) -> None:
        super().__init__(first_seq)
        self._m: dict[int, _Rec] = {}
        self._ttls: dict[int, int] = {}
        # seq -> previous seq on the same subject, for live messages whose link is known; a
        # subject's next first is then a walk back from its last (see StoreCore._walk_first).
        self._prevs: dict[int, int] = {}

    # ---- primitives ------------------------------------------------------------------------

    def _b_live(self, seq: int) -> bool:
        return seq in self._m

    def _b_get(self, seq: int) -> StoredMsg | None:
        r = self._m.get(seq)
        return None if r is None else _tuple_new(StoredMsg, r)

    def _meta(self, r: _Rec) -> Meta:
        return (r[0], r[1], _size(r), r[4], self._ttls.get(r[0], 0))

    def _b_iter(self, start: int, end: int) -> Iterator[Meta]:
        get = self._m.get
        if end - start > 2 * len(self._m):
            # Sparse range: walking the dict beats probing every sequence number.
            for seq in [s for s in self._m if start <= s <= end]:
                m = get(seq)
                if m is not None:
                    yield self._meta(m)
            return
        for seq in range(start, end + 1):
            m = get(seq)
            if m is not None:
                yield self._meta(m)

    def _b_iter_rev(self, end: int, start: int) -> Iterator[Meta]:
        get = self._m.get
        if end - start > 2 * len(self._m):
            for seq in sorted((s for s in self._m if start <= s <= end), reverse=True):
                m = get(seq)
                if m is not None:
                    yield self._meta(m)
            return
        for seq in range(end, start - 1, -1):
            m = get(seq)
            if m is not None:
                yield self._meta(m)

    def _b_prev_same(self, seq: int) -> int:
        return self._prevs.get(seq, 0)

    def _b_next_live(self, seq: int, end: int) -> int:
        for meta in self._b_iter(seq, end):
            return meta[0]
        return 0

    def _b_prev_live(self, seq: int, start: int) -> int:
        for meta in self._b_iter_rev(seq, start):
            return meta[0]
        return 0

    def _b_count_live(self, start: int, end: int) -> int:
        return sum(1 for _ in self._b_iter(start, end))

    def _b_deleted(self) -> list[int]:
        m = self._m
        return [s for s in range(self._first, self._last + 1) if s not in m]

    # ---- mutators ----------------------------------------------------------------------------

    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int, ttl_ns: int = 0) -> int:
        self._check_open()
        seq = self._last + 1
        if seq > MAX_SEQ:
            raise ErrSeqExhausted(f"stream sequence would pass {MAX_SEQ}")
        r = (seq, subject, hdr or b"", data, ts)
        self._m[seq] = r
        ss = self._subj.get(subject)
        if ss is not None and ss[2] > 0:
            self._prevs[seq] = ss[2]
        if ttl_ns:
            self._ttls[seq] = ttl_ns
        self._acct_add(seq, subject, _size(r), ts, ttl_ns)
        return seq

    def skip_msgs(self, seq: int, num: int) -> None:
        self._skip_check(seq, num)
        self._acct_skip(seq + num - 1)

    def commit(self, on_durable: Callable[[], None]) -> None:
        self._check_open()
        on_durable()

    def write_out(self) -> None:
        """Nothing to hand to the OS."""

    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        self._check_open()
        r = self._m.pop(seq, None)
        if r is None:
            return False
        self._ttls.pop(seq, None)
        self._prevs.pop(seq, None)
        self._acct_remove(seq, r[1], _size(r))
        return True

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        self._check_open()
        floor, seqs = self._purge_plan(subject, seq, keep)
        if floor:
            return self.compact(floor)
        return sum(1 for s in seqs if self.remove_msg(s))

    def compact(self, seq: int) -> int:
        self._check_open()
        old_first = self._first
        n = self._acct_compact(seq)
        if self._msgs == 0:
            self._drop_tables()
        elif n:
            # walk the shorter of the compacted range and the whole table (a sliced purge
            # compacts a stream in many small steps)
            gone = range(old_first, seq) if seq - old_first < len(self._m) else [
                s for s in self._m if old_first <= s < seq]
            for s in [s for s in gone if s in self._m]:
                del self._m[s]
                self._ttls.pop(s, None)
                self._prevs.pop(s, None)
        return n

    def close(self) -> None:
        self._closed = True

    def delete(self) -> None:
        self._drop_tables()
        release_later(self._subj)
        self._subj = {}
        self._closed = True

    def _drop_tables(self) -> None:
        # freed over the next loop passes: a million messages at once would hold the loop
        release_later(self._m, self._ttls, self._prevs)
        self._m, self._ttls, self._prevs = {}, {}, {}


class MemoryConsumerStore:
    """Consumer state held in memory; `commit` is immediate."""

    def __init__(self) -> None:
        self._config: bytes | None = None
        self._state: StateSource = ConsumerState()
        self._closed = False

    def update(self, state: StateSource) -> None:
        # Keep the reference (or the snapshot function): copying per ack would cost more than
        # the ack itself; load() resolves and copies.
        self._state = state

    def update_config(self, config_json: bytes) -> None:
        self._config = bytes(config_json)

    def load(self) -> tuple[bytes | None, ConsumerState]:
        return self._config, copy.deepcopy(resolve_state(self._state))

    def flush(self) -> None:
        pass

    def write_out(self) -> None:
        pass

    def commit(self, on_durable: Callable[[], None]) -> None:
        on_durable()

    def close(self) -> None:
        self._closed = True

    def delete(self) -> None:
        self._closed = True
