"""`pyjetstream server info` and `pyjetstream server check ...`: what a server is and whether it is healthy.

Owns the server report (from the INFO the server sends and `$JS.API.INFO`) and the checks for
scripts and monitoring systems, which print one Nagios-style line and exit 0 (OK), 1 (WARNING),
2 (CRITICAL) or 3 (UNKNOWN), as the nats CLI's checks do. `server` is a raw command in
`cli.main` (it starts a server), so the `server` command module hands `info` and `check` to
`main(argv)` here. Talks to servers only through nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyjetstream.cli import common as c

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


@dataclass
class CheckResult:
    """The verdict of one check: messages by severity plus perf data; pure, no IO."""

    name: str
    ok: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    criticals: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    perf: list[tuple[str, float, str, float | None, float | None]] = field(default_factory=list)

    @property
    def status(self) -> int:
        if self.criticals:
            return CRITICAL
        if self.unknown:
            return UNKNOWN
        if self.warnings:
            return WARNING
        return OK

    def add_perf(self, label: str, value: float, unit: str = "", warn: float | None = None,
                 crit: float | None = None) -> None:
        self.perf.append((label, value, unit, warn, crit))

    def threshold(self, what: str, value: float, warn: float | None, crit: float | None,
                  shown: str, higher_is_worse: bool = True) -> None:
        """Grade `value` against thresholds; `higher_is_worse=False` means "too few"."""

        def crosses(limit: float | None) -> bool:
            if limit is None or limit < 0:
                return False
            return value >= limit if higher_is_worse else value <= limit

        if crosses(crit):
            self.criticals.append(f"{what} {shown}")
        elif crosses(warn):
            self.warnings.append(f"{what} {shown}")
        else:
            self.ok.append(f"{what} {shown}")

    def render(self) -> str:
        parts = [f"CRIT:{m}" for m in self.criticals] + [f"UNKNOWN:{m}" for m in self.unknown] \
            + [f"WARN:{m}" for m in self.warnings] + [f"OK:{m}" for m in self.ok]
        line = f"{STATUS_NAMES[self.status]} {self.name} " + " ".join(parts)
        if self.perf:
            perf = []
            for label, value, unit, warn, crit in self.perf:
                item = f"{label}={value:.4f}{unit}" if unit == "s" else f"{label}={value:g}{unit}"
                if warn is not None or crit is not None:
                    item += f";{'' if warn is None else f'{warn:g}'};{'' if crit is None else f'{crit:g}'}"
                perf.append(item)
            line += " | " + " ".join(perf)
        return line

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": STATUS_NAMES[self.status], "ok": self.ok, "warnings": self.warnings,
                "criticals": self.criticals, "unknown": self.unknown,
                "perf_data": [{"name": p[0], "value": p[1], "unit": p[2], "warn": p[3], "crit": p[4]}
                              for p in self.perf]}


# ---------------------------------------------------------------------------------------------
# server info


def render_server_info(info: dict[str, Any], account: dict[str, Any] | None, rtt_ns: int, url: str) -> str:
    name = info.get("server_name") or info.get("server_id", "")
    cols = c.Columns(f"Server information for {name} ({info.get('server_id', '')})")
    cols.section("Process Details")
    cols.row("Version", info.get("version", ""))
    cols.row_if_set("Go Version", info.get("go"))
    cols.row("Protocol", int(info.get("proto", 0)))
    cols.row("Host", f"{info.get('host', '')}:{info.get('port', '')}")
    cols.row_if_set("Git Commit", info.get("git_commit"))
    cols.row("JetStream", bool(info.get("jetstream", False)))
    cols.section("Connection Details")
    cols.row("Connected URL", url)
    cols.row_if_set("Client ID", info.get("client_id"))
    cols.row_if_set("Client IP", info.get("client_ip"))
    cols.row("Max Payload", c.human_bytes(int(info.get("max_payload", 0))))
    cols.row("Headers", bool(info.get("headers", False)))
    cols.row("Auth Required", bool(info.get("auth_required", False)))
    cols.row("TLS Required", bool(info.get("tls_required", False)))
    cols.row("RTT", c.human_duration(rtt_ns))
    if account is not None:
        limits = account.get("limits", {})
        cols.section("JetStream Account Information")
        cols.row("Memory", f"{c.human_bytes(account.get('memory', 0))} of "
                 f"{c.unlimited(limits.get('max_memory', -1), c.human_bytes)}")
        cols.row("Storage", f"{c.human_bytes(account.get('storage', 0))} of "
                 f"{c.unlimited(limits.get('max_storage', -1), c.human_bytes)}")
        cols.row("Streams", f"{c.fmt_int(account.get('streams', 0))} of {c.unlimited(limits.get('max_streams', -1))}")
        cols.row("Consumers", f"{c.fmt_int(account.get('consumers', 0))} of "
                 f"{c.unlimited(limits.get('max_consumers', -1))}")
        api = account.get("api", {})
        cols.row("API Requests", f"{c.fmt_int(api.get('total', 0))} ({c.fmt_int(api.get('errors', 0))} errors)")
    return cols.render()


async def _rtt(nc: Any, timeout: float) -> int:
    started = time.perf_counter_ns()
    await nc.flush(timeout=timeout)
    return time.perf_counter_ns() - started


def cmd_info(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        info = dict(getattr(nc, "_server_info", {}) or {})
        rtt = await _rtt(nc, args.timeout)
        account = None
        if info.get("jetstream"):
            try:
                account = await c.api_request(nc, "INFO", None, args.timeout)
            except c.CLIError:
                account = None
        url = str(nc.connected_url.geturl()) if nc.connected_url else ""
        if args.json:
            c.print_json({"server": info, "jetstream": account, "rtt_ns": rtt})
        else:
            c.out(render_server_info(info, account, rtt, url))

    return c.run(args, body)


# ---------------------------------------------------------------------------------------------
# server check


def _dur(text: str | None) -> float | None:
    return None if text is None else c.parse_duration_ns(text) / 1e9


async def _check_connection(args: argparse.Namespace, result: CheckResult) -> Any:
    import nats  # noqa: F401 - imported before the clock starts: module loading is not connect time

    started = time.perf_counter()
    try:
        nc = await c.connect(args, name="pyjetstream check")
    except c.CLIError as exc:
        result.criticals.append(exc.message)
        return None
    connect_s = time.perf_counter() - started
    result.threshold("connected to", connect_s, _dur(args.connect_warn), _dur(args.connect_critical),
                     f"{nc.connected_url.geturl() if nc.connected_url else ''} in "
                     f"{c.human_duration(int(connect_s * 1e9))}")
    result.add_perf("connect_time", connect_s, "s", _dur(args.connect_warn), _dur(args.connect_critical))
    return nc


async def check_connection(args: argparse.Namespace, result: CheckResult) -> None:
    nc = await _check_connection(args, result)
    if nc is None:
        return
    try:
        rtt = await _rtt(nc, args.timeout) / 1e9
        result.threshold("rtt time", rtt, _dur(args.rtt_warn), _dur(args.rtt_critical),
                         c.human_duration(int(rtt * 1e9)))
        result.add_perf("rtt", rtt, "s", _dur(args.rtt_warn), _dur(args.rtt_critical))
    finally:
        await nc.close()


async def check_jetstream(args: argparse.Namespace, result: CheckResult) -> None:
    nc = await _check_connection(args, result)
    if nc is None:
        return
    try:
        try:
            account = await c.api_request(nc, "INFO", None, args.timeout)
        except c.CLIError as exc:
            result.criticals.append(exc.message)
            return
        limits = account.get("limits", {})
        for what, used_key, limit_key, warn, crit in (
                ("memory", "memory", "max_memory", args.mem_warn, args.mem_critical),
                ("storage", "storage", "max_storage", args.store_warn, args.store_critical)):
            used, limit = int(account.get(used_key, 0)), int(limits.get(limit_key, -1))
            result.add_perf(what, used, "B")
            if limit > 0:
                pct = used * 100 / limit
                result.threshold(f"{what} use", pct, warn, crit, f"{pct:.0f}%")
        streams = int(account.get("streams", 0))
        result.add_perf("streams", streams, "", args.streams_warn, args.streams_critical)
        result.threshold("streams", streams, args.streams_warn, args.streams_critical, str(streams))
        consumers = int(account.get("consumers", 0))
        result.add_perf("consumers", consumers, "", args.consumers_warn, args.consumers_critical)
        result.threshold("consumers", consumers, args.consumers_warn, args.consumers_critical, str(consumers))
        errors = int(account.get("api", {}).get("errors", 0))
        result.add_perf("api_errors", errors)
    finally:
        await nc.close()


async def check_stream(args: argparse.Namespace, result: CheckResult) -> None:
    nc = await _check_connection(args, result)
    if nc is None:
        return
    try:
        try:
            info = await c.api_request(nc, f"STREAM.INFO.{args.stream}", None, args.timeout,
                                       context=f"stream {args.stream}")
        except c.CLIError as exc:
            result.criticals.append(exc.message)
            return
        state = info.get("state", {})
        msgs = int(state.get("messages", 0))
        result.add_perf("messages", msgs, "", args.msgs_warn, args.msgs_critical)
        if args.msgs_warn is not None or args.msgs_critical is not None:
            result.threshold("messages", msgs, args.msgs_warn, args.msgs_critical, c.fmt_int(msgs),
                             higher_is_worse=False)
        result.add_perf("bytes", int(state.get("bytes", 0)), "B")
        consumers = int(state.get("consumer_count", 0))
        result.add_perf("consumers", consumers)
        if args.min_consumers is not None and consumers < args.min_consumers:
            result.criticals.append(f"{consumers} consumers, expected at least {args.min_consumers}")
        last = c.parse_time_ns(state.get("last_ts"))
        if args.last_msg_warn or args.last_msg_critical:
            age_s = (c.Clock.from_env().now_ns() - last) / 1e9 if last > 0 else float("inf")
            shown = "never" if last <= 0 else c.human_duration(int(age_s * 1e9)) + " ago"
            result.threshold("last message", age_s, _dur(args.last_msg_warn), _dur(args.last_msg_critical), shown)
        if not result.criticals and not result.warnings:
            result.ok.append(f"stream {args.stream} has {c.fmt_int(msgs)} messages")
    finally:
        await nc.close()


async def check_consumer(args: argparse.Namespace, result: CheckResult) -> None:
    nc = await _check_connection(args, result)
    if nc is None:
        return
    try:
        try:
            info = await c.api_request(nc, f"CONSUMER.INFO.{args.stream}.{args.consumer}", None, args.timeout,
                                       context=f"consumer {args.stream} > {args.consumer}")
        except c.CLIError as exc:
            result.criticals.append(exc.message)
            return
        for what, key, warn, crit in (
                ("ack pending", "num_ack_pending", args.ack_pending_warn, args.ack_pending_critical),
                ("unprocessed", "num_pending", args.unprocessed_warn, args.unprocessed_critical),
                ("redelivered", "num_redelivered", args.redelivered_warn, args.redelivered_critical),
                ("waiting pulls", "num_waiting", None, None)):
            value = int(info.get(key, 0))
            result.add_perf(key, value, "", warn, crit)
            if warn is not None or crit is not None:
                result.threshold(what, value, warn, crit, c.fmt_int(value))
        if not result.criticals and not result.warnings:
            result.ok.append(f"consumer {args.stream} > {args.consumer} is healthy")
    finally:
        await nc.close()


async def check_kv(args: argparse.Namespace, result: CheckResult) -> None:
    nc = await _check_connection(args, result)
    if nc is None:
        return
    import nats.js.errors as jse

    try:
        try:
            kv = await nc.jetstream(timeout=args.timeout).key_value(args.bucket)
        except jse.BucketNotFoundError:
            result.criticals.append(f"bucket {args.bucket} not found")
            return
        status = await kv.status()
        result.add_perf("values", status.values)
        result.ok.append(f"bucket {args.bucket} has {c.fmt_int(status.values)} values")
        if args.key:
            try:
                await kv.get(args.key)
                result.ok.append(f"key {args.key} found")
            except (jse.KeyNotFoundError, jse.KeyDeletedError, jse.NotFoundError):
                result.criticals.append(f"key {args.key} not found")
    finally:
        await nc.close()


CHECKS = {"connection": ("Connection", check_connection), "jetstream": ("JetStream", check_jetstream),
          "stream": ("Stream", check_stream), "consumer": ("Consumer", check_consumer),
          "kv": ("KV", check_kv)}


def cmd_check(args: argparse.Namespace) -> int:
    title, check = CHECKS[args.check]
    result = CheckResult(title)
    try:
        asyncio.run(asyncio.wait_for(check(args, result), args.timeout * 3))
    except (TimeoutError, c.CLIError, OSError) as exc:
        result.criticals.append(getattr(exc, "message", None) or str(exc) or "timeout")
    except KeyboardInterrupt:
        return c.EXIT_INTERRUPTED
    if args.format == "json":
        c.print_json(result.as_json())
    else:
        c.out(result.render())
    return result.status


def _check_parsers(check: argparse.ArgumentParser, parent: argparse.ArgumentParser) -> None:
    sub = c.subcommands(check, "check")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[parent], help=help_text)
        p.add_argument("--format", choices=("nagios", "json"), default="nagios")
        p.add_argument("--connect-warn", metavar="DURATION", default="500ms")
        p.add_argument("--connect-critical", metavar="DURATION", default="1s")
        p.set_defaults(func=cmd_check, check=name)
        return p

    p = add("connection", "can we connect, and how fast")
    p.add_argument("--rtt-warn", metavar="DURATION", default="500ms")
    p.add_argument("--rtt-critical", metavar="DURATION", default="1s")

    p = add("jetstream", "JetStream account usage against its limits")
    p.add_argument("--mem-warn", type=float, default=75, help="percent of the memory limit")
    p.add_argument("--mem-critical", type=float, default=90)
    p.add_argument("--store-warn", type=float, default=75, help="percent of the storage limit")
    p.add_argument("--store-critical", type=float, default=90)
    p.add_argument("--streams-warn", type=int)
    p.add_argument("--streams-critical", type=int)
    p.add_argument("--consumers-warn", type=int)
    p.add_argument("--consumers-critical", type=int)

    p = add("stream", "a stream exists, holds messages, is fresh")
    p.add_argument("--stream", required=True)
    p.add_argument("--msgs-warn", type=int, help="warn at or below this many messages")
    p.add_argument("--msgs-critical", type=int, help="critical at or below this many messages")
    p.add_argument("--last-msg-warn", metavar="DURATION", help="warn when the newest message is older")
    p.add_argument("--last-msg-critical", metavar="DURATION")
    p.add_argument("--min-consumers", type=int)

    p = add("consumer", "a consumer keeps up")
    p.add_argument("--stream", required=True)
    p.add_argument("--consumer", required=True)
    p.add_argument("--ack-pending-warn", type=int)
    p.add_argument("--ack-pending-critical", type=int)
    p.add_argument("--unprocessed-warn", type=int)
    p.add_argument("--unprocessed-critical", type=int)
    p.add_argument("--redelivered-warn", type=int)
    p.add_argument("--redelivered-critical", type=int)

    p = add("kv", "a bucket (and optionally a key) exists")
    p.add_argument("--bucket", required=True)
    p.add_argument("--key")


def build_server_parser(common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `server info|check` parser, with the global connection options."""
    if common is None:
        common = c.common_options()
    parent = c.option_parent(common)
    parser = argparse.ArgumentParser(prog="pyjetstream server", parents=[common])
    sub = c.subcommands(parser, "server_command")
    p = sub.add_parser("info", parents=[parent], help="what the connected server is, and JetStream usage")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_info)
    check = sub.add_parser("check", parents=[parent],
                           help="health checks for scripts: exit 0 OK, 1 warning, 2 critical, 3 unknown")
    _check_parsers(check, parent)
    return parser


CLIENT_SUBCOMMANDS = ("info", "check")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry for `pyjetstream server info|check ...` (argv without the word `server`)."""
    args = build_server_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(args.func(args) or 0)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Nothing to add: `server` is dispatched raw by cli.main; see `main` above."""
    del subparsers, common


if __name__ == "__main__":
    raise SystemExit(main())


