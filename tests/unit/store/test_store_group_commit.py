"""Group commit: one commit makes every message stored before it durable with one fsync;
callbacks run on the loop. (The stream gathers a loop pass's publishes into one commit:
tests/jetstream/test_group_commit.py.)

fdatasync is counted by wrapping os.fdatasync; durability itself is covered by the crash test.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from pyjetstream.jetstream.store import FileStore, _sync, file


def count_syncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(_sync.os, "fdatasync", counting)
    monkeypatch.setattr(file.os, "fdatasync", counting)
    return calls


def trace_sync_threads(monkeypatch) -> list[int]:
    """The thread of each fdatasync through the sync path, recorded once it has returned."""
    threads: list[int] = []
    real = os.fdatasync

    def traced(fd: int) -> None:
        real(fd)
        threads.append(threading.get_ident())

    monkeypatch.setattr(_sync.os, "fdatasync", traced)
    return threads


@pytest.mark.parametrize("inline", [True, False])
async def test_one_fsync_for_a_batch(tmp_path, monkeypatch, inline):
    monkeypatch.setattr(file, "_INLINE", inline)
    st = FileStore(str(tmp_path / "s"))
    calls = count_syncs(monkeypatch)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    done = asyncio.get_running_loop().create_future()
    for i in range(200):  # 200 small records stay under _INLINE_MAX_BYTES: both paths are taken
        st.store_msg("a", b"", b"x" * 20, i)
    st.commit(lambda: (seen.append(threading.get_ident()), done.set_result(None)))
    await asyncio.wait_for(done, 10)
    assert seen == [loop_thread]
    assert 1 <= len(calls) <= 2  # the segment, and the directory entry of a new segment
    assert st.state().msgs == 200
    st.close()


async def test_callbacks_wait_for_fsync(tmp_path, monkeypatch):
    monkeypatch.setattr(file, "_INLINE", False)  # the writer thread's path
    st = FileStore(str(tmp_path / "s"))
    gate = threading.Event()
    real = os.fdatasync

    def slow(fd: int) -> None:
        gate.wait(10)
        real(fd)

    monkeypatch.setattr(_sync.os, "fdatasync", slow)
    acked: list[int] = []
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: acked.append(1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert acked == []  # the disk has not confirmed yet
    gate.set()
    done = asyncio.get_running_loop().create_future()
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert acked == [1]
    st.close()


async def test_sync_interval_acks_without_fsync(tmp_path, monkeypatch):
    st = FileStore(str(tmp_path / "s"), sync_interval_s=3600)
    calls = count_syncs(monkeypatch)
    acked: list[int] = []
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: acked.append(1))
    for _ in range(3):
        await asyncio.sleep(0)
    assert acked == [1] and calls == []
    with open(os.path.join(st.directory, "00000001.seg"), "rb") as f:
        assert b"x" in f.read()  # written to the OS before the ack
    st.close()
    assert calls  # close makes everything durable


@pytest.mark.parametrize("inline", [True, False])
async def test_failed_fsync_never_acks(tmp_path, monkeypatch, caplog, inline):
    monkeypatch.setattr(file, "_INLINE", inline)
    st = FileStore(str(tmp_path / "s"))

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_sync.os, "fdatasync", failing)
    acked: list[int] = []
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: acked.append(1))
    await asyncio.sleep(0)  # the loop iteration's group commit hands the batch to the thread
    st._syncer.stop()  # drains the queue: the failed batch is handled before this returns
    for _ in range(3):
        await asyncio.sleep(0)
    assert acked == []
    assert any("fdatasync failed" in r.getMessage() for r in caplog.records)
    st.store_msg("a", b"", b"y", 2)  # a failed sync is sticky: nothing is acknowledged after it
    st.commit(lambda: acked.append(2))
    for _ in range(3):
        await asyncio.sleep(0)
    assert acked == []
    monkeypatch.undo()
    st.close()


async def test_lone_commit_syncs_on_the_loop_thread(tmp_path, monkeypatch):
    """With nothing in flight the loop thread syncs itself: the callback runs right after the
    fdatasync returned, on the loop thread, without a hand-off to the writer thread."""
    monkeypatch.setattr(file, "_INLINE", True)
    monkeypatch.setattr(file, "_INLINE_MAX_S", 3600.0)  # a disk slowed by other work must not decide
    st = FileStore(str(tmp_path / "s"))
    threads = trace_sync_threads(monkeypatch)
    acks: list[tuple[int, list[int]]] = []  # (the ack's thread, the syncs done by then)
    done = asyncio.get_running_loop().create_future()
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: (acks.append((threading.get_ident(), list(threads))), done.set_result(None)))
    await asyncio.wait_for(done, 10)
    me = threading.get_ident()
    # one ack, on the loop thread, after a sync of its own there and with no sync after it
    assert acks == [(me, threads)] and me in threads
    assert st._syncer._thread is None  # the writer thread was never needed
    monkeypatch.undo()
    st.close()


async def test_commits_keep_their_order_across_the_two_paths(tmp_path, monkeypatch):
    """A commit handed to the writer thread (the disk was slow) is still in flight when the
    next one comes: that one waits its turn on the thread too, so acknowledgements stay in
    order. Once none is in flight and syncs are quick again, the loop syncs itself."""
    monkeypatch.setattr(file, "_INLINE", True)
    st = FileStore(str(tmp_path / "s"))
    gate = threading.Event()
    real = os.fdatasync
    threads: list[int] = []

    def gated(fd: int) -> None:
        if threading.get_ident() != loop_thread:
            gate.wait(10)
        threads.append(threading.get_ident())
        real(fd)

    loop_thread = threading.get_ident()
    monkeypatch.setattr(_sync.os, "fdatasync", gated)
    st._syncer.recent = 1.0  # as after a slow sync: the next commit goes to the thread
    acked: list[int] = []
    st.store_msg("a", b"", b"1", 1)
    st.commit(lambda: acked.append(1))
    for _ in range(3):
        await asyncio.sleep(0)
    st._syncer.recent = 0.0  # quick again, but commit 1 is still in flight
    st.store_msg("a", b"", b"2", 2)
    st.commit(lambda: acked.append(2))
    for _ in range(3):
        await asyncio.sleep(0)
    assert acked == [] and loop_thread not in threads
    gate.set()
    done = asyncio.get_running_loop().create_future()
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert acked == [1, 2]
    threads.clear()
    for _ in range(3):  # nothing in flight any more, and syncs are quick: inline from now on
        await asyncio.sleep(0)
    st._syncer.recent = 0.0
    done = asyncio.get_running_loop().create_future()
    st.store_msg("a", b"", b"3", 3)
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert threads == [loop_thread]
    monkeypatch.undo()
    st.close()


def test_commit_without_loop_is_inline(tmp_path):
    st = FileStore(str(tmp_path / "s"))
    acked: list[int] = []
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: acked.append(1))
    assert acked == [1]
    st.close()


async def test_large_commit_is_synced_on_the_writer_thread(tmp_path, monkeypatch):
    """A commit of more than _INLINE_MAX_BYTES is pipelined traffic: its sync runs on the
    writer thread, so the loop can read the next batch meanwhile."""
    monkeypatch.setattr(file, "_INLINE", True)
    st = FileStore(str(tmp_path / "s"))
    threads = trace_sync_threads(monkeypatch)
    done = asyncio.get_running_loop().create_future()
    for i in range(file._INLINE_MAX_BYTES // 1000 + 2):
        st.store_msg("a", b"", b"x" * 1000, i)
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert threads and threading.get_ident() not in threads
    monkeypatch.undo()
    st.close()


async def test_other_clients_read_since_the_last_commit_keep_the_sync_off_the_loop(tmp_path, monkeypatch):
    """One read between two commits is the publisher's own PUB; more mean other clients are at
    work, and a sync on the loop thread would hold them up."""
    from pyjetstream import loopstats

    monkeypatch.setattr(file, "_INLINE", True)
    monkeypatch.setattr(file, "_INLINE_MAX_S", 3600.0)  # a disk slowed by other work must not decide
    st = FileStore(str(tmp_path / "s"))
    threads = trace_sync_threads(monkeypatch)
    me = threading.get_ident()
    for reads, on_loop in ((1, True), (3, False), (0, True)):
        await asyncio.sleep(0)
        monkeypatch.setattr(loopstats, "reads", loopstats.reads + reads)
        threads.clear()
        done = asyncio.get_running_loop().create_future()
        st.store_msg("a", b"", b"x", 1)
        st.commit(lambda done=done: done.set_result(None))
        await asyncio.wait_for(done, 10)
        assert threads and (threads == [me]) == on_loop, (reads, threads)
    monkeypatch.undo()
    st.close()


async def test_reads_before_the_store_existed_do_not_count(tmp_path, monkeypatch):
    """A store made after the process served many reads (a stream created on a busy server)
    counts only the reads since its creation for its first commit."""
    from pyjetstream import loopstats

    monkeypatch.setattr(file, "_INLINE", True)
    monkeypatch.setattr(file, "_INLINE_MAX_S", 3600.0)
    monkeypatch.setattr(loopstats, "reads", loopstats.reads + 1000)
    st = FileStore(str(tmp_path / "s"))
    threads = trace_sync_threads(monkeypatch)
    done = asyncio.get_running_loop().create_future()
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert threads == [threading.get_ident()]
    monkeypatch.undo()
    st.close()
