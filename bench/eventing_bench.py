#!/usr/bin/env python3
"""Eventing benchmark: events/s from POST to sink receipt, and p50/p99 latency at a fixed rate.

Owns the load generator and the measuring sink (both in this process), and starts the rest
as separate processes exactly as users run them: a NATS server (nats-server and/or
`pyjetstream server`) and `pyjetstream eventing --nats URL` on top. The same eventing layer
runs against each server in one invocation, so the numbers compare the engines.

  .venv/bin/python bench/eventing_bench.py                         # both servers, defaults
  .venv/bin/python bench/eventing_bench.py --servers nats-server --events 5000 --rate 500
  .venv/bin/python bench/eventing_bench.py --events 5000 --rounds 3   # medians, ratio to the first
  .venv/bin/python bench/eventing_bench.py --servers nats-server --spy /tmp/ev.txt  # py-spy stacks
Prints one JSON line per (server, phase) and a summary table.
`eventing_cpu_us_per_event` (utime+stime of the eventing process(es) over the throughput
phase, per event) is the figure to compare on a shared machine; `load1` is the load average
at the end of the phase.
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

import aiohttp
import nats
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from _harness import cpu_seconds, free_port, stop, wait_for_port  # noqa: E402

from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore  # noqa: E402

CLI = str(ROOT / ".venv" / "bin" / "pyjetstream")
SERVERS = {
    "nats-server": ["/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", "{PORT}", "-js", "-sd", "{STORE}"],
    "pyjetstream": [CLI, "server", "-a", "127.0.0.1", "-p", "{PORT}", "-js", "-sd", "{STORE}"],
}
HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
           "content-type": "application/json"}


class Sink:
    """Records the receive time of every event id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expect = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        event_id = request.headers.get("ce-id", "")
        self.seen.setdefault(event_id, time.perf_counter())
        if self.expect and len(self.seen) >= self.expect:
            self.done.set()
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def start_proc(args: list[str], log_path: str) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def wait_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def throughput(proxy: str, sink: Sink, n: int, concurrency: int, tag: str) -> dict:
    sink.seen.clear()
    sink.done.clear()
    sink.expect = n
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    failures = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            async with http.post(f"{proxy}/publish", headers={**HEADERS, "ce-id": f"{tag}-{i}"},
                                 data=b'{"orderCode":"3211213"}') as r:
                if r.status != 204:
                    failures += 1
                await r.read()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        posted = time.perf_counter()
        await asyncio.wait_for(sink.done.wait(), 120)
        finished = time.perf_counter()
    return {"phase": "throughput", "events": n, "concurrency": concurrency, "failures": failures,
            "post_per_s": round(n / (posted - started), 1), "events_per_s": round(n / (finished - started), 1)}


async def latency(proxy: str, sink: Sink, rate: float, seconds: float, tag: str) -> dict:
    sink.seen.clear()
    total = int(rate * seconds)
    sink.expect = total
    sink.done.clear()
    sent: dict[str, float] = {}
    tasks = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(event_id: str) -> None:
            sent[event_id] = time.perf_counter()
            async with http.post(f"{proxy}/publish", headers={**HEADERS, "ce-id": event_id}, data=b"{}") as r:
                await r.read()

        start = time.perf_counter()
        for i in range(total):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(f"{tag}-{i}")))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(sink.done.wait(), 60)
    lat = sorted((sink.seen[k] - sent[k]) * 1000 for k in sent if k in sink.seen)
    q = statistics.quantiles(lat, n=100)
    return {"phase": "latency", "rate": rate, "events": len(lat), "p50_ms": round(q[49], 2),
            "p99_ms": round(q[98], 2), "max_ms": round(lat[-1], 2), "load1": round(os.getloadavg()[0], 2)}


async def bench_server(name: str, args: argparse.Namespace) -> list[dict]:
    root = tempfile.mkdtemp(prefix=f"evbench-{name}-")
    port, proxy_port = free_port(), free_port()
    cmd = [a.replace("{PORT}", str(port)).replace("{STORE}", os.path.join(root, "store")) for a in SERVERS[name]]
    server = start_proc(cmd, os.path.join(root, "server.log"))
    eventing = dispatcher = None
    sink = Sink()
    try:
        wait_for_port(port, 20, server)
        url = f"nats://127.0.0.1:{port}"
        base = [CLI, "eventing", "--nats", url, "--publish-port", str(proxy_port)]
        # --split: proxy and dispatcher in two processes (the scale-out layout), else one.
        eventing = start_proc(base + (["--no-dispatcher"] if args.split else []), os.path.join(root, "eventing.log"))
        if args.split:
            dispatcher = start_proc([CLI, "eventing", "--nats", url, "--no-publisher"],
                                    os.path.join(root, "dispatcher.log"))
        proxy = f"http://127.0.0.1:{proxy_port}"
        await wait_ready(f"{proxy}/readyz")
        await sink.start()
        nc = await nats.connect(url)
        store = await SubscriptionStore.open(nc)
        doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
               "metadata": {"name": "bench"},
               "spec": {"sink": f"http://127.0.0.1:{sink.port}/", "source": "myapp", "types": ["order.received.v1"],
                        "config": {"maxInFlightMessages": str(args.max_in_flight)}}}
        await store.apply(Subscription.from_manifest(doc))
        deadline = time.monotonic() + 20
        while not ((await store.get_status("default", "bench")) or {}).get("ready"):
            if time.monotonic() > deadline:
                raise TimeoutError("subscription not ready")
            await asyncio.sleep(0.1)
        await nc.close()
        await throughput(proxy, sink, min(500, args.events), args.concurrency, "warm")
        def eventing_cpu() -> float:
            return cpu_seconds(eventing.pid) + (cpu_seconds(dispatcher.pid) if dispatcher else 0.0)

        spies = []
        if args.spy:
            # Sampled from outside (py-spy --nonblocking), so the process runs unchanged; the
            # sampler takes CPU beside it, though: take figures from rounds without --spy.
            # With --split the dispatcher's stacks go to FILE.dispatcher.
            targets = [(eventing.pid, args.spy)] + ([(dispatcher.pid, args.spy + ".dispatcher")] if dispatcher else [])
            spies = [subprocess.Popen([str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(pid),
                                       "--format", "raw", "-r", str(args.spy_rate), "--nonblocking", "-o", out],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid, out in targets]
            await asyncio.sleep(1.0)
        cpu0 = (cpu_seconds(server.pid), eventing_cpu(), cpu_seconds(eventing.pid))
        tp = await throughput(proxy, sink, args.events, args.concurrency, "tp")
        cpu1 = (cpu_seconds(server.pid), eventing_cpu(), cpu_seconds(eventing.pid))
        if dispatcher is not None:
            tp["proxy_cpu_us_per_event"] = round((cpu1[2] - cpu0[2]) / args.events * 1e6, 1)
            tp["dispatcher_cpu_us_per_event"] = round(
                ((cpu1[1] - cpu0[1]) - (cpu1[2] - cpu0[2])) / args.events * 1e6, 1)
        tp["load1"] = round(os.getloadavg()[0], 2)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        # CPU per event is steadier than wall-clock rates on a shared machine.
        tp["server_cpu_us_per_event"] = round((cpu1[0] - cpu0[0]) / args.events * 1e6, 1)
        tp["eventing_cpu_us_per_event"] = round((cpu1[1] - cpu0[1]) / args.events * 1e6, 1)
        results = [tp, await latency(proxy, sink, args.rate, args.seconds, "lat")]
        for r in results:
            r["server"] = name
            r["split"] = bool(args.split)
        return results
    finally:
        await sink.stop()
        for proc in (eventing, dispatcher):
            if proc is not None:
                stop(proc)
        stop(server)
        if os.environ.get("KEEP"):
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="nats-server,pyjetstream")
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-in-flight", type=int, default=100)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--split", action="store_true", help="run proxy and dispatcher as two processes")
    p.add_argument("--out", help="append the JSON lines to this file")
    p.add_argument("--spy", metavar="FILE", help="record the eventing process's stacks over the throughput "
                   "phase with py-spy (collapsed format) into FILE")
    p.add_argument("--spy-rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds alternating the servers (machine noise hits both); medians are reported")
    args = p.parse_args()
    names = args.servers.split(",")
    all_results = []
    for rnd in range(args.rounds):
        for name in names:
            for r in await bench_server(name, args):
                r["round"] = rnd
                line = json.dumps(r)
                print(line, flush=True)
                all_results.append(r)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(line + "\n")

    def med(name: str, phase: str, key: str) -> float:
        return statistics.median(r[key] for r in all_results if r["server"] == name and r["phase"] == phase)

    print(f"\nmedians of {args.rounds} round(s), {args.events} events")
    print("| server | events/s (POST->sink) | ratio | server CPU us/event | eventing CPU us/event "
          "| p50 ms @rate | p99 ms @rate |")
    print("|---|---|---|---|---|---|---|")
    base = med(names[0], "throughput", "events_per_s")
    for name in names:
        eps = med(name, "throughput", "events_per_s")
        print(f"| {name} | {eps:.1f} | {eps / base:.2f}x | {med(name, 'throughput', 'server_cpu_us_per_event')} "
              f"| {med(name, 'throughput', 'eventing_cpu_us_per_event')} "
              f"| {med(name, 'latency', 'p50_ms')} | {med(name, 'latency', 'p99_ms')} |")

if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
