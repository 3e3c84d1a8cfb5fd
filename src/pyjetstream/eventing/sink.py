"""A demo sink ("function"): prints `Received event: {...}` for every CloudEvent it gets.

Owns a tiny aiohttp app that accepts binary and structured CloudEvents and answers 204.
It exists for the tutorial and manual checks; it has no retry or storage logic.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pyjetstream.httpd import add_fallback, expect_handler

from . import cloudevents as ce


def describe(event: ce.CloudEvent) -> str:
    if event.data is None:
        return "{}"
    try:
        return json.dumps(json.loads(event.data), ensure_ascii=False)
    except ValueError:
        return event.data_text()


def create_sink_app(printer: Callable[[str], Any] | None = None, verbose: bool = False) -> web.Application:
    out = printer or (lambda line: print(line, flush=True, file=sys.stdout))

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = ce.parse_http(request.headers, body)
        except ce.CloudEventError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        out(f"Received event: {describe(event)}")
        if verbose:
            out("  " + json.dumps({k: v for k, v in event.attributes.items()}, ensure_ascii=False))
        return web.Response(status=204)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", receive, expect_handler=expect_handler)
    add_fallback(app.router)
    return app
