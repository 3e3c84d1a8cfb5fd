"""Stream-store benchmarks: publish-path cost, and restart time and memory with 1M messages.

Owns only measurement; prints one JSON object per line. Phases:
  micro    store_msg + commit in batches per loop iteration (as pipelined publishes arrive),
           for the memory store, the file store with fsync per group commit, and with
           sync_interval; wall and process CPU time per message include the writer thread.
  scale    1,000,000 x 128 B messages stored in a child process, clean close, then a fresh
           process reopens: time to ready and RSS.
  crash    the same, but the writer process dies without closing (os._exit after the data is
           written): the reopen scans the unsealed tail. `scale` also measures the worst case,
           a reopen with every index and the snapshot deleted (a full checked scan).
Run: .venv/bin/python bench/store_bench.py [micro|scale|crash ...] [--n N]
Must not be run by the test suite (it writes ~170 MB and takes tens of seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from pyjetstream.jetstream.store import FileStore, MemoryStore

PAYLOAD = b"x" * 128


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started by a big
    # parent would report the parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**kv: object) -> None:
    print(json.dumps(kv), flush=True)


async def _pipelined(st, n: int, batch: int) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    remaining = [n]

    def acked() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)

    store = st.store_msg
    commit = st.commit
    for i in range(0, n, batch):
        for _ in range(min(batch, n - i)):
            store("bench.sub", b"", PAYLOAD, 1)
            commit(acked)
        await asyncio.sleep(0)  # one loop iteration per batch, as with a client's window
    await done


def micro(n: int, batch: int) -> None:
    cases = [
        ("memory", lambda d: MemoryStore()),
        ("file_sync_always", lambda d: FileStore(d)),
        ("file_sync_interval", lambda d: FileStore(d, sync_interval_s=1.0)),
    ]
    for name, make in cases:
        d = tempfile.mkdtemp(prefix="storebench-")
        try:
            st = make(d)
            c0 = time.process_time()
            t0 = time.perf_counter()
            asyncio.run(_pipelined(st, n, batch))
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
            st.close()
            emit(phase="micro", store=name, msgs=n, batch=batch,
                 wall_us_per_msg=round(wall / n * 1e6, 3), cpu_us_per_msg=round(cpu / n * 1e6, 3),
                 msgs_per_s=round(n / wall))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    # Consumer-side paths on a populated store: sequential reads, filtered reads, removals.
    d = tempfile.mkdtemp(prefix="storebench-")
    try:
        st = FileStore(d)
        for i in range(n):
            st.store_msg(f"bench.{i % 4}", b"", PAYLOAD, 1)
        st.flush()
        for name, filt in (("load_next_all", ""), ("load_next_literal", "bench.1"),
                           ("load_next_wildcard", "bench.*")):
            t0 = time.perf_counter()
            seq, k = 1, 0
            while (m := st.load_next_msg(filt, seq)) is not None:
                seq = m.seq + 1
                k += 1
            wall = time.perf_counter() - t0
            emit(phase="micro", store="file", op=name, msgs=k, wall_us_per_msg=round(wall / k * 1e6, 3))
        t0 = time.perf_counter()
        for seq in range(1, n + 1):
            st.remove_msg(seq)
        st.flush()
        wall = time.perf_counter() - t0
        emit(phase="micro", store="file", op="remove_in_order", msgs=n, wall_us_per_msg=round(wall / n * 1e6, 3))
        st.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # The bare store_msg cost, without the loop and commit machinery around it.
    d = tempfile.mkdtemp(prefix="storebench-")
    try:
        st = FileStore(d)
        t0 = time.perf_counter()
        for _ in range(n):
            st.store_msg("bench.sub", b"", PAYLOAD, 1)
        st.flush()
        wall = time.perf_counter() - t0
        st.close()
        emit(phase="micro", store="file_store_msg_only", msgs=n, wall_us_per_msg=round(wall / n * 1e6, 3))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _child(mode: str, d: str, n: int) -> None:
    """Runs in a fresh interpreter so RSS figures are its own."""
    if mode in ("write", "write-crash"):
        st = FileStore(d)
        t0 = time.perf_counter()
        for i in range(n):
            st.store_msg(f"bench.{i % 16}", b"", PAYLOAD, 1_700_000_000_000_000_000 + i)
        st.flush()
        emit(phase="write", msgs=n, secs=round(time.perf_counter() - t0, 3), rss_mib=round(rss_mib(), 1),
             segments=st.segment_count())
        if mode == "write-crash":
            os._exit(0)  # no close: no tail index, no final snapshot
        st.close()
        return
    base = rss_mib()
    t0 = time.perf_counter()
    st = FileStore(d)
    secs = time.perf_counter() - t0
    s = st.state()
    m = st.load_msg(n // 2)
    assert s.msgs == n and m is not None and m.data == PAYLOAD, s
    emit(phase=mode, msgs=s.msgs, reopen_secs=round(secs, 4), rss_mib=round(rss_mib(), 1),
         rss_before_open_mib=round(base, 1), peak_rss_mib=round(peak_rss_mib(), 1))
    st.close()


def _run_child(mode: str, d: str, n: int) -> None:
    out = subprocess.run([sys.executable, __file__, "--child", mode, d, "--n", str(n)],
                         check=True, capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stdout.flush()


def scale(n: int, crash: bool) -> None:
    d = tempfile.mkdtemp(prefix="storebench-")
    try:
        _run_child("write-crash" if crash else "write", d, n)
        _run_child("reopen-after-crash" if crash else "reopen", d, n)
        _run_child("reopen-again", d, n)
        if not crash:
            # Worst case: no snapshot and no index survived, every record is read and checked.
            for name in os.listdir(d):
                if name.endswith((".idx", ".snap")):
                    os.unlink(os.path.join(d, name))
            _run_child("reopen-full-rescan", d, n)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phases", nargs="*", default=["micro", "scale", "crash"])
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], a.child[1], a.n)
        return
    for ph in a.phases:
        if ph == "micro":
            micro(a.n or 200_000, a.batch)
        elif ph in ("scale", "crash"):
            scale(a.n or 1_000_000, ph == "crash")


if __name__ == "__main__":
    main()
