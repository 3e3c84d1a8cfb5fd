"""`pyjetstream event send`: publish one CloudEvent through the publisher proxy (HTTP).

Owns building the request (binary mode by default, structured with --structured, or the
legacy JSON format with --legacy APP) and printing the proxy's answer. Talks HTTP only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

from pyjetstream.cli import common as c


def build_request(args: argparse.Namespace) -> tuple[str, dict[str, str], bytes]:
    from datetime import UTC, datetime

    event_id = args.id or str(uuid.uuid4())
    data = args.data if args.data is not None else "{}"
    base = args.url.rstrip("/")
    if args.legacy:
        name, _, version = args.type.rpartition(".")
        try:
            data_value: Any = json.loads(data)
        except ValueError:
            data_value = data
        doc = {"event-type": name, "event-type-version": version, "event-id": args.id or event_id,
               "event-time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
               "data": data_value}
        return f"{base}/{args.legacy}/v1/events", {"Content-Type": "application/json"}, json.dumps(doc).encode()
    headers = c.parse_headers(args.header)
    if args.structured:
        doc = {"specversion": "1.0", "type": args.type, "source": args.source, "id": event_id,
               "datacontenttype": args.content_type}
        try:
            doc["data"] = json.loads(data) if "json" in args.content_type else data
        except ValueError:
            doc["data"] = data
        if args.eventtypeversion:
            doc["eventtypeversion"] = args.eventtypeversion
        headers["Content-Type"] = "application/cloudevents+json"
        return f"{base}/publish", headers, json.dumps(doc).encode()
    headers.update({"ce-specversion": "1.0", "ce-type": args.type, "ce-source": args.source, "ce-id": event_id,
                    "Content-Type": args.content_type})
    if args.eventtypeversion:
        headers["ce-eventtypeversion"] = args.eventtypeversion
    return f"{base}/publish", headers, data.encode()


def cmd_send(args: argparse.Namespace) -> int:
    import aiohttp

    url, headers, body = build_request(args)

    async def main() -> int:
        timeout = aiohttp.ClientTimeout(total=args.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.post(url, headers=headers, data=body) as r:
            text = (await r.read()).decode("utf-8", "replace").strip()
            ok = 200 <= r.status < 300
            line = f"{r.status} {r.reason}" + (f": {text}" if text else "")
            (c.out if ok else c.err)(("published " if ok else "rejected ") + line)
            return c.EXIT_OK if ok else c.EXIT_ERROR

    try:
        return asyncio.run(main())
    except (OSError, TimeoutError) as exc:
        c.err(f"pyjetstream: error: cannot reach the publisher proxy at {url}: {exc}")
        return c.EXIT_ERROR
    except aiohttp.ClientError as exc:
        c.err(f"pyjetstream: error: {exc}")
        return c.EXIT_ERROR


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    top = subparsers.add_parser("event", aliases=["events"], parents=[parent],
                                help="publish CloudEvents through the publisher proxy")
    sub = c.subcommands(top, "event_command")
    p = sub.add_parser("send", aliases=["publish", "pub"], parents=[parent], help="send one CloudEvent")
    p.add_argument("--type", required=True, help="event type, e.g. order.received.v1")
    p.add_argument("--source", default="myapp", help="event source (the application)")
    p.add_argument("--id", help="event id (default: a new UUID)")
    p.add_argument("--data", help="event data (default: {})")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--eventtypeversion", help="the ce-eventtypeversion extension")
    p.add_argument("--structured", action="store_true", help="structured mode instead of binary")
    p.add_argument("--legacy", metavar="APP", help="use the legacy /APP/v1/events endpoint")
    p.add_argument("-H", "--header", action="append", help="extra HTTP header KEY:VALUE (repeatable)")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="publisher proxy base URL")
    p.set_defaults(func=cmd_send)
