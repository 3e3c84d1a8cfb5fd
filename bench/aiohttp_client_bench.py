#!/usr/bin/env python3
"""What aiohttp's client costs per POST, as the dispatcher sends events: CPU time of the client
process per request against a local aiohttp server in a child process (50 concurrent requests,
keep-alive, the dispatcher's session settings).

  .venv/bin/python bench/aiohttp_client_bench.py                  # per-request timeout, as before
  .venv/bin/python bench/aiohttp_client_bench.py --no-timeout      # as the dispatcher sent until 2026-12-03
  .venv/bin/python bench/aiohttp_client_bench.py --sink-client     # the dispatcher's own client (sinkclient.py)
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop
from aiohttp import web
from yarl import URL

HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp", "ce-id": "x",
           "Content-Type": "application/json",
           "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
BODY = b'{"orderCode":"3211213"}'


async def serve(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def measure(post: Callable[[], Awaitable[object]], n: int) -> dict:
    """Client CPU per request and the rate: `post()` from 50 workers, after 1,000 to open the
    connections."""

    async def run(count: int) -> None:
        left = [count]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await post()

        await asyncio.gather(*(worker() for _ in range(50)))

    await run(1000)  # warm: connections open
    cpu, wall = time.process_time(), time.perf_counter()
    await run(n)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"requests": n, "client_cpu_us_per_request": round(cpu / n * 1e6, 1), "requests_per_s": round(n / wall),
            "load1": round(os.getloadavg()[0], 2)}


async def client(port: int, n: int, timeout: bool) -> dict:
    url = URL(f"http://127.0.0.1:{port}/")
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=100, keepalive_timeout=10)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    per_request = aiohttp.ClientTimeout(total=20) if timeout else \
        aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)

    async def post() -> None:
        async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False, timeout=per_request) as resp:
            if not resp.content.at_eof():
                await resp.read()

    result = await measure(post, n)
    await session.close()
    return {"per_request_timeout": timeout, **result}


async def sink_client(port: int, n: int) -> dict:
    from pyjetstream.eventing.egress import GuardedResolver, SinkPolicy
    from pyjetstream.eventing.sinkclient import SinkClient

    url = URL(f"http://127.0.0.1:{port}/")
    client = SinkClient(GuardedResolver(SinkPolicy()), limit_per_host=100)
    result = await measure(lambda: client.post(url, HEADERS, BODY), n)
    await client.close()
    return {"client": "sinkclient", **result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--no-timeout", action="store_true", help="no per-request timeout (the dispatcher's watchdog)")
    p.add_argument("--sink-client", action="store_true", help="the dispatcher's own client instead of aiohttp's")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _harness import free_port, wait_for_port

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for_port(port, 10, server)
        if args.sink_client:
            print(json.dumps(uvloop.run(sink_client(port, args.requests))))
        else:
            print(json.dumps(uvloop.run(client(port, args.requests, not args.no_timeout))))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
