"""Group commit: many commits in one loop iteration share one fsync; callbacks run on the loop.

fdatasync is counted by wrapping os.fdatasync; durability itself is covered by the crash test.
"""

from __future__ import annotations

import asyncio
import os
import threading

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


async def test_one_fsync_for_a_batch(tmp_path, monkeypatch):
    st = FileStore(str(tmp_path / "s"))
    calls = count_syncs(monkeypatch)
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []
    done = asyncio.get_running_loop().create_future()
    for i in range(500):
        st.store_msg("a", b"", b"x" * 100, i)
        st.commit(lambda i=i: seen.append((i, threading.get_ident())))
    st.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert [i for i, _t in seen] == list(range(500))
    assert {t for _i, t in seen} == {loop_thread}
    assert 1 <= len(calls) <= 2  # the segment, and the directory entry of a new segment
    st.close()


async def test_callbacks_wait_for_fsync(tmp_path, monkeypatch):
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


async def test_failed_fsync_never_acks(tmp_path, monkeypatch, caplog):
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
    monkeypatch.undo()
    st.close()


def test_commit_without_loop_is_inline(tmp_path):
    st = FileStore(str(tmp_path / "s"))
    acked: list[int] = []
    st.store_msg("a", b"", b"x", 1)
    st.commit(lambda: acked.append(1))
    assert acked == [1]
    st.close()
