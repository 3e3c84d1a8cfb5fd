#!/usr/bin/env python3
"""Start-up of a server process on an empty store: spawn to the first PONG, and the CPU the
process spent until then.

Spawns nats-server and `pyjetstream server` (the console script, as users run it) with
`-js -sd <empty dir>`, alternating them so machine noise hits both; a raw client retries
connecting until INFO, sends CONNECT+PING and stops the clock at PONG. The child's utime+stime
at that moment (from /proc) is printed beside the wall time: on a loaded machine the wall time
mostly measures the queue for a CPU, the CPU time what start-up costs.

  .venv/bin/python bench/startup_bench.py                       # 20 rounds, both servers
  .venv/bin/python bench/startup_bench.py --rounds 40 --out bench/results/2026-12-02-startup.jsonl
  .venv/bin/python bench/startup_bench.py --cmd ".venv/bin/python -m pyjetstream server" --label "python -m"

Bytecode: an installed package has its .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE=1
(as this project's sessions do) compiles every module of ours at every start. By default the
children get PYTHONPYCACHEPREFIX=<tmp>/pyjetstream-bench-pyc and may write bytecode there (the
warm-up round fills it; nothing is written into the checkout); --no-pyc-cache keeps the
environment as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import cpu_seconds, free_port  # bench/ is on the path when run as a script

ROOT = Path(__file__).resolve().parent.parent
NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/sbin/nats-server")
OURS = [str(ROOT / ".venv" / "bin" / "pyjetstream"), "server"]
HELLO = b'CONNECT {"verbose":false}\r\nPING\r\n'


def _ping(port: int) -> bool:
    """True once the server answered PONG; False while nothing listens yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()  # INFO
            s.sendall(HELLO)
            line = f.readline()
    except OSError:
        return False
    if line != b"PONG\r\n":
        raise RuntimeError(f"expected PONG, got {line!r}")
    return True


def one(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds from spawn to PONG, CPU seconds of the process until then)."""
    store = tempfile.mkdtemp(prefix="startup-bench-")
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while not _ping(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
            time.sleep(0.001)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        return wall, cpu
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(store, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cmd", help="our server command instead of the console script (shell words)")
    ap.add_argument("--label", default="pyjetstream server", help="name of --cmd in the output")
    ap.add_argument("--out", help="append one JSON line per kind to this file")
    ap.add_argument("--no-pyc-cache", action="store_true", help="run the children in this environment as it is")
    a = ap.parse_args()
    env = dict(os.environ)
    if not a.no_pyc_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "pyjetstream-bench-pyc")
    bytecode = "env" if a.no_pyc_cache else "cached"
    kinds: dict[str, list[str]] = {}
    if os.access(NATS_SERVER, os.X_OK):
        kinds["nats-server"] = [NATS_SERVER]
    kinds[a.label] = shlex.split(a.cmd) if a.cmd else OURS
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for cmd in kinds.values():
        one(cmd, env)  # warm-up: page cache, .pyc files
    for _ in range(a.rounds):
        for kind, cmd in kinds.items():
            samples[kind].append(one(cmd, env))
    load = round(os.getloadavg()[0], 2)
    print(f"rounds: {a.rounds}, load average (1 min) at the end: {load}, bytecode: {bytecode} "
          f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here)")
    print("| server | spawn to PONG p50 | p90 | CPU until PONG p50 |")
    print("|---|---|---|---|")
    for kind, got in samples.items():
        walls = sorted(w for w, _ in got)
        cpus = [c for _, c in got]
        p50, p90 = statistics.median(walls), walls[int(0.9 * (len(walls) - 1))]
        cpu = statistics.median(cpus)
        print(f"| {kind} | {p50 * 1000:.1f} ms | {p90 * 1000:.1f} ms | {cpu * 1000:.0f} ms |")
        if a.out:
            with open(a.out, "a") as out:
                out.write(json.dumps({"bench": "startup", "server": kind, "rounds": a.rounds,
                                      "start_p50_ms": round(p50 * 1000, 1), "start_p90_ms": round(p90 * 1000, 1),
                                      "cpu_p50_ms": round(cpu * 1000, 1), "load1": load, "bytecode": bytecode,
                                      "python": sys.version.split()[0]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
