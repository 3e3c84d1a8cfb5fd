#!/usr/bin/env python3
"""Side-by-side benchmarks: the same jsbench phases against nats-server and pyjetstream in one run.

Owns the comparison only: which server command, which durability setting, how many rounds,
and the ratio table. The client-side measurement is the team harness (jsbench.py, found at
../shared/bench or $JSBENCH), which reads each server's CPU time from /proc. Rounds alternate
reference and ours so machine noise hits both; the median of the rounds is reported.

  .venv/bin/python bench/run_all.py                      # all suites, 1 round
  .venv/bin/python bench/run_all.py --suite core --rounds 3 --msgs 100000
Results: one JSON line per (suite, server, round, phase) in bench/results/latest.jsonl, and a
markdown table on stdout with ratios ours/reference.
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
import time
from pathlib import Path

from _harness import free_port, stop, wait_for_port  # bench/ is on the path when run as a script

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
JSBENCH = Path(os.environ.get("JSBENCH", ROOT.parent / "shared" / "bench" / "jsbench.py"))
NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/sbin/nats-server")
GET_NEWER = ROOT.parent / "shared" / "bench" / "get_newer_server.sh"
OURS = [str(ROOT / ".venv" / "bin" / "pyjetstream"), "server"]
if not Path(OURS[0]).exists():
    OURS = [PY, "-m", "pyjetstream", "server"]

JS_PHASES = "js_pub_sync,js_pub_async,js_push_consume,js_pull_consume,js_redelivery"
# suite -> (phases, reference jetstream config, our jetstream config). Durability is equal on
# both sides within a suite: "durable" fsyncs before acking on both, "default" compares the
# reference's default (periodic sync) with ours set to the same periodic sync.
SUITES: dict[str, tuple[str, str | None, str | None]] = {
    "core": ("core_pub", None, None),
    "core_req": ("core_req", None, None),
    "js_durable": (JS_PHASES, "sync_interval: always", None),
    "js_default": (JS_PHASES, None, "sync_interval: \"2m\""),
    # Issue 14's publish goals, alone (no consumer phases): "js_sync" is nats-server 2.9.10's
    # default (no fsync) against ours at our default (fdatasync before every PubAck);
    # "js_pub_durable" is equal durability, nats-server 2.15 `sync_interval: always` and ours.
    "js_sync": ("js_pub_sync", None, None),
    "js_pub_durable": ("js_pub_sync,js_pub_async", "sync_interval: always", None),
}


def newer_server() -> str:
    """nats-server 2.15 (sync_interval: always needs >= 2.10; Debian ships 2.9.10)."""
    env = os.environ.get("NATS_SERVER_NEW")
    if env:
        return env
    out = subprocess.run(["bash", str(GET_NEWER)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit("the durable suite needs nats-server >= 2.10 (set NATS_SERVER_NEW)")
    return out.stdout.strip().splitlines()[-1]


def rss_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k.lower() + "_kb"] = int(v.split()[0])
    except OSError:
        pass
    return out


def fsync_probe_us(directory: str, n: int = 200) -> float:
    """p50 of a 160-byte pwrite + fdatasync into preallocated space, in directory: what the disk
    gives right now (other work on the machine shares it; a flush is the floor of durable
    sync publishing)."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)
        os.fdatasync(fd)
        lat = []
        for i in range(n):
            t = time.perf_counter_ns()
            os.pwrite(fd, b"x" * 160, i * 160)
            os.fdatasync(fd)
            lat.append(time.perf_counter_ns() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return round(statistics.median(lat) / 1000, 1)


def run_one(kind: str, js_conf: str | None, phases: str, msgs: int, size: int, sync_msgs: int = 0) -> list[dict]:
    store = tempfile.mkdtemp(prefix="bench-store-")
    port = free_port()
    args = ["-a", "127.0.0.1", "-p", str(port), "-js"]
    if js_conf:
        # nats-server refuses store_dir given both as a flag and in the file
        conf = Path(store) / "server.conf"
        conf.write_text(f"jetstream {{\n  store_dir: \"{store}\"\n  {js_conf}\n}}\n")
        args += ["-c", str(conf)]
    else:
        args += ["-sd", store]
    ref_bin = newer_server() if (kind == "ref" and js_conf) else NATS_SERVER
    cmd = ([ref_bin] if kind == "ref" else OURS) + args
    log = open(Path(store).with_suffix(".log"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    rows: list[dict] = []
    try:
        wait_for_port(port, 20.0, proc)
        out = subprocess.run([PY, str(JSBENCH), "--url", f"nats://127.0.0.1:{port}", "--server-pid",
                              str(proc.pid), "--msgs", str(msgs), "--size", str(size), "--phases", phases]
                             + (["--sync-msgs", str(sync_msgs)] if sync_msgs else []),
                             capture_output=True, text=True, timeout=900)
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                rows.append(json.loads(line))
        rows.append({"phase": "server_mem", **rss_kb(proc.pid)})
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(store, ignore_errors=True)
    return rows


def median(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return statistics.median(vals) if vals else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", choices=sorted(SUITES), help="suites to run (default all)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--msgs", type=int, default=50000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sync-msgs", type=int, default=0, help="js_pub_sync publishes (default msgs/10)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.jsonl"))
    a = ap.parse_args()
    if not JSBENCH.exists():
        sys.exit(f"jsbench.py not found at {JSBENCH}; set JSBENCH")
    suites = a.suite or list(SUITES)
    results: list[dict] = []
    for suite in suites:
        phases, ref_conf, our_conf = SUITES[suite]
        for rnd in range(a.rounds):
            for kind, conf in (("ref", ref_conf), ("ours", our_conf)):
                load1 = round(os.getloadavg()[0], 2)
                fsync_us = fsync_probe_us(tempfile.gettempdir())
                for row in run_one(kind, conf, phases, a.msgs, a.size, a.sync_msgs):
                    row.update(suite=suite, server=kind, round=rnd, loadavg=load1, disk_fsync_p50_us=fsync_us)
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as f:
        for row in results:
            f.write(json.dumps(row) + "\n")
    loads = [r["loadavg"] for r in results]
    fs = [r["disk_fsync_p50_us"] for r in results]
    print(f"\nload average (1 min) at the start of each run: {min(loads)}-{max(loads)}; the disk's "
          f"fdatasync p50 then (160 B into preallocated space): {min(fs)}-{max(fs)} µs")
    print(f"nats-server: {NATS_SERVER} (js_durable: 2.15 via get_newer_server.sh); msgs={a.msgs} size={a.size} rounds={a.rounds} (medians)\n")
    print("| suite | phase | ref msgs/s | ours msgs/s | ratio | ref µs/msg | ours µs/msg | cpu ratio | ref p50/p99 ms | ours p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for suite in suites:
        phases = [p for p in SUITES[suite][0].split(",")]
        for ph in phases:
            ref = [r for r in results if r["suite"] == suite and r["server"] == "ref" and r["phase"] == ph]
            ours = [r for r in results if r["suite"] == suite and r["server"] == "ours" and r["phase"] == ph]
            rm, om = median(ref, "msgs_per_s"), median(ours, "msgs_per_s")
            rc, oc = median(ref, "server_cpu_us_per_msg"), median(ours, "server_cpu_us_per_msg")
            err = "; ".join(str(r["error"])[:60] for r in ref + ours if "error" in r)

            def fmt(v: float | None, d: int = 0) -> str:
                return "n/a" if v is None else f"{v:,.{d}f}"

            def lat(rows: list[dict]) -> str:
                p50, p99 = median(rows, "p50_ms"), median(rows, "p99_ms")
                return "" if p50 is None else f"{p50:.3f} / {p99:.3f}"

            ratio = f"{om / rm:.2f}x" if rm and om else "n/a"
            cratio = f"{oc / rc:.1f}x" if rc and oc else "n/a"
            print(f"| {suite} | {ph} | {fmt(rm)} | {fmt(om)} | {ratio} | {fmt(rc, 2)} | {fmt(oc, 2)} | {cratio} "
                  f"| {lat(ref)} | {lat(ours)} |" + (f" error: {err}" if err else ""))
        for kind in ("ref", "ours"):
            mem = [r for r in results if r["suite"] == suite and r["server"] == kind and r["phase"] == "server_mem"]
            if mem:
                print(f"|  {suite} | RSS {kind} | {fmt(median(mem, 'vmrss_kb'))} KiB, peak {fmt(median(mem, 'vmhwm_kb'))} KiB |||||||||")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
