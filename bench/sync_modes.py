#!/usr/bin/env python3
"""Where to fdatasync before a PubAck: on the writer thread, or on the loop thread when the
store has nothing else in flight. Rotates nats-server 2.9.10 (its default, no fsync) and our
server in each mode through the same jsbench phases, round after round, so machine noise hits
all of them alike.

  .venv/bin/python bench/sync_modes.py --rounds 5 --sync-msgs 3000
  .venv/bin/python bench/sync_modes.py --rounds 3 --with-req   # + request/reply beside it

"alone": one publisher awaiting each PubAck (jsbench js_pub_sync). "--with-req": the same,
while a second jsbench measures core request/reply latency on other connections of the same
server (what syncing on the loop thread costs everyone else). The mode is chosen through the
PYJETSTREAM_SYNC_MODE environment variable (inline, the default, or thread), read once when
the store module is imported. Prints medians per server; rows go to --out as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import free_port, stop, wait_for_port  # noqa: E402
from run_all import JSBENCH, NATS_SERVER, OURS, PY, ROOT, fsync_probe_us  # noqa: E402


def run(kind: str, mode: str, sync_msgs: int, with_req: bool, size: int) -> list[dict]:
    store = tempfile.mkdtemp(prefix="bench-store-")
    port = free_port()
    args = ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
    # "MODE@DIR": our server with the sources in DIR first on PYTHONPATH (an older variant)
    mode, _, src = mode.partition("@")
    env = dict(os.environ, PYJETSTREAM_SYNC_MODE=mode)
    if src:
        env["PYTHONPATH"] = src
    cmd = ([NATS_SERVER] if kind == "ref" else OURS) + args
    log = open(Path(store).with_suffix(".log"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    rows: list[dict] = []
    load1 = round(os.getloadavg()[0], 2)
    fsync_us = fsync_probe_us(tempfile.gettempdir())
    try:
        wait_for_port(port, 20.0, proc)
        base = [PY, str(JSBENCH), "--url", f"nats://127.0.0.1:{port}", "--server-pid", str(proc.pid),
                "--size", str(size)]
        req = None
        if with_req:
            # enough requests to outlast the publisher; only its own latencies are kept
            req = subprocess.Popen(base + ["--msgs", "10", "--phases", "core_req", "--req-msgs",
                                           str(sync_msgs * 2)], stdout=subprocess.PIPE, text=True)
        out = subprocess.run(base + ["--msgs", "10", "--phases", "js_pub_sync", "--sync-msgs", str(sync_msgs)],
                             capture_output=True, text=True, timeout=900)
        lines = out.stdout.splitlines()
        if req is not None:
            rout, _ = req.communicate(timeout=900)
            lines += rout.splitlines()
        for line in lines:
            if line.startswith("{"):
                row = json.loads(line)
                if row.get("phase") in ("js_pub_sync", "core_req"):
                    name = f"ours-{mode}" + (f"@{src}" if src else "")
                    rows.append({**row, "server": kind if kind == "ref" else name,
                                 "with_req": with_req, "loadavg": load1, "disk_fsync_p50_us": fsync_us})
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(store, ignore_errors=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sync-msgs", type=int, default=3000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--with-req", action="store_true", help="request/reply latency beside the publisher")
    ap.add_argument("--modes", default="thread,inline",
                    help="comma-separated; MODE@DIR runs that mode with the sources in DIR (e.g. a "
                         "`git archive <commit> src` unpacked there) first on PYTHONPATH")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest-sync-modes.jsonl"))
    a = ap.parse_args()
    servers = [("ref", "-")] + [("ours", m) for m in a.modes.split(",")]
    rows: list[dict] = []
    for rnd in range(a.rounds):
        for kind, mode in servers:
            for row in run(kind, mode, a.sync_msgs, a.with_req, a.size):
                row["round"] = rnd
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    with open(a.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    loads = [r["loadavg"] for r in rows]
    fs = [r["disk_fsync_p50_us"] for r in rows]
    print(f"disk fdatasync p50 at the start of each run: {min(fs)}-{max(fs)} µs (median "
          f"{statistics.median(fs)})")
    print(f"load average at the start of each run: {min(loads)}-{max(loads)}; rounds={a.rounds} "
          f"sync_msgs={a.sync_msgs} with_req={a.with_req} (medians)")
    print("| server | phase | msgs/s | p50 ms | p99 ms | server µs/msg |")
    print("|---|---|---|---|---|---|")
    names = ["ref"] + [f"ours-{m}" for m in a.modes.split(",")]
    for name in names:
        for ph in ("js_pub_sync", "core_req"):
            rs = [r for r in rows if r["server"] == name and r["phase"] == ph]
            if not rs:
                continue

            def med(k: str, rs: list[dict] = rs) -> float:
                return statistics.median(r[k] for r in rs if isinstance(r.get(k), int | float))

            print(f"| {name} | {ph} | {med('msgs_per_s'):,.0f} | {med('p50_ms'):.3f} | {med('p99_ms'):.3f} "
                  f"| {med('server_cpu_us_per_msg'):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
