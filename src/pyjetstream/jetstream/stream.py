"""One stream: the publish path into its store, limits, retention, dedupe and expiry.

Owns a stream's config, its store handle, its consumers registry, the Nats-* publish headers
(expected-*, msg id, rollup, TTL), limit enforcement (discard old/new, per subject, max age),
subject transforms, republish, its mirror/source links (SourceLink) and the PubAck, which is
sent only from the store's commit(on_durable) callback: one commit per loop iteration covers
every change made in it (group commit), and replies confirming removals wait for it too
(after_durable). It does not parse API requests (api.py), know other streams by name
(manager.py) or do disk IO (the store does). All mutations are synchronous on the loop
thread; only timers, source catch-up slices and the commit are deferred.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pyjetstream.gotime import format_duration, format_rfc3339, parse_rfc3339
from pyjetstream.jetstream import counter, errors, fair, schedule
from pyjetstream.jetstream.batch import AtomicBatches, batch_id
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.pubheaders import (
    HDR_EXPECTED_LAST_MSG_ID,
    HDR_EXPECTED_LAST_SEQ,
    HDR_EXPECTED_LAST_SUBJ_SEQ,
    HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ,
    HDR_EXPECTED_STREAM,
    HDR_MSG_ID,
    HDR_ROLLUP,
    HDR_TTL,
    MAX_HDR_SIZE,
    parse_msg_ttl,
    pub_ack_error,
)
from pyjetstream.jetstream.pubheaders import parse_headers as _headers
from pyjetstream.jetstream.schemas import (
    StreamConfig,
    SubjectTransform,
    is_reserved_subject,
    origin_index_name,
    state_to_dict,
    with_dynamic_metadata,
)
from pyjetstream.jetstream.seams import StreamConsumer, StreamOwner
from pyjetstream.jetstream.store.base import StoredMsg, StoreError, StreamStore
from pyjetstream.subjects import subject_matches
from pyjetstream.version import VERSION

log = logging.getLogger(__name__)

# Messages one expiry step removes (the timer's, or a step of limits_job after max_age was
# lowered): a few ms of removals, then the loop serves others. A burst that ages out together,
# or a stream whose max_age an update lowers, would otherwise go in one pass (1.7 s for 1M
# messages in memory).
EXPIRE_BATCH = 1024


class Stream:
    """A stream bound to its store and to the message bus of its account."""

    def __init__(
        self,
        jsa: StreamOwner,
        config: StreamConfig,
        store: StreamStore,
        created: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.jsa = jsa
        self.name = config.name
        self.config = config
        self.store = store
        self.created = created
        # the stream's own directory (file storage); consumers keep their state beneath it
        self.directory = ""
        self.consumers: dict[str, StreamConsumer] = {}
        self.clock = clock
        self.closed = False
        self._subs: list[Any] = []
        # the name JSON-escaped: a quote or backslash in it must not break the PubAck
        # the JetStream domain rides in every PubAck, as nats-server sends it
        domain = jsa.js.domain
        self._ack_prefix = (b'{"stream":' + json.dumps(self.name).encode()
                            + (b',"domain":' + json.dumps(domain).encode() if domain else b"") + b',"seq":')
        self._outq: list[tuple[str, bytes]] = []
        self._waiters: list[Callable[[], None]] = []
        self._commit_scheduled = False
        self._write_out_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Nats-Msg-Id -> (seq, ts ns), in arrival order so expiry pops from the front
        self._dedupe: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._last_msg_id = ""
        # Per-message TTLs live in the store; here only the earliest one we know of, so that
        # memory does not grow with the number of TTL'd messages. Beyond it we poll (1 s).
        self._ttl_next = 0
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = 0
        self._ttl_active = False  # the store may hold messages with a TTL
        self._simple = False
        self._republish: SubjectTransform | None = None
        self._transform: SubjectTransform | None = None
        self._repub_hdrs_only = False
        self._repubq: list[tuple[str, bytes, bytes]] = []  # (subject, hdr, payload) awaiting the commit
        self._sourcing: list[SourceLink] = []  # other streams' links reading from this one
        self._links: list[SourceLink] = []  # this stream's mirror or sources
        self.atomic: AtomicBatches | None = None  # created by the first batch message
        self.schedules: schedule.MsgSchedules | None = None  # with allow_msg_schedules
        self._counter_val = 0  # the total the last counter publish stored, for its PubAck
        self.limits_due = False  # an update changed the limits; limits_job has not run yet
        self._age_due = False  # ... and lowered max_age: limits_job expires what it no longer allows
        self._trimming = False
        self._refresh_fast_path()

    # ------------------------------------------------------------------ wiring

    @property
    def server(self) -> Any:
        return self.jsa.server

    def subscribe(self) -> None:
        """Capture the configured subjects on the account's bus."""
        srv = self.server
        for subj in self.config.subjects:
            self._subs.append(srv.subscribe_internal(self.jsa.account, subj, self._on_publish))

    def unsubscribe(self) -> None:
        srv = self.server
        for sub in self._subs:
            srv.unsubscribe_internal(sub)
        self._subs = []

    def _on_publish(self, sub: Any, client: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None:
        self.process_msg(subject, reply, hdr, payload)

    # ------------------------------------------------------------------ publish path

    def _refresh_fast_path(self) -> None:
        # A header-less publish to a stream without limits, retention rules or acks-off needs
        # none of the checks below; most publishes under load are exactly that.
        c = self.config
        self._acct_limit, self._server_limit = self._storage_limits()
        rp = c.republish
        self._republish = SubjectTransform(rp.get("src") or ">", rp["dest"]) if rp else None
        st = c.subject_transform
        self._transform = SubjectTransform(st.get("src") or ">", st["dest"]) if st else None
        self._repub_hdrs_only = bool(rp.get("headers_only")) if rp else False
        self._simple = self._republish is None and self._transform is None and (
            c.retention == "limits" and not c.sealed and not c.no_ack and c.discard == "old"
            and c.max_msgs <= 0 and c.max_bytes <= 0 and c.max_msgs_per_subject <= 0 and not c.max_age
            and self._acct_limit < 0 and self._server_limit < 0 and not c.allow_msg_counter
        )
        self._max_msg_size = c.max_msg_size

    def _storage_limits(self) -> tuple[int, int]:
        """(account limit, server limit) in bytes for this stream's storage type; -1 = none."""
        mem = self.config.storage == "memory"
        acct = self.jsa.limit("max_mem" if mem else "max_file")
        js = self.jsa.js
        srv = js.max_mem if mem else js.max_file
        return (acct if acct >= 0 else -1), (srv if srv >= 0 else -1)

    def _check_storage_limits(self, size: int) -> None:
        mem = self.config.storage == "memory"
        if self._acct_limit >= 0:
            used = self.jsa.usage()[0 if mem else 1]
            if used + size > self._acct_limit:
                raise errors.account_resources_exceeded()
        if self._server_limit >= 0:
            used = sum(a.usage()[0 if mem else 1] for a in self.jsa.js.accounts.values())
            if used + size > self._server_limit:
                raise errors.insufficient_resources()

    def process_msg(self, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> int:
        """Store one published message (or refuse it) and queue its PubAck.

        Returns the stored sequence, or 0 when nothing was stored (error or duplicate).
        """
        if self.closed:
            return 0
        if hdr is not None and b"Nats-Batch-Id:" in hdr and (bid := batch_id(hdr)):
            if self.atomic is None:
                self.atomic = AtomicBatches(self)
            return self.atomic.process(bid, subject, reply, hdr, payload)
        if hdr is None and self._simple and (self._max_msg_size < 0 or len(payload) <= self._max_msg_size):
            now = self.clock()
            try:
                seq = self.store.store_msg(subject, b"", payload, now, 0)
            except (StoreError, OSError) as e:
                return self._store_failed(reply, e)
            self._last_msg_id = ""
            if self.consumers:
                for c in list(self.consumers.values()):
                    c.on_new_msg(seq, subject)
            if self._sourcing:
                for link in list(self._sourcing):
                    link.on_stored(seq, subject, b"", payload, now)
            self._outq.append((reply, b"%s%d}" % (self._ack_prefix, seq)) if reply else ("", b""))
            if not self._commit_scheduled:
                self._commit_scheduled = True
                if self._loop is None:
                    self._loop = asyncio.get_running_loop()
                self._loop.call_soon(self.flush)
            return seq
        try:
            seq, dup = self._ingest(subject, hdr, payload)
        except (StoreError, OSError) as e:
            return self._store_failed(reply, e)
        except ApiError as e:
            if reply and not self.config.no_ack:
                self._queue(reply, pub_ack_error(self.name, e))
            return 0
        if reply and not self.config.no_ack:
            body = self._ack_prefix + str(seq).encode()
            if not dup and self.config.allow_msg_counter:
                body += b',"val":"%d"' % self._counter_val
            self._queue(reply, body + (b',"duplicate": true}' if dup else b"}"))
        elif not dup:
            self._queue("", b"")
        return 0 if dup else seq

    def store_scheduled(self, subject: str, hdr: bytes, payload: bytes) -> bool:
        """Store a fired schedule's message (no reply); False when the stream refused it."""
        try:
            seq, _ = self._ingest(subject, hdr, payload)
        except (ApiError, StoreError, OSError) as e:
            log.warning("stream %s > %s: a scheduled message for %s was refused: %s",
                        self.jsa.name, self.name, subject, e)
            return False
        self._queue("", b"")
        return seq > 0

    def _store_failed(self, reply: str, e: Exception) -> int:
        # A failing disk must cost this message, not the publisher's connection or the loop.
        log.error("stream %s > %s: storing a message failed: %s", self.jsa.name, self.name, e)
        if reply and not self.config.no_ack:
            self._queue(reply, pub_ack_error(self.name, errors.stream_store_failed(err=str(e) or type(e).__name__)))
        return 0

    def _queue(self, reply: str, body: bytes) -> None:
        # Every reply, errors too, rides the same commit so a client sees them in order and
        # never gets a PubAck (or a duplicate's PubAck) for a message not yet durable.
        self._outq.append((reply, body))
        self.schedule_commit()

    def schedule_commit(self) -> None:
        """Make everything changed so far durable at the end of this loop iteration (one
        commit for all of it). Every removal path calls this, so deletes survive a crash too."""
        if not self._commit_scheduled and not self.closed:
            self._commit_scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self.flush)

    def after_durable(self, cb: Callable[[], None]) -> None:
        """Run cb once every change made to this stream so far is durable (API replies that
        confirm a purge, delete or update; consumers confirming an ack that removed a message)."""
        if self.closed:
            cb()
            return
        self._waiters.append(cb)
        self.schedule_commit()

    def flush(self) -> None:
        """Commit everything stored so far; the queued replies go out once it is durable."""
        self._commit_scheduled = False
        batch, self._outq = self._outq, []
        repub, self._repubq = self._repubq, []
        waiters, self._waiters = self._waiters, []
        if self.closed:
            for cb in waiters:
                cb()
            return
        self.store.commit(lambda: self._send_acks(batch, repub, waiters))

    def _send_acks(self, batch: list[tuple[str, bytes]], repub: list[tuple[str, bytes, bytes]],
                   waiters: list[Callable[[], None]]) -> None:
        pub = self.server.publish
        account = self.jsa.account
        # republished copies go out once stored durably too, before the PubAcks
        for subject, hdr, payload in repub:
            pub(account, subject, "", hdr, payload)
        respond = self.server.respond
        for reply, body in batch:
            if reply:
                respond(account, reply, None, body)
        for cb in waiters:
            cb()
        if batch:
            self.server.flush_output()

    def _ingest(self, subject: str, hdr: bytes | None, payload: bytes) -> tuple[int, bool]:
        cfg = self.config
        store = self.store
        if self._transform is not None:
            # a subject outside the transform's source is stored unchanged
            subject = self._transform.match(subject) or subject
        if cfg.sealed:
            raise errors.stream_sealed()
        hdr_b = hdr or b""
        msg_id = ""
        rollup = ""
        scheduler = ""  # a fired schedule's subject, purged once its message is stored
        incr: int | None = None
        ttl = 0
        now = self.clock()
        if hdr_b and b"Nats-" in hdr_b and hdr_b.count(b"Nats-") == 1 and (
            (i := hdr_b.find(b"\r\nNats-Msg-Id:")) >= 0
        ):
            # the common case under load: a msg id is the only Nats-* header; skip the parse
            end = hdr_b.find(b"\r\n", i + 14)
            msg_id = hdr_b[i + 14 : end].strip().decode("utf-8", "replace")
            entry = self._dedupe.get(msg_id)
            if entry is not None and now - entry[1] <= cfg.duplicate_window:
                return entry[0], True
        elif hdr_b and b"Nats-" in hdr_b:
            h = _headers(hdr_b)
            # counter increments are checked first, as nats-server does
            incr = counter.check_publish(cfg.allow_msg_counter, h, payload)
            exp_stream = h.get(HDR_EXPECTED_STREAM)
            if exp_stream and exp_stream != self.name:
                raise errors.stream_not_match()
            ttl_txt = h.get(HDR_TTL)
            if ttl_txt and not cfg.allow_msg_ttl:
                raise errors.message_ttl_disabled()
            # the duplicate check comes before the expectations, as in nats-server 2.9: a retried
            # publish gets its original PubAck even though the stream has moved on since
            msg_id = h.get(HDR_MSG_ID, "")
            if msg_id:
                entry = self._dedupe.get(msg_id)
                if entry is not None and now - entry[1] <= cfg.duplicate_window:
                    return entry[0], True
            exp = h.get(HDR_EXPECTED_LAST_SUBJ_SEQ)
            if exp is not None:
                # the check may name another (even wildcard) subject than the one published to
                last = store.load_last_msg(h.get(HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ) or subject)
                actual = last.seq if last is not None else 0
                if not exp.isdigit() or int(exp) != actual:
                    raise errors.stream_wrong_last_sequence(seq=actual)
            elif h.get(HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ):
                raise errors.stream_expected_last_seq_per_subject_invalid()
            exp = h.get(HDR_EXPECTED_LAST_SEQ)
            if exp is not None:
                actual = store.state().last_seq
                if not exp.isdigit() or int(exp) != actual:
                    raise errors.stream_wrong_last_sequence(seq=actual)
            exp = h.get(HDR_EXPECTED_LAST_MSG_ID)
            if exp and exp != self._last_msg_id:
                raise errors.stream_wrong_last_msg_id(id=self._last_msg_id)
            if b"Nats-Schedule" in hdr_b:
                hdr_b = schedule.check_publish(self, subject, h, hdr_b)
                if h.get(schedule.HDR_SCHEDULE_NEXT) == schedule.NEXT_PURGE:
                    scheduler = h.get(schedule.HDR_SCHEDULER, "")
            rollup = h.get(HDR_ROLLUP, "")
            if rollup:
                if not cfg.allow_rollup_hdrs or cfg.deny_purge:
                    raise errors.stream_rollup_failed(err="rollup not permitted")
                if rollup not in ("sub", "all"):
                    raise errors.stream_rollup_failed(err=f'rollup value invalid: "{rollup}"')
            if ttl_txt:
                ttl = parse_msg_ttl(ttl_txt)
        if cfg.allow_msg_counter:
            if incr is None:
                raise errors.by_constant("JSMessageIncrMissingErr")
            self._counter_val = counter.current(store, subject) + incr
            payload = counter.payload(self._counter_val)
        if cfg.max_msg_size >= 0 and len(hdr_b) + len(payload) > cfg.max_msg_size:
            raise errors.stream_message_exceeds_maximum()
        if len(hdr_b) > MAX_HDR_SIZE:
            raise errors.stream_header_exceeds_maximum()

        if cfg.retention == "interest" and not self._has_interest(subject):
            # nats-server consumes the sequence without storing anything and still acks it
            seq = store.last_seq + 1
            store.skip_msgs(seq, 1)
            return seq, False

        if cfg.discard == "new":
            self._check_discard_new(subject, hdr_b, payload, bool(rollup))
        if self._acct_limit >= 0 or self._server_limit >= 0:
            self._check_storage_limits(self._record_size(subject, hdr_b, payload))

        repub_subject = self._republish.match(subject) if self._republish is not None else None
        repub_last = 0
        if repub_subject:
            # the previous sequence on this subject lets light clients detect gaps
            prev = store.load_last_msg(subject)
            repub_last = prev.seq if prev is not None else 0
        # the store reads -1 as "never": exempt from max_age
        ttl_ns = ttl * 1_000_000_000 if ttl > 0 else ttl
        seq = store.store_msg(subject, hdr_b, payload, now, ttl_ns)
        if repub_subject:
            self._queue_republish(repub_subject, subject, seq, repub_last, now, hdr_b, payload)
        if msg_id:
            self._dedupe[msg_id] = (seq, now)
            self._dedupe.move_to_end(msg_id)
            self._expire_dedupe(now)
        self._last_msg_id = msg_id
        # limits first, roll-up second: nats-server's store applies the limits as it stores
        self._enforce_limits(subject, seq)
        if rollup:
            self._rollup(rollup, subject, seq)
        elif scheduler:
            n = store.purge(scheduler, 0, 0)
            if n:
                self._notify_removed(False)
        if self.schedules is not None:
            self.schedules.on_stored(seq, subject, hdr_b)
        if ttl_ns > 0:
            self._ttl_active = True
            at = now + ttl_ns
            if not self._ttl_next or at < self._ttl_next:
                self._ttl_next = at
        if ttl_ns > 0 or cfg.max_age:
            self._arm_expiry(now)
        for c in list(self.consumers.values()):
            c.on_new_msg(seq, subject)
        if self._sourcing:
            for link in list(self._sourcing):
                link.on_stored(seq, subject, hdr_b, payload, now)
        return seq, False

    def ingest_sourced(self, subject: str, hdr: bytes, payload: bytes, ts: int, mirror_seq: int = 0) -> int:
        """Store a message that came from a mirrored or sourced stream (no PubAck, no expected-*
        checks). A mirror keeps the origin's sequence and timestamp. Returns the stored seq, 0
        when it was already present (duplicate), -1 when it was refused (limits; logged)."""
        if self.closed:
            return 0
        cfg = self.config
        store = self.store
        if cfg.max_msg_size >= 0 and len(hdr) + len(payload) > cfg.max_msg_size:
            # never going to fit: waiting would stall the link for good, so it is skipped
            log.warning("stream %s: skipped a message from its origin larger than max_msg_size", self.name)
            return 0
        try:
            now = self.clock()
            msg_id = ""
            if not mirror_seq and hdr and b"Nats-Msg-Id" in hdr:
                # several sources may carry the same message; the window de-duplicates them
                msg_id = _headers(hdr).get(HDR_MSG_ID, "")
                entry = self._dedupe.get(msg_id) if msg_id else None
                if entry is not None and now - entry[1] <= cfg.duplicate_window:
                    return 0
            if cfg.discard == "new":
                self._check_discard_new(subject, hdr, payload, False)
            if self._acct_limit >= 0 or self._server_limit >= 0:
                # the account's (and server's) storage quota holds for copied data too: the
                # link stalls and retries, as nats-server's source consumers do
                self._check_storage_limits(self._record_size(subject, hdr, payload))
            if mirror_seq:
                last = store.state().last_seq
                if mirror_seq <= last:
                    return 0
                if mirror_seq > last + 1:
                    store.skip_msgs(last + 1, mirror_seq - last - 1)
            repub_subject = self._republish.match(subject) if self._republish is not None else None
            repub_last = 0
            if repub_subject:
                prev = store.load_last_msg(subject)
                repub_last = prev.seq if prev is not None else 0
            seq = store.store_msg(subject, hdr, payload, ts if mirror_seq else now, 0)
        except ApiError as e:
            log.warning("stream %s: cannot take a message from its origin yet: %s", self.name, e.description)
            return -1
        except (StoreError, OSError) as e:
            log.error("stream %s: storing a sourced message failed: %s", self.name, e)
            return -1
        if msg_id:
            self._dedupe[msg_id] = (seq, now)
            self._dedupe.move_to_end(msg_id)
            self._expire_dedupe(now)
        if repub_subject:
            self._queue_republish(repub_subject, subject, seq, repub_last, now, hdr, payload)
        self._enforce_limits(subject, seq)
        if cfg.max_age:
            self._arm_expiry(now)
        for c in list(self.consumers.values()):
            c.on_new_msg(seq, subject)
        if self._sourcing:
            for link in list(self._sourcing):
                link.on_stored(seq, subject, hdr, payload, ts if mirror_seq else now)
        self._queue("", b"")
        return seq

    # ------------------------------------------------------------------ mirrors and sources

    def make_links(self) -> None:
        """(Re)build this stream's own mirror/source links from its config, detached."""
        for link in self._links:
            link.detach()
        cfg = self.config
        if cfg.mirror:
            self._links = [SourceLink(self, cfg.mirror, mirror=True)]
        else:
            self._links = [SourceLink(self, src, mirror=False) for src in cfg.sources or ()]

    @property
    def links(self) -> list[SourceLink]:
        return self._links

    @property
    def subjects_exhaustive(self) -> bool:
        """True when every stored subject matches config.subjects. Mirrors, sources and subject
        transforms store other subjects, so a consumer filter equal to the configured subjects
        is then still a real filter."""
        c = self.config
        return not (c.mirror or c.sources or c.subject_transform)

    def _queue_republish(self, to: str, subject: str, seq: int, last: int, ts: int, hdr: bytes,
                         payload: bytes) -> None:
        if is_reserved_subject(to):
            # a wildcard-led destination let the publisher pick an API subject (see
            # check_publish_targets): the copy is not sent (debug: a publisher could flood a warning)
            log.debug("stream %s: republish to reserved subject %s dropped", self.name, to)
            return
        extra = (f"Nats-Stream: {self.name}\r\nNats-Subject: {subject}\r\nNats-Sequence: {seq}\r\n"
                 f"Nats-Time-Stamp: {format_rfc3339(ts)}\r\nNats-Last-Sequence: {last}\r\n")
        if self._repub_hdrs_only:
            extra += f"Nats-Msg-Size: {len(payload)}\r\n"
            payload = b""
        base = hdr[:-2] if hdr.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
        self._repubq.append((to, base + extra.encode() + b"\r\n", payload))

    def _has_interest(self, subject: str) -> bool:
        for c in self.consumers.values():
            if c.matches(subject):
                return True
        # a mirror or source reading this stream is interest too, as nats-server's internal
        # consumers are
        return any(link.matches(subject) for link in self._sourcing)

    def _check_discard_new(self, subject: str, hdr: bytes, payload: bytes, rollup: bool) -> None:
        """nats-server's discard-new rules. A subject already at max_msgs_per_subject is
        "at its limit": storing drops that subject's oldest message, so the stream-wide
        message limit does not refuse it, and the byte limit only if the dropped message is
        smaller than the new one."""
        cfg = self.config
        store = self.store
        at_subject_limit = False
        oldest_on_subject = 0
        if cfg.max_msgs_per_subject > 0 and store.subject_msgs(subject) >= cfg.max_msgs_per_subject:
            ss = store.subjects_state(subject).get(subject)
            if ss is not None and ss.msgs >= cfg.max_msgs_per_subject:
                # a roll-up replaces the subject's messages, so the per-subject limit spares it
                if cfg.discard_new_per_subject and not rollup:
                    raise errors.stream_store_failed(err="maximum messages per subject exceeded")
                at_subject_limit = True
                oldest_on_subject = ss.first
        if cfg.max_msgs > 0 or cfg.max_bytes > 0:
            msgs, nbytes = store.num_msgs, store.num_bytes  # no record read, unlike state()
            if cfg.max_msgs > 0 and msgs >= cfg.max_msgs and not at_subject_limit:
                raise errors.stream_store_failed(err="maximum messages exceeded")
            size = self._record_size(subject, hdr, payload)
            if cfg.max_bytes > 0 and nbytes + size > cfg.max_bytes:
                old = store.load_msg(oldest_on_subject) if at_subject_limit else None
                if old is None or self._record_size(old.subject, old.hdr, old.data) < size:
                    raise errors.stream_store_failed(err="maximum bytes exceeded")

    def _record_size(self, subject: str, hdr: bytes, payload: bytes) -> int:
        # each store accounts bytes its own way (the file store as nats-server's file store)
        return self.store.msg_size(subject, hdr, payload)

    def _enforce_limits(self, subject: str, seq: int) -> None:
        cfg = self.config
        store = self.store
        removed = False
        # while limits_job trims after an update, a publish removes only a few (it stays
        # ahead of the stream's growth); the job removes the rest in slices
        budget = 4 if self._trimming else -1
        if cfg.max_msgs_per_subject > 0 and store.subject_msgs(subject) > cfg.max_msgs_per_subject:
            ss = store.subjects_state(subject).get(subject)
            while ss is not None and ss.msgs > cfg.max_msgs_per_subject and budget != 0:
                store.remove_msg(ss.first)
                removed = True
                budget -= 1
                ss = store.subjects_state(subject).get(subject)
        if cfg.max_msgs > 0 or cfg.max_bytes > 0:
            # the store's counters, not state(): that reads the first record for its timestamp
            while store.num_msgs > 0 and budget != 0 and (
                (cfg.max_msgs > 0 and store.num_msgs > cfg.max_msgs)
                or (cfg.max_bytes > 0 and store.num_bytes > cfg.max_bytes)
            ):
                if not store.remove_msg(store.first_seq):
                    break
                removed = True
                budget -= 1
        if removed:
            self._notify_removed(False)

    def _rollup(self, kind: str, subject: str, seq: int) -> None:
        if kind == "all":
            n = self.store.purge("", seq, 0)
        else:
            n = self.store.purge(subject, seq, 0)
        if n:
            self._notify_removed(kind == "all")

    def _notify_removed(self, purged: bool) -> None:
        self.schedule_commit()
        first = self.store.first_seq
        for c in list(self.consumers.values()):
            if purged:
                c.on_purged(first)
            else:
                c.on_msgs_removed(first)

    def _expire_dedupe(self, now: int) -> None:
        window = self.config.duplicate_window
        d = self._dedupe
        while d:
            ts = d[next(iter(d))][1]
            if now - ts <= window:
                break
            d.popitem(last=False)

    # ------------------------------------------------------------------ expiry (max_age, Nats-TTL)

    def next_expiry(self) -> int:
        """Unix ns at which the next message may expire, 0 when none will."""
        best = 0
        if self.config.max_age:
            st = self.store.state()
            if st.msgs:
                best = st.first_ts + self.config.max_age
        t = self._ttl_next
        if not t and self._ttl_active:
            t = self.clock() + 1_000_000_000
        if t:
            best = t if not best else min(best, t)
        return best

    def expire(self, now: int, limit: int = 0) -> int:
        """Remove every message past max_age or its Nats-TTL at `now` (limit > 0: at most that
        many, the rest by a later call); returns how many."""
        store = self.store
        n = 0
        sdm = self.config.subject_delete_marker_ttl // 1_000_000_000
        for seq in store.expired(now, self.config.max_age, limit):
            if sdm > 0 and self._place_delete_marker(seq, sdm):
                n += 1
                continue
            if store.remove_msg(seq):
                n += 1
        if self._ttl_next and self._ttl_next <= now:
            # the next TTL from the store, not a one-second poll: a later TTL would otherwise
            # expire up to a second late (nats.py's test_publish_msg_ttl checks 0.5 s after)
            self._ttl_next = store.next_ttl_deadline()
        if self._ttl_active and not store.state().msgs:
            self._ttl_active = False
        if n:
            self._notify_removed(False)
        return n

    def _place_delete_marker(self, seq: int, ttl_s: int) -> bool:
        """With subject delete markers on, the last message of a subject is not simply dropped
        when it ages out: a marker (a roll-up with its own TTL) replaces it, so KV watchers
        see the key go. True when a marker was stored."""
        store = self.store
        m = store.load_msg(seq)
        if m is None or (m.hdr and b"Nats-Marker-Reason:" in m.hdr):
            return False
        ss = store.subjects_state(m.subject).get(m.subject)
        if ss is None or ss.msgs != 1:
            return False
        hdr = (f"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: {format_duration(ttl_s * 1_000_000_000)}\r\n"
               f"Nats-Rollup: sub\r\n\r\n").encode()
        return self.process_msg(m.subject, "", hdr, b"") > 0

    def _arm_expiry(self, now: int) -> None:
        at = self.next_expiry()
        if not at or (self._expiry_timer is not None and self._expiry_at <= at):
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._expiry_at = at
        self._expiry_timer = loop.call_later(max(0.0, (at - now) / 1e9), self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        self._expiry_at = 0
        if self.closed:
            return
        now = self.clock()
        if self.expire(now, EXPIRE_BATCH) >= EXPIRE_BATCH:
            # more may be due (a burst aged out together): the next batch on the next loop
            # pass, so that other clients are served in between
            self._expiry_at = now
            self._expiry_timer = (self._loop or asyncio.get_running_loop()).call_later(0, self._on_expiry_timer)
            return
        self._arm_expiry(now)

    def rebuild_dedupe(self, limit: int = 100_000) -> int:
        """After recovery: re-learn the Nats-Msg-Ids still inside the duplicate window, so a
        client retrying across a restart is still de-duplicated. Reads forward (the stores'
        fast direction) over at most the last `limit` messages, found by a binary search on
        timestamps; returns how many ids were learned."""
        window = self.config.duplicate_window
        store = self.store
        st = store.state()
        if not window or not st.msgs:
            return 0
        cutoff = self.clock() - window
        lo = max(st.first_seq, st.last_seq - limit + 1)
        if lo > st.first_seq:
            log.info("stream %s: duplicate window rebuilt from the last %d messages at most", self.name, limit)
        hi = st.last_seq
        while lo < hi:  # first seq whose message is young enough
            mid = (lo + hi) // 2
            m = store.load_next_msg("", mid)
            if m is None or m.ts >= cutoff:
                hi = mid
            else:
                lo = mid + 1
        n = 0
        last_seq, last_id = 0, ""
        # Only messages with headers can carry an id: the store names them from record
        # headers, so a window of 100,000 header-less messages costs no message loads.
        for seq in store.header_candidates(lo, st.last_seq):
            m = store.load_msg(seq)
            if m is None:
                continue
            mid_ = ""
            if m.hdr and b"Nats-Msg-Id" in m.hdr:
                mid_ = _headers(m.hdr).get(HDR_MSG_ID, "")
                if mid_ and m.ts >= cutoff:
                    self._dedupe[mid_] = (m.seq, m.ts)
                    self._dedupe.move_to_end(mid_)
                    n += 1
            last_seq, last_id = seq, mid_
        # the id of the last live message, as a forward read has it: none when a message
        # without headers follows the last candidate
        if last_seq and store.load_next_msg("", last_seq + 1) is not None:
            last_id = ""
        self._last_msg_id = last_id
        return n

    def start_timers(self, recovered: bool = False) -> None:
        """Arm expiry after creation or recovery (recovered stores may hold TTL'd messages),
        and the schedules' timer (rebuilt from the stored messages after a restart)."""
        if self.config.allow_msg_schedules and self.schedules is None:
            self.schedules = schedule.MsgSchedules(self)
            if recovered:
                self.schedules.rebuild()
        if recovered and self.config.allow_msg_ttl and self.store.state().msgs:
            self._ttl_active = True
        if self.config.max_age or self._ttl_next or self._ttl_active:
            self._arm_expiry(self.clock())

    # ------------------------------------------------------------------ consumers

    def add_consumer(self, name: str, consumer: StreamConsumer) -> None:
        self.consumers[name] = consumer

    def remove_consumer(self, name: str) -> None:
        if self.consumers.pop(name, None) is None:
            return
        if self.config.retention == "interest":
            self._drop_uninterested()

    def _drop_uninterested(self) -> None:
        store = self.store
        seq = store.state().first_seq
        removed = False
        while True:
            m = store.load_next_msg("", seq)
            if m is None:
                break
            if not any(c.needs_ack(m.seq, m.subject) for c in self.consumers.values()) and not any(
                link.needs_ack(m.seq, m.subject) for link in self._sourcing
            ):
                store.remove_msg(m.seq)
                removed = True
            seq = m.seq + 1
        if removed:
            self._notify_removed(False)

    def ack_msg(self, seq: int, consumer: object) -> None:
        """A consumer acked seq: interest and workqueue retention may now drop it."""
        retention = self.config.retention
        if retention == "limits":
            return
        if retention == "workqueue":
            if self.store.remove_msg(seq):
                self._schedule_write_out()
            return
        if len(self.consumers) == 1 and not self._sourcing and next(iter(self.consumers.values())) is consumer:
            # the acking consumer is the only reader: nobody else can still need it, and
            # the message need not be read for its subject
            if self.store.remove_msg(seq):
                self._schedule_write_out()
            return
        m = self.store.load_msg(seq)
        if m is None:
            return
        for c in self.consumers.values():
            if c is not consumer and c.needs_ack(seq, m.subject):
                return
        for link in self._sourcing:
            if link is not consumer and link.needs_ack(seq, m.subject):
                return
        if self.store.remove_msg(seq):
            self._schedule_write_out()

    def _schedule_write_out(self) -> None:
        """A removal caused by a plain ack reaches the OS at the end of this loop pass (it
        survives a process crash) and is synced with the next commit. An ack-sync asks for
        durability itself through after_durable(); an fsync per ack batch cost more CPU than
        the rest of the eventing path together."""
        if not self._write_out_scheduled and not self.closed:
            self._write_out_scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._write_out_scheduled = False
        if not self.closed:
            self.store.write_out()

    # ------------------------------------------------------------------ API operations

    def info(self, deleted_details: bool = False, subjects_filter: str = "",
             subjects: dict[str, int] | None = None, dynamic_metadata: bool = True) -> dict[str, Any]:
        """StreamInfo; `subjects` is the subject detail when the caller counted it already
        (in slices, fair.py). `dynamic_metadata`: the config's metadata also gets the server's
        version and API level, as nats-server's create, update and info answers have (its list
        answers carry the stored config only)."""
        st = self.store.state(deleted=deleted_details)
        if subjects_filter and subjects is None:
            subjects = {s: ss.msgs for s, ss in self.store.subjects_state(subjects_filter).items()}
        out: dict[str, Any] = {
            "config": (with_dynamic_metadata(self.config.to_dict(), VERSION) if dynamic_metadata
                       else self.config.to_dict()),
            "created": format_rfc3339(self.created),
            "state": state_to_dict(st, len(self.consumers), subjects),
        }
        if self.jsa.js.domain:
            out["domain"] = self.jsa.js.domain
        if self._links:
            if self.config.mirror:
                out["mirror"] = self._links[0].info()
            else:
                out["sources"] = [link.info() for link in self._links]
        out["ts"] = format_rfc3339(self.clock())
        return out

    def get_msg(self, seq: int = 0, last_by_subj: str = "", next_by_subj: str = "") -> StoredMsg | None:
        store = self.store
        if last_by_subj:
            return store.load_last_msg(last_by_subj)
        if next_by_subj:
            return store.load_next_msg(next_by_subj, seq)
        if seq:
            return store.load_msg(seq)
        return None

    def seq_from_time(self, ts: int) -> int:
        """The first sequence stored at or after unix-ns ts (last_seq + 1 when none)."""
        store = self.store
        st = store.state()
        lo, hi = max(st.first_seq, 1), st.last_seq + 1
        while lo < hi:
            mid = (lo + hi) // 2
            m = store.load_next_msg("", mid)
            if m is None or m.ts >= ts:
                hi = mid
            else:
                lo = mid + 1
        m = store.load_next_msg("", lo)
        return m.seq if m is not None else st.last_seq + 1

    def delete_msg(self, seq: int, erase: bool = True) -> bool:
        if self.config.sealed:
            raise errors.stream_sealed()
        if self.config.deny_delete:
            raise errors.stream_msg_delete_failed(err="message delete not permitted")
        ok = self.store.remove_msg(seq, erase=erase)
        if ok:
            self._notify_removed(False)
        return ok

    def purge(self, filter_subject: str = "", seq: int = 0, keep: int = 0) -> int:
        if self.config.sealed:
            raise errors.stream_sealed()
        if self.config.deny_purge:
            raise errors.stream_purge_failed(err="stream purge not permitted")
        n = self.store.purge(filter_subject, seq, keep)
        first = self.store.state().first_seq
        for c in list(self.consumers.values()):
            c.on_purged(first)
        return n

    def purge_job(self, filter_subject: str = "", seq: int = 0, keep: int = 0) -> fair.Job[int]:
        """purge() cut into slices (fair.py): a purge over many messages must not hold the
        loop. Consumers hear of it once it is done."""
        if self.config.sealed:
            raise errors.stream_sealed()
        if self.config.deny_purge:
            raise errors.stream_purge_failed(err="stream purge not permitted")
        n = yield from fair.purge(self, filter_subject, seq, keep)
        first = self.store.first_seq
        for c in list(self.consumers.values()):
            c.on_purged(first)
        return n

    def update_config(self, new: StreamConfig) -> None:
        """Apply an already-validated config; resubscribe when the subjects changed."""
        old = self.config
        self.config = new
        self._refresh_fast_path()
        if not new.allow_atomic and self.atomic is not None:
            self.atomic.clear()
        if new.allow_msg_schedules and self.schedules is None and not self.closed:
            self.schedules = schedule.MsgSchedules(self)
            self.schedules.rebuild()
        if old.subjects != new.subjects and not self.closed:
            self.unsubscribe()
            self.subscribe()
        if new.max_age != old.max_age and new.max_age:
            # a lower max_age may make most of the stream due at once: expired with the limits
            self._age_due = True
        if self._age_due or new.max_msgs != old.max_msgs or new.max_bytes != old.max_bytes or (
            new.max_msgs_per_subject != old.max_msgs_per_subject
        ):
            # trimming may remove most of the stream: the API's update job does it in slices
            # (limits_job); should nobody, the next loop pass starts it
            self.limits_due = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._trim_if_due)

    def apply_limits(self) -> None:
        """Bring the stored messages within the config's limits (after recovery: a config
        edited by hand, or a crash between storing and trimming)."""
        fair.run_now(self.limits_job())

    def _trim_if_due(self) -> None:
        if self.limits_due and not self.closed:
            fair.start(self.limits_job(), self._trimmed)

    def _trimmed(self, _result: None, exc: BaseException | None) -> None:
        if exc is not None:
            log.error("stream %s: trimming to new limits failed: %s", self.name, exc)

    def limits_job(self) -> fair.Job[None]:
        """Remove what the config's message, byte and per-subject limits no longer allow, in
        slices: one pass over the stream for the per-subject limit (each subject loses its
        oldest), then the oldest messages for the stream-wide ones, then (after an update that
        lowered max_age) the messages now too old, EXPIRE_BATCH at a time."""
        self.limits_due = False
        age_due, self._age_due = self._age_due, False
        self._trimming = True
        try:
            removed = yield from self._trim()
        finally:
            self._trimming = False
        if removed:
            self._notify_removed(False)
        if age_due:
            # what the lower max_age no longer allows, a batch at a time; then the timer
            while self.expire(self.clock(), EXPIRE_BATCH) >= EXPIRE_BATCH:
                yield from fair.pause(self)
            self._arm_expiry(self.clock())

    def _trim(self) -> fair.Job[bool]:
        cfg = self.config
        store = self.store
        removed = False
        if cfg.max_msgs_per_subject > 0:
            extra: dict[str, int] = {}
            for ssubj, ss in (yield from fair.subjects_state(self, ">")).items():
                if ss.msgs > cfg.max_msgs_per_subject:
                    extra[ssubj] = ss.msgs - cfg.max_msgs_per_subject
            seq, last = store.first_seq, store.last_seq
            while extra and seq <= last:
                end = seq + fair.WINDOW - 1
                for s, subj in store.subjects_in(seq, end):
                    n = extra.get(subj)
                    if n and store.remove_msg(s):
                        removed = True
                        if n == 1:
                            del extra[subj]
                        else:
                            extra[subj] = n - 1
                seq = end + 1
                yield from fair.pause(self)
                store = self.store
        n = 0
        while store.num_msgs and ((cfg.max_msgs > 0 and store.num_msgs > cfg.max_msgs) or (
                cfg.max_bytes > 0 and store.num_bytes > cfg.max_bytes)):
            if not store.remove_msg(store.first_seq):
                break
            removed = True
            n += 1
            if n % 256 == 0:
                yield from fair.pause(self)
        return removed

    def stop(self, delete: bool = False) -> None:
        """Stop capturing, cancel timers, stop consumers, then close (or delete) the store."""
        if self.closed:
            return
        # PubAcks already queued still get their commit before the store goes away
        if self._outq or self._waiters or self._commit_scheduled:
            self.flush()
        self.closed = True
        self.unsubscribe()
        if self.atomic is not None:
            self.atomic.clear()
        if self.schedules is not None:
            self.schedules.stop()
        for link in self._links + self._sourcing:
            link.detach()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        for c in list(self.consumers.values()):
            c.stop(delete=delete)
        self.consumers.clear()
        if delete:
            self.store.delete()
        else:
            self.store.close()


class SourceLink:
    """One mirror or source of a stream, fed from another stream of the same account.

    Attached, it first catches up by reading the origin's store (in slices, so the loop stays
    responsive), then follows the origin's newly stored messages. A mirror keeps the origin's
    sequences and timestamps; a source adds `Nats-Stream-Source: <origin> <seq>` and is
    restarted from the last such header found in the target after a restart.
    """

    CATCH_UP_SLICE = 1000

    def __init__(self, target: Stream, spec: dict[str, Any], mirror: bool) -> None:
        self.target = target
        self.name: str = spec["name"]
        self.filter: str = spec.get("filter_subject") or ""
        # subject_transforms: each entry filters (src, ">" when empty) and maps (dest, the
        # subject unchanged when empty); a message matching none of them is not copied
        self.transforms: list[tuple[str, SubjectTransform | None]] = [
            (tr.get("src") or ">", SubjectTransform(tr.get("src") or ">", tr["dest"], strict=False)
             if tr.get("dest") else None)
            for tr in spec.get("subject_transforms") or ()
        ]
        self.spec_transforms: list[dict[str, str]] = [
            {"src": tr.get("src") or "", "dest": tr.get("dest") or ""} for tr in spec.get("subject_transforms") or ()
        ]
        iname = origin_index_name(spec).split(" ")
        self._hdr_tail = f"{iname[1]} {iname[2]}"  # filters and destinations, as in the iname
        self.mirror = mirror
        self.start_seq: int = spec.get("opt_start_seq") or 0
        t = spec.get("opt_start_time")
        self.start_time = parse_rfc3339(t) if t else 0
        self.origin: Stream | None = None
        self.sseq = 0  # last origin sequence handled
        self.catching_up = False
        self.last_active = 0

    def attach(self, origin: Stream) -> None:
        if self.origin is origin:
            return
        self.detach()
        self.origin = origin
        origin._sourcing.append(self)
        self.sseq = self._resume_point()
        self.catching_up = True
        asyncio.get_running_loop().call_soon(self._catch_up)

    def detach(self) -> None:
        if self.origin is not None:
            if self in self.origin._sourcing:
                self.origin._sourcing.remove(self)
            self.origin = None
        self.catching_up = False

    def _first_at_or_after(self, ts: int) -> int:
        store = self.origin.store if self.origin is not None else None
        if store is None:
            return 0
        st = store.state()
        lo, hi = st.first_seq, st.last_seq + 1
        while lo < hi:
            mid = (lo + hi) // 2
            m = store.load_next_msg("", mid)
            if m is None or m.ts >= ts:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _resume_point(self) -> int:
        tstore = self.target.store
        st = tstore.state()
        if self.mirror and st.last_seq:
            return st.last_seq
        if not self.mirror and st.msgs:
            seq = st.last_seq
            while seq >= st.first_seq:
                m = tstore.load_prev_msg(seq)
                if m is None:
                    break
                if m.hdr and b"Nats-Stream-Source:" in m.hdr:
                    # `<name> <seq>` (before transforms) or `<name> <seq> <filters> <dests> <subject>`
                    parts = _headers(m.hdr).get("Nats-Stream-Source", "").split(" ")
                    mine = parts[0] == self.name and (len(parts) < 4 or " ".join(parts[2:4]) == self._hdr_tail)
                    if mine and len(parts) > 1 and parts[1].isdigit():
                        return int(parts[1])
                seq = m.seq - 1
        if self.start_seq:
            return self.start_seq - 1
        if self.start_time:
            return self._first_at_or_after(self.start_time) - 1
        return 0

    def _catch_up(self) -> None:
        origin = self.origin
        if origin is None or not self.catching_up or self.target.closed or origin.closed:
            return
        store = origin.store
        # several transform filters: read everything and skip what none of them matches
        filt = self.transforms[0][0] if len(self.transforms) == 1 else "" if self.transforms else self.filter
        for _ in range(self.CATCH_UP_SLICE):
            m = store.load_next_msg(filt, self.sseq + 1)
            if m is None:
                # everything up to the origin's end was read: what was filtered out is no lag
                self.sseq = max(self.sseq, store.last_seq)
                self.catching_up = False
                return
            if not self.matches(m.subject):
                self.sseq = m.seq
                continue
            if not self._apply(m.seq, m.subject, m.hdr, m.data, m.ts):
                return  # refused: _apply scheduled the retry
        asyncio.get_running_loop().call_soon(self._catch_up)

    def matches(self, subject: str) -> bool:
        if self.transforms:
            return any(subject_matches(f, subject) for f, _ in self.transforms)
        return not self.filter or subject_matches(self.filter, subject)

    def needs_ack(self, seq: int, subject: str) -> bool:
        return seq > self.sseq and self.matches(subject)

    def on_stored(self, seq: int, subject: str, hdr: bytes, payload: bytes, ts: int) -> None:
        """The origin stored a message (live mode; during catch-up the reader will see it)."""
        if self.catching_up:
            return
        if not self.matches(subject):
            if seq == self.sseq + 1:
                self.sseq = seq  # not ours to copy: it is no lag either
            return
        self._apply(seq, subject, hdr, payload, ts)

    RETRY_DELAY = 1.0  # seconds before a link refused by its target's limits tries again
    def _apply(self, seq: int, subject: str, hdr: bytes, payload: bytes, ts: int) -> bool:
        """Copy one message; False when the target refused it (the link then stalls and
        retries from this message, as nats-server's source consumers do)."""
        if seq <= self.sseq:
            return True
        if self._copy(seq, subject, hdr, payload, ts) < 0:
            self.catching_up = True
            asyncio.get_running_loop().call_later(self.RETRY_DELAY, self._catch_up)
            return False
        self.sseq = seq
        self.last_active = self.target.clock()
        origin = self.origin
        if origin is not None and origin.config.retention != "limits":
            # copied: on interest/workqueue origins that counts as this reader's ack
            origin.ack_msg(seq, self)
        return True

    def _copy(self, seq: int, subject: str, hdr: bytes, payload: bytes, ts: int) -> int:
        orig = subject
        for filt, tr in self.transforms:
            if subject_matches(filt, subject):
                subject = tr.match(subject) or subject if tr is not None else subject
                break
        if self.mirror:
            return self.target.ingest_sourced(subject, hdr, payload, ts, mirror_seq=seq)
        if hdr and b"Nats-Stream-Source:" in hdr:
            lines = [ln for ln in hdr.split(b"\r\n") if not ln.startswith(b"Nats-Stream-Source:")]
            hdr = b"\r\n".join(lines)
            if not hdr.endswith(b"\r\n\r\n"):
                hdr = hdr.rstrip(b"\r\n") + b"\r\n\r\n"
        base = hdr[:-2] if hdr.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
        # nats-server's layout without its trailing server identity
        hdr = base + f"Nats-Stream-Source: {self.name} {seq} {self._hdr_tail} {orig}\r\n\r\n".encode()
        return self.target.ingest_sourced(subject, hdr, payload, ts)

    def info(self) -> dict[str, Any]:
        lag = 0
        if self.origin is not None:
            lag = max(0, self.origin.store.state().last_seq - self.sseq)
        active = self.target.clock() - self.last_active if self.last_active else -1
        out: dict[str, Any] = {"name": self.name, "lag": lag, "active": active}
        if self.filter:
            out["filter_subject"] = self.filter
        if self.spec_transforms:
            out["subject_transforms"] = [dict(tr) for tr in self.spec_transforms]
        return out
