"""The file consumer store: a consumer's config and ack state, each one small file rewritten whole.

Owns `<consumer dir>/config.json` and `<consumer dir>/state.dat`. A state file is replaced
atomically (write a temp file, fsync, rename, fsync the directory). `update()` only remembers the
state (or the function that snapshots it); it is encoded at most once per WRITE_INTERVAL and
written by one shared writer thread, which coalesces rewrites of the same file and fsyncs off
the loop. `commit(on_durable)` and `flush()` write at once and give the same guarantees as for
messages. Must not interpret the state.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import os
import struct
import threading
from collections.abc import Callable
from zlib import crc32

from pyjetstream.jetstream.store._sync import Callbacks, atomic_write, make_dirs, run_callbacks
from pyjetstream.jetstream.store.base import (
    ConsumerState,
    ErrStoreClosed,
    SequencePair,
    StateSource,
    resolve_state,
)

log = logging.getLogger("pyjetstream.store")

_MAGIC = b"PJOBS01\n"
_CRC = struct.Struct("<I")
STATE_FILE = "state.dat"
CONFIG_FILE = "config.json"
# Plain state changes (acks nobody waits on) reach the file at most this often per consumer,
# as nats-server's consumer flusher does (about ten writes a second under load). Rewriting the
# file on every loop pass cost a fifth of the server's CPU in push consume; a kill -9 can only
# lose plain acks, which at-least-once allows (docs/durability.md).
WRITE_INTERVAL = 0.1


def encode_state(st: ConsumerState) -> bytes:
    if st.info_seqs is None:
        body = marshal.dumps((
            1,
            st.delivered.consumer_seq, st.delivered.stream_seq,
            st.ack_floor.consumer_seq, st.ack_floor.stream_seq,
            st.pending, st.redelivered,
        ))
    else:
        body = marshal.dumps((
            2,
            st.delivered.consumer_seq, st.delivered.stream_seq,
            st.ack_floor.consumer_seq, st.ack_floor.stream_seq,
            st.pending, st.redelivered,
            st.info_seqs[0], st.info_seqs[1], st.info_seqs[2],
        ))
    return _MAGIC + _CRC.pack(crc32(body)) + body


def decode_state(raw: bytes) -> ConsumerState | None:
    """Version 1 (before info_seqs were kept) or 2 (with them)."""
    n0 = len(_MAGIC) + 4
    if len(raw) < n0 or not raw.startswith(_MAGIC):
        return None
    body = raw[n0:]
    if crc32(body) != _CRC.unpack_from(raw, len(_MAGIC))[0]:
        return None
    try:
        t = marshal.loads(body)
        v = t[0]
        info_seqs: tuple[int, int, int] | None = None
        if v == 1:
            _v, dc, ds, ac, as_, pending, redelivered = t
        elif v == 2 and len(t) == 9:
            # the first form of version 2 (commit 9f1af0e), without the floor's consumer seq
            _v, dc, ds, ac, as_, pending, redelivered, ids, ias = t
            info_seqs = (int(ids), int(ias), int(ac))
        elif v == 2:
            _v, dc, ds, ac, as_, pending, redelivered, ids, ias, iac = t
            info_seqs = (int(ids), int(ias), int(iac))
        else:
            return None
    except (EOFError, ValueError, TypeError, IndexError, KeyError):
        return None
    if not isinstance(pending, dict) or not isinstance(redelivered, dict):
        return None
    return ConsumerState(SequencePair(dc, ds), SequencePair(ac, as_),
                         {k: tuple(p) for k, p in pending.items()}, dict(redelivered), info_seqs)


class _StateWriter:
    """One thread for every file consumer store: latest content per path wins.

    Every write carries a version; a write older than what already reached a path is skipped,
    so an inline flush() racing the thread can never be overwritten by staler state.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._io = threading.Lock()
        # path -> (data or None, its version, callbacks to run once it is written)
        self._pending: dict[str, tuple[bytes | None, int, list[tuple[asyncio.AbstractEventLoop, Callbacks]]]] = {}
        self._ver = 0
        self._written: dict[str, int] = {}  # guarded by _io
        self._thread: threading.Thread | None = None

    def submit(self, path: str, data: bytes | None, loop: asyncio.AbstractEventLoop | None,
               cbs: Callbacks) -> None:
        with self._cond:
            old_data, old_ver, jobs = self._pending.get(path, (None, 0, []))
            if cbs and loop is not None:
                jobs = jobs + [(loop, cbs)]
            if data is not None:
                self._ver += 1
                old_data, old_ver = data, self._ver
            self._pending[path] = (old_data, old_ver, jobs)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="consumer-state-writer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def write_now(self, path: str, data: bytes) -> None:
        """Write inline, superseding anything queued for path (its callbacks still run)."""
        with self._cond:
            _old, _v, jobs = self._pending.pop(path, (None, 0, []))
            self._ver += 1
            ver = self._ver
        with self._io:
            atomic_write(path, data)
            self._written[path] = ver
        for loop, cbs in jobs:
            _call(loop, cbs)

    def cancel(self, path: str) -> None:
        """Forget path: nothing queued or in flight for it will be written any more."""
        with self._cond:
            self._pending.pop(path, None)
            self._ver += 1
            ver = self._ver
        with self._io:
            self._written[path] = ver

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
            self._drain()

    def _drain(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, {}
        for path, (data, ver, jobs) in batch.items():
            ok = True
            if data is not None:
                with self._io:
                    try:
                        if ver > self._written.get(path, 0):
                            # fsync only when a caller waits for durability (ack-sync replies,
                            # commits); plain acks need the atomic rename alone, which survives
                            # a process crash, and at-least-once allows redelivery after a power
                            # loss. Syncing every state change cost ~3 fsyncs per loop pass.
                            atomic_write(path, data, fsync=bool(jobs))
                            self._written[path] = ver
                    except OSError as e:
                        log.error("could not persist consumer state %s: %s", path, e)
                        ok = False
            if ok:
                for loop, cbs in jobs:
                    _call(loop, cbs)


def _call(loop: asyncio.AbstractEventLoop, cbs: Callbacks) -> None:
    try:
        loop.call_soon_threadsafe(run_callbacks, cbs)
    except RuntimeError:
        log.warning("event loop closed before consumer-state callbacks could run")


_writer = _StateWriter()


class FileConsumerStore:
    def __init__(self, directory: str) -> None:
        self._dir = directory
        make_dirs(directory)
        self._state_path = os.path.join(directory, STATE_FILE)
        self._config_path = os.path.join(directory, CONFIG_FILE)
        self._state: StateSource | None = None  # latest handed to update()
        self._dirty = False
        self._scheduled = False
        self._closed = False
        self._last_write = float("-inf")  # loop time of the last plain write

    def update(self, state: StateSource) -> None:
        """Record the new state, or a function returning it: called only when the state is
        encoded, so a consumer changing on every ack pays for one snapshot per write."""
        if self._closed:
            raise ErrStoreClosed("consumer store is closed")
        self._state = state
        self._dirty = True
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: written at the next flush(), commit() or close()
        self._scheduled = True
        wait = self._last_write + WRITE_INTERVAL - loop.time()
        if wait > 0:
            loop.call_later(wait, self._auto_flush, loop)
        else:
            loop.call_soon(self._auto_flush, loop)

    def _auto_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._dirty and not self._closed and self._state is not None:
            self._dirty = False
            self._last_write = loop.time()
            _writer.submit(self._state_path, encode_state(resolve_state(self._state)), None, [])

    def update_config(self, config_json: bytes) -> None:
        if self._closed:
            raise ErrStoreClosed("consumer store is closed")
        atomic_write(self._config_path, bytes(config_json))

    def load(self) -> tuple[bytes | None, ConsumerState]:
        config: bytes | None = None
        try:
            with open(self._config_path, "rb") as f:
                config = f.read()
        except FileNotFoundError:
            pass
        state = ConsumerState()
        try:
            with open(self._state_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = None
        if raw is not None:
            decoded = decode_state(raw)
            if decoded is None:
                log.error("consumer state %s is damaged; starting from an empty state", self._state_path)
            else:
                state = decoded
        if self._state is not None:
            state = decode_state(encode_state(resolve_state(self._state))) or state
        return config, state

    def commit(self, on_durable: Callable[[], None]) -> None:
        if self._closed:
            raise ErrStoreClosed("consumer store is closed")
        data = encode_state(resolve_state(self._state)) if self._dirty and self._state is not None else None
        self._dirty = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if data is not None:
                _writer.write_now(self._state_path, data)
            on_durable()
            return
        _writer.submit(self._state_path, data, loop, [on_durable])

    def flush(self) -> None:
        """Write the latest state inline and fsync it."""
        if self._state is not None:
            self._dirty = False
            _writer.write_now(self._state_path, encode_state(resolve_state(self._state)))

    def close(self) -> None:
        if self._closed:
            return
        if self._dirty and self._state is not None:
            self.flush()
        self._closed = True

    def delete(self) -> None:
        self._closed = True
        _writer.cancel(self._state_path)
        import shutil  # here: it loads bz2 and lzma, needed only to delete

        shutil.rmtree(self._dir, ignore_errors=True)
