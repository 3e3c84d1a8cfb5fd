#!/usr/bin/env python3
"""Stream-side JetStream benchmarks, ours next to nats-server in one run.

Covers what the team harness (bench/run_all.py) does not: publishes through the dedupe path
(Nats-Msg-Id), KV puts (expected-last-subject-sequence) and gets (DIRECT.GET), and API
round trips (STREAM.INFO). Same client (nats-py), same durability on both sides:
  --mode default  nats-server's default (periodic sync) vs ours with sync_interval 2m
  --mode durable  nats-server >= 2.10 with `sync_interval: always` ($NATS_SERVER_NEW, e.g.
                  from ../shared/bench/get_newer_server.sh) vs our default (fsync before PubAck)
Server CPU comes from /proc/<pid>/stat. Results: JSON lines on stdout and in --out, then a table.

  .venv/bin/python bench/js_bench.py --msgs 20000
  NATS_SERVER_NEW=/tmp/natsbin/embedded_nats/embedded_nats/bin/nats-server \\
      .venv/bin/python bench/js_bench.py --mode durable
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from _harness import (  # bench/ is on the path when run as a script
    cpu_seconds,
    free_port,
    start_listening,
    stop,
)

ROOT = Path(__file__).resolve().parent.parent
OURS = [str(ROOT / ".venv" / "bin" / "pyjetstream"), "server"]
NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/sbin/nats-server")


def start(kind: str, mode: str, store: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "ref":
        binary = os.environ.get("NATS_SERVER_NEW", "") if mode == "durable" else NATS_SERVER
        if not binary:
            sys.exit("--mode durable needs NATS_SERVER_NEW (nats-server >= 2.10 for sync_interval: always)")
        js_conf = "sync_interval: always" if mode == "durable" else ""
        cmd = [binary]
    else:
        js_conf = 'sync_interval: "2m"' if mode == "default" else ""
        cmd = list(OURS)
    conf = Path(store) / "server.conf"
    conf.write_text(f'jetstream {{\n  store_dir: "{store}"\n  {js_conf}\n}}\n')
    cmd += ["-a", "127.0.0.1", "-p", str(port), "-js", "-c", str(conf)]
    try:
        return start_listening(cmd, port), port
    except (RuntimeError, TimeoutError) as e:
        sys.exit(f"{kind} server: {e}")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def phases(url: str, pid: int, msgs: int, size: int) -> list[dict]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    payload = b"x" * size
    rows: list[dict] = []

    async def timed(name: str, n: int, coro_fn) -> dict:  # type: ignore[no-untyped-def]
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        extra = await coro_fn()
        dt, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
        row = {"phase": name, "msgs": n, "seconds": round(dt, 4), "msgs_per_s": round(n / dt, 1),
               "server_cpu_s": round(cpu, 3), "server_cpu_us_per_msg": round(cpu / n * 1e6, 2), **(extra or {})}
        rows.append(row)
        return row

    await js.add_stream(name="DEDUPE", subjects=["dd.>"])

    async def pub_msgid() -> dict:
        for w in range(0, msgs, 1000):
            futs = [await js.publish_async("dd.a", payload, headers={"Nats-Msg-Id": f"m{w + i}"})
                    for i in range(min(1000, msgs - w))]
            await asyncio.gather(*futs)
        return {"stream_msgs": (await js.stream_info("DEDUPE")).state.messages}

    await timed("pub_msgid_async", msgs, pub_msgid)

    kv = await js.create_key_value(bucket="bench", history=1)
    n_kv = max(1, msgs // 10)

    async def kv_put() -> dict:
        lat = []
        for i in range(n_kv):
            t = time.perf_counter()
            await kv.put(f"k{i % 100}", payload)
            lat.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": round(pct(lat, 0.5), 4), "p99_ms": round(pct(lat, 0.99), 4)}

    async def kv_get() -> dict:
        lat = []
        for i in range(n_kv):
            t = time.perf_counter()
            await kv.get(f"k{i % 100}")
            lat.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": round(pct(lat, 0.5), 4), "p99_ms": round(pct(lat, 0.99), 4)}

    async def info() -> dict:
        lat = []
        for _ in range(n_kv):
            t = time.perf_counter()
            await js.stream_info("DEDUPE")
            lat.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": round(pct(lat, 0.5), 4), "p99_ms": round(pct(lat, 0.99), 4)}

    await timed("kv_put_sync", n_kv, kv_put)
    await timed("kv_get_direct", n_kv, kv_get)
    await timed("stream_info", n_kv, info)
    await nc.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("default", "durable"), default="default")
    ap.add_argument("--msgs", type=int, default=20000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "js_bench.jsonl"))
    a = ap.parse_args()
    results: dict[str, list[dict]] = {"ref": [], "ours": []}
    for rnd in range(a.rounds):
        for kind in ("ref", "ours"):  # alternate so machine noise hits both
            store = tempfile.mkdtemp(prefix="jsbench-")
            proc, port = start(kind, a.mode, store)
            try:
                rows = asyncio.run(phases(f"nats://127.0.0.1:{port}", proc.pid, a.msgs, a.size))
            finally:
                stop(proc)
                shutil.rmtree(store, ignore_errors=True)
            for r in rows:
                r.update(server=kind, mode=a.mode, round=rnd)
                print(json.dumps(r))
            results[kind] += rows
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        for kind in results:
            for r in results[kind]:
                f.write(json.dumps(r) + "\n")
    print(f"\nmode={a.mode} msgs={a.msgs} size={a.size} rounds={a.rounds} (medians)\n")
    print("| phase | ref msgs/s | ours msgs/s | ratio | ref µs/msg | ours µs/msg | ref p50/p99 ms | ours p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for ph in ("pub_msgid_async", "kv_put_sync", "kv_get_direct", "stream_info"):
        def med(kind: str, key: str, ph: str = ph) -> float | None:
            xs = [r[key] for r in results[kind] if r["phase"] == ph and key in r]
            return statistics.median(xs) if xs else None

        rr, ro = med("ref", "msgs_per_s"), med("ours", "msgs_per_s")
        lat = {k: (f"{med(k, 'p50_ms')} / {med(k, 'p99_ms')}" if med(k, "p50_ms") is not None else "")
               for k in ("ref", "ours")}
        ratio = f"{ro / rr:.2f}x" if rr and ro else ""
        print(f"| {ph} | {rr:,.0f} | {ro:,.0f} | {ratio} | {med('ref', 'server_cpu_us_per_msg')} | "
              f"{med('ours', 'server_cpu_us_per_msg')} | {lat['ref']} | {lat['ours']} |")


if __name__ == "__main__":
    main()
