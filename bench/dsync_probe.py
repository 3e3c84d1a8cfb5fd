#!/usr/bin/env python3
"""Three ways to make a small append durable, on the disk this checkout lives on: a write then
fdatasync (what the file store does), one pwritev with RWF_DSYNC, and a write to an O_DSYNC
file. Each appends 160-byte records into preallocated space, as the store's tail segment does,
with a short sleep between appends so the disk goes idle as it does between a lone publisher's
round trips.

  .venv/bin/python bench/dsync_probe.py --ops 2000 --rounds 2

Prints p50/p99 latency and CPU per append for each way, round after round; it was written to
see whether a one-syscall sync could shorten the sync-publish path (docs/design.md, "Durable
sync publish"). Writes only a scratch file next to this script's checkout, removed after.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

RECORD = b"x" * 160
MODES = ("fdatasync", "rwf_dsync", "o_dsync")


def run(mode: str, ops: int, gap: float, directory: Path) -> tuple[float, float, float]:
    path = directory / f".dsync-probe-{os.getpid()}-{mode}"
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | (os.O_DSYNC if mode == "o_dsync" else 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.posix_fallocate(fd, 0, len(RECORD) * ops + 4096)
        os.fsync(fd)
        lat: list[int] = []
        off = 0
        cpu0 = time.process_time()
        for _ in range(ops):
            t = time.perf_counter_ns()
            if mode == "fdatasync":
                os.pwrite(fd, RECORD, off)
                os.fdatasync(fd)
            elif mode == "rwf_dsync":
                os.pwritev(fd, [RECORD], off, os.RWF_DSYNC)
            else:
                os.pwrite(fd, RECORD, off)
            lat.append(time.perf_counter_ns() - t)
            off += len(RECORD)
            time.sleep(gap)
        cpu = (time.process_time() - cpu0) / ops * 1e6
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    return lat[len(lat) // 2] / 1000, lat[int(len(lat) * 0.99)] / 1000, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.0002, help="seconds between appends")
    args = ap.parse_args()
    directory = Path(__file__).resolve().parent.parent
    for r in range(args.rounds):
        for mode in MODES:
            p50, p99, cpu = run(mode, args.ops, args.gap, directory)
            print(f"round {r + 1} {mode:10s} p50 {p50:7.1f} µs  p99 {p99:7.1f} µs  cpu {cpu:6.1f} µs/append")


if __name__ == "__main__":
    main()
