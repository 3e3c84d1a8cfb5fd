"""Atomic batch publish (nats-server 2.12 `allow_atomic`): staging, checks, commit, abandonment.

Owns the in-flight batches of one stream: messages carrying `Nats-Batch-Id` and
`Nats-Batch-Sequence` are held here, not in the store, until the message carrying
`Nats-Batch-Commit` arrives; then the whole batch is checked against the stream as it would be
after each of its messages (the staged "diff") and, only if every message passes, stored in one
synchronous run, so it shares one store commit (one fsync) and no reader sees a prefix of it.
A batch not continued within the timeout is dropped and a BATCH_ABANDONED advisory goes out.

It must not store anything before the commit, parse API requests, or know other streams; it
stores through the stream's own ingest path (limits, roll-ups, dedupe, consumers, sources).
Staged messages live in memory only: a restart loses uncommitted batches, which the client
sees as a commit that never got its PubAck (single server, so no peer has to agree on them).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyjetstream.jetstream import advisories, counter, errors, schedule
from pyjetstream.jetstream import pubheaders as ph
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.pubheaders import add_header, pub_ack_error
from pyjetstream.jetstream.schemas import JS_API_LEVEL, StreamConfig, SubjectTransform
from pyjetstream.jetstream.seams import StreamOwner
from pyjetstream.jetstream.store.base import StoreError, StreamStore


class BatchStream(Protocol):
    """What the batches need of their stream (stream.Stream): its config, store and clock, and
    its publish path's own checks and ingest. A protocol, so that this module does not import
    stream.py, which imports it."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> StreamConfig: ...

    @property
    def store(self) -> StreamStore: ...

    @property
    def jsa(self) -> StreamOwner: ...

    @property
    def server(self) -> Any: ...

    @property
    def _acct_limit(self) -> int: ...

    @property
    def _server_limit(self) -> int: ...

    @property
    def _transform(self) -> SubjectTransform | None: ...

    @property
    def _dedupe(self) -> OrderedDict[str, tuple[int, int]]: ...

    @property
    def _ack_prefix(self) -> bytes: ...

    def clock(self) -> int: ...

    def _queue(self, reply: str, body: bytes) -> None: ...

    def _check_storage_limits(self, size: int) -> None: ...

    def _record_size(self, subject: str, hdr: bytes, payload: bytes) -> int: ...

    def _ingest(self, subject: str, hdr: bytes | None, payload: bytes) -> tuple[int, bool]: ...

    def _store_failed(self, reply: str, e: Exception) -> int: ...

HDR_BATCH_ID = b"Nats-Batch-Id"
HDR_BATCH_SEQ = b"Nats-Batch-Sequence"
HDR_BATCH_COMMIT = b"Nats-Batch-Commit"
HDR_REQUIRED_API_LEVEL = b"Nats-Required-Api-Level"

# nats-server's defaults (stream.go); it reads overrides from jetstream limits we do not parse
MAX_BATCH_TIMEOUT_S = 10.0
MAX_INFLIGHT_PER_STREAM = 50
MAX_INFLIGHT_TOTAL = 1000
MAX_BATCH_SIZE = 1000
MAX_BATCH_ID_LEN = 64

# in-flight batches of every stream in this process, as nats-server counts them server-wide
_inflight_total = 0
# Staged messages are held in memory (nats-server keeps them on disk for file streams), so the
# bytes all batches may hold together are capped: 1000 batches of 1000 messages of 1 MB would
# otherwise be a terabyte. Beyond the cap a batch is refused as "too many inflight".
MAX_STAGED_BYTES_TOTAL = 256 * 1024 * 1024
_staged_bytes = 0

CallLater = Callable[[float, Callable[[], None]], Any]


def header_value(hdr: bytes, key: bytes) -> bytes | None:
    """The first value of `key` (exact case, as nats-server's sliceHeader), None when absent."""
    needle = b"\r\n" + key + b":"
    i = hdr.find(needle)
    if i < 0:
        return None
    end = hdr.find(b"\r\n", i + len(needle))
    return hdr[i + len(needle) : end if end >= 0 else None].strip()


def batch_id(hdr: bytes | None) -> str:
    """The atomic batch a message belongs to; "" when none (header absent or empty)."""
    if not hdr or HDR_BATCH_ID not in hdr:
        return ""
    v = header_value(hdr, HDR_BATCH_ID)
    return v.decode("utf-8", "replace") if v else ""


def _remove_header(hdr: bytes, key: bytes) -> bytes:
    lines = hdr.split(b"\r\n")
    kept = [ln for ln in lines[1:] if not ln.startswith(key + b":")]
    return b"\r\n".join([lines[0], *kept])


@dataclass
class _Staged:
    subject: str
    hdr: bytes
    payload: bytes


@dataclass
class AtomicBatch:
    """One batch being received: its messages in order and its inactivity timer."""

    staged: list[_Staged] = field(default_factory=list)
    timer: Any = None
    size: int = 0  # bytes staged, counted in _staged_bytes


@dataclass
class _Inflight:
    ops: int = 0
    size: int = 0


class AtomicBatches:
    """The atomic batches in flight on one stream."""

    def __init__(self, stream: BatchStream, timeout_s: float = MAX_BATCH_TIMEOUT_S,
                 call_later: CallLater | None = None) -> None:
        self.stream = stream
        self.timeout_s = timeout_s
        self._call_later = call_later
        self.batches: dict[str, AtomicBatch] = {}

    # ------------------------------------------------------------------ lifecycle

    def _arm(self, bid: str, b: AtomicBatch) -> None:
        if b.timer is not None:
            b.timer.cancel()
        call_later = self._call_later or asyncio.get_running_loop().call_later
        b.timer = call_later(self.timeout_s, lambda: self._expired(bid, b))

    def _expired(self, bid: str, b: AtomicBatch) -> None:
        if self.batches.get(bid) is b:
            self._drop(bid)
            self._advise(bid, "timeout")

    def _drop(self, bid: str) -> None:
        global _inflight_total, _staged_bytes
        b = self.batches.pop(bid, None)
        if b is None:
            return
        _inflight_total -= 1
        _staged_bytes -= b.size
        b.size = 0
        if b.timer is not None:
            b.timer.cancel()
            b.timer = None

    def clear(self) -> None:
        """Forget every batch (stream stopped, or atomic publish switched off by an update)."""
        for bid in list(self.batches):
            self._drop(bid)

    def _advise(self, bid: str, reason: str) -> None:
        s = self.stream
        advisories.publish(
            s.server, s.jsa.account, f"{advisories.PREFIX}.STREAM.BATCH_ABANDONED.{s.name}",
            "stream_batch_abandoned", {"account": s.jsa.name, "stream": s.name, "batch": bid, "reason": reason},
            s.jsa.js.domain,
        )

    # ------------------------------------------------------------------ receiving

    def process(self, bid: str, subject: str, reply: str, hdr: bytes, payload: bytes) -> int:
        """Take one message of batch `bid`; returns the last stored sequence on commit, else 0."""
        s = self.stream
        cfg = s.config
        can_respond = bool(reply) and not cfg.no_ack

        def refuse(err: ApiError) -> int:
            if can_respond:
                s._queue(reply, pub_ack_error(s.name, err))
            return 0

        try:
            if cfg.sealed:
                raise errors.stream_sealed()
            if s._acct_limit >= 0 or s._server_limit >= 0:
                s._check_storage_limits(s._record_size(subject, hdr, payload))
            mx = cfg.max_msg_size
            if mx >= 0 and (len(hdr) > mx or len(payload) > mx - len(hdr)):
                raise errors.stream_message_exceeds_maximum()
            if not cfg.allow_atomic:
                raise errors.by_constant("JSAtomicPublishDisabledErr")
            if len(bid) > MAX_BATCH_ID_LEN:
                raise errors.by_constant("JSAtomicPublishInvalidBatchIDErr")
            raw_seq = header_value(hdr, HDR_BATCH_SEQ)
            if not raw_seq or not raw_seq.isdigit() or int(raw_seq) >= 2**64:
                raise errors.by_constant("JSAtomicPublishMissingSeqErr")
        except ApiError as e:
            return refuse(e)
        seq = int(raw_seq)
        commit_v = header_value(hdr, HDR_BATCH_COMMIT)
        commit = commit_v is not None
        eob = commit_v == b"eob"
        commit_invalid = commit and not eob and commit_v != b"1"
        # the end-of-batch marker is not a message of the batch
        size = seq - 1 if eob else seq

        b = self.batches.get(bid)
        if b is None:
            if seq != 1:
                if size > MAX_BATCH_SIZE:
                    return refuse(errors.by_constant("JSAtomicPublishTooLargeBatchErrF", size=MAX_BATCH_SIZE))
                return refuse(errors.by_constant("JSAtomicPublishIncompleteBatchErr"))
            global _inflight_total
            if len(self.batches) + 1 > MAX_INFLIGHT_PER_STREAM or _inflight_total + 1 > MAX_INFLIGHT_TOTAL:
                return refuse(errors.by_constant("JSAtomicPublishTooManyInflight"))
            _inflight_total += 1
            b = AtomicBatch()
            self.batches[bid] = b
        if commit_invalid:
            self._drop(bid)
            return refuse(errors.by_constant("JSAtomicPublishInvalidBatchCommitErr"))
        if HDR_REQUIRED_API_LEVEL in hdr:
            lvl = header_value(hdr, HDR_REQUIRED_API_LEVEL)
            if lvl:
                if not lvl.isdigit() or int(lvl) > JS_API_LEVEL:
                    self._drop(bid)
                    self._advise(bid, "unsupported")
                    return refuse(errors.required_api_level())
                hdr = _remove_header(hdr, HDR_REQUIRED_API_LEVEL)
        if len(b.staged) + 1 != seq or (seq == 1 and eob):
            self._drop(bid)
            self._advise(bid, "incomplete")
            return refuse(errors.by_constant("JSAtomicPublishIncompleteBatchErr"))
        if size > MAX_BATCH_SIZE:
            self._drop(bid)
            self._advise(bid, "large")
            return refuse(errors.by_constant("JSAtomicPublishTooLargeBatchErrF", size=MAX_BATCH_SIZE))
        if not eob:
            global _staged_bytes
            n = len(subject) + len(hdr) + len(payload)
            if _staged_bytes + n > MAX_STAGED_BYTES_TOTAL:
                self._drop(bid)
                self._advise(bid, "large")
                return refuse(errors.by_constant("JSAtomicPublishTooManyInflight"))
            _staged_bytes += n
            b.size += n
            b.staged.append(_Staged(subject, hdr, payload))
        if not commit:
            self._arm(bid, b)
            if can_respond:
                # an empty reply: staged, not yet stored
                s._queue(reply, b"")
            return 0
        staged = b.staged
        self._drop(bid)
        try:
            self._check(staged)
        except ApiError as e:
            return refuse(e)
        if eob:
            last = staged[-1]
            last.hdr = add_header(last.hdr, HDR_BATCH_COMMIT, b"1")
        return self._commit(bid, staged, reply if can_respond else "")

    # ------------------------------------------------------------------ commit

    def _check(self, staged: list[_Staged]) -> None:
        """nats-server's checks of every message of the batch, each against the stream as the
        batch's earlier messages would leave it; raises the first failure."""
        s = self.stream
        cfg = s.config
        store = s.store
        inflight: dict[str, _Inflight] = {}
        msg_ids: set[str] = set()
        expected_per_subject: dict[str, int] = {}
        totals: dict[str, int] = {}  # counter subject -> running total within the batch
        now = s.clock()
        clseq = store.last_seq
        for m in staged:
            subject = m.subject
            if s._transform is not None:
                subject = s._transform.match(subject) or subject
            hdr = m.hdr
            h = ph.parse_headers(hdr) if b"Nats-" in hdr else {}
            if ph.HDR_EXPECTED_LAST_MSG_ID in h and h[ph.HDR_EXPECTED_LAST_MSG_ID]:
                raise errors.by_constant("JSAtomicPublishUnsupportedHeaderBatchErr",
                                         header=ph.HDR_EXPECTED_LAST_MSG_ID)
            if len(hdr) > ph.MAX_HDR_SIZE:
                raise errors.stream_header_exceeds_maximum()
            incr = counter.check_publish(cfg.allow_msg_counter, h, m.payload)
            exp_stream = h.get(ph.HDR_EXPECTED_STREAM)
            if exp_stream and exp_stream != s.name:
                raise errors.stream_not_match()
            ttl_txt = h.get(ph.HDR_TTL)
            if ttl_txt:
                if not cfg.allow_msg_ttl:
                    raise errors.message_ttl_disabled()
                ph.parse_msg_ttl(ttl_txt)
            msg_id = h.get(ph.HDR_MSG_ID, "")
            if msg_id:
                entry = s._dedupe.get(msg_id)
                if msg_id in msg_ids or (entry is not None and now - entry[1] <= cfg.duplicate_window):
                    raise errors.by_constant("JSAtomicPublishContainsDuplicateMessageErr")
                msg_ids.add(msg_id)
            if "Nats-Stream-Source" in h:
                raise errors.by_constant("JSMessageSourceHdrNotAllowedErr")
            if cfg.allow_msg_counter:
                if incr is None:
                    raise errors.by_constant("JSMessageIncrMissingErr")
                # the batch's earlier increments of the subject count toward this one
                base = totals[subject] if subject in totals else counter.current(store, subject)
                totals[subject] = base + incr
            exp = h.get(ph.HDR_EXPECTED_LAST_SEQ)
            if exp is not None:
                if not exp.isdigit() or int(exp) != clseq:
                    raise errors.stream_wrong_last_sequence(seq=clseq)
                if inflight:
                    # only the batch's first message may expect a stream sequence
                    raise errors.by_constant("JSStreamWrongLastSequenceConstantErr")
            exp = h.get(ph.HDR_EXPECTED_LAST_SUBJ_SEQ)
            if exp is not None:
                subj = h.get(ph.HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ) or subject
                if subj in inflight:
                    # the batch already wrote the subject: the expectation could not hold
                    raise errors.by_constant("JSStreamWrongLastSequenceConstantErr")
                if subj in expected_per_subject:
                    actual = expected_per_subject[subj]
                else:
                    last = store.load_last_msg(subj)
                    actual = last.seq if last is not None else 0
                if not exp.isdigit() or int(exp) != actual:
                    raise errors.stream_wrong_last_sequence(seq=actual)
                expected_per_subject[subj] = actual
            elif h.get(ph.HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ):
                raise errors.stream_expected_last_seq_per_subject_invalid()
            if b"Nats-Schedule" in hdr:
                # may add the roll-up a schedule implies, which the checks below then see
                hdr = m.hdr = schedule.check_publish(s, subject, h, hdr)
            rollup = h.get(ph.HDR_ROLLUP, "")
            if rollup:
                if not cfg.allow_rollup_hdrs or cfg.deny_purge:
                    raise errors.stream_rollup_failed(err="rollup not permitted")
                if rollup == "sub":
                    if subject in inflight:
                        raise errors.stream_rollup_failed(err="batch rollup sub invalid")
                elif rollup == "all":
                    if inflight:
                        raise errors.stream_rollup_failed(err="batch rollup all invalid")
                else:
                    raise errors.stream_rollup_failed(err=f'rollup value invalid: "{rollup}"')
            i = inflight.setdefault(subject, _Inflight())
            i.ops += 1
            i.size += s._record_size(subject, hdr, m.payload)
            if cfg.discard == "new":
                if cfg.max_msgs > 0 or cfg.max_bytes > 0:
                    msgs = store.num_msgs + sum(x.ops for x in inflight.values())
                    nbytes = store.num_bytes + sum(x.size for x in inflight.values())
                    if cfg.max_msgs > 0 and msgs > cfg.max_msgs:
                        raise errors.stream_store_failed(err="maximum messages exceeded")
                    if cfg.max_bytes > 0 and nbytes > cfg.max_bytes:
                        raise errors.stream_store_failed(err="maximum bytes exceeded")
                if cfg.discard_new_per_subject and cfg.max_msgs_per_subject > 0 and not rollup:
                    if store.subject_msgs(subject) + i.ops > cfg.max_msgs_per_subject:
                        raise errors.stream_store_failed(err="maximum messages per subject exceeded")
            clseq += 1
        if s._acct_limit >= 0 or s._server_limit >= 0:
            s._check_storage_limits(sum(x.size for x in inflight.values()))

    def _commit(self, bid: str, staged: list[_Staged], reply: str) -> int:
        """Store the checked batch in one synchronous run: one commit, one PubAck."""
        s = self.stream
        seq = 0
        for m in staged:
            try:
                seq, _ = s._ingest(m.subject, m.hdr, m.payload)
            except ApiError as e:
                # the checks above make this unexpected (a store-level refusal); what was
                # stored stays stored, as nats-server leaves it when its store fails mid-batch
                if reply:
                    s._queue(reply, pub_ack_error(s.name, e))
                return 0
            except (StoreError, OSError) as e:
                return s._store_failed(reply, e)
        body = s._ack_prefix + b'%d,"batch":%s,"count":%d}' % (seq, json.dumps(bid).encode(), len(staged))
        s._queue(reply, body)
        return seq

