"""Test doubles for the consumer state machine: a small in-memory StreamStore and a fake clock.

The store implements only what a consumer reads (the StreamStore read side) plus store/remove/
purge for scenarios; it is deliberately simple (a dict) so its answers are obviously right.
"""

from __future__ import annotations

from pyjetstream.jetstream.store.base import SimpleState, StoredMsg, StreamState
from pyjetstream.subjects import subject_matches as _subject_matches

NS = 1_000_000_000


def subject_matches(filter_subject: str, subject: str) -> bool:
    """The stores' reading of a filter: "" (no filter) and ">" take every subject."""
    return filter_subject in ("", ">") or _subject_matches(filter_subject, subject)


class FakeClock:
    def __init__(self, start: int = 1_000 * NS) -> None:
        self.now = start

    def advance(self, seconds: float) -> int:
        self.now += int(seconds * NS)
        return self.now


class MemStore:
    def __init__(self) -> None:
        self.msgs: dict[int, StoredMsg] = {}
        self.first = 1
        self.last = 0

    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int, ttl_ns: int = 0) -> int:
        self.last += 1
        self.msgs[self.last] = StoredMsg(self.last, subject, hdr, data, ts)
        return self.last

    def load_msg(self, seq: int) -> StoredMsg | None:
        return self.msgs.get(seq)

    def load_next_msg(self, filter_subject: str, start: int) -> StoredMsg | None:
        for seq in range(max(start, self.first), self.last + 1):
            m = self.msgs.get(seq)
            if m is not None and subject_matches(filter_subject, m.subject):
                return m
        return None

    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        ok = self.msgs.pop(seq, None) is not None
        self._fix_first()
        return ok

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        gone = [s for s, m in self.msgs.items() if subject_matches(subject, m.subject)]
        for s in gone:
            del self.msgs[s]
        if not subject:
            self.first = self.last + 1
        self._fix_first()
        return len(gone)

    def _fix_first(self) -> None:
        self.first = min(self.msgs) if self.msgs else self.last + 1

    @property
    def last_seq(self) -> int:
        return self.last

    def state(self, deleted: bool = False) -> StreamState:
        if not self.msgs:
            return StreamState(first_seq=self.last + 1 if self.last else 0, last_seq=self.last)
        return StreamState(msgs=len(self.msgs), first_seq=self.first, last_seq=self.last,
                           first_ts=self.msgs[self.first].ts, last_ts=self.msgs[max(self.msgs)].ts)

    def filtered_state(self, start: int, filter_subject: str) -> SimpleState:
        seqs = [s for s, m in self.msgs.items() if s >= start and subject_matches(filter_subject, m.subject)]
        if not seqs:
            return SimpleState(0, 0, 0)
        return SimpleState(len(seqs), min(seqs), max(seqs))

    def subjects_state(self, filter_subject: str) -> dict[str, SimpleState]:
        out: dict[str, list[int]] = {}
        for s, m in sorted(self.msgs.items()):
            if subject_matches(filter_subject, m.subject):
                out.setdefault(m.subject, []).append(s)
        return {k: SimpleState(len(v), v[0], v[-1]) for k, v in out.items()}
