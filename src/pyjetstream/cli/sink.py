"""`pyjetstream sink --port 9000`: the tutorial's demo function printing each received event.

Owns only argument parsing and running the aiohttp app from `pyjetstream.eventing.sink`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def cmd_sink(args: argparse.Namespace) -> int:
    from aiohttp import web

    from pyjetstream.eventing.sink import create_sink_app

    async def main() -> None:
        runner = web.AppRunner(create_sink_app(verbose=args.verbose), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port, reuse_address=True).start()
        print(f"Sink listening on http://{args.host}:{args.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"pyjetstream: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 1
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("sink", help="demo HTTP sink that prints received CloudEvents")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the event's attributes")
    p.set_defaults(func=cmd_sink)
