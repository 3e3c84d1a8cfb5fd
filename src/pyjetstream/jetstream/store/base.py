"""The storage seam: what a stream and its consumers may ask of a message store.

Owns the interfaces (StreamStore, ConsumerStore), the value types they exchange and the named
store errors. Knows nothing of streams, subjects' meaning, the API or the network; a store
reports upward only through the callbacks registered on it. Both backends (memory, file) pass
the same contract suite in tests/contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

# The largest stream sequence a store hands out. nats-server's sequences are uint64, but ours
# stay within int64: the file store's records hold them in signed fields, and clients in
# languages without unsigned 64-bit integers can still read every one. A store refuses to go
# past it (ErrSeqExhausted) rather than wrap.
MAX_SEQ = 2**63 - 1


class StoreError(Exception):
    """Base of the named store errors."""


class ErrStoreClosed(StoreError):
    pass


class ErrStoreMsgNotFound(StoreError):
    pass


class ErrStoreEOF(StoreError):
    pass


class ErrSeqExhausted(StoreError):
    """The next sequence would pass MAX_SEQ."""


class StoredMsg(NamedTuple):
    """One stored message. A named tuple: immutable, and the file store builds one per read
    in less than half the time a frozen slotted dataclass takes (about 140 ns against 420)."""

    seq: int
    subject: str
    hdr: bytes  # raw NATS/1.0 header block, b"" when the message had none
    data: bytes
    ts: int  # unix nanoseconds, as given to store_msg

    @property
    def size(self) -> int:
        # nats-server's accounting: subject + headers + payload + 16 bytes of record overhead
        return len(self.subject) + len(self.hdr) + len(self.data) + 16


_tuple_new = tuple.__new__


def new_msg(seq: int, subject: str, hdr: bytes, data: bytes, ts: int) -> StoredMsg:
    """Build a StoredMsg without the generated __new__'s argument handling: the stores build
    one per delivered message."""
    return _tuple_new(StoredMsg, (seq, subject, hdr, data, ts))


@dataclass(slots=True)
class LostData:
    msgs: list[int] = field(default_factory=list)
    bytes: int = 0


@dataclass(slots=True)
class StreamState:
    msgs: int = 0
    bytes: int = 0
    first_seq: int = 0
    first_ts: int = 0  # unix ns, 0 when empty
    last_seq: int = 0
    last_ts: int = 0
    num_deleted: int = 0
    deleted: list[int] | None = None  # filled only when asked for (state(deleted=True))
    num_subjects: int = 0
    lost: LostData | None = None
    consumer_count: int = 0  # filled in by the stream, not the store


class SimpleState(NamedTuple):
    """Per-subject (or per-filter) summary. A named tuple of ints: the garbage collector stops
    tracking it, and a subject listing makes one per subject (tens of thousands at once)."""

    msgs: int
    first: int
    last: int


class StreamStore(Protocol):
    """A sequence-numbered message log with per-subject bookkeeping.

    Sequences start at 1 (or the configured first_seq) and only grow; a removed message
    leaves a gap (an interior delete) or advances first_seq. Limits are enforced by the
    stream, which calls remove/purge/compact; the store only records.
    """

    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int, ttl_ns: int = 0) -> int:
        """Append a message and return its sequence. It is visible to readers at once and
        becomes durable at the next commit()."""
        ...

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        """The bytes one message counts for in state().bytes (and against byte limits)."""
        ...

    def skip_msgs(self, seq: int, num: int) -> None:
        """Advance last_seq by num without storing messages (first_seq, purge with seq)."""
        ...

    def commit(self, on_durable: Callable[[], None]) -> None:
        """Flush everything stored so far; call on_durable (on the event-loop thread) once it is
        as durable as the sync policy promises. Each call starts a flush at once: callers gather
        their changes first (the stream makes one call per loop pass for all of its publishes)."""
        ...

    def write_out(self) -> None:
        """Hand what was stored or removed to the OS without syncing (survives a process
        crash, not a power loss); the next commit() makes it durable."""
        ...

    def load_msg(self, seq: int) -> StoredMsg | None: ...

    def load_next_msg(self, filter_subject: str, start: int) -> StoredMsg | None:
        """First message with seq >= start whose subject matches filter_subject ('' or '>' = any)."""
        ...

    def load_last_msg(self, filter_subject: str) -> StoredMsg | None: ...

    def load_prev_msg(self, seq: int) -> StoredMsg | None: ...

    def remove_msg(self, seq: int, erase: bool = False) -> bool: ...

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        """nats-server PurgeEx semantics; returns the number of messages removed."""
        ...

    def compact(self, seq: int) -> int:
        """Remove every message below seq; returns how many were removed."""
        ...

    def state(self, deleted: bool = False) -> StreamState: ...

    # Cheap counters (no record reads, unlike state(), which reads the first record for its
    # timestamp): what the per-message paths check limits and positions with.
    @property
    def num_msgs(self) -> int: ...

    @property
    def num_bytes(self) -> int: ...

    @property
    def first_seq(self) -> int: ...

    @property
    def last_seq(self) -> int: ...

    def subject_msgs(self, subject: str) -> int:
        """Messages stored on one literal subject."""
        ...

    def subjects_state(self, filter_subject: str) -> dict[str, SimpleState]: ...

    # Bounded pieces of the queries above, for callers that cut long work into slices
    # (jetstream/fair.py): each covers a window of sequences or one subject.
    def scans_records(self, filter_subject: str) -> bool: ...

    def next_match_in(self, filter_subject: str, start: int, end: int) -> int: ...

    def prev_match_in(self, filter_subject: str, end: int, start: int) -> int: ...

    def matches_in(self, filter_subject: str, start: int, end: int, limit: int) -> list[int]: ...

    def subjects_in(self, start: int, end: int) -> list[tuple[int, str]]: ...

    def header_candidates(self, start: int, end: int) -> list[int]:
        """Live messages in [start, end] that may carry headers (a superset is allowed):
        a restart rebuilds the duplicate window from these only."""
        ...

    def state_in(self, filter_subject: str, start: int, end: int) -> SimpleState: ...

    def subject_names(self) -> list[str]: ...

    def subject_state(self, subject: str) -> SimpleState | None: ...

    def filtered_state(self, start: int, filter_subject: str) -> SimpleState:
        """Messages with seq >= start matching filter (num_pending for consumers)."""
        ...

    def next_ttl_deadline(self) -> int:
        """Earliest per-message TTL deadline (unix ns) among stored messages, 0 when none."""
        ...

    def expired(self, now: int, max_age_ns: int = 0, limit: int = 0) -> list[int]:
        """Sequences to expire at `now` (unix ns), ascending: messages whose per-message TTL has
        passed, and (max_age_ns > 0) messages without one stored at or before now - max_age_ns.
        Due TTL entries are consumed: the caller removes what is returned. With limit > 0, at
        most that many; the rest are returned by later calls (removal in bounded steps)."""
        ...

    def close(self) -> None: ...

    def delete(self) -> None:
        """Close and remove all on-disk data."""
        ...


@dataclass(slots=True)
class SequencePair:
    consumer_seq: int = 0
    stream_seq: int = 0


@dataclass(slots=True)
class ConsumerState:
    delivered: SequencePair = field(default_factory=SequencePair)
    ack_floor: SequencePair = field(default_factory=SequencePair)
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)  # stream seq -> (delivery seq, ts ns)
    redelivered: dict[int, int] = field(default_factory=dict)  # stream seq -> delivery count - 1
    # The stream sequences consumer info reports (delivered, ack floor), as nats-server 2.10+
    # reads them from its consumer store: they move only when a message is delivered or acked,
    # where `delivered`/`ack_floor` above also follow the consumer's scan past messages its filter
    # skips: (delivered stream seq, ack floor stream seq, ack floor consumer seq). None in a
    # state written before they were kept: the same as the two above.
    info_seqs: tuple[int, int, int] | None = None


StateSource = ConsumerState | Callable[[], ConsumerState]


def resolve_state(src: StateSource) -> ConsumerState:
    """The state itself, taking the snapshot now when given the function that makes one."""
    return src() if callable(src) else src


class ConsumerStore(Protocol):
    """Persisted consumer state: small, rewritten whole, durable at commit like messages."""

    def update(self, state: StateSource) -> None:
        """Record the new state, or the function that snapshots it when it is written
        (coalesced; a file store writes plain updates at most every WRITE_INTERVAL)."""
        ...

    def update_config(self, config_json: bytes) -> None: ...

    def load(self) -> tuple[bytes | None, ConsumerState]:
        """(config JSON or None, state) as last recorded."""
        ...

    def commit(self, on_durable: Callable[[], None]) -> None:
        """Make what was recorded durable; call on_durable (on the loop thread) once it is."""
        ...

    def flush(self) -> None:
        """Write what was recorded now, inline (at shutdown: a queued write could land after a
        restart has read the old state)."""
        ...

    def close(self) -> None: ...

    def delete(self) -> None: ...
