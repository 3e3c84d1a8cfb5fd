"""`pyjetstream stream ...`: list, inspect, create, change, purge, read and remove streams.

Owns the argument layout of the stream commands and how streams are rendered (the `stream ls`
table and the `stream info` column layout users know from the nats CLI). Speaks to the server
only through the JetStream API over nats-py (`common.api_request`); it must not import server
code, so the same commands work against nats-server.
"""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

from pyjetstream.cli import common as c

RETENTION = {"limits": "Limits", "interest": "Interest", "workqueue": "WorkQueue"}
RETENTION_ALIASES = {"limits": "limits", "interest": "interest", "workq": "workqueue",
                     "work": "workqueue", "workqueue": "workqueue"}
STORAGE = {"file": "File", "memory": "Memory"}
DISCARD = {"old": "Old", "new": "New"}


# ---------------------------------------------------------------------------------------------
# Rendering (pure: data and `now` in, text out)


def render_stream_list(infos: list[dict[str, Any]], now_ns: int, width: int | None = None,
                       subject: str = "") -> str:
    """The `stream ls` table: smallest stream first, like the nats CLI."""
    if not infos:
        return f"No Streams matching {subject}\n" if subject else "No Streams defined\n"
    title = f"Streams matching {subject}" if subject else "Streams"
    table = c.Table(title, ["Name", "Description", "Created", "Messages", "Size", "Last Message"],
                    shrinkable=(1,))
    ordered = sorted(infos, key=lambda i: (int(i.get("state", {}).get("bytes", 0)), i["config"]["name"]))
    for info in ordered:
        cfg, state = info["config"], info.get("state", {})
        table.add_row(cfg["name"], cfg.get("description", "") or "",
                      c.format_time(c.parse_time_ns(info.get("created"))),
                      c.fmt_int(state.get("messages", 0)), c.human_bytes(state.get("bytes", 0)),
                      c.age(now_ns, c.parse_time_ns(state.get("last_ts"))))
    return table.render(width)


def _when(seq: int, ts: str | None) -> str:
    ns = c.parse_time_ns(ts)
    return c.fmt_int(seq) if ns <= 0 else f"{c.fmt_int(seq)} @ {c.format_time(ns)}"


def _limit_duration(ns: int | None) -> str:
    return "unlimited" if not ns or ns <= 0 else c.human_duration(ns)


def render_stream_info(info: dict[str, Any], state_only: bool = False) -> str:
    """`stream info`: configuration, options, limits and state sections."""
    cfg, state = info["config"], info.get("state", {})
    created = c.format_time(c.parse_time_ns(info.get("created")))
    kind = "State" if state_only else "Information"
    cols = c.Columns(f"{kind} for Stream {cfg['name']} created {created}")
    if not state_only:
        cols.section("Configuration")
        cols.row_if_set("Description", cfg.get("description"))
        cols.row_if_set("Subjects", cfg.get("subjects"))
        cols.row("Replicas", int(cfg.get("num_replicas", 1) or 1))
        cols.row_if("Sealed", True, bool(cfg.get("sealed")))
        cols.row("Storage", STORAGE.get(cfg.get("storage", "file"), cfg.get("storage", "")))
        placement = cfg.get("placement") or {}
        cols.row_if_set("Placement Cluster", placement.get("cluster"))
        cols.row_if_set("Placement Tags", placement.get("tags"))

        cols.section("Options")
        republish = cfg.get("republish")
        if republish:
            label = "Republishing Headers" if republish.get("headers_only") else "Republishing"
            cols.row(label, f"{republish.get('src', '>')} to {republish.get('dest', '')}")
        cols.row("Retention", RETENTION.get(cfg.get("retention", "limits"), cfg.get("retention", "")))
        cols.row("Acknowledgments", not cfg.get("no_ack", False))
        discard = DISCARD.get(cfg.get("discard", "old"), cfg.get("discard", ""))
        cols.row("Discard Policy", "New Per Subject" if cfg.get("discard_new_per_subject") else discard)
        cols.row("Duplicate Window", c.human_duration(int(cfg.get("duplicate_window", 0) or 0)))
        cols.row_if("Direct Get", True, bool(cfg.get("allow_direct")))
        cols.row_if("Mirror Direct Get", True, bool(cfg.get("mirror_direct")))
        cols.row("Allows Msg Delete", not cfg.get("deny_delete", False))
        cols.row("Allows Purge", not cfg.get("deny_purge", False))
        cols.row("Allows Rollups", bool(cfg.get("allow_rollup_hdrs", False)))

        cols.section("Limits")
        cols.row("Maximum Messages", c.unlimited(cfg.get("max_msgs", -1)))
        per = cfg.get("max_msgs_per_subject", -1)
        cols.row("Maximum Per Subject", "unlimited" if per is None or per <= 0 else c.fmt_int(per))
        cols.row("Maximum Bytes", c.unlimited(cfg.get("max_bytes", -1), c.human_bytes))
        cols.row("Maximum Age", _limit_duration(cfg.get("max_age")))
        cols.row("Maximum Message Size", c.unlimited(cfg.get("max_msg_size", -1), c.human_bytes))
        cols.row("Maximum Consumers", c.unlimited(cfg.get("max_consumers", -1)))

        if cfg.get("mirror") or cfg.get("sources"):
            cols.section("Replication")
            if cfg.get("mirror"):
                cols.row("Mirror", cfg["mirror"].get("name", ""))
            for i, src in enumerate(cfg.get("sources") or []):
                cols.row("Sources" if i == 0 else "", src.get("name", ""))

    cols.section("State")
    cols.row("Messages", int(state.get("messages", 0)))
    cols.row("Bytes", c.human_bytes(state.get("bytes", 0)))
    cols.row("First Sequence", _when(int(state.get("first_seq", 0)), state.get("first_ts")))
    cols.row("Last Sequence", _when(int(state.get("last_seq", 0)), state.get("last_ts")))
    deleted = int(state.get("num_deleted", 0) or len(state.get("deleted") or []))
    cols.row_if("Deleted Messages", deleted, deleted > 0)
    cols.row("Active Consumers", int(state.get("consumer_count", 0)))
    subjects = int(state.get("num_subjects", 0) or 0)
    cols.row_if("Number of Subjects", subjects, subjects > 0)
    return cols.render()


def render_stream_report(infos: list[dict[str, Any]]) -> str:
    table = c.Table("Stream Report", ["Stream", "Storage", "Consumers", "Messages", "Bytes", "Lost",
                                      "Deleted", "Replicas"])
    for info in sorted(infos, key=lambda i: i["config"]["name"]):
        cfg, state = info["config"], info.get("state", {})
        lost = state.get("lost") or {}
        lost_text = "0"
        if lost.get("msgs"):
            lost_text = f"{c.fmt_int(len(lost['msgs']))} ({c.human_bytes(lost.get('bytes', 0))})"
        table.add_row(cfg["name"], STORAGE.get(cfg.get("storage", "file"), ""),
                      c.fmt_int(state.get("consumer_count", 0)), c.fmt_int(state.get("messages", 0)),
                      c.human_bytes(state.get("bytes", 0)), lost_text,
                      c.fmt_int(state.get("num_deleted", 0) or 0), str(cfg.get("num_replicas", 1) or 1))
    return table.render()


def decode_headers(block: bytes) -> tuple[str, dict[str, list[str]]]:
    """A `NATS/1.0 [status]` header block to (status line rest, headers in order)."""
    text = block.decode(errors="replace")
    lines = text.split("\r\n")
    first = lines[0][len("NATS/1.0"):].strip() if lines and lines[0].startswith("NATS/1.0") else ""
    headers: dict[str, list[str]] = {}
    for ln in lines[1:]:
        if not ln or ":" not in ln:
            continue
        k, v = ln.split(":", 1)
        headers.setdefault(k.strip(), []).append(v.strip())
    return first, headers


def render_stored_message(stream: str, message: dict[str, Any]) -> str:
    """A message read with STREAM.MSG.GET, laid out as the nats CLI's `stream get`."""
    ts = c.parse_time_ns(message.get("time"))
    lines = [f"Item: {stream}#{message.get('seq')} received {c.format_time(ts)} on Subject "
             f"{message.get('subject')}", ""]
    if message.get("hdrs"):
        _, headers = decode_headers(base64.b64decode(message["hdrs"]))
        if headers:
            lines.append("Headers:")
            lines.append("")
            for k, values in headers.items():
                for v in values:
                    lines.append(f"  {k}: {v}")
            lines.append("")
    data = base64.b64decode(message.get("data") or b"")
    lines.append(data.decode(errors="replace"))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Config from flags


def _csv(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def config_from_flags(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start from `base` (a `--config FILE` or the current config) and apply the flags given."""
    cfg: dict[str, Any] = dict(base or {})
    if getattr(args, "config", None):
        try:
            with open(args.config, encoding="utf-8") as fh:
                loaded = json.load(fh)
        except (OSError, ValueError) as exc:
            raise c.CLIError(f"could not read stream configuration {args.config}: {exc}") from None
        # `stream info --json` output is accepted too: take its config part.
        cfg.update(loaded.get("config", loaded) if isinstance(loaded, dict) else {})
    subjects = _csv(args.subjects)
    if subjects is not None:
        cfg["subjects"] = subjects
    try:
        if args.storage is not None:
            cfg["storage"] = args.storage
        if args.retention is not None:
            cfg["retention"] = RETENTION_ALIASES[args.retention]
        if args.discard is not None:
            cfg["discard"] = args.discard
        if args.max_msgs is not None:
            cfg["max_msgs"] = int(args.max_msgs)
        if args.max_msgs_per_subject is not None:
            cfg["max_msgs_per_subject"] = int(args.max_msgs_per_subject)
        if args.max_bytes is not None:
            cfg["max_bytes"] = c.parse_size(args.max_bytes)
        if args.max_age is not None:
            cfg["max_age"] = 0 if args.max_age in ("-1", "0", "unlimited") else c.parse_duration_ns(args.max_age)
        if args.max_msg_size is not None:
            cfg["max_msg_size"] = c.parse_size(args.max_msg_size)
        if args.max_consumers is not None:
            cfg["max_consumers"] = int(args.max_consumers)
        if args.dupe_window is not None:
            cfg["duplicate_window"] = c.parse_duration_ns(args.dupe_window)
    except ValueError as exc:
        raise c.CLIError(str(exc), c.EXIT_USAGE) from None
    if args.replicas is not None:
        cfg["num_replicas"] = args.replicas
    if args.description is not None:
        cfg["description"] = args.description
    for flag, key in (("allow_rollup", "allow_rollup_hdrs"), ("deny_delete", "deny_delete"),
                      ("deny_purge", "deny_purge"), ("allow_direct", "allow_direct"), ("no_ack", "no_ack")):
        value = getattr(args, flag)
        if value is not None:
            cfg[key] = value
    return cfg


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="JSON stream configuration (flags override it)")
    p.add_argument("--subjects", action="append", metavar="SUBJECTS",
                   help="subjects to store, comma separated or repeated")
    p.add_argument("--storage", choices=("file", "memory"))
    p.add_argument("--retention", choices=sorted(RETENTION_ALIASES))
    p.add_argument("--discard", choices=("old", "new"))
    p.add_argument("--max-msgs", metavar="N")
    p.add_argument("--max-msgs-per-subject", metavar="N")
    p.add_argument("--max-bytes", metavar="SIZE", help="like 1GB, 512MiB, -1 for unlimited")
    p.add_argument("--max-age", metavar="DURATION", help="like 1h, 7d, -1 for unlimited")
    p.add_argument("--max-msg-size", metavar="SIZE")
    p.add_argument("--max-consumers", metavar="N")
    p.add_argument("--dupe-window", metavar="DURATION")
    p.add_argument("--replicas", type=int)
    p.add_argument("--description")
    for name, help_text in (("allow-rollup", "allow Nats-Rollup headers"), ("deny-delete", "deny message deletes"),
                            ("deny-purge", "deny purges"), ("allow-direct", "allow direct gets"),
                            ("no-ack", "do not acknowledge publishes")):
        p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None, help=help_text)


# ---------------------------------------------------------------------------------------------
# Commands


async def list_streams(nc: Any, timeout: float) -> list[dict[str, Any]]:
    return await c.paged(nc, "STREAM.LIST", "streams", timeout)


async def stream_info(nc: Any, name: str, timeout: float) -> dict[str, Any]:
    return await c.api_request(nc, f"STREAM.INFO.{name}", None, timeout, context=f"stream {name}")


def cmd_ls(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        where = {"subject": args.subject} if args.subject else None
        if args.names:
            names = sorted(await c.paged(nc, "STREAM.NAMES", "streams", args.timeout, where))
            if args.json:
                c.print_json(names)
            elif names:
                c.out("\n".join(names))
            return
        infos = await c.paged(nc, "STREAM.LIST", "streams", args.timeout, where)
        if args.json:
            c.print_json(sorted(infos, key=lambda i: i["config"]["name"]))
            return
        c.out(render_stream_list(infos, c.Clock.from_env().now_ns(), subject=args.subject or ""))

    return c.run(args, body)


def cmd_info(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        info = await stream_info(nc, args.stream, args.timeout)
        if args.json:
            c.print_json(info)
        else:
            c.out(render_stream_info(info, state_only=args.state))

    return c.run(args, body)


def cmd_add(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        cfg = config_from_flags(args)
        name = args.stream or cfg.get("name")
        if not name:
            raise c.CLIError("a stream name is required", c.EXIT_USAGE)
        cfg["name"] = name
        if not cfg.get("subjects") and not cfg.get("mirror") and not cfg.get("sources"):
            cfg["subjects"] = [name]
        info = await c.api_request(nc, f"STREAM.CREATE.{name}", cfg, args.timeout,
                                   context="could not create stream")
        if args.json:
            c.print_json(info)
        else:
            c.out(f"Stream {name} was created\n")
            c.out(render_stream_info(info))

    return c.run(args, body)


def cmd_edit(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        current = (await stream_info(nc, args.stream, args.timeout))["config"]
        cfg = config_from_flags(args, base=current)
        cfg["name"] = args.stream
        changes = c.config_diff(current, cfg)
        if not changes:
            raise c.CLIError("no configuration changes were requested")
        c.out(f"Differences (old -> new) for Stream {args.stream}:\n" + "\n".join(changes) + "\n")
        if not c.confirm(f"Really edit Stream {args.stream}", args.force):
            c.out("Not editing")
            return
        info = await c.api_request(nc, f"STREAM.UPDATE.{args.stream}", cfg, args.timeout,
                                   context="could not edit stream")
        if args.json:
            c.print_json(info)
        else:
            c.out(f"Stream {args.stream} was updated\n")
            c.out(render_stream_info(info))

    return c.run(args, body)


def cmd_rm(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if not c.confirm(f"Really delete Stream {args.stream}", args.force):
            c.out("Not deleting")
            return
        await c.api_request(nc, f"STREAM.DELETE.{args.stream}", None, args.timeout,
                            context="could not remove stream")
        c.out(f"Stream {args.stream} was removed")

    return c.run(args, body)


def cmd_purge(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        req: dict[str, Any] = {}
        if args.subject:
            req["filter"] = args.subject
        if args.seq is not None and args.keep is not None:
            raise c.CLIError("--seq and --keep cannot be combined", c.EXIT_USAGE)
        if args.seq is not None:
            req["seq"] = args.seq
        if args.keep is not None:
            req["keep"] = args.keep
        if not c.confirm(f"Really purge Stream {args.stream}", args.force):
            c.out("Not purging")
            return
        answer = await c.api_request(nc, f"STREAM.PURGE.{args.stream}", req or None, args.timeout,
                                     context="could not purge stream")
        if args.json:
            c.print_json(answer)
            return
        c.out(f"Purged {c.fmt_int(answer.get('purged', 0))} messages from Stream {args.stream}\n")
        c.out(render_stream_info(await stream_info(nc, args.stream, args.timeout), state_only=True))

    return c.run(args, body)


async def get_message(nc: Any, stream: str, timeout: float, seq: int | None = None,
                      last_for: str | None = None, next_for: str | None = None) -> dict[str, Any] | None:
    req: dict[str, Any] = {}
    if last_for:
        req["last_by_subj"] = last_for
    else:
        req["seq"] = seq
        if next_for:
            req["next_by_subj"] = next_for
    try:
        answer = await c.api_request(nc, f"STREAM.MSG.GET.{stream}", req, timeout,
                                     context=f"could not load message from stream {stream}")
    except c.APIError as exc:
        if exc.err_code == 10037:  # no message found
            return None
        raise
    return answer["message"]


def cmd_get(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if args.seq is None and not args.last_for:
            raise c.CLIError("give a sequence or --last-for SUBJECT", c.EXIT_USAGE)
        msg = await get_message(nc, args.stream, args.timeout, seq=args.seq, last_for=args.last_for)
        if msg is None:
            raise c.CLIError(f"no message found in stream {args.stream}")
        if args.json:
            c.print_json(msg)
        else:
            c.out(render_stored_message(args.stream, msg))

    return c.run(args, body)


def cmd_rmm(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if not c.confirm(f"Really remove message {args.seq} from Stream {args.stream}", args.force):
            c.out("Not removing")
            return
        await c.api_request(nc, f"STREAM.MSG.DELETE.{args.stream}", {"seq": args.seq}, args.timeout,
                            context="could not remove message")
        c.out(f"Message {args.seq} was removed from Stream {args.stream}")

    return c.run(args, body)


def cmd_view(args: argparse.Namespace) -> int:
    """Page through stored messages with MSG.GET; in a terminal, asks before each next page."""
    import sys

    async def body(nc: Any) -> None:
        info = await stream_info(nc, args.stream, args.timeout)
        state = info.get("state", {})
        seq = max(args.id or int(state.get("first_seq", 1) or 1), 1)
        last = int(state.get("last_seq", 0))
        shown, page = 0, []
        while seq <= last:
            msg = await get_message(nc, args.stream, args.timeout, seq=seq, next_for=args.subject or None)
            if msg is None:
                if args.subject:
                    break
                seq += 1  # a deleted sequence: skip the gap
                continue
            seq = int(msg["seq"]) + 1
            page.append(msg)
            shown += 1
            if args.json:
                c.print_json(msg)
            else:
                c.out(render_stored_message(args.stream, msg))
            if len(page) >= args.page:
                page = []
                if not sys.stdin.isatty() or not sys.stdout.isatty():
                    break
                if input("? Next Page? (Y/n) ").strip().lower() in ("n", "no"):
                    break
        if shown == 0 and not args.json:
            c.out(f"No messages in Stream {args.stream}" + (f" matching {args.subject}" if args.subject else ""))

    return c.run(args, body)


def cmd_report(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        infos = await list_streams(nc, args.timeout)
        if args.json:
            c.print_json(sorted(infos, key=lambda i: i["config"]["name"]))
        elif not infos:
            c.out("No Streams defined")
        else:
            c.out(render_stream_report(infos))

    return c.run(args, body)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    stream = subparsers.add_parser("stream", aliases=["str"], parents=[parent],
                                   help="JetStream stream management")
    sub = c.subcommands(stream, "stream_command")

    p = sub.add_parser("ls", aliases=["list"], parents=[parent], help="list streams")
    p.add_argument("-n", "--names", action="store_true", help="show only the stream names")
    p.add_argument("--subject", help="only streams that store this subject")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("info", parents=[parent], help="stream configuration and state")
    p.add_argument("stream")
    p.add_argument("--state", action="store_true", help="show only the state")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("state", parents=[parent], help="stream state only")
    p.add_argument("stream")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_info, state=True)

    p = sub.add_parser("add", aliases=["create"], parents=[parent], help="create a stream")
    p.add_argument("stream", nargs="?")
    _add_config_flags(p)
    c.add_json_flag(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("edit", aliases=["update"], parents=[parent], help="change a stream's configuration")
    p.add_argument("stream")
    _add_config_flags(p)
    c.add_force_flag(p)
    c.add_json_flag(p)
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("rm", aliases=["delete"], parents=[parent], help="remove a stream and its messages")
    p.add_argument("stream")
    c.add_force_flag(p)
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("purge", parents=[parent], help="remove messages from a stream")
    p.add_argument("stream")
    p.add_argument("--subject", help="purge only messages on this subject")
    p.add_argument("--seq", type=int, help="purge up to, not including, this sequence")
    p.add_argument("--keep", type=int, help="keep this many of the newest messages")
    c.add_force_flag(p)
    c.add_json_flag(p)
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("get", parents=[parent], help="read one stored message")
    p.add_argument("stream")
    p.add_argument("seq", type=int, nargs="?")
    p.add_argument("--last-for", metavar="SUBJECT", help="the newest message on SUBJECT instead")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("rmm", parents=[parent], help="remove one stored message")
    p.add_argument("stream")
    p.add_argument("seq", type=int)
    c.add_force_flag(p)
    p.set_defaults(func=cmd_rmm)

    p = sub.add_parser("view", parents=[parent], help="page through stored messages")
    p.add_argument("stream")
    p.add_argument("--id", type=int, help="start at this sequence")
    p.add_argument("--page", type=int, default=10, help="messages per page")
    p.add_argument("--subject", help="only messages on this subject")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("report", parents=[parent], help="a table of every stream's state")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_report)
