#!/usr/bin/env python3
"""Start-up and shutdown of a server for one test: in-process `pyjetstream.serve` beside a
spawned nats-server binary and a spawned `pyjetstream server`, in one run.

Each sample measures from "start" until a raw client got PONG for its PING (after INFO and
CONNECT), then the time to shut down (in-process: until `serve` has returned; processes: from
SIGTERM until the process exited). Rounds alternate the three kinds so machine noise hits all.

  .venv/bin/python bench/embed_bench.py                 # 30 rounds
  .venv/bin/python bench/embed_bench.py --rounds 100 --out bench/results/embed.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import free_port  # bench/ is on the path when run as a script

import pyjetstream

ROOT = Path(__file__).resolve().parent.parent
NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/sbin/nats-server")
OURS = [str(ROOT / ".venv" / "bin" / "pyjetstream"), "server"]
HELLO = b'CONNECT {"verbose":false}\r\nPING\r\n'


async def _ping(port: int) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()  # INFO
    w.write(HELLO)
    await w.drain()
    line = await r.readline()
    if line != b"PONG\r\n":
        raise RuntimeError(f"expected PONG, got {line!r}")
    w.close()


async def in_process(jetstream: bool) -> tuple[float, float]:
    t0 = time.perf_counter()
    cm = pyjetstream.serve(jetstream=jetstream)
    srv = await cm.__aenter__()
    await _ping(srv.port)
    t1 = time.perf_counter()
    await cm.__aexit__(None, None, None)
    return t1 - t0, time.perf_counter() - t1


def spawned(cmd: list[str]) -> tuple[float, float]:
    store = tempfile.mkdtemp(prefix="embed-bench-")
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                asyncio.run(_ping(port))
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}") from None
                time.sleep(0.001)
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        return t1 - t0, time.perf_counter() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(store, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest-embed.jsonl"))
    a = ap.parse_args()
    kinds: dict[str, list[tuple[float, float]]] = {
        "in-process, core": [], "in-process, jetstream": [], "nats-server process": [],
        "pyjetstream server process": []}
    asyncio.run(in_process(True))  # warm-up: first-time imports are not a per-test cost
    for _ in range(a.rounds):
        kinds["in-process, core"].append(asyncio.run(in_process(False)))
        kinds["in-process, jetstream"].append(asyncio.run(in_process(True)))
        if os.access(NATS_SERVER, os.X_OK):
            kinds["nats-server process"].append(spawned([NATS_SERVER]))
        if os.access(OURS[0], os.X_OK):
            kinds["pyjetstream server process"].append(spawned(OURS))
    load = os.getloadavg()[0]
    ref = statistics.median(s for s, _ in kinds["nats-server process"]) if kinds["nats-server process"] else None
    print(f"rounds: {a.rounds}, load average: {load:.2f}")
    print("| how | start to PONG p50 | p95 | shutdown p50 | start vs nats-server process |")
    print("|---|---|---|---|---|")
    with open(a.out, "w") as out:
        for kind, samples in kinds.items():
            if not samples:
                continue
            starts = sorted(s for s, _ in samples)
            stops = [d for _, d in samples]
            p50, p95 = statistics.median(starts), starts[int(0.95 * (len(starts) - 1))]
            ratio = f"{p50 / ref:.2f}x" if ref else "-"
            print(f"| {kind} | {p50 * 1000:.2f} ms | {p95 * 1000:.2f} ms | {statistics.median(stops) * 1000:.2f} ms "
                  f"| {ratio} |")
            out.write(json.dumps({"kind": kind, "rounds": len(samples), "start_p50_ms": p50 * 1000,
                                  "start_p95_ms": p95 * 1000, "stop_p50_ms": statistics.median(stops) * 1000,
                                  "load": load, "python": sys.version.split()[0]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
