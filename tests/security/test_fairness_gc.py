"""The process-wide part of fairness: the garbage collector's full passes, and a stream update
that lowers a limit on a big stream.

A full collection walks every object the collector tracks, and stops the whole process while it
does; so the stores must not keep an object per message (or per subject) that it has to walk.
That is checked exactly, by counting tracked objects, not by timing a collection. Then a
bystander's request/reply pings stay fast while updates trim two big streams (memory and file)
to a handful of messages and full collections run alongside: the bound is the same gross-stall
bound as in test_fairness.py (250 ms of the loop thread's CPU time, here with the collector's
time counted in), which unsliced trims of these streams pass by far; the bystander's wall-clock
wait leaves the collector's passes out, as there.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from servers import flushed, start_in_process

from pyjetstream.jetstream.store import FileStore, MemoryStore
from pyjetstream.server.server import Server

from .loop_lag import GC, LoopLag

pytestmark = pytest.mark.timeout(180)

N_STORE = 50_000
N_STREAM = 300_000
BOUND_S = 0.250


@pytest.fixture(params=["memory", "file"])
def store(request: Any, tmp_path: Path) -> Iterator[MemoryStore | FileStore]:
    st: MemoryStore | FileStore = MemoryStore() if request.param == "memory" else FileStore(str(tmp_path / "s"))
    yield st
    st.close()


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_stores_leave_no_object_per_message_for_the_collector(store: MemoryStore | FileStore) -> None:
    """50 000 messages on 50 000 subjects, then the bookkeeping every mutation path does
    (repeats, removals from the front and the middle, a compaction, reads) leave the tracked
    object count where it was: messages and per-subject entries are plain tuples of atomic
    values, which the collector stops following once they survive a collection."""
    before = _tracked()
    for i in range(N_STORE):
        store.store_msg(f"s.{i}", b"", b"x" * 16, i + 1)
    for i in range(0, N_STORE, 7):
        store.store_msg(f"s.{i}", b"NATS/1.0\r\nk: v\r\n\r\n", b"again", N_STORE + i)
    for seq in range(1, N_STORE, 5):
        store.remove_msg(seq)
    store.compact(N_STORE // 2)
    assert store.load_last_msg("s.7") is not None and store.subjects_state("s.14")
    grown = _tracked() - before
    assert store.num_msgs > N_STORE // 3
    # a few containers of the store itself, never one per message or subject
    assert grown < 500, f"{grown} tracked objects for {store.num_msgs} messages"


async def _bystander_while_trimming(url: str) -> tuple[float, list[dict[str, Any]]]:
    """On its own loop (another thread, as a client in another process): lower max_msgs on
    both streams while a bystander pings a responder; returns its worst round trip and the
    update answers (its worst wait without the collector's passes)."""
    admin, responder, bystander = [await nats.connect(url) for _ in range(3)]

    async def pong(msg: Any) -> None:
        await msg.respond(b"pong")

    await responder.subscribe("ping", cb=pong)
    await flushed(responder)

    async def update(name: str) -> dict[str, Any]:
        cfg = json.loads((await admin.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=60)).data)["config"]
        cfg["max_msgs"] = 10
        out: dict[str, Any] = json.loads(
            (await admin.request(f"$JS.API.STREAM.UPDATE.{name}", json.dumps(cfg).encode(), timeout=120)).data)
        return out

    updating = asyncio.gather(update("M"), update("F"))
    worst = 0.0
    while not updating.done():
        t, g = time.perf_counter(), GC.total
        r = await bystander.request("ping", b"", timeout=10)
        assert r.data == b"pong"
        # the collector's passes are bounded by the loop's measure, which counts them; in wall
        # time they are the machine's share of a process-wide pause (CI failed at 1006 ms
        # beside two busy loops), so the bystander's wait leaves them out as test_fairness does
        worst = max(worst, time.perf_counter() - t - (GC.total - g))
        await asyncio.sleep(0.01)
    answers = await updating
    for nc in (admin, responder, bystander):
        await nc.close()
    return worst, answers


async def test_bystander_stays_fast_while_updates_trim_and_the_collector_runs(tmp_path: Path) -> None:
    srv: Server = await start_in_process(tmp_path / "js")
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        for name, storage in (("M", "memory"), ("F", "file")):
            r = json.loads((await nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(
                {"name": name, "subjects": [f"{name.lower()}.>"], "storage": storage}).encode())).data)
            assert "error" not in r, r
        await nc.close()
        jsa = srv.jetstream.accounts["$G"]
        for name in ("M", "F"):  # filled in-process, with no gc.freeze: the collector sees it all
            stream = jsa.streams[name]
            for i in range(N_STREAM):
                stream.process_msg(f"{name.lower()}.{i}", "", None, b"v" * 32)
                if i % 4096 == 0:
                    await asyncio.sleep(0)

        async def collect() -> None:
            while True:  # full passes all along, as a publish load would cause them
                gc.collect()
                await asyncio.sleep(0.05)

        lag = LoopLag(count_gc=True)
        gc.callbacks.append(GC)
        lag.start()
        collector = asyncio.get_running_loop().create_task(collect())
        try:
            worst_ping, answers = await asyncio.to_thread(
                asyncio.run, _bystander_while_trimming(f"nats://127.0.0.1:{srv.port}"))
        finally:
            collector.cancel()
            await lag.stop()
            gc.callbacks.remove(GC)
        for a in answers:
            assert a["state"]["messages"] == 10 and a["state"]["first_seq"] == N_STREAM - 9, a["state"]
        assert lag.worst < BOUND_S, f"event loop held for {lag.worst * 1000:.0f} ms"
        assert worst_ping < 1.0, f"bystander waited {worst_ping * 1000:.0f} ms"
    finally:
        await srv.shutdown()
