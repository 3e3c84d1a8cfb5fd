"""Consumer stores: state and config round-trip, coalesced writes, damage handling."""

from __future__ import annotations

import asyncio
import os

import pytest

from pyjetstream.jetstream.store import (
    ConsumerState,
    FileConsumerStore,
    MemoryConsumerStore,
    SequencePair,
)
from pyjetstream.jetstream.store import consumer as consumer_mod


def sample_state(n: int = 3) -> ConsumerState:
    return ConsumerState(
        delivered=SequencePair(10 + n, 20 + n),
        ack_floor=SequencePair(5, 15),
        pending={16 + i: (6 + i, 1_700_000_000_000_000_000 + i) for i in range(n)},
        redelivered={16: 2},
    )


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_roundtrip(tmp_path, kind):
    make = (lambda: MemoryConsumerStore()) if kind == "memory" else (lambda: FileConsumerStore(str(tmp_path / "c")))
    cs = make()
    assert cs.load() == (None, ConsumerState())
    cs.update_config(b'{"durable_name":"d"}')
    cs.update(sample_state())
    cs.flush()
    cfg, st = cs.load()
    assert cfg == b'{"durable_name":"d"}' and st == sample_state()
    cs.close()
    if kind == "file":
        again = FileConsumerStore(str(tmp_path / "c"))
        assert again.load() == (b'{"durable_name":"d"}', sample_state())
        again.delete()
        assert not os.path.exists(tmp_path / "c")


def test_close_writes_pending_update(tmp_path):
    cs = FileConsumerStore(str(tmp_path / "c"))
    cs.update(sample_state(5))
    cs.close()
    assert FileConsumerStore(str(tmp_path / "c")).load()[1] == sample_state(5)


async def test_updates_coalesce_to_one_write_per_iteration(tmp_path, monkeypatch):
    writes: list[str] = []
    real = consumer_mod.atomic_write

    def counting(path: str, data: bytes, fsync: bool = True) -> None:
        writes.append(path)
        real(path, data, fsync)

    monkeypatch.setattr(consumer_mod, "atomic_write", counting)
    cs = FileConsumerStore(str(tmp_path / "c"))
    st = sample_state(1)
    for i in range(100):
        st.ack_floor.stream_seq = 100 + i
        cs.update(st)
    done = asyncio.get_running_loop().create_future()
    cs.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert len(writes) <= 2  # the iteration's flush and the commit, often merged into one
    assert FileConsumerStore(str(tmp_path / "c")).load()[1].ack_floor.stream_seq == 199
    cs.close()


def test_damaged_state_file_is_reported_not_fatal(tmp_path, caplog):
    cs = FileConsumerStore(str(tmp_path / "c"))
    cs.update(sample_state())
    cs.close()
    path = tmp_path / "c" / "state.dat"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    cfg, st = FileConsumerStore(str(tmp_path / "c")).load()
    assert st == ConsumerState()
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_stale_queued_write_never_overwrites_inline_flush(tmp_path):
    w = consumer_mod._StateWriter()
    w._thread = object()  # drive the writer by hand instead of from its thread
    path = str(tmp_path / "state.dat")
    w.submit(path, b"old", None, [])
    taken, w._pending = w._pending, {}  # the thread has taken the batch but not written yet
    w.write_now(path, b"new")
    w._pending = taken
    w._drain()
    with open(path, "rb") as f:
        assert f.read() == b"new"
    w.submit(path, b"newer", None, [])
    w._drain()
    with open(path, "rb") as f:
        assert f.read() == b"newer"
    w.cancel(path)
    w.submit(path, b"after-cancel", None, [])
    w._drain()  # a later submit (a recreated consumer) is written again
    with open(path, "rb") as f:
        assert f.read() == b"after-cancel"


async def test_plain_updates_are_renamed_not_synced_commits_are_synced(tmp_path, monkeypatch):
    calls: list[bool] = []
    real = consumer_mod.atomic_write

    def recording(path: str, data: bytes, fsync: bool = True) -> None:
        calls.append(fsync)
        real(path, data, fsync)

    monkeypatch.setattr(consumer_mod, "atomic_write", recording)
    cs = FileConsumerStore(str(tmp_path / "c"))
    st = sample_state(1)
    cs.update(st)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not calls and loop.time() < deadline:
        await asyncio.sleep(0.01)  # the writer thread; no clock to fake across threads
    assert calls == [False]
    st.ack_floor.stream_seq = 42
    cs.update(st)
    done = loop.create_future()
    cs.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert calls[-1] is True
    assert FileConsumerStore(str(tmp_path / "c")).load()[1].ack_floor.stream_seq == 42
    cs.close()


async def test_plain_updates_are_written_at_most_once_per_interval(tmp_path, monkeypatch):
    writes: list[int] = []
    real = consumer_mod.atomic_write

    def recording(path: str, data: bytes, fsync: bool = True) -> None:
        writes.append(consumer_mod.decode_state(data).ack_floor.stream_seq)
        real(path, data, fsync)

    monkeypatch.setattr(consumer_mod, "atomic_write", recording)
    monkeypatch.setattr(consumer_mod, "WRITE_INTERVAL", 0.5)
    cs = FileConsumerStore(str(tmp_path / "c"))
    st = sample_state(1)
    snapshots = 0

    def snapshot() -> ConsumerState:
        nonlocal snapshots
        snapshots += 1
        return st

    loop = asyncio.get_running_loop()
    cs.update(snapshot)
    deadline = loop.time() + 10
    while not writes and loop.time() < deadline:
        await asyncio.sleep(0.005)  # the writer thread; no clock to fake across threads
    assert writes == [15] and snapshots == 1
    # a burst right after a write waits for the interval and is one snapshot, one write
    for i in range(50):
        st.ack_floor.stream_seq = 100 + i
        cs.update(snapshot)
        await asyncio.sleep(0)
    assert writes == [15] and snapshots == 1
    while len(writes) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.005)
    assert writes == [15, 149] and snapshots == 2
    # a commit does not wait for the interval
    st.ack_floor.stream_seq = 200
    cs.update(snapshot)
    done = loop.create_future()
    cs.commit(lambda: done.set_result(None))
    await asyncio.wait_for(done, 10)
    assert writes[-1] == 200
    cs.close()
    assert FileConsumerStore(str(tmp_path / "c")).load()[1].ack_floor.stream_seq == 200


def test_info_seqs_roundtrip_and_older_states_read():
    """Version 2 keeps the stream sequences consumer info reports (the stored view); a version 1
    state, written before them, still decodes (info_seqs None: the consumer falls back to its
    delivered and ack floor)."""
    st = sample_state()
    st.info_seqs = (21, 14, 5)
    assert consumer_mod.decode_state(consumer_mod.encode_state(st)) == st
    old = sample_state()
    raw = consumer_mod.encode_state(old)
    assert raw == consumer_mod.encode_state(ConsumerState(old.delivered, old.ack_floor, old.pending,
                                                          old.redelivered, None))
    back = consumer_mod.decode_state(raw)
    assert back == old and back is not None and back.info_seqs is None
    # the first form of version 2 (two info sequences) still decodes
    body = consumer_mod.marshal.dumps((2, 13, 23, 5, 15, old.pending, old.redelivered, 21, 14))
    raw2 = consumer_mod._MAGIC + consumer_mod._CRC.pack(consumer_mod.crc32(body)) + body
    first = consumer_mod.decode_state(raw2)
    assert first is not None and first.info_seqs == (21, 14, 5)

