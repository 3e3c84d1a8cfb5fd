#!/usr/bin/env python3
"""Crash soak: many kill -9 cycles under pipelined publishes, on our server or nats-server.

Owns a longer and louder version of tests/recovery/test_server_crash.py, meant to be run by
hand: C connections pipeline JetStream publishes, the server is SIGKILLed at a random moment,
restarted on the same store, and the whole stream is read back and checked against every
PubAck (present at its seq, intact, per-connection order, no gaps or duplicate seqs). Each
cycle prints a JSON line (acked so far, stored beyond the acks, restart seconds, lost or
damaged counts); the last line sums up. It exits 1 if an acknowledged message went missing.
It must not be run by the test suite.

  .venv/bin/python bench/crash_loop.py --cycles 50 --conns 4
  .venv/bin/python bench/crash_loop.py --server nats-server --cycles 20
  .venv/bin/python bench/crash_loop.py --sync-interval 2m       # our server, fsync opted out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import TooManyStalledMsgsError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import free_port  # noqa: E402
from restart_bench import NATS_SERVER, OURS, probe_info  # noqa: E402

STREAM = "SOAK"


def payload(i: int) -> bytes:
    return b"%010d|" % i + bytes([65 + i % 26]) * (i * 7919 % 200)


class Proc:
    """The server under test, restarted on the same port and store directory."""

    def __init__(self, kind: str, work: Path, sync_interval: str | None) -> None:
        self.kind = kind
        self.work = work
        self.port = free_port()
        self.name = kind
        self.proc: subprocess.Popen[bytes] | None = None
        store = work / "store"
        self.args = ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)]
        if sync_interval:
            conf = work / "server.conf"
            conf.write_text(f'jetstream {{ sync_interval: "{sync_interval}" }}\n')
            self.args += ["-c", str(conf)]

    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> float:
        cmd = (OURS if self.kind == "pyjetstream" else [NATS_SERVER]) + self.args
        t0 = time.monotonic()
        with open(self.work / "server.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = t0 + 120
        while not await probe_info(self, deadline):  # type: ignore[arg-type]
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}; see {self.work}/server.log")
            if time.monotonic() > deadline:
                raise TimeoutError("server not ready")
            await asyncio.sleep(0.005)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait(30)


async def _quiet(e: Exception) -> None:
    """Connection errors are the point of this tool; nats-py would log each one."""


async def connect(p: Proc) -> Any:
    return await nats.connect(p.url(), allow_reconnect=False, error_cb=_quiet, connect_timeout=5)


async def api(nc: Any, subj: str, req: dict[str, Any] | None = None) -> dict[str, Any]:
    for _ in range(500):
        try:
            msg = await nc.request(f"$JS.API.{subj}", json.dumps(req).encode() if req is not None else b"", timeout=30)
            return json.loads(msg.data)
        except nats.errors.NoRespondersError:
            await asyncio.sleep(0.01)  # JetStream still starting
    raise RuntimeError("JetStream never answered")


async def cycle(p: Proc, rng: random.Random, conns: int, base: int, acked: dict[int, int],
                max_per_cycle: int) -> int:
    """Publish from `conns` connections until a random kill; returns the next free id base."""
    ncs = [await connect(p) for _ in range(conns)]
    killed = threading.Event()
    target = rng.randint(100, max_per_cycle)
    timer = threading.Timer(rng.uniform(0.02, 1.0), lambda: (killed.set(), p.kill())) if rng.random() < 0.4 else None
    count = 0
    futures: list[asyncio.Future[Any]] = []
    nexts = [base + k for k in range(conns)]

    def done(i: int, f: asyncio.Future[Any]) -> None:
        nonlocal count
        if f.cancelled() or f.exception() is not None:
            return
        acked[i] = f.result().seq
        count += 1
        if timer is None and count >= target and not killed.is_set():
            killed.set()
            p.kill()

    async def pub(k: int, nc: Any) -> None:
        js = nc.jetstream(timeout=30, publish_async_max_pending=rng.randint(200, 2000))
        i = nexts[k]
        try:
            while not killed.is_set() and len(futures) < 4 * max_per_cycle:
                try:
                    f = await js.publish_async(f"soak.{i % 16}", payload(i), wait_stall=1.0)
                except (TooManyStalledMsgsError, nats.errors.Error, OSError):
                    return
                f.add_done_callback(lambda f, i=i: done(i, f))
                futures.append(f)
                i += conns
        finally:
            nexts[k] = i

    if timer is not None:
        timer.start()
    try:
        await asyncio.gather(*(pub(k, nc) for k, nc in enumerate(ncs)))
        killed.set()
        p.kill()
        p.wait()
        await asyncio.sleep(0)
    finally:
        if timer is not None:
            timer.cancel()
        for f in futures:
            f.cancel()
        for nc in ncs:
            try:
                await asyncio.wait_for(nc.close(), 5)
            except (nats.errors.Error, OSError, TimeoutError):
                pass
    return max(nexts)


async def check(p: Proc, acked: dict[int, int], conns: int) -> dict[str, Any]:
    nc = await connect(p)
    try:
        info = await api(nc, f"STREAM.INFO.{STREAM}")
        st = info["state"]
        js = nc.jetstream(timeout=30)
        psub = await js.pull_subscribe("soak.>", stream=STREAM,
                                       config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30))
        seqs: list[int] = []
        by_seq: dict[int, bytes] = {}
        while len(seqs) < st["messages"]:
            try:
                msgs = await psub.fetch(2000, timeout=10)
            except nats.errors.TimeoutError:
                break
            for m in msgs:
                seqs.append(m.metadata.sequence.stream)
                by_seq[m.metadata.sequence.stream] = m.data
        await psub.unsubscribe()
    finally:
        await nc.close()
    ids = [int(d[:10]) for d in by_seq.values()]
    missing = [i for i, s in acked.items() if by_seq.get(s) != payload(i)]
    reordered = 0
    for k in range(conns):
        own = [int(by_seq[s][:10]) for s in sorted(by_seq) if int(by_seq[s][:10]) % conns == k]
        reordered += sum(1 for a, b in zip(own, own[1:], strict=False) if a >= b)
    return {
        "acked_total": len(acked), "stream_msgs": st["messages"], "last_seq": st["last_seq"],
        "stored_unacked": st["last_seq"] - max(acked.values(), default=0),
        "acked_missing": len(missing), "missing_sample": sorted(missing)[:5],
        "seq_gaps_or_dups": int(seqs != list(range(st["first_seq"], st["last_seq"] + 1))),
        "reordered": reordered, "dup_ids": len(ids) - len(set(ids)),
        "lost_reported": len((st.get("lost") or {}).get("msgs") or []),
        "top_id": max(ids, default=-1),
    }


async def run(a: argparse.Namespace) -> int:
    rng = random.Random(a.seed)
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="crash-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    p = Proc(a.server, work, a.sync_interval)
    acked: dict[int, int] = {}
    bad = 0
    base = 0
    try:
        await p.start()
        nc = await connect(p)
        r = await api(nc, f"STREAM.CREATE.{STREAM}", {"name": STREAM, "subjects": ["soak.>"], "storage": "file",
                                                       "num_replicas": 1})
        await nc.close()
        if "error" in r:
            raise RuntimeError(r)
        for n in range(a.cycles):
            base = await cycle(p, rng, a.conns, base, acked, a.max_per_cycle)
            ready = await p.start()
            rec = await check(p, acked, a.conns)
            base = max(base, rec.pop("top_id") + 1)
            base = -(-base // a.conns) * a.conns
            sync = a.sync_interval or ("always" if a.server == "pyjetstream" else "default (2m)")
            rec = {"server": a.server, "sync_interval": sync, "cycle": n,
                   "restart_s": round(ready, 3), **rec}
            print(json.dumps(rec), flush=True)
            bad += rec["acked_missing"] + rec["seq_gaps_or_dups"] + rec["reordered"] + rec["dup_ids"]
        print(json.dumps({"summary": True, "server": a.server, "cycles": a.cycles, "acked": len(acked),
                          "problems": bad, "seed": a.seed}))
    finally:
        p.kill()
        p.wait()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", choices=("pyjetstream", "nats-server"), default="pyjetstream")
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--conns", type=int, default=3)
    ap.add_argument("--max-per-cycle", type=int, default=20_000, help="upper bound of the random ack count per kill")
    ap.add_argument("--sync-interval", default=None, help='e.g. "2m": our server acks before fsync')
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default="")
    ap.add_argument("--keep", action="store_true")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
