"""`pyjetstream pub|sub|req|reply`: core messaging from the command line, nats CLI style.

Owns the message commands, the body templates (`{{Count}}`, `{{ID}}`, `{{Time}}`, ...) and how a
received message is printed (subject, reply, headers, body; JetStream metadata when the
message came from a consumer). Talks to servers only through nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

from pyjetstream.cli import common as c

_TEMPLATE = re.compile(r"\{\{\s*\.?(\w+)((?:\s+[-\d]+)*)\s*\}\}")


def expand(template: str, count: int, now_ns: int | None = None, request: str = "",
           rng: random.Random | None = None) -> str:
    """Expand the body/subject/header templates with the message number and friends.

    `{{Count}}` (or `{{.Count}}`) is the 1-based message number, `{{ID}}` a unique id,
    `{{Time}}`/`{{TimeStamp}}` the time, `{{Unix}}`/`{{UnixNano}}` epoch values,
    `{{Random MIN MAX}}` a random string of that many characters, `{{Request}}` the request body
    (in `reply`). Unknown names are left as they are.
    """
    ns = time.time_ns() if now_ns is None else now_ns
    rng = rng or random.Random()

    def sub(m: re.Match[str]) -> str:
        name, params = m.group(1), [int(x) for x in m.group(2).split()]
        if name == "Count":
            return str(count)
        if name == "ID":
            return secrets.token_hex(11)
        if name == "Time":
            return datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S")
        if name == "TimeStamp":
            return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()
        if name == "Unix":
            return str(ns // 1_000_000_000)
        if name == "UnixNano":
            return str(ns)
        if name == "Request":
            return request
        if name == "Random":
            lo, hi = (params + [0, 0])[:2] if params else (10, 10)
            n = rng.randint(min(lo, hi), max(lo, hi))
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                           for _ in range(n))
        return m.group(0)

    return _TEMPLATE.sub(sub, template)


def render_message(n: int, msg: Any, raw: bool = False, headers_only: bool = False) -> str:
    """A received message as `sub` prints it."""
    body = msg.data.decode(errors="replace")
    if raw:
        return body + "\n"
    lines: list[str] = []
    meta = None
    if msg.reply and msg.reply.startswith("$JS.ACK."):
        try:
            meta = msg.metadata
        except (ValueError, IndexError, AttributeError):
            meta = None
    if meta is not None:
        ts = meta.timestamp
        when = c.format_time(int(ts.timestamp() * 1e9)) if hasattr(ts, "timestamp") else str(ts)
        lines.append(f"[#{n}] Received JetStream message: stream: {meta.stream} seq: "
                     f"{c.fmt_int(meta.sequence.stream)} / pending: {c.fmt_int(meta.num_pending)} "
                     f"/ subject: {msg.subject} / time: {when}")
    elif msg.reply:
        lines.append(f"[#{n}] Received on \"{msg.subject}\" with reply \"{msg.reply}\"")
    else:
        lines.append(f"[#{n}] Received on \"{msg.subject}\"")
    for k, v in (msg.headers or {}).items():
        lines.append(f"{k}: {v}")
    lines.append("")
    if not headers_only:
        lines.append(body)
        lines.append("")
    return "\n".join(lines) + "\n"


def _read_body(args: argparse.Namespace) -> str:
    if args.body is not None:
        return args.body
    if not sys.stdin.isatty():
        return sys.stdin.read()
    return ""


# ---------------------------------------------------------------------------------------------


def cmd_pub(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        template = _read_body(args)
        header_tpl = c.parse_headers(args.header)
        js = nc.jetstream(timeout=args.timeout) if args.jetstream else None
        # Many messages on a terminal: one progress bar instead of a line per message.
        bar = _progress_bar(args.count) if args.count > 20 and not args.quiet and sys.stderr.isatty() else None
        quiet = args.quiet or bar is not None
        try:
            for n in range(1, args.count + 1):
                subject = expand(args.subject, n)
                payload = expand(template, n).encode()
                headers = {k: expand(v, n) for k, v in header_tpl.items()} or None
                if js is not None:
                    ack = await _js_publish(js, subject, payload, headers)
                    if not quiet:
                        c.out(f"Published {len(payload)} bytes to \"{subject}\" (stream {ack.stream} seq {ack.seq})")
                else:
                    await nc.publish(subject, payload, reply=args.reply or "", headers=headers)
                    if not quiet:
                        c.out(f"Published {len(payload)} bytes to \"{subject}\"")
                if bar is not None:
                    bar[0].advance(bar[1])
                if args.sleep:
                    await asyncio.sleep(c.parse_duration_ns(args.sleep) / 1e9)
            await nc.flush(timeout=args.timeout)
        finally:
            if bar is not None:
                bar[0].stop()
        if bar is not None:
            c.out(f"Published {c.fmt_int(args.count)} messages to \"{args.subject}\"")

    return c.run(args, body)


def _progress_bar(total: int) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("Publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True))
    progress.start()
    return progress, progress.add_task("pub", total=total)


async def _js_publish(js: Any, subject: str, payload: bytes, headers: dict[str, str] | None) -> Any:
    from nats.js.errors import APIError as JSAPIError
    from nats.js.errors import NoStreamResponseError

    try:
        return await js.publish(subject, payload, headers=headers)
    except NoStreamResponseError:
        raise c.CLIError(f"no stream stores subject {subject}") from None
    except JSAPIError as exc:
        raise c.APIError(exc.code or 0, exc.err_code or 0, exc.description or str(exc),
                         "publish failed") from None


def cmd_sub(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        done = asyncio.Event()
        banner = asyncio.Event()  # messages may arrive during the flush: print them after the banner
        received = 0

        async def on_msg(msg: Any) -> None:
            nonlocal received
            await banner.wait()
            if done.is_set():
                return
            received += 1
            c.out(render_message(received, msg, raw=args.raw, headers_only=args.headers_only))
            if args.ack and msg.reply and msg.reply.startswith("$JS.ACK."):
                await msg.ack()
            if args.count and received >= args.count:
                done.set()

        await nc.subscribe(args.subject, queue=args.queue or "", cb=on_msg)
        await c.flushed(nc, args.timeout)
        if not args.raw:
            where = f" in group {args.queue}" if args.queue else ""
            acking = " with acknowledgement of JetStream messages" if args.ack else ""
            c.out(f"Subscribing on {args.subject}{where}{acking}")
        banner.set()
        await done.wait()
        await nc.flush(timeout=args.timeout)

    return c.run(args, body)


def cmd_req(args: argparse.Namespace) -> int:
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    async def body(nc: Any) -> None:
        template = _read_body(args)
        header_tpl = c.parse_headers(args.header)
        for n in range(1, args.count + 1):
            subject = expand(args.subject, n)
            payload = expand(template, n).encode()
            headers = {k: expand(v, n) for k, v in header_tpl.items()} or None
            if not args.raw:
                c.out(f"Sending request on \"{subject}\"")
            started = time.perf_counter_ns()
            try:
                msg = await nc.request(subject, payload, timeout=args.timeout, headers=headers)
            except NoRespondersError:
                raise c.CLIError(f"no responders are available for {subject}") from None
            except (TimeoutError, NatsTimeout):
                raise c.CLIError(f"request on {subject} timed out after {args.timeout:g}s") from None
            rtt = time.perf_counter_ns() - started
            if args.raw:
                c.out(msg.data.decode(errors="replace"))
                continue
            lines = [f"Received with rtt {c.human_duration(rtt)}"]
            lines += [f"{k}: {v}" for k, v in (msg.headers or {}).items()]
            lines += ["", msg.data.decode(errors="replace"), ""]
            c.out("\n".join(lines))

    return c.run(args, body)


def cmd_reply(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        done = asyncio.Event()
        received = 0
        header_tpl = c.parse_headers(args.header)
        template = args.body if args.body is not None else ""

        banner = asyncio.Event()

        async def on_msg(msg: Any) -> None:
            nonlocal received
            await banner.wait()
            if done.is_set():
                return
            received += 1
            c.out(render_message(received, msg))
            if msg.reply:
                request = msg.data.decode(errors="replace")
                reply_body = expand(template, received, request=request) if template else request
                headers = {k: expand(v, received, request=request) for k, v in header_tpl.items()} or None
                await nc.publish(msg.reply, reply_body.encode(), headers=headers)
            if args.count and received >= args.count:
                done.set()

        await nc.subscribe(args.subject, queue=args.queue, cb=on_msg)
        await c.flushed(nc, args.timeout)
        c.out(f"Listening on \"{args.subject}\" in group \"{args.queue}\"")
        banner.set()
        await done.wait()
        await nc.flush(timeout=args.timeout)

    return c.run(args, body)


def _common_send_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("subject")
    p.add_argument("body", nargs="?", help="message body; templates like {{Count}} are expanded "
                                          "(read from stdin when omitted and stdin is not a terminal)")
    p.add_argument("-H", "--header", action="append", metavar="K:V", help="add a header (repeatable)")
    p.add_argument("--count", type=int, default=1, help="send this many messages")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)

    p = subparsers.add_parser("pub", aliases=["publish"], parents=[parent], help="publish messages")
    _common_send_flags(p)
    p.add_argument("--reply", help="reply subject to send with the message")
    p.add_argument("-J", "--jetstream", action="store_true", help="publish to JetStream and wait for the ack")
    p.add_argument("--sleep", metavar="DURATION", help="pause between messages, like 100ms")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing per message")
    p.set_defaults(func=cmd_pub)

    p = subparsers.add_parser("sub", aliases=["subscribe"], parents=[parent], help="subscribe and print messages")
    p.add_argument("subject")
    p.add_argument("--queue", help="join this queue group")
    p.add_argument("--count", type=int, default=0, help="exit after this many messages")
    p.add_argument("--ack", action="store_true", help="acknowledge JetStream messages")
    p.add_argument("--raw", action="store_true", help="print only the bodies")
    p.add_argument("--headers-only", action="store_true", help="print only subjects and headers")
    p.set_defaults(func=cmd_sub)

    p = subparsers.add_parser("req", aliases=["request"], parents=[parent], help="send requests, print replies")
    _common_send_flags(p)
    p.add_argument("--raw", action="store_true", help="print only the reply bodies")
    p.set_defaults(func=cmd_req)

    p = subparsers.add_parser("reply", parents=[parent], help="answer requests on a subject")
    p.add_argument("subject")
    p.add_argument("body", nargs="?", help="reply body; {{Count}} and {{Request}} are expanded "
                                          "(echoes the request when omitted)")
    p.add_argument("-H", "--header", action="append", metavar="K:V", help="add a header to replies")
    p.add_argument("--queue", default="NATS-RPLY-22", help="queue group, so several repliers share work")
    p.add_argument("--count", type=int, default=0, help="exit after this many requests")
    p.set_defaults(func=cmd_reply)
