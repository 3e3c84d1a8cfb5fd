"""The file stream store: append-only segment files, group commit, crash recovery.

Owns one stream's `msgs/` directory:

    msgs/00000001.seg   records, appended; a new segment starts past `block_size`
    msgs/00000001.idx   that segment's seq -> offset index and same-subject links, written
                        when the segment is sealed (and for the tail at clean close); an index
                        holds facts about records only, never about deletions
    msgs/index.snap     snapshot of the stream state (counts, per-subject table, interior
                        deletes, TTL deadlines) as of a log position; written when a segment is
                        sealed or dropped and at clean close

A record is `<IBQqqHI` (length, kind, seq, ts ns, ttl ns, subject len, header len), then subject,
header block, payload, and a CRC32 of all of that. Kinds: a message; a tombstone (seq removed,
carrying its subject and size so replay can fix the per-subject table without reading it back);
a skip (last_seq advanced); a compact (every seq below it is gone, and the last_seq then); an
erased message (payload zeroed in place). In memory each segment keeps an `array('Q')` of record
offsets, with a high bit marking deleted sequences, and an `array('I')` with each message's
distance back to the previous message on its subject (so a subject's next-oldest message is a
few steps away when its oldest is removed, as in every KV update with history). Memory thus
grows by 12 bytes per message plus the per-subject table, never by a Python object per message.
A sealed segment that is mostly removed messages is rewritten without them; the oldest segment
is dropped whole once every message in it is gone.

Durability: records are written to the OS from the loop thread; `commit(on_durable)`, which the
stream calls once per loop iteration, writes them out and a writer thread fdatasyncs everything
queued with one call, then runs the callbacks on the loop (a lone small commit syncs on the loop
thread instead, see _INLINE). (Measured: the loop's one pwrite per batch costs about
0.07 us per 128 B message, under 5% of store+commit, so handing the write itself to the thread
would not pay for the buffer hand-off and for reading unwritten records across threads.) With `sync_interval_s` the callbacks run once the data is
with the OS and the thread syncs every interval (what nats-server does by default; a power loss
may then lose up to one interval of acknowledged messages, a process crash loses nothing).

Recovery: load the snapshot and every segment index, then scan only what follows the snapshot's
position. A short or garbled record at the end is truncated and reported as lost; a record in
the middle whose checksum fails is skipped and reported, and the records after it are kept.
The tail's file is preallocated ahead of its records (_PREALLOC_MIN), so after a crash it goes
on with zeros: zeros from a record boundary to the file's end are its end, not damage (no record
starts with a zero length); sealing a segment and a clean close give the space back.
Must not know about streams, consumers or the network.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import heapq
import logging
import marshal
import os
import struct
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Literal, overload
from zlib import crc32

from pyjetstream import loopstats
from pyjetstream.jetstream.store._core import Meta, StoreCore
from pyjetstream.jetstream.store._sync import (
    FILE_MODE,
    Callbacks,
    Syncer,
    atomic_write,
    make_dirs,
    run_callbacks,
)
from pyjetstream.jetstream.store.base import (
    MAX_SEQ,
    ErrSeqExhausted,
    ErrStoreClosed,
    LostData,
    StoredMsg,
    StoreError,
    new_msg,
)

_tuple_new = tuple.__new__  # new_msg inlined where every delivery passes

log = logging.getLogger("pyjetstream.store")

_HDR = struct.Struct("<IBQqqHI")
HS = _HDR.size
_pack_hdr = _HDR.pack
_unpack_hdr = _HDR.unpack_from
_CRC = struct.Struct("<I")
_pack_crc = _CRC.pack
_unpack_crc = _CRC.unpack_from
_LEN = struct.Struct("<I")
_SLEN_AT = 29  # offset of the little-endian subject length within a record header

K_MSG, K_DEL, K_SKIP, K_COMPACT, K_ERASED, K_MSGZ = 1, 2, 3, 4, 5, 6
_KINDS = frozenset((K_MSG, K_DEL, K_SKIP, K_COMPACT, K_ERASED, K_MSGZ))
_MSG_KINDS = (K_MSG, K_MSGZ)
# A compressed message (K_MSGZ, stream `compression: s2`): the header's header-length field is
# 0, the subject follows as in K_MSG, then the uncompressed header and payload lengths and the
# Snappy block of header + payload. The checksum covers the stored (compressed) bytes, so
# recovery's scan never decompresses. Counts and sizes stay those of the uncompressed message.
_ZSUB = struct.Struct("<II")
_MIN_Z = 64  # smaller bodies are stored plain: the block overhead would eat any gain
_Z_ALWAYS = False  # tests set it (and _MIN_Z = 0) so that every message takes the K_MSGZ path
_MAX_REC = 1 << 30

DELBIT = 1 << 63
NONE = (1 << 64) - 1  # a sequence with no record in this segment (a skip)
_MAX_BACK = 1 << 32
_MAX_PAD = 4096  # larger sequence gaps start a new segment instead of padding the index
_CHUNK = 64 * 1024
_SCAN_CHUNK = 1 << 20
_WBUF_MAX = 1 << 20  # hand buffered records to the OS once this much is pending
# The tail segment's file is allocated ahead of its records (posix_fallocate): an fdatasync
# after an append that grows the file must also commit the new size, one into allocated space
# need not (measured on this disk: 175 against 122 us p50 for a 160-byte append). The step
# doubles with the segment from _PREALLOC_MIN up to _PREALLOC_MAX, so a small stream costs
# 64 KiB of disk, not a whole block. Recovery reads the zeros past the last record as the end.
_PREALLOC_MIN = 64 * 1024
_PREALLOC_MAX = 1 << 20
_MIN_REWRITE = 4096  # smaller segments are not worth reclaiming
# Sealed segments keep a file descriptor only while recently read: a long-lived store can have
# thousands of segments, and the process's descriptor limit is shared with every client socket.
_MAX_OPEN = 64

_IDX_MAGIC = b"PJIDX02\n"
_IDX_HDR = struct.Struct("<QQQI")  # first seq, count, bytes of the segment covered, crc of offsets
_SNAP_MAGIC = b"PJSNAP1\n"

# Over the little-endian bytes of an offset array, byte 7 of each entry is 0x80 for a deleted
# message (DELBIT | offset < 2**48) and 0xFF for NONE; these tables let C code find them.
_T_DEL = bytes(1 if b == 0x80 else 0 for b in range(256))
_T_DEAD = bytes(1 if b >= 0x80 else 0 for b in range(256))
# Record kinds as 1, every other byte as 0: a search for the next record after damage.
_T_KIND = bytes(1 if b in _KINDS else 0 for b in range(256))

DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
# Where a commit's fdatasync runs (measured in docs/design.md, "Durable sync publish"): on the
# loop thread when no other client was read from since the last commit (the loop would hold
# them up: request/reply beside a sync publisher lost a third of its rate when every small
# commit synced on the loop), nothing of this store is in flight on the writer thread, the commit is
# small (a lone publisher awaiting its PubAck: the two thread hand-offs cost ~45 us of a
# ~300 us round trip) and no sync has been slow lately; otherwise on the writer thread, which
# leaves the loop free to read the next batch meanwhile (pipelined publishers, a slow disk).
# PYJETSTREAM_SYNC_MODE=thread always hands off (benchmarks compare the two; bench/sync_modes.py).
_INLINE = os.environ.get("PYJETSTREAM_SYNC_MODE", "inline") != "thread"
_INLINE_MAX_S = 0.001  # a recent sync slower than this (Syncer.recent): a busy disk, keep the loop free
_INLINE_MAX_BYTES = 16 * 1024  # a larger commit is pipelined traffic: overlap its sync


def _cramjam() -> ModuleType:
    # imported on first use: most servers never compress, and start-up time matters (issue 14)
    import cramjam

    return cramjam


def _unz(buf: bytes | bytearray, q: int, end: int) -> tuple[bytes, bytes]:
    """Header and payload of the K_MSGZ body at buf[q:end] (q at the length pair)."""
    hlen, dlen = _ZSUB.unpack_from(buf, q)
    cj = _cramjam()
    try:
        raw = bytes(cj.snappy.decompress_raw(bytes(buf[q + _ZSUB.size:end])))
    except cj.DecompressionError as e:  # only a record whose checksum holds gets here
        raise ValueError(f"undecodable compressed record: {e}") from None
    if len(raw) != hlen + dlen:
        raise ValueError("compressed record decodes to the wrong length")
    return raw[:hlen], raw[hlen:]


def _zsize(buf: bytes | bytearray, q: int, slen: int) -> int:
    """msg_size of a K_MSGZ record whose length pair is at q."""
    hlen, dlen = _ZSUB.unpack_from(buf, q)
    return slen + hlen + dlen + 4 + (30 if hlen else 26)


class _Seg:
    __slots__ = ("no", "path", "fd", "first", "next", "offs", "prev", "size", "ndel", "written", "alloc")

    def __init__(self, no: int, path: str, fd: int) -> None:
        self.no = no
        self.path = path
        self.fd = fd
        self.first = 0  # seq of offs[0]; 0 while the segment holds no message
        self.next = 0  # first + len(offs)
        self.offs = array("Q")
        # Per message, how far back the previous message on the same subject is (0: none or
        # unknown; 4 bytes, so a gap of 2**32 or more is "unknown"). Lets a subject's new first
        # be found by walking back from its last instead of scanning.
        self.prev = array("I")
        self.size = 0  # bytes in the file (records still buffered in memory are not counted)
        self.ndel = 0  # removed messages whose records are still in the file
        self.written = False  # written through this fd since it was last synced by an eviction
        self.alloc = 0  # the tail's file length, allocated past `size` (0: not preallocated)


class ErrStoreInUse(StoreError):
    """Another open store (in this or another process) owns the directory."""


class _Rescan(Exception):
    """The snapshot disagrees with the segments: recover again from the records alone."""


def _top_bytes(offs: array, i0: int, i1: int) -> bytes:
    return offs[i0:i1].tobytes()[7::8]


class FileStore(StoreCore):
    def __init__(
        self,
        directory: str,
        sync_always: bool = True,
        sync_interval_s: float | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        first_seq: int = 1,
        compression: str = "none",
    ) -> None:
        super().__init__(first_seq)
        self._compress = compression == "s2"  # new records only: a store may hold both kinds
        self._dir = directory
        self._block_size = max(block_size, 4096)
        if sync_interval_s is not None and sync_interval_s > 0:
            sync_always = False
        elif not sync_always:
            sync_interval_s = 120.0  # nats-server's default sync_interval
        self._sync_always = sync_always
        self._io_lock = threading.Lock()
        self._syncer = Syncer(f"store-sync:{os.path.basename(directory)}",
                              None if sync_always else sync_interval_s, self._io_lock)
        self._wbuf = bytearray()
        self._inflight = 0  # commits handed to the writer thread whose callbacks have not run
        self._since_commit = 0  # bytes handed to the OS since the last commit
        self._reads_at_commit = loopstats.reads  # at the last commit (at creation: none yet)
        self._cbs: Callbacks = []  # kept past a commit that failed, for the next one (or close)
        self._dirty: set[int] = set()
        self._segs: list[_Seg] = []
        # dropped segments whose files wait for their compact record to be durable
        self._doomed: list[list[_Seg]] = []
        self._firsts: list[int] = []  # first seq of each segment in _isegs, for bisect
        self._isegs: list[_Seg] = []  # segments holding at least one message
        self._hit: _Seg | None = None
        self._lru: OrderedDict[_Seg, None] = OrderedDict()  # sealed segments with an open fd
        self._rewrite_due: list[_Seg] = []
        self._rc_seg: _Seg | None = None
        self._rc_off = 0
        self._rc_buf: bytes | bytearray = b""
        self._prealloc = True  # off once the file system refuses fallocate
        make_dirs(directory)
        # One writer per directory: a second server (or a leaked store object) appending to the
        # same segments would interleave records. The kernel drops the lock when we die.
        self._lockfd = os.open(os.path.join(directory, "LOCK"), os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._lockfd)
            raise ErrStoreInUse(f"store directory {directory} is in use by another store") from e
        self._dirfd = os.open(directory, os.O_RDONLY)
        self._first_seq_opt = self._first
        try:
            self._recover()
        except BaseException:
            os.close(self._lockfd)
            raise

    # ================================================================ segments and IO helpers

    def _seg_path(self, no: int, ext: str) -> str:
        return os.path.join(self._dir, f"{no:08d}.{ext}")

    def _open_seg(self, no: int, create: bool) -> _Seg:
        path = self._seg_path(no, "seg")
        # No O_APPEND: on Linux it would make the pwrite of an erase land at the end of the file.
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, FILE_MODE)
        seg = _Seg(no, path, fd)
        if create:
            self._dirty.add(self._dirfd)  # the new name must be durable with its first commit
        return seg

    def _fd(self, seg: _Seg) -> int:
        """The segment's descriptor, reopening a sealed one that was closed to save descriptors."""
        if seg.fd >= 0:
            if seg in self._lru:
                self._lru.move_to_end(seg)
            return seg.fd
        seg.fd = os.open(seg.path, os.O_RDWR)
        self._track(seg)
        return seg.fd

    def _track(self, seg: _Seg) -> None:
        """Count a sealed segment's open descriptor against _MAX_OPEN, closing the coldest."""
        self._lru[seg] = None
        self._lru.move_to_end(seg)
        while len(self._lru) > _MAX_OPEN:
            old, _ = self._lru.popitem(last=False)
            self._close_seg_fd(old)

    def _close_seg_fd(self, seg: _Seg) -> None:
        if seg.fd < 0:
            return
        self._lru.pop(seg, None)
        with self._io_lock:
            if seg.written:
                # The writer thread may still hold this descriptor number for a later sync;
                # once closed it could name another file, so make the data durable here.
                os.fdatasync(seg.fd)
                seg.written = False
            self._syncer.forget(seg.fd)
            self._dirty.discard(seg.fd)
            os.close(seg.fd)
            seg.fd = -1
        if self._rc_seg is seg:
            self._rc_seg = None

    def _reindex(self) -> None:
        self._isegs = [s for s in self._segs if s.offs]
        self._firsts = [s.first for s in self._isegs]
        self._hit = None

    def _locate(self, seq: int) -> _Seg | None:
        seg = self._hit
        if seg is not None and seg.first <= seq < seg.next:
            return seg
        i = bisect_right(self._firsts, seq) - 1
        if i < 0:
            return None
        seg = self._isegs[i]
        if seq < seg.next:
            self._hit = seg
            return seg
        return None

    def _segs_from(self, seq: int) -> list[_Seg]:
        i = bisect_right(self._firsts, seq) - 1
        return self._isegs[max(i, 0):]

    @property
    def _tail(self) -> _Seg:
        return self._segs[-1]

    def _write_out(self) -> None:
        """Hand buffered records to the OS (no fsync)."""
        wbuf = self._wbuf
        if not wbuf:
            return
        tail = self._segs[-1]
        # immutable when it will serve as the read cache (slices of it become messages)
        data = bytes(wbuf) if len(wbuf) <= _CHUNK else wbuf
        start = tail.size
        n = 0
        total = len(data)
        if start + total > tail.alloc and self._prealloc:
            self._preallocate(tail, start + total)
        with memoryview(data) as view:
            while n < total:
                n += os.pwrite(tail.fd, view[n:], start + n)
        tail.size += total
        self._since_commit += total
        tail.written = True
        self._wbuf = bytearray()
        self._dirty.add(tail.fd)
        if data is not wbuf:
            # What was just written is what consumers read next (a live consumer delivers
            # each message right after it is stored): keep it as the read cache, or every
            # such read would pread a chunk that ends at the file's end and miss the next.
            self._rc_seg, self._rc_off, self._rc_buf = tail, start, data

    def _preallocate(self, seg: _Seg, end: int) -> None:
        """Allocate the tail's file past `end`, so that syncing the records written up to there
        commits no change of file size (see _PREALLOC_MIN)."""
        step = min(max(seg.alloc, _PREALLOC_MIN), _PREALLOC_MAX)
        new = (min(end + step, self._block_size) + 4095) & ~4095
        if new <= end:
            return  # at the block size: the segment rolls after this write
        try:
            os.posix_fallocate(seg.fd, seg.size, new - seg.size)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                self._prealloc = False
            # ENOSPC and the like: the write that follows reports what matters
            log.debug("store %s: preallocating %s failed: %s", self._dir, os.path.basename(seg.path), e)
            return
        seg.alloc = new

    def _trim(self, seg: _Seg) -> None:
        """Give back a segment's preallocated space past its records (sealing, clean close)."""
        if seg.alloc > seg.size and seg.fd >= 0:
            os.ftruncate(seg.fd, seg.size)
        seg.alloc = 0

    def _append_rec(self, kind: int, seq: int, ts: int, ttl: int, sb: bytes) -> None:
        """Append a non-message record (tombstone, skip, compact) to the tail."""
        if self._segs[-1].size + len(self._wbuf) >= self._block_size:
            self._roll()
        rec = _pack_hdr(HS + len(sb) + 4, kind, seq, ts, ttl, len(sb), 0) + sb
        self._wbuf += rec
        self._wbuf += _pack_crc(crc32(rec))

    def _roll(self) -> _Seg:
        """Seal the tail and start a new segment; checkpoint the state."""
        self._write_out()
        old = self._segs[-1]
        self._trim(old)
        self._write_idx(old)
        new = self._open_seg(old.no + 1, create=True)
        self._segs.append(new)
        self._track(old)
        self._write_snapshot()
        # Rewriting moves records; callers up the stack may hold offsets into `old`, so it
        # waits for a safe point (the end of a removal, or the next group commit).
        self._rewrite_due.append(old)
        return new

    def _prepare_append(self, seq: int) -> _Seg:
        tail = self._segs[-1]
        if tail.size + len(self._wbuf) >= self._block_size:
            tail = self._roll()
        if tail.offs:
            gap = seq - tail.next
            if gap > _MAX_PAD:
                tail = self._roll()
            elif gap > 0:
                tail.offs.extend(array("Q", [NONE]) * gap)
                tail.prev.extend(array("I", [0]) * gap)
                tail.next = seq
                return tail
            else:
                return tail
        tail.first = tail.next = seq
        return tail

    # ================================================================ reading records

    def _rec_buf(self, seg: _Seg, off: int) -> tuple[bytes | bytearray, int]:
        """A buffer holding the whole record at off, and the record's position in it."""
        if off >= seg.size and seg is self._segs[-1]:
            p = off - seg.size
            (reclen,) = _LEN.unpack_from(self._wbuf, p)
            return self._wbuf[p:p + reclen], 0
        buf = self._rc_buf
        if self._rc_seg is seg:
            p = off - self._rc_off
            if 0 <= p and p + HS <= len(buf):
                (reclen,) = _LEN.unpack_from(buf, p)
                if p + reclen <= len(buf):
                    return buf, p
        fd = self._fd(seg)
        # Never past the records: the tail's file goes on with zeros (preallocated), and a
        # cached chunk holding them would hide the records later written there.
        buf = os.pread(fd, max(min(_CHUNK, seg.size - off), HS), off)
        if len(buf) < HS:
            return buf, 0
        (reclen,) = _LEN.unpack_from(buf, 0)
        if reclen > len(buf) and reclen <= _MAX_REC:
            return os.pread(fd, reclen, off), 0
        self._rc_seg = seg
        self._rc_off = off
        self._rc_buf = buf
        return buf, 0

    @overload
    def _parse(self, seg: _Seg, off: int, seq: int, full: Literal[True]) -> StoredMsg | None: ...
    @overload
    def _parse(self, seg: _Seg, off: int, seq: int, full: Literal[False]) -> Meta | None: ...

    def _parse(self, seg: _Seg, off: int, seq: int, full: bool) -> StoredMsg | Meta | None:
        buf, p = self._rec_buf(seg, off)
        try:
            reclen, kind, rseq, ts, ttl, slen, hlen = _HDR.unpack_from(buf, p)
            end = p + reclen - 4
            ok = (rseq == seq and kind in _MSG_KINDS and HS + slen + hlen + 4 <= reclen
                  and end + 4 <= len(buf) and crc32(buf[p:end]) == _CRC.unpack_from(buf, end)[0])
        except struct.error:
            ok = False
        if not ok:
            self._corrupt_on_read(seg, off, seq)
            return None
        q = p + HS
        subject = buf[q:q + slen].decode()
        if kind == K_MSGZ:
            if full:
                try:
                    hdr, data = _unz(buf, q + slen, end)
                except ValueError:
                    self._corrupt_on_read(seg, off, seq)
                    return None
                return new_msg(seq, subject, hdr, data, ts)
            return (seq, subject, _zsize(buf, q + slen, slen), ts, ttl)
        if full:
            q += slen
            return new_msg(seq, subject, bytes(buf[q:q + hlen]), bytes(buf[q + hlen:end]), ts)
        return (seq, subject, reclen - HS + (30 if hlen else 26), ts, ttl)

    def _corrupt_on_read(self, seg: _Seg, off: int, seq: int) -> None:
        log.error("store %s: record for seq %d at %s:%d fails its checksum; dropping it",
                  self._dir, seq, os.path.basename(seg.path), off)
        i = seq - seg.first
        if seg.offs[i] >= DELBIT:
            return
        seg.offs[i] = off | DELBIT
        self._add_lost([seq], 0)
        # The record cannot say which subject it had; only the totals are corrected.
        self._msgs -= 1
        if self._msgs == 0:
            self._first = self._last + 1
        elif seq == self._first:
            self._first = self._b_next_live(seq + 1, self._last) or self._last + 1
        self._append_rec(K_DEL, seq, 0, 0, b"")

    def _add_lost(self, seqs: list[int], nbytes: int) -> None:
        if self._lost is None:
            self._lost = LostData()
        self._lost.msgs.extend(seqs)
        self._lost.bytes += nbytes

    # ================================================================ core primitives

    def _b_live(self, seq: int) -> bool:
        if seq < self._first or seq > self._last:
            return False
        seg = self._locate(seq)
        return seg is not None and seg.offs[seq - seg.first] < DELBIT

    def _b_get(self, seq: int) -> StoredMsg | None:
        # The consumer read path: the common case (same segment, record in the read cache) is
        # inlined; everything else goes through _parse.
        seg = self._hit
        if seg is None or not (seg.first <= seq < seg.next):
            seg = self._locate(seq)
            if seg is None:
                return None
        off = seg.offs[seq - seg.first]
        if off >= DELBIT:
            return None
        if self._rc_seg is seg:
            buf = self._rc_buf
            p = off - self._rc_off
            if p >= 0 and p + HS <= len(buf):
                reclen, kind, rseq, ts, _ttl, slen, hlen = _unpack_hdr(buf, p)
                end = p + reclen - 4
                if end + 4 <= len(buf):
                    if rseq == seq and kind == K_MSG and crc32(buf[p:end]) == _unpack_crc(buf, end)[0]:
                        q = p + HS + slen
                        return _tuple_new(StoredMsg, (seq, buf[p + HS:q].decode(), buf[q:q + hlen],
                                                      buf[q + hlen:end], ts))
        return self._parse(seg, off, seq, True)

    def _b_iter(self, start: int, end: int) -> Iterator[Meta]:
        """Metadata of live messages, read straight from the chunk cache. Checksums are left to
        full loads: a scan only picks candidates, and a damaged record is caught when loaded."""
        start = max(start, self._first)
        for seg in self._segs_from(start):
            base = seg.first
            if base > end:
                return
            offs = seg.offs
            for i in range(max(start - base, 0), min(end - base + 1, len(offs))):
                off = offs[i]
                if off >= DELBIT:
                    continue
                buf = self._rc_buf
                p = off - self._rc_off
                if self._rc_seg is not seg or p < 0 or p + HS > len(buf):
                    buf, p = self._rec_buf(seg, off)
                    if len(buf) < p + HS:
                        continue
                reclen, kind, rseq, ts, ttl, slen, hlen = _unpack_hdr(buf, p)
                if rseq != base + i or (kind != K_MSG and kind != K_MSGZ):
                    continue
                if p + HS + slen + _ZSUB.size > len(buf):
                    buf, p = self._rec_buf(seg, off)
                subject = buf[p + HS:p + HS + slen].decode(errors="surrogateescape")
                if kind == K_MSGZ:
                    yield (rseq, subject, _zsize(buf, p + HS + slen, slen), ts, ttl)
                else:
                    yield (rseq, subject, reclen - HS + (30 if hlen else 26), ts, ttl)

    def header_candidates(self, start: int, end: int) -> list[int]:
        """Live messages in [start, end] whose record says it has headers, read from record
        headers in the chunk cache (no checksum, no decoding): after a restart the duplicate
        window is rebuilt from these, and most streams have none. Compressed records count as
        candidates, since their header length is inside the compressed part."""
        self._check_open()
        start = max(start, self._first)
        end = min(end, self._last)
        out: list[int] = []
        if start > end:
            return out
        for seg in self._segs_from(start):
            base = seg.first
            if base > end:
                break
            offs = seg.offs
            for i in range(max(start - base, 0), min(end - base + 1, len(offs))):
                off = offs[i]
                if off >= DELBIT:
                    continue
                buf = self._rc_buf
                p = off - self._rc_off
                if self._rc_seg is not seg or p < 0 or p + HS > len(buf):
                    buf, p = self._rec_buf(seg, off)
                    if len(buf) < p + HS:
                        out.append(base + i)  # unreadable here: let the full load decide
                        continue
                _reclen, kind, rseq, _ts, _ttl, _slen, hlen = _unpack_hdr(buf, p)
                if rseq != base + i or kind == K_MSGZ or hlen:
                    out.append(base + i)
        return out

    def _b_prev_same(self, seq: int) -> int:
        seg = self._locate(seq)
        if seg is None:
            return 0
        back = seg.prev[seq - seg.first]
        return seq - back if back else 0

    def _b_find(self, subject: str, start: int, end: int) -> int:
        # Compares raw subject bytes in the cached chunk: no decode, no tuple per record.
        # (Measured against bytes.find over whole chunks: slower when matches are close, as
        # they are for consumers, and no better when they are far.)
        sb = subject.encode()
        n = len(sb)
        start = max(start, self._first)
        for seg in self._segs_from(start):
            base = seg.first
            if base > end:
                return 0
            offs = seg.offs
            for i in range(max(start - base, 0), min(end - base + 1, len(offs))):
                off = offs[i]
                if off >= DELBIT:
                    continue
                buf = self._rc_buf
                p = off - self._rc_off
                if self._rc_seg is not seg or p < 0 or p + HS + n > len(buf):
                    buf, p = self._rec_buf(seg, off)
                    if len(buf) < p + HS + n:
                        continue
                if buf[p + _SLEN_AT] | (buf[p + _SLEN_AT + 1] << 8) == n and buf[p + HS:p + HS + n] == sb:
                    return base + i
        return 0

    def _b_iter_rev(self, end: int, start: int) -> Iterator[Meta]:
        start = max(start, self._first)
        i0 = bisect_right(self._firsts, end) - 1
        for k in range(i0, -1, -1):
            seg = self._isegs[k]
            base = seg.first
            if seg.next <= start:
                return
            offs = seg.offs
            for i in range(min(end - base, len(offs) - 1), max(start - base, 0) - 1, -1):
                off = offs[i]
                if off < DELBIT:
                    meta = self._parse(seg, off, base + i, False)
                    if meta is not None:
                        yield meta

    def _b_next_live(self, seq: int, end: int) -> int:
        seq = max(seq, self._first)
        seg = self._hit
        if seg is not None and seg.first <= seq < seg.next and seq <= end and seg.offs[seq - seg.first] < DELBIT:
            return seq
        for seg in self._segs_from(seq):
            base = seg.first
            if base > end:
                return 0
            offs = seg.offs
            i = max(seq - base, 0)
            stop = min(end - base + 1, len(offs))
            # Short runs of deletions are walked; long ones are searched in C.
            j = min(stop, i + 64)
            while i < j:
                if offs[i] < DELBIT:
                    return base + i
                i += 1
            if i < stop:
                k = _top_bytes(offs, i, stop).translate(_T_DEAD).find(0)
                if k >= 0:
                    return base + i + k
        return 0

    def _b_prev_live(self, seq: int, start: int) -> int:
        start = max(start, self._first)
        i0 = bisect_right(self._firsts, seq) - 1
        for k in range(i0, -1, -1):
            seg = self._isegs[k]
            base = seg.first
            if seg.next <= start:
                return 0
            offs = seg.offs
            hi = min(seq - base, len(offs) - 1)
            lo = max(start - base, 0)
            if hi < lo:
                continue
            j = _top_bytes(offs, lo, hi + 1).translate(_T_DEAD).rfind(0)
            if j >= 0:
                return base + lo + j
        return 0

    def _b_count_live(self, start: int, end: int) -> int:
        start = max(start, self._first)
        n = 0
        for seg in self._segs_from(start):
            base = seg.first
            if base > end:
                break
            i0 = max(start - base, 0)
            i1 = min(end - base + 1, len(seg.offs))
            if i1 > i0:
                n += (i1 - i0) - _top_bytes(seg.offs, i0, i1).translate(_T_DEAD).count(1)
        return n

    def _b_deleted(self) -> list[int]:
        out: list[int] = []
        first, last = self._first, self._last
        expect = first
        for seg in self._segs_from(first):
            base = seg.first
            if base > last:
                break
            if base > expect:
                out.extend(range(expect, base))
            i0 = max(first - base, 0)
            i1 = min(last - base + 1, len(seg.offs))
            tb = _top_bytes(seg.offs, i0, i1).translate(_T_DEAD)
            k = tb.find(1)
            while k >= 0:
                out.append(base + i0 + k)
                k = tb.find(1, k + 1)
            expect = max(expect, base + i1)
        if expect <= last:
            out.extend(range(expect, last + 1))
        return out

    def _deleted_marks(self) -> array:
        """Seqs flagged deleted (not gaps) in the indexes, for the snapshot."""
        out = array("Q")
        first = self._first
        for seg in self._isegs:
            if seg.next <= first:
                continue
            i0 = max(first - seg.first, 0)
            tb = _top_bytes(seg.offs, i0, len(seg.offs)).translate(_T_DEL)
            k = tb.find(1)
            while k >= 0:
                out.append(seg.first + i0 + k)
                k = tb.find(1, k + 1)
        return out

    # ================================================================ mutators

    def store_msg(self, subject: str, hdr: bytes, data: bytes, ts: int, ttl_ns: int = 0) -> int:
        if self._closed:
            raise ErrStoreClosed("store is closed")
        seq = self._last + 1
        if seq > MAX_SEQ:
            raise ErrSeqExhausted(f"stream sequence would pass {MAX_SEQ}")
        if self._lost is not None and seq in self._lost.msgs:
            # A torn tail gave this sequence back; it now names a new, intact message, so it
            # must no longer be reported lost (the report survives reopens in the snapshot).
            self._lost.msgs.remove(seq)
        tail = self._segs[-1]
        wbuf = self._wbuf
        if tail.next != seq or tail.size + len(wbuf) >= self._block_size:
            tail = self._prepare_append(seq)
            wbuf = self._wbuf
        if hdr is None:
            hdr = b""
        sb = subject.encode()
        z = None
        if self._compress and len(hdr) + len(data) >= _MIN_Z:
            z = bytes(_cramjam().snappy.compress_raw(hdr + data))
            if len(z) + _ZSUB.size >= len(hdr) + len(data) and not _Z_ALWAYS:
                z = None  # incompressible: kept plain
        if z is None:
            rec = b"".join((
                _pack_hdr(HS + len(sb) + len(hdr) + len(data) + 4, K_MSG, seq, ts, ttl_ns, len(sb), len(hdr)),
                sb, hdr, data))
            size = len(rec) + 4 - HS + (30 if hdr else 26)  # == msg_size(subject, hdr, data)
        else:
            rec = b"".join((
                _pack_hdr(HS + len(sb) + _ZSUB.size + len(z) + 4, K_MSGZ, seq, ts, ttl_ns, len(sb), 0),
                sb, _ZSUB.pack(len(hdr), len(data)), z))
            size = len(sb) + len(hdr) + len(data) + 4 + (30 if hdr else 26)
        ss = self._subj.get(subject)
        tail.offs.append(tail.size + len(wbuf))
        # A stale (negative) last means "unknown": store no link rather than a wrong one.
        tail.prev.append(seq - ss[2] if ss is not None and 0 < ss[2] and seq - ss[2] < _MAX_BACK else 0)
        tail.next = seq + 1
        if len(tail.offs) == 1:
            self._reindex()
        wbuf += rec
        wbuf += _pack_crc(crc32(rec))
        # Accounting, inlined from StoreCore._acct_add: this is the publish hot path.
        if self._msgs == 0:
            self._first = seq
        self._msgs += 1
        self._bytes += size
        self._last = seq
        self._last_ts = ts
        self._subj[subject] = (1, seq, seq) if ss is None else (ss[0] + 1, ss[1], seq)
        if ttl_ns > 0:
            heapq.heappush(self._ttl_heap, (ts + ttl_ns, seq))
        if len(wbuf) >= _WBUF_MAX:
            self._write_out()
        return seq

    def msg_size(self, subject: str, hdr: bytes, data: bytes) -> int:
        """What a message adds to state().bytes: nats-server's file-store record size (length,
        seq, ts and subject length: 22 bytes; an 8-byte hash; 4 more for a header length)."""
        n = 22 + len(subject.encode()) + len(data) + 8
        return n + 4 + len(hdr) if hdr else n

    def skip_msgs(self, seq: int, num: int) -> None:
        self._skip_check(seq, num)
        self._acct_skip(seq + num - 1)
        self._append_rec(K_SKIP, seq + num - 1, 0, 0, b"")

    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        self._check_open()
        if seq < self._first or seq > self._last:
            return False
        seg = self._locate(seq)
        if seg is None:
            return False
        i = seq - seg.first
        off = seg.offs[i]
        if off >= DELBIT:
            return False
        meta = self._parse(seg, off, seq, False)
        if meta is None:
            return True  # it was corrupt and has just been dropped as lost
        _s, subject, size, _ts, _ttl = meta
        # State first, record second: appending may seal the segment and snapshot the state,
        # and the snapshot must already include this removal (replay then finds it done).
        seg.offs[i] = off | DELBIT
        seg.ndel += 1
        self._acct_remove(seq, subject, size)
        self._append_rec(K_DEL, seq, 0, size, subject.encode())
        if erase:
            self._erase(seg, off)
        self._drop_dead_segments()
        if seg.ndel * 2 > len(seg.offs):
            self._maybe_rewrite(seg)
        if self._rewrite_due:
            self._run_rewrites()
        return True

    def _tombstone_obsolete(self, seq: int, rewriting: _Seg) -> bool:
        """A tombstone matters only while its message's record still exists on disk."""
        if seq < self._first:
            return True
        xs = self._locate(seq)
        if xs is None or xs is rewriting:
            return True  # gone already, or dropped by this very rewrite
        return xs.offs[seq - xs.first] == NONE

    def _run_rewrites(self) -> None:
        due, self._rewrite_due = self._rewrite_due, []
        for seg in due:
            self._maybe_rewrite(seg)

    def _maybe_rewrite(self, seg: _Seg) -> None:
        """Reclaim a sealed segment that is mostly removed messages by copying what is still
        needed (live messages and every non-message record) to a new file put in its place.

        Tombstones are kept while the record they remove still exists on disk (a full rescan
        would otherwise bring the message back). The state is
        snapshotted first, so a crash at any point leaves either the old file or the new one,
        each consistent with that snapshot.
        """
        if (seg is self._segs[-1] or seg not in self._segs or seg.ndel * 2 <= len(seg.offs)
                or seg.size < _MIN_REWRITE):
            return
        if self._isegs and seg is self._isegs[0]:
            return  # the oldest segment: removals from the front (work queues, limits) drop it whole
        data = os.pread(self._fd(seg), seg.size, 0)
        out = bytearray()
        offs = array("Q", [NONE]) * len(seg.offs)
        first = self._first
        pos = 0
        while pos < len(data):
            if pos + HS > len(data):
                return  # damage left in place by recovery: not ours to reshape
            reclen, kind, seq, _ts, _ttl, _sl, _hl = _HDR.unpack_from(data, pos)
            if kind not in _KINDS or reclen < HS + 4 or pos + reclen > len(data):
                return
            if kind == K_MSG or kind == K_ERASED or kind == K_MSGZ:
                i = seq - seg.first
                if not (0 <= i < len(offs) and seg.offs[i] == pos and seq >= first):
                    pos += reclen
                    continue
                if crc32(data[pos:pos + reclen - 4]) != _CRC.unpack_from(data, pos + reclen - 4)[0]:
                    return  # let the read path find and report it
                offs[i] = len(out)
            elif kind == K_DEL and self._tombstone_obsolete(seq, seg):
                pos += reclen
                continue
            out += data[pos:pos + reclen]
            pos += reclen
        self._write_snapshot()
        tmp = seg.path + ".rewrite"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, out)
            os.fdatasync(fd)
        except OSError:
            os.close(fd)
            os.unlink(tmp)
            raise
        try:
            os.unlink(self._seg_path(seg.no, "idx"))
        except FileNotFoundError:
            pass
        os.replace(tmp, seg.path)
        os.fsync(self._dirfd)
        self._close_seg_fd(seg)
        seg.fd = fd
        self._track(seg)
        lo = 0
        while lo < len(offs) and offs[lo] == NONE:
            lo += 1
        hi = len(offs)
        while hi > lo and offs[hi - 1] == NONE:
            hi -= 1
        seg.offs = offs[lo:hi]
        seg.prev = seg.prev[lo:hi]
        seg.first = seg.first + lo if hi > lo else 0
        seg.next = seg.first + len(seg.offs) if hi > lo else 0
        seg.size = len(out)
        seg.ndel = 0
        self._rc_seg = None
        self._reindex()
        self._write_idx(seg)

    def _erase(self, seg: _Seg, off: int) -> None:
        # The tombstone must reach the OS before the record is overwritten, so that a crash in
        # between cannot leave an erased-looking record that nothing marks as removed.
        self._write_out()
        buf, p = self._rec_buf(seg, off)
        reclen, _k, seq, ts, ttl, slen, hlen = _HDR.unpack_from(buf, p)
        sb = bytes(buf[p + HS:p + HS + slen])
        body = _pack_hdr(reclen, K_ERASED, seq, ts, ttl, slen, hlen) + sb + bytes(reclen - HS - slen - 4)
        rec = body + _pack_crc(crc32(body))
        fd = self._fd(seg)
        with self._io_lock:
            os.pwrite(fd, rec, off)
        seg.written = True
        self._rc_seg = None
        self._dirty.add(fd)

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        self._check_open()
        floor, seqs = self._purge_plan(subject, seq, keep)
        if floor:
            return self.compact(floor)
        n = 0
        for s in seqs:
            if self.remove_msg(s):
                n += 1
        return n

    def compact(self, seq: int) -> int:
        self._check_open()
        if seq <= self._first:
            return 0
        n = self._acct_compact(seq)
        self._append_rec(K_COMPACT, seq, self._last, 0, b"")
        if self._msgs == 0 and self._segs[-1].offs:
            self._roll()  # so the old tail, now all dead, can be dropped like any sealed segment
        self._drop_dead_segments()
        return n

    def _drop_dead_segments(self) -> None:
        segs = self._segs
        first = self._first
        dead = 0
        while dead < len(segs) - 1 and (not segs[dead].offs or segs[dead].next <= first):
            dead += 1
        if not dead:
            return
        # Record where the stream starts and ends before the files go, durably: after a crash
        # the remaining segments alone must still give the right first and last sequence.
        # The segments leave the store now; their files are unlinked only once that record is
        # on disk. Until then a crash (or a restart) finds them and skips them by the record,
        # as it would after a crash between the sync and the unlink.
        self._append_rec(K_COMPACT, first, self._last, 0, b"")
        self._write_out()
        doomed = segs[:dead]
        del segs[:dead]
        self._rc_seg = None
        self._reindex()
        self._doomed.append(doomed)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            with self._io_lock:
                os.fdatasync(segs[-1].fd)
            self._unlink_doomed(doomed)
        else:
            # The sync runs on the writer thread: inline, it held the loop (every connection)
            # for up to ~170 ms when an interest stream emptied a segment under eventing load.
            self._syncer.submit({segs[-1].fd}, loop, [lambda: self._unlink_doomed(doomed)])

    def _unlink_doomed(self, doomed: list[_Seg]) -> None:
        """Remove dropped segments' files; the compact record that outlives them is durable."""
        if not any(d is doomed for d in self._doomed):
            return  # done already (close() got there first)
        self._doomed = [d for d in self._doomed if d is not doomed]
        for seg in doomed:
            seg.written = False  # its data is being deleted; no need to sync it first
            self._close_seg_fd(seg)
            with self._io_lock:
                for ext in ("seg", "idx"):
                    try:
                        os.unlink(self._seg_path(seg.no, ext))
                    except FileNotFoundError:
                        pass
        if not self._closed:
            self._write_snapshot()

    # ================================================================ commit / durability

    def commit(self, on_durable: Callable[[], None]) -> None:
        # Commits at once: the caller (Stream.flush) already gathers a whole loop pass into one
        # call, and deferring again cost a lone publisher a loop pass before its sync.
        if self._closed:
            raise ErrStoreClosed("store is closed")
        self._cbs.append(on_durable)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            # No event loop (tools, tests, shutdown paths): write, sync and call back inline.
            loop = None
        self._do_commit(loop)

    def _do_commit(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if self._rewrite_due:
            self._run_rewrites()
        self._write_out()
        cbs, self._cbs = self._cbs, []
        fds, self._dirty = self._dirty, set()
        nbytes, self._since_commit = self._since_commit, 0
        reads = loopstats.reads
        others = reads - self._reads_at_commit > 1  # more than the publisher's own PUB arrived
        self._reads_at_commit = reads
        if not self._sync_always:
            if fds:
                self._syncer.mark_dirty(fds)
            run_callbacks(cbs)
        elif loop is None:
            with self._io_lock:
                for fd in fds:
                    os.fdatasync(fd)
            run_callbacks(cbs)
        elif fds or cbs:
            if (_INLINE and not others and not self._inflight and nbytes <= _INLINE_MAX_BYTES
                    and self._syncer.recent < _INLINE_MAX_S):
                if self._syncer.sync_now(fds):
                    run_callbacks(cbs)
                else:
                    log.error("dropping %d acknowledgements: data could not be made durable", len(cbs))
                return
            self._inflight += 1
            cbs.append(self._landed)
            self._syncer.submit(fds, loop, cbs)

    def _landed(self) -> None:
        self._inflight -= 1

    def write_out(self) -> None:
        """Hand everything stored so far to the OS without syncing: it then survives a crash
        of this process (not of the machine); the next commit() syncs it."""
        if not self._closed:
            self._write_out()

    def flush(self) -> None:
        """Write and fsync everything stored so far, inline (tests, shutdown, tools)."""
        self._check_open()
        self._write_out()
        fds, self._dirty = self._dirty, set()
        with self._io_lock:
            for fd in fds:
                os.fdatasync(fd)

    # ================================================================ index and snapshot files

    def _write_idx(self, seg: _Seg) -> None:
        offs = seg.offs
        tb = _top_bytes(offs, 0, len(offs)).translate(_T_DEL)
        if tb.find(1) >= 0:
            offs = array("Q", offs)
            k = tb.find(1)
            while k >= 0:
                offs[k] &= ~DELBIT
                k = tb.find(1, k + 1)
        raw = offs.tobytes() + seg.prev.tobytes()
        data = _IDX_MAGIC + _IDX_HDR.pack(seg.first, len(offs), seg.size, crc32(raw)) + raw
        atomic_write(self._seg_path(seg.no, "idx"), data, fsync=False)

    def _load_idx(self, seg: _Seg, size: int) -> int:
        """Fill seg.offs from its index file; returns how many bytes of the segment it covers."""
        path = self._seg_path(seg.no, "idx")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0
        n0 = len(_IDX_MAGIC) + _IDX_HDR.size
        if len(data) < n0 or not data.startswith(_IDX_MAGIC):
            return 0
        first, count, covered, crc = _IDX_HDR.unpack_from(data, len(_IDX_MAGIC))
        raw = memoryview(data)[n0:]  # no copies: these files are 12 bytes per message
        if len(raw) != count * 12 or crc32(raw) != crc or covered > size:
            log.warning("store %s: ignoring damaged index %s", self._dir, os.path.basename(path))
            return 0
        seg.offs = array("Q")
        seg.offs.frombytes(raw[:count * 8])
        seg.prev = array("I")
        seg.prev.frombytes(raw[count * 8:])
        raw.release()
        seg.first = first if count else 0
        seg.next = first + count if count else 0
        return covered

    def _write_snapshot(self) -> None:
        tail = self._segs[-1]
        snap = {
            "pos": (tail.no, tail.size + len(self._wbuf)),
            "segs": [s.no for s in self._segs],
            "first": self._first,
            "last": self._last,
            "last_ts": self._last_ts,
            "msgs": self._msgs,
            "bytes": self._bytes,
            "subj": self._subj,
            "del": self._deleted_marks().tobytes(),
            "ttl": [e for e in self._ttl_heap if self._b_live(e[1])],
            "lost": (self._lost.msgs, self._lost.bytes) if self._lost else None,
        }
        self._write_out()
        data = marshal.dumps(snap)
        atomic_write(os.path.join(self._dir, "index.snap"),
                     _SNAP_MAGIC + _CRC.pack(crc32(data)) + data, fsync=False)

    def _read_snapshot(self) -> dict | None:
        path = os.path.join(self._dir, "index.snap")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        n0 = len(_SNAP_MAGIC) + 4
        if not raw.startswith(_SNAP_MAGIC) or len(raw) < n0 or crc32(raw[n0:]) != _CRC.unpack_from(raw, 8)[0]:
            log.warning("store %s: ignoring damaged state snapshot", self._dir)
            return None
        try:
            snap = marshal.loads(raw[n0:])
        except (EOFError, ValueError, TypeError):
            return None
        return snap if isinstance(snap, dict) else None

    # ================================================================ recovery

    def _recover(self) -> None:
        nos = sorted(int(n[:-4]) for n in os.listdir(self._dir) if n.endswith(".seg") and n[:-4].isdigit())
        snap = self._read_snapshot()
        if snap is not None and not self._snapshot_fits(snap, nos):
            log.warning("store %s: state snapshot does not match the segments; rescanning", self._dir)
            snap = None
        self._stale_idx: list[_Seg] = []
        self._replayed = False
        try:
            self._recover_with(nos, snap)
        except _Rescan:
            log.warning("store %s: damage before the snapshot position; rescanning every segment", self._dir)
            for seg in self._segs:
                self._close_seg_fd(seg)
            self._reset_state()
            snap = None
            self._stale_idx = []
            self._recover_with(nos, None)
        if not self._segs:
            self._segs.append(self._open_seg(1, create=True))
        tail = self._segs[-1]
        self._fd(tail)
        self._lru.pop(tail, None)  # the tail is written to and always stays open
        self._reindex()
        if self._msgs == 0:
            self._first = self._last + 1
        elif not self._b_live(self._first):
            self._first = self._b_next_live(self._first, self._last) or self._last + 1
        if self._lost is not None and self._lost_reported:
            log.error("store %s: recovery lost %d message(s) (%s) and %d byte(s)", self._dir,
                      len(self._lost.msgs), _fmt_seqs(self._lost.msgs), self._lost.bytes)
        for seg in self._segs:
            seg.ndel = _top_bytes(seg.offs, 0, len(seg.offs)).translate(_T_DEL).count(1)
        # Everything recovered is now the committed base; make the repairs durable, and save
        # indexes and a snapshot so the next start need not repeat this scan (an old snapshot
        # could even disagree with segments that recovery just truncated).
        self.flush()
        for seg in self._stale_idx:
            if seg is not self._segs[-1]:
                self._write_idx(seg)
        if snap is None or self._replayed or self._lost_reported:
            self._write_snapshot()

    def _reset_state(self) -> None:
        first = self._first_seq_opt
        self._segs = []
        self._subj = {}
        self._first, self._last, self._last_ts = first, first - 1, 0
        self._msgs = self._bytes = 0
        self._ttl_heap = []
        self._lost = None
        self._reindex()

    def _snapshot_fits(self, snap: dict, nos: list[int]) -> bool:
        try:
            pno, poff = snap["pos"]
            listed = snap["segs"]
        except (KeyError, TypeError, ValueError):
            return False
        if pno not in nos or any(n not in nos for n in listed):
            return False
        if any(n < pno and n not in listed for n in nos):
            return False
        return os.path.getsize(self._seg_path(pno, "seg")) >= poff

    def _recover_with(self, nos: list[int], snap: dict | None) -> None:
        self._lost_reported = False
        self._gap_pending = False
        self._gap_hint = 0  # seq read from the header of a torn record, if any
        if snap is not None:
            self._first = snap["first"]
            self._last = snap["last"]
            self._last_ts = snap["last_ts"]
            self._msgs = snap["msgs"]
            self._bytes = snap["bytes"]
            self._subj = snap["subj"]
            self._ttl_heap = list(snap["ttl"])
            heapq.heapify(self._ttl_heap)
            if snap["lost"] is not None:
                self._lost = LostData(list(snap["lost"][0]), snap["lost"][1])
            pno, poff = snap["pos"]
            dels = array("Q")
            dels.frombytes(snap["del"])
        else:
            pno, poff = (nos[0] if nos else 0), 0
            dels = array("Q")
        for k, no in enumerate(nos):
            seg = self._open_seg(no, create=False)
            self._segs.append(seg)
            self._track(seg)
            size = os.fstat(seg.fd).st_size
            covered = self._load_idx(seg, size)
            seg.size = size
            if covered != size:
                self._stale_idx.append(seg)
            self._reindex()
            last_seg = k == len(nos) - 1
            if no < pno:
                if covered < size:
                    self._scan(seg, covered, size, covered, False, last_seg)
            elif no == pno:
                if min(covered, poff) < poff:
                    self._scan(seg, min(covered, poff), poff, covered, False, last_seg)
                self._apply_dels(dels)
                self._scan(seg, poff, seg.size, covered, True, last_seg)
            else:
                self._scan(seg, 0, seg.size, covered, True, last_seg)
            self._reindex()
        if self._gap_pending:
            # Damage at the very end: only a torn record's own header can name what was lost.
            self._gap_pending = False
            if self._gap_hint == self._last + 1:
                self._add_lost([self._gap_hint], 0)

    def _apply_dels(self, dels: array) -> None:
        self._reindex()
        for seq in dels:
            seg = self._locate(seq)
            if seg is not None:
                i = seq - seg.first
                if seg.offs[i] != NONE:
                    seg.offs[i] |= DELBIT

    def _scan(self, seg: _Seg, start: int, end: int, covered: int, apply: bool, last_seg: bool) -> None:
        """Walk records in [start, end): index those at >= covered, replay them if apply."""
        pos = start
        buf = b""
        bpos = start
        while pos < end:
            # Replaying a compact record reads older segments, which may close this one's
            # descriptor to stay under _MAX_OPEN: never keep it across records.
            fd = seg.fd if seg.fd >= 0 else self._fd(seg)
            p = pos - bpos
            if p < 0 or p + HS > len(buf):
                buf = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
                bpos, p = pos, 0
            if buf[p:p + 4] == b"\0\0\0\0" and self._zero_from(fd, pos, end):
                # No record starts with a zero length: the records end here, and what follows
                # is the tail's preallocated space (or a crash came before it was given back).
                if end < seg.size:
                    raise _Rescan()  # the snapshot names records that are not there
                if not last_seg:
                    os.ftruncate(fd, pos)
                seg.alloc = seg.size if last_seg else 0
                seg.size = pos
                # Replaying a compact record reads through the chunk cache while seg.size was
                # still the file's length: a cached chunk may hold the zeros new records replace.
                self._rc_seg = None
                return
            if p + HS > len(buf):
                self._damaged(seg, pos, end, None, apply, last_seg, torn=True)
                return
            reclen, kind, seq, ts, ttl, slen, hlen = _HDR.unpack_from(buf, p)
            sane = kind in _KINDS and HS + slen + hlen + 4 <= reclen <= _MAX_REC and (
                kind != K_MSGZ or HS + slen + _ZSUB.size + 4 <= reclen)
            if sane and pos + reclen > end:
                # Either the write was cut short, or the length field itself is damaged and
                # good records follow: only a search tells the two apart.
                nxt = self._resync(fd, pos + 1, end)
                if nxt < 0:
                    self._damaged(seg, pos, end, seq if kind in _MSG_KINDS else None, apply, last_seg, torn=True)
                    return
                self._report_damage(seg, pos, nxt - pos, apply)
                pos = nxt
                continue
            if sane and p + reclen > len(buf):
                buf = os.pread(fd, max(_SCAN_CHUNK, reclen), pos)
                bpos, p = pos, 0
            if not sane or crc32(buf[p:p + reclen - 4]) != _CRC.unpack_from(buf, p + reclen - 4)[0]:
                nxt = pos + reclen if sane else -1
                if sane and last_seg and end == seg.size and (nxt == end or (
                        nxt < end and self._zero_from(fd, nxt, end) and self._resync(fd, pos + 1, nxt) < 0)):
                    # The newest record is bad (only preallocated zeros follow it, and no record
                    # hides inside what its length field spans): cut it off like a torn write,
                    # so new records do not sit behind garbage.
                    self._damaged(seg, pos, end, seq if kind in _MSG_KINDS else None, apply, last_seg, torn=False)
                    return
                if sane and (nxt == end or self._valid_at(fd, nxt, end)):
                    self._report_damage(seg, pos, reclen, apply)
                    if kind in _MSG_KINDS:
                        self._gap_hint = seq
                    pos = nxt
                    continue
                nxt = self._resync(fd, pos + 1, end)
                if nxt < 0:
                    self._damaged(seg, pos, end, None, apply, last_seg, torn=False)
                    return
                self._report_damage(seg, pos, nxt - pos, apply)
                pos = nxt
                continue
            if apply:
                self._replayed = True
            if kind == K_MSG or kind == K_ERASED or kind == K_MSGZ:
                if pos >= covered:
                    fresh = not seg.offs
                    if fresh:
                        seg.first = seg.next = seq
                    gap = seq - seg.next
                    if gap < 0:
                        log.error("store %s: out-of-order seq %d at %s:%d ignored", self._dir, seq,
                                  os.path.basename(seg.path), pos)
                        pos += reclen
                        continue
                    if gap:
                        seg.offs.extend(array("Q", [NONE]) * gap)
                        seg.prev.extend(array("I", [0]) * gap)
                    back = 0
                    if apply and kind != K_ERASED:
                        ps = self._subj.get(buf[p + HS:p + HS + slen].decode())
                        if ps is not None and 0 < ps[2] and seq - ps[2] < _MAX_BACK:
                            back = seq - ps[2]
                    seg.prev.append(back)
                    seg.offs.append(pos)
                    seg.next = seq + 1
                    if fresh:
                        self._reindex()
                if apply:
                    if self._gap_pending:
                        # The damaged bytes held whatever sequences are missing before this one.
                        self._gap_pending = False
                        self._add_lost(list(range(self._last + 1, seq)), 0)
                    if kind == K_ERASED:
                        # Erased in place; its tombstone follows (or was already replayed).
                        seg.offs[seq - seg.first] |= DELBIT
                        if seq > self._last:
                            self._last = seq
                    else:
                        q = p + HS
                        subject = buf[q:q + slen].decode()
                        size = _zsize(buf, q + slen, slen) if kind == K_MSGZ else reclen - HS + (30 if hlen else 26)
                        self._acct_add(seq, subject, size, ts, ttl)
            elif apply:
                if kind == K_DEL:
                    self._replay_del(seq, buf[p + HS:p + HS + slen].decode(), ttl)
                elif kind == K_SKIP:
                    self._acct_skip(seq)
                elif kind == K_COMPACT:
                    self._acct_compact(seq)
                    if ts > self._last:
                        self._last = ts
                    if self._msgs == 0:
                        self._first = self._last + 1
            pos += reclen

    def _replay_del(self, seq: int, subject: str, size: int) -> None:
        seg = self._locate(seq)
        if seg is None:
            return
        i = seq - seg.first
        off = seg.offs[i]
        if off >= DELBIT or seq < self._first:
            return
        seg.offs[i] = off | DELBIT
        self._acct_remove(seq, subject, size)

    def _valid_at(self, fd: int, pos: int, end: int) -> bool:
        head = os.pread(fd, HS, pos)
        if len(head) < HS:
            return False
        reclen, kind, _seq, _ts, _ttl, slen, hlen = _HDR.unpack(head)
        if kind not in _KINDS or not HS + slen + hlen + 4 <= reclen <= _MAX_REC or pos + reclen > end:
            return False
        rec = os.pread(fd, reclen, pos)
        return len(rec) == reclen and crc32(rec[:-4]) == _CRC.unpack_from(rec, reclen - 4)[0]

    def _zero_from(self, fd: int, pos: int, end: int) -> bool:
        """Whether every byte in [pos, end) is zero."""
        while pos < end:
            buf = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
            if not buf or buf.count(0) != len(buf):
                return False
            pos += len(buf)
        return True

    def _data_end(self, fd: int, pos: int, end: int) -> int:
        """The end of [pos, end) without its trailing zeros when end can be the end of
        preallocated space, a multiple of 4096 (the damage to report is the bytes written, not
        the space after them). A cut elsewhere keeps its zeros: they are the record's own."""
        if end % 4096:
            return end
        while end > pos:
            n = min(_SCAN_CHUNK, end - pos)
            buf = os.pread(fd, n, end - n)
            if len(buf) != n:
                return end
            k = len(buf.rstrip(b"\0"))
            if k:
                return end - n + k
            end -= n
        return pos

    def _resync(self, fd: int, pos: int, end: int) -> int:
        """Offset of the next record that checks out after damage, or -1."""
        while pos < end:
            buf = os.pread(fd, min(_SCAN_CHUNK + HS, end - pos), pos)
            n = len(buf) - HS
            if n < 0:
                return -1
            # candidates: where the byte at +4 (the kind) names a kind; zeros are skipped in C
            tb = buf[4:n + 5].translate(_T_KIND)
            p = tb.find(1)
            while p >= 0:
                if self._valid_at(fd, pos + p, end):
                    return pos + p
                p = tb.find(1, p + 1)
            pos += n + 1
        return -1

    def _report_damage(self, seg: _Seg, pos: int, nbytes: int, apply: bool) -> None:
        if not apply:
            raise _Rescan()
        log.error("store %s: %d damaged byte(s) at %s:%d skipped", self._dir, nbytes,
                  os.path.basename(seg.path), pos)
        self._add_lost([], nbytes)
        self._gap_pending = True
        self._lost_reported = True

    def _damaged(self, seg: _Seg, pos: int, end: int, seq: int | None, apply: bool, last_seg: bool,
                 torn: bool) -> None:
        """Nothing readable from pos to end: truncate the segment there and report it."""
        if not apply:
            raise _Rescan()
        nbytes = self._data_end(self._fd(seg), pos, end) - pos
        log.error("store %s: %s at %s:%d; truncating %d byte(s)", self._dir,
                  "torn record" if torn else "unreadable records", os.path.basename(seg.path), pos, nbytes)
        self._add_lost([], nbytes)
        self._gap_pending = True
        if seq is not None:
            self._gap_hint = seq
        self._lost_reported = True
        os.ftruncate(self._fd(seg), pos)
        seg.size = pos
        seg.alloc = 0
        self._rc_seg = None  # a cached chunk may hold the bytes just cut, where new records will go

    # ================================================================ lifecycle

    def close(self) -> None:
        if self._closed:
            return
        self._write_out()
        with self._io_lock:
            for seg in self._segs:
                if seg.fd >= 0:
                    os.fdatasync(seg.fd)
        for doomed in list(self._doomed):
            self._unlink_doomed(doomed)  # the sync above made their compact records durable
        self._trim(self._segs[-1])
        self._write_idx(self._segs[-1])
        self._write_snapshot()
        self._closed = True
        cbs, self._cbs = self._cbs, []
        self._syncer.stop()
        run_callbacks(cbs)  # everything is durable now
        self._close_fds()

    def _close_fds(self) -> None:
        with self._io_lock:
            for seg in self._segs:
                if seg.fd >= 0:
                    os.close(seg.fd)
                    seg.fd = -1
            self._segs = []
            self._lru.clear()
            os.close(self._dirfd)
            os.close(self._lockfd)  # releases the directory lock
        self._isegs, self._firsts, self._hit, self._rc_seg = [], [], None, None

    def delete(self) -> None:
        for doomed in self._doomed:  # their files go with the directory
            for seg in doomed:
                seg.written = False
                self._close_seg_fd(seg)
        self._doomed = []
        if not self._closed:
            self._closed = True
            self._syncer.stop()
            self._close_fds()
        import shutil  # here: it loads bz2 and lzma, needed only to delete

        shutil.rmtree(self._dir, ignore_errors=True)

    # ================================================================ introspection for tools

    def set_compression(self, compression: str) -> None:
        """Compress the records stored from now on ("s2") or not ("none"); records already
        written keep their form (as nats-server, which applies a change to new blocks)."""
        self._compress = compression == "s2"

    @property
    def compression(self) -> str:
        return "s2" if self._compress else "none"

    def segment_count(self) -> int:
        return len(self._segs)

    @property
    def directory(self) -> str:
        return self._dir


def records_end(path: str) -> int:
    """Where a segment file's records end and its preallocated zeros (if any) begin, following
    the length fields from the start (for tools and tests; recovery checks every record)."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 4 <= len(data):
        (reclen,) = _LEN.unpack_from(data, pos)
        if reclen == 0:
            break
        pos += reclen
    return min(pos, len(data))


def _fmt_seqs(seqs: list[int]) -> str:
    if len(seqs) > 10:
        return ", ".join(map(str, seqs[:10])) + f", ... ({len(seqs)} in all)"
    return ", ".join(map(str, seqs))


__all__ = ["FileStore", "DEFAULT_BLOCK_SIZE", "ErrStoreInUse", "StoreError", "records_end"]
