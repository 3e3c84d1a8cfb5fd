"""The writer thread behind a store's group commit: fdatasync off the event loop.

Owns one thread per store that takes every queued batch at once, makes the touched files durable
with one fdatasync each, then hands the batches' callbacks back to their event loop with
`call_soon_threadsafe`. With an interval it instead syncs dirty files every `interval` seconds.
Must not touch store state: the loop thread writes the bytes; this thread only syncs and signals.
Also holds `atomic_write`, the replace-by-rename both stores use for their small files, and the
modes every JetStream file and directory is created with (FILE_MODE, DIR_MODE, `make_dirs`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("pyjetstream.store")

Callbacks = list[Callable[[], None]]

# nats-server's defaultFilePerms / defaultDirPerms: stored messages are not world-readable, and
# a relaxed umask must not make them so (the umask can only take more away).
FILE_MODE = 0o640
DIR_MODE = 0o750


def make_dirs(path: str) -> None:
    """os.makedirs with DIR_MODE for every level it creates (os.makedirs gives the mode to the
    last level only; the levels above would get 0777 minus the umask)."""
    if not path or os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.normpath(path))
    if parent and parent != path:
        make_dirs(parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def atomic_write(path: str, data: bytes, fsync: bool = True) -> None:
    """Replace path with data so that a crash leaves either the old or the new content.

    With `fsync` the file and then its directory are synced, so the new content survives a
    power loss. `fsync=False` is for files that are rebuilt when missing (indexes, snapshots):
    the rename still keeps a torn file from ever being seen."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(data)
        n = 0
        while n < len(data):
            n += os.write(fd, view[n:])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def run_callbacks(cbs: Callbacks) -> None:
    """Run durability callbacks; one failing callback must not starve the rest of its batch."""
    for cb in cbs:
        try:
            cb()
        except Exception:  # task boundary: foreign callbacks
            log.exception("durability callback failed")


class Syncer:
    def __init__(self, name: str, interval: float | None, io_lock: threading.Lock) -> None:
        self._name = name
        self._interval = interval
        self._io_lock = io_lock  # held while syncing, so the store can close fds safely
        self._cond = threading.Condition()
        self._fds: set[int] = set()
        self._jobs: list[tuple[asyncio.AbstractEventLoop, Callbacks]] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failed: OSError | None = None
        # How long syncs take lately (seconds, over both paths): the slowest recent one, fading
        # by a tenth per sync, so one slow sync counts for a dozen or so after it. The store
        # syncs on its loop thread only while this stays small (see FileStore._do_commit).
        self.recent = 0.0

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def submit(self, fds: set[int], loop: asyncio.AbstractEventLoop | None, cbs: Callbacks) -> None:
        """Sync fds, then run cbs on loop (sync_always mode)."""
        with self._cond:
            self._ensure_started()
            self._fds |= fds
            if cbs and loop is not None:
                self._jobs.append((loop, cbs))
            self._cond.notify()

    def mark_dirty(self, fds: set[int]) -> None:
        """Sync these at the next interval tick (sync_interval mode)."""
        with self._cond:
            self._ensure_started()
            self._fds |= fds

    def forget(self, fd: int) -> None:
        with self._cond:
            self._fds.discard(fd)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
            t = self._thread
        if t is not None:
            t.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._interval is None:
                    while not self._jobs and not self._fds and not self._stopping:
                        self._cond.wait()
                else:
                    if not self._stopping:
                        self._cond.wait(self._interval)
                fds, self._fds = self._fds, set()
                jobs, self._jobs = self._jobs, []
                stopping = self._stopping
            # A failed fsync is sticky: the kernel may have dropped the dirty pages, so a later
            # successful fsync proves nothing about them. Nothing is acknowledged after one.
            ok = self._sync(fds) and self.failed is None
            if ok:
                for loop, cbs in jobs:
                    try:
                        loop.call_soon_threadsafe(run_callbacks, cbs)
                    except RuntimeError:
                        log.warning("event loop closed before %d durable callbacks could run", len(cbs))
            elif jobs:
                log.error("dropping %d acknowledgements: data could not be made durable",
                          sum(len(c) for _l, c in jobs))
            if stopping:
                with self._cond:
                    if not self._jobs and not self._fds:
                        return

    def sync_now(self, fds: set[int]) -> bool:
        """fdatasync fds on the calling thread; False (and nothing may be acknowledged) when
        the data could not be made durable, now or by an earlier failed sync."""
        return self._sync(fds) and self.failed is None

    def _sync(self, fds: set[int]) -> bool:
        ok = True
        t0 = time.perf_counter()
        with self._io_lock:
            for fd in fds:
                try:
                    os.fdatasync(fd)
                except OSError as e:
                    if e.errno == errno.EBADF:
                        continue  # closed by the store after a segment was dropped
                    # After a failed fsync the kernel may have dropped the dirty pages; never ack.
                    log.error("fdatasync failed: %s", e)
                    self.failed = e
                    ok = False
        if fds:
            took = time.perf_counter() - t0
            faded = self.recent * 0.9
            self.recent = took if took > faded else faded
        return ok
