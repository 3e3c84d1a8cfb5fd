"""Consumer benchmarks, side by side with nats-server in one run, through the nats-py client.

Owns only measurement; prints one JSON object per line per (server, phase):
  push     durable push consumer, explicit ack of every message (callback subscription)
  pull     pull consumer, fetch in batches of 100, ack every message
  nak      every message NAKed once, then acked on its redelivery (two deliveries each)
  ordered  ordered consumer replaying the whole stream (ack none, flow control, heartbeats)
  core     (ours only, --core) the pure state machine on a memory store: µs per delivery + ack
Each server runs as a child process (ours: pyjetstream's Server on uvloop when importable;
theirs: /usr/sbin/nats-server) with a memory stream preloaded with N messages; reported are
messages/s seen by the client and the server process's CPU µs per message (from /proc).
Run: .venv/bin/python bench/consumer_bench.py [--n 20000] [--phases push,pull,nak,ordered] [--core]
Must not be run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time

import nats
from _harness import (  # bench/ is on the path when run as a script
    cpu_seconds,
    free_port,
    start_listening,
    stop,
)
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

NATS_SERVER = "/usr/sbin/nats-server"
PAYLOAD = b"x" * 128

OURS = textwrap.dedent("""
    import asyncio, sys
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from pyjetstream.server.options import JetStreamOptions, ServerOptions
    from pyjetstream.server.server import Server

    async def main():
        srv = Server(ServerOptions(host="127.0.0.1", port=int(sys.argv[1]),
                                   jetstream=JetStreamOptions(enabled=True, store_dir=sys.argv[2])))
        await srv.start()
        await srv.wait_closed()

    asyncio.run(main())
""")


def emit(**kv: object) -> None:
    print(json.dumps(kv), flush=True)


def start(kind: str, store_dir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if kind == "nats-server":
        cmd = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store_dir]
    else:
        cmd = [sys.executable, "-c", OURS, str(port), store_dir]
    return start_listening(cmd, port), port


async def preload(js, stream: str, n: int) -> None:
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.MEMORY))
    futs = []
    for _ in range(n):
        futs.append(await js.publish_async(f"{stream}.x", PAYLOAD))
        if len(futs) >= 500:
            await asyncio.gather(*futs)
            futs = []
    if futs:
        await asyncio.gather(*futs)


async def phase_push(nc, js, n: int) -> None:
    done = asyncio.get_running_loop().create_future()
    count = 0

    async def cb(msg):
        nonlocal count
        await msg.ack()
        count += 1
        if count == n and not done.done():
            done.set_result(None)

    await js.subscribe("B.>", durable="push", cb=cb, manual_ack=True, pending_msgs_limit=-1,
                       config=ConsumerConfig(max_ack_pending=5000))
    await asyncio.wait_for(done, 300)


async def phase_pull(nc, js, n: int) -> None:
    psub = await js.pull_subscribe("B.>", durable="pull")
    got = 0
    while got < n:
        for m in await psub.fetch(100, timeout=10):
            await m.ack()
            got += 1


async def phase_nak(nc, js, n: int) -> None:
    done = asyncio.get_running_loop().create_future()
    acked = 0

    async def cb(msg):
        nonlocal acked
        if msg.metadata.num_delivered == 1:
            await msg.nak()
        else:
            await msg.ack()
            acked += 1
            if acked == n and not done.done():
                done.set_result(None)

    await js.subscribe("B.>", durable="nak", cb=cb, manual_ack=True, pending_msgs_limit=-1,
                       config=ConsumerConfig(max_ack_pending=5000, ack_policy=AckPolicy.EXPLICIT))
    await asyncio.wait_for(done, 300)


async def phase_ordered(nc, js, n: int) -> None:
    done = asyncio.get_running_loop().create_future()
    count = 0

    async def cb(msg):
        nonlocal count
        count += 1
        if count == n and not done.done():
            done.set_result(None)

    await js.subscribe("B.>", cb=cb, ordered_consumer=True, pending_msgs_limit=-1)
    await asyncio.wait_for(done, 300)


PHASES = {"push": phase_push, "pull": phase_pull, "nak": phase_nak, "ordered": phase_ordered}


async def run(kind: str, n: int, phases: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        proc, port = start(kind, d)
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{port}", pending_size=256 * 1024 * 1024)
            js = nc.jetstream()
            await preload(js, "B", n)
            for ph in phases:
                cpu0, t0, ccpu0 = cpu_seconds(proc.pid), time.perf_counter(), time.process_time()
                await PHASES[ph](nc, js, n)
                await nc.flush()
                wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
                ccpu = time.process_time() - ccpu0
                msgs = n * (2 if ph == "nak" else 1)  # deliveries the server made
                rec = {"server": kind, "phase": ph, "n": n, "msgs_per_s": round(n / wall),
                       "server_cpu_us_per_delivery": round(cpu / msgs * 1e6, 2),
                       "client_cpu_us_per_msg": round(ccpu / n * 1e6, 2), "wall_s": round(wall, 3)}
                emit(**rec)
                out[ph] = rec
            await nc.close()
        finally:
            stop(proc, 5)
    return out


def core_phase(n: int) -> None:
    from pyjetstream.jetstream.consumer import Consumer
    from pyjetstream.jetstream.consumer_config import ConsumerConfig, apply_defaults
    from pyjetstream.jetstream.store.memory import MemoryStore

    st = MemoryStore()
    for i in range(n):
        st.store_msg("B.x", b"", PAYLOAD, i)
    cfg = ConsumerConfig.from_json({"durable_name": "d", "deliver_subject": "dlv", "ack_policy": "explicit",
                                    "max_ack_pending": n})
    apply_defaults(cfg)
    c = Consumer("B", "d", cfg, st, 0, stream_subjects=["B.>"])
    t0 = time.perf_counter()
    delivered = 0
    while delivered < n:
        delivered += c.poll(1, 256)
        out, _, _ = c.take_outputs()
        for o in out:
            c.on_ack(o[1], "", b"+ACK", 1)
    emit(server="pyjetstream", phase="core", n=n,
         us_per_delivery_and_ack=round((time.perf_counter() - t0) / n * 1e6, 2))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--phases", default="push,pull,nak,ordered")
    ap.add_argument("--core", action="store_true", help="also time the pure state machine")
    a = ap.parse_args()
    if a.core:
        core_phase(a.n)
    phases = [p for p in a.phases.split(",") if p]
    if not phases:
        return
    ref = await run("nats-server", a.n, phases)
    ours = await run("pyjetstream", a.n, phases)
    for ph in phases:
        r, o = ref[ph], ours[ph]
        emit(phase=ph, throughput_ratio=round(o["msgs_per_s"] / r["msgs_per_s"], 2),
             cpu_ratio=round(o["server_cpu_us_per_delivery"] / max(r["server_cpu_us_per_delivery"], 0.01), 2))


if __name__ == "__main__":
    asyncio.run(main())
