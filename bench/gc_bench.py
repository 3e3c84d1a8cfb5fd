"""Process-wide stalls on a big stream: the garbage collector and the operations that touch every
message (docs/security.md, "Fairness"; docs/design.md, "Garbage-collector pauses").

Owns only measurement. One in-process server (this process, so that gc.callbacks sees every
collection), one stream filled in-process with --msgs messages over --subjects subjects, then:
  fill      the collections during the fill (full ones: count and longest)
  heap      objects the collector tracks, by type, and three full collections timed
  update    STREAM.UPDATE lowering max_msgs to 10 (trimmed in slices)
  max_age   (a fresh stream) STREAM.UPDATE lowering max_age below the messages' age
  purge     STREAM.PURGE without a filter, then STREAM.DELETE (fresh streams)
For each operation: its wall time and the longest pass of the event loop meanwhile, in CPU time
of the loop's thread (a task sleeping 1 ms at a time), the collector's passes included.

  .venv/bin/python bench/gc_bench.py --storage memory --msgs 1000000 --subjects 1000
  .venv/bin/python bench/gc_bench.py --storage file --msgs 1000000 --subjects 1000000

Must not be run by the test suite (a million messages take a few seconds and about 1 GB).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
from collections import Counter
from typing import Any

import nats

from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server


class Collections:
    """Every collection's generation and duration (gc.callbacks)."""

    def __init__(self) -> None:
        self.done: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.done.append((info["generation"], time.perf_counter() - self._t0))

    def full(self) -> list[float]:
        return [d for g, d in self.done if g == 2]


class LoopLag:
    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.thread_time()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.thread_time() - t)

    async def measure(self, what: str, op: Any) -> Any:
        await asyncio.sleep(0.05)
        self.worst = 0.0
        t = time.perf_counter()
        out = await op
        await asyncio.sleep(0.05)
        print(json.dumps({"op": what, "seconds": round(time.perf_counter() - t, 3),
                          "worst_loop_pass_ms": round(self.worst * 1000, 1)}), flush=True)
        return out

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())


async def main(a: argparse.Namespace) -> None:
    colls = Collections()
    gc.callbacks.append(colls)
    srv = Server(ServerOptions(host="127.0.0.1", port=0,
                               jetstream=JetStreamOptions(enabled=True, store_dir=tempfile.mkdtemp())))
    await srv.start()
    nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
    jsa = srv.jetstream.accounts["$G"]
    lag = LoopLag()
    lag.start()

    async def api(subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        r: dict[str, Any] = json.loads((await nc.request("$JS.API." + subject, payload, timeout=300)).data)
        assert "error" not in r, r
        return r

    async def fresh(name: str, **cfg: Any) -> dict[str, Any]:
        cfg = {"name": name, "subjects": [f"{name}.>"], "storage": a.storage, **cfg}
        await api(f"STREAM.CREATE.{name}", cfg)
        stream = jsa.streams[name]
        for i in range(a.msgs):
            stream.process_msg(f"{name}.{i % a.subjects}", "", None, b"v" * 32)
            if i % 4096 == 0:
                await asyncio.sleep(0)
        return cfg

    t = time.perf_counter()
    cfg = await fresh("B")
    full = colls.full()
    print(json.dumps({"op": "fill", "msgs": a.msgs, "subjects": a.subjects, "storage": a.storage,
                      "seconds": round(time.perf_counter() - t, 2), "full_collections": len(full),
                      "longest_full_ms": round(max(full, default=0) * 1000, 1)}), flush=True)
    objs = gc.get_objects()
    print(json.dumps({"op": "heap", "tracked": len(objs),
                      "by_type": dict(Counter(type(o).__name__ for o in objs).most_common(5))}), flush=True)
    del objs
    for _ in range(3):
        t, c = time.perf_counter(), time.thread_time()
        gc.collect()
        print(json.dumps({"op": "gc.collect", "ms": round((time.perf_counter() - t) * 1000, 1),
                          "cpu_ms": round((time.thread_time() - c) * 1000, 1)}), flush=True)
    await lag.measure("update max_msgs=10", api("STREAM.UPDATE.B", {**cfg, "max_msgs": 10}))
    await api("STREAM.DELETE.B")
    cfg = await fresh("A")
    await asyncio.sleep(1.2)
    await lag.measure("update max_age=1s", api("STREAM.UPDATE.A", {**cfg, "max_age": 1_000_000_000}))
    await api("STREAM.DELETE.A")
    await fresh("P")
    await lag.measure("purge", api("STREAM.PURGE.P"))
    await api("STREAM.DELETE.P")
    await fresh("D")
    await lag.measure("delete", api("STREAM.DELETE.D"))
    await nc.close()
    await srv.shutdown()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", choices=["memory", "file"], default="memory")
    ap.add_argument("--msgs", type=int, default=1_000_000)
    ap.add_argument("--subjects", type=int, default=1000)
    asyncio.run(main(ap.parse_args()))
