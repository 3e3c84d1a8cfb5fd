"""`pyjetstream consumer ...`: list, inspect, create, change, remove consumers; pull the next message.

Owns the consumer commands and their rendering in the nats CLI's layout (`consumer ls` table,
`consumer info` sections, `consumer report`). Uses only the JetStream API over nats-py
(`$JS.API.CONSUMER.*`, `$JS.ACK.*` replies); it must not import server code.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pyjetstream.cli import common as c

DELIVER = {"all": "All", "last": "Last", "new": "New", "last_per_subject": "Last Per Subject"}
ACK = {"none": "None", "all": "All", "explicit": "Explicit"}
REPLAY = {"instant": "Instant", "original": "Original"}


# ---------------------------------------------------------------------------------------------
# Rendering


def render_consumer_list(infos: list[dict[str, Any]], now_ns: int) -> str:
    if not infos:
        return "No Consumers defined\n"
    table = c.Table("Consumers", ["Name", "Description", "Created", "Ack Pending", "Unprocessed",
                                  "Last Delivery"], shrinkable=(1,))
    for info in sorted(infos, key=lambda i: i["name"]):
        last = c.parse_time_ns((info.get("delivered") or {}).get("last_active"))
        table.add_row(info["name"], info.get("config", {}).get("description", "") or "",
                      c.format_time(c.parse_time_ns(info.get("created"))), c.fmt_int(info.get("num_ack_pending", 0)),
                      c.fmt_int(info.get("num_pending", 0)), c.age(now_ns, last))
    return table.render()


def _deliver_policy(cfg: dict[str, Any]) -> str:
    policy = cfg.get("deliver_policy", "all")
    if policy == "by_start_sequence":
        return f"From Sequence {cfg.get('opt_start_seq', 0)}"
    if policy == "by_start_time":
        return f"Since {c.format_time(c.parse_time_ns(cfg.get('opt_start_time')))}"
    return DELIVER.get(policy, policy)


def _seq_line(part: dict[str, Any], now_ns: int, what: str) -> str:
    text = (f"Consumer sequence: {c.fmt_int(part.get('consumer_seq', 0))} "
            f"Stream sequence: {c.fmt_int(part.get('stream_seq', 0))}")
    last = c.parse_time_ns(part.get("last_active"))
    if last > 0:
        text += f" {what}: {c.age(now_ns, last)} ago"
    return text


def render_consumer_info(info: dict[str, Any], now_ns: int) -> str:
    cfg = info.get("config", {})
    cols = c.Columns(f"Information for Consumer {info['stream_name']} > {info['name']} created "
                     f"{c.format_time(c.parse_time_ns(info.get('created')))}")
    cols.section("Configuration")
    cols.row_if_set("Name", info["name"])
    durable = cfg.get("durable_name")
    cols.row_if("Durable Name", durable, bool(durable) and durable != info["name"])
    cols.row_if_set("Description", cfg.get("description"))
    if cfg.get("deliver_subject"):
        cols.row("Delivery Subject", cfg["deliver_subject"])
    else:
        cols.row("Pull Mode", True)
    if cfg.get("filter_subject"):
        cols.row("Filter Subject", cfg["filter_subject"])
    elif cfg.get("filter_subjects"):
        cols.row("Filter Subjects", cfg["filter_subjects"])
    cols.row("Deliver Policy", _deliver_policy(cfg))
    cols.row_if("Deliver Queue Group", cfg.get("deliver_group"),
                bool(cfg.get("deliver_group")) and bool(cfg.get("deliver_subject")))
    ack = cfg.get("ack_policy", "none")
    cols.row("Ack Policy", ACK.get(ack, ack))
    cols.row_if("Ack Wait", c.human_duration(cfg.get("ack_wait", 0)), ack != "none")
    cols.row("Replay Policy", REPLAY.get(cfg.get("replay_policy", "instant"), ""))
    max_deliver = int(cfg.get("max_deliver", -1) or -1)
    cols.row_if("Maximum Deliveries", max_deliver, max_deliver > 0)
    cols.row_if_set("Sampling Rate", cfg.get("sample_freq"))
    cols.row_if("Max Ack Pending", int(cfg.get("max_ack_pending", 0) or 0), int(cfg.get("max_ack_pending", 0) or 0) > 0)
    cols.row_if("Max Waiting Pulls", int(cfg.get("max_waiting", 0) or 0), int(cfg.get("max_waiting", 0) or 0) > 0)
    hb = int(cfg.get("idle_heartbeat", 0) or 0)
    cols.row_if("Idle Heartbeat", c.human_duration(hb), hb > 0)
    cols.row_if("Flow Control", bool(cfg.get("flow_control")), bool(cfg.get("deliver_subject")))
    cols.row_if("Headers Only", True, bool(cfg.get("headers_only")))
    inactive = int(cfg.get("inactive_threshold", 0) or 0)
    cols.row_if("Inactive Threshold", c.human_duration(inactive), inactive > 0 and not cfg.get("deliver_subject"))
    backoff = cfg.get("backoff") or []
    cols.row_if("Backoff", ", ".join(c.human_duration(b) for b in backoff), bool(backoff))
    cols.row_if("Replicas", int(cfg.get("num_replicas", 0) or 0), int(cfg.get("num_replicas", 0) or 0) > 0)
    cols.row_if("Memory Storage", True, bool(cfg.get("mem_storage")))

    cols.section("State")
    cols.row("Last Delivered Message", _seq_line(info.get("delivered") or {}, now_ns, "Last delivery"))
    if ack != "none":
        cols.row("Acknowledgment Floor", _seq_line(info.get("ack_floor") or {}, now_ns, "Last Ack"))
        max_pending = int(cfg.get("max_ack_pending", 0) or 0)
        pending = int(info.get("num_ack_pending", 0))
        cols.row("Outstanding Acks", f"{c.fmt_int(pending)} out of maximum {c.fmt_int(max_pending)}"
                 if max_pending > 0 else c.fmt_int(pending))
        cols.row("Redelivered Messages", int(info.get("num_redelivered", 0)))
    cols.row("Unprocessed Messages", int(info.get("num_pending", 0)))
    if not cfg.get("deliver_subject"):
        waiting = c.fmt_int(info.get("num_waiting", 0))
        max_waiting = int(cfg.get("max_waiting", 0) or 0)
        cols.row("Waiting Pulls", f"{waiting} of maximum {c.fmt_int(max_waiting)}" if max_waiting > 0
                 else f"{waiting} of unlimited")
    else:
        cols.row("Active Interest", "Active" if info.get("push_bound") else "No interest")
    return cols.render()


def render_consumer_report(stream: str, infos: list[dict[str, Any]]) -> str:
    table = c.Table(f"Consumer report for {stream} with {len(infos)} consumers",
                    ["Consumer", "Mode", "Ack Policy", "Ack Wait", "Ack Pending", "Redelivered",
                     "Unprocessed", "Ack Floor"])
    for info in sorted(infos, key=lambda i: i["name"]):
        cfg = info.get("config", {})
        ack = cfg.get("ack_policy", "none")
        pending = int(info.get("num_pending", 0))
        total = int((info.get("delivered") or {}).get("stream_seq", 0)) + pending
        unprocessed = c.fmt_int(pending)
        if pending and total:
            unprocessed += f" / {pending * 100 // total}%"
        table.add_row(info["name"], "Push" if cfg.get("deliver_subject") else "Pull", ACK.get(ack, ack),
                      c.human_duration(cfg.get("ack_wait", 0)) if ack != "none" else "",
                      c.fmt_int(info.get("num_ack_pending", 0)), c.fmt_int(info.get("num_redelivered", 0)),
                      unprocessed, c.fmt_int((info.get("ack_floor") or {}).get("stream_seq", 0)))
    return table.render()


# ---------------------------------------------------------------------------------------------
# Config from flags


def _deliver_from_flag(value: str, cfg: dict[str, Any]) -> None:
    for key in ("opt_start_seq", "opt_start_time"):
        cfg.pop(key, None)
    if value in ("all", "last", "new"):
        cfg["deliver_policy"] = value
    elif value in ("last_per_subject", "subject", "last-per-subject"):
        cfg["deliver_policy"] = "last_per_subject"
    elif value.isdigit():
        cfg["deliver_policy"] = "by_start_sequence"
        cfg["opt_start_seq"] = int(value)
    else:
        try:
            since = c.parse_duration_ns(value)
        except ValueError:
            raise c.CLIError(f"invalid --deliver {value!r}: all, last, new, last_per_subject, "
                             "a sequence or a duration", c.EXIT_USAGE) from None
        cfg["deliver_policy"] = "by_start_time"
        cfg["opt_start_time"] = c.format_rfc3339(c.Clock.from_env().now_ns() - since)


def config_from_flags(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(base or {})
    if getattr(args, "config", None):
        try:
            with open(args.config, encoding="utf-8") as fh:
                loaded = json.load(fh)
        except (OSError, ValueError) as exc:
            raise c.CLIError(f"could not read consumer configuration {args.config}: {exc}") from None
        cfg.update(loaded.get("config", loaded) if isinstance(loaded, dict) else {})
    try:
        if args.target is not None:
            cfg["deliver_subject"] = args.target
        if args.deliver_group is not None:
            cfg["deliver_group"] = args.deliver_group
        if args.deliver is not None:
            _deliver_from_flag(args.deliver, cfg)
        if args.ack is not None:
            cfg["ack_policy"] = args.ack
        if args.wait is not None:
            cfg["ack_wait"] = c.parse_duration_ns(args.wait)
        if args.filter is not None:
            cfg["filter_subject"] = args.filter
        if args.replay is not None:
            cfg["replay_policy"] = args.replay
        if args.max_deliver is not None:
            cfg["max_deliver"] = args.max_deliver
        if args.max_pending is not None:
            cfg["max_ack_pending"] = args.max_pending
        if args.max_waiting is not None:
            cfg["max_waiting"] = args.max_waiting
        if args.heartbeat is not None:
            cfg["idle_heartbeat"] = c.parse_duration_ns(args.heartbeat)
        if args.flow_control is not None:
            cfg["flow_control"] = args.flow_control
        if args.headers_only is not None:
            cfg["headers_only"] = args.headers_only
        if args.inactive_threshold is not None:
            cfg["inactive_threshold"] = c.parse_duration_ns(args.inactive_threshold)
        if args.backoff is not None:
            cfg["backoff"] = [c.parse_duration_ns(x) for x in args.backoff.split(",") if x.strip()]
        if args.description is not None:
            cfg["description"] = args.description
    except ValueError as exc:
        raise c.CLIError(str(exc), c.EXIT_USAGE) from None
    return cfg


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="JSON consumer configuration (flags override it)")
    p.add_argument("--target", metavar="SUBJECT", help="push delivery subject (pull when not given)")
    p.add_argument("--deliver-group", metavar="GROUP", help="queue group for push delivery")
    p.add_argument("--deliver", metavar="POLICY", help="all, last, new, last_per_subject, a sequence or a duration")
    p.add_argument("--ack", choices=sorted(ACK), help="acknowledgment policy")
    p.add_argument("--wait", metavar="DURATION", help="how long to wait for an ack before redelivering")
    p.add_argument("--filter", metavar="SUBJECT", help="only messages on this subject")
    p.add_argument("--replay", choices=sorted(REPLAY))
    p.add_argument("--max-deliver", type=int)
    p.add_argument("--max-pending", type=int, help="maximum outstanding acks")
    p.add_argument("--max-waiting", type=int, help="maximum waiting pull requests")
    p.add_argument("--heartbeat", metavar="DURATION", help="idle heartbeat for push consumers")
    p.add_argument("--flow-control", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--headers-only", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--inactive-threshold", metavar="DURATION")
    p.add_argument("--backoff", metavar="DURATIONS", help="redelivery delays, comma separated (1s,5s,30s)")
    p.add_argument("--description")


# ---------------------------------------------------------------------------------------------
# Commands


async def consumer_info(nc: Any, stream: str, name: str, timeout: float) -> dict[str, Any]:
    return await c.api_request(nc, f"CONSUMER.INFO.{stream}.{name}", None, timeout,
                               context=f"consumer {stream} > {name}")


def cmd_ls(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if args.names:
            names = sorted(await c.paged(nc, f"CONSUMER.NAMES.{args.stream}", "consumers", args.timeout))
            if args.json:
                c.print_json(names)
            elif names:
                c.out("\n".join(names))
            return
        infos = await c.paged(nc, f"CONSUMER.LIST.{args.stream}", "consumers", args.timeout)
        if args.json:
            c.print_json(sorted(infos, key=lambda i: i["name"]))
        else:
            c.out(render_consumer_list(infos, c.Clock.from_env().now_ns()))

    return c.run(args, body)


def _show(args: argparse.Namespace, info: dict[str, Any]) -> None:
    """What info, add and edit print: the raw answer with --json, else the rendered report."""
    if args.json:
        c.print_json(info)
    else:
        c.out(render_consumer_info(info, c.Clock.from_env().now_ns()))


def cmd_info(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        info = await consumer_info(nc, args.stream, args.consumer, args.timeout)
        _show(args, info)

    return c.run(args, body)


async def _create(nc: Any, stream: str, cfg: dict[str, Any], timeout: float, action: str = "") -> dict[str, Any]:
    name = cfg.get("name") or cfg.get("durable_name")
    subject = f"CONSUMER.CREATE.{stream}.{name}" if name else f"CONSUMER.CREATE.{stream}"
    req: dict[str, Any] = {"stream_name": stream, "config": cfg}
    if action:
        req["action"] = action
    return await c.api_request(nc, subject, req, timeout, context="could not create consumer")


def cmd_add(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        cfg = config_from_flags(args)
        cfg.setdefault("deliver_policy", "all")
        cfg.setdefault("ack_policy", "explicit")
        cfg.setdefault("replay_policy", "instant")
        name = args.consumer or cfg.get("name") or cfg.get("durable_name")
        if name:
            cfg["name"] = name
            if not args.ephemeral:
                cfg["durable_name"] = name
        elif not args.ephemeral:
            raise c.CLIError("a consumer name is required (or --ephemeral)", c.EXIT_USAGE)
        info = await _create(nc, args.stream, cfg, args.timeout)
        _show(args, info)

    return c.run(args, body)


def cmd_edit(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        current = (await consumer_info(nc, args.stream, args.consumer, args.timeout))["config"]
        cfg = config_from_flags(args, base=current)
        changes = c.config_diff(current, cfg)
        if not changes:
            raise c.CLIError("no configuration changes were requested")
        c.out(f"Differences (old -> new) for Consumer {args.stream} > {args.consumer}:\n" + "\n".join(changes) + "\n")
        if not c.confirm(f"Really edit Consumer {args.stream} > {args.consumer}", args.force):
            c.out("Not editing")
            return
        cfg.setdefault("name", args.consumer)
        info = await _create(nc, args.stream, cfg, args.timeout)
        _show(args, info)

    return c.run(args, body)


def cmd_rm(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if not c.confirm(f"Really delete Consumer {args.stream} > {args.consumer}", args.force):
            c.out("Not deleting")
            return
        await c.api_request(nc, f"CONSUMER.DELETE.{args.stream}.{args.consumer}", None, args.timeout,
                            context="could not remove consumer")
        c.out(f"Consumer {args.stream} > {args.consumer} was removed")

    return c.run(args, body)


def render_next(msg: Any, raw: bool) -> str:
    body = msg.data.decode(errors="replace")
    if raw:
        return body + "\n"
    meta = msg.metadata
    ts = meta.timestamp
    when = c.format_time(int(ts.timestamp() * 1e9)).split(" ")[1] if hasattr(ts, "timestamp") else ""
    lines = [f"[{when}] subj: {msg.subject} / tries: {meta.num_delivered} / cons seq: {meta.sequence.consumer} "
             f"/ str seq: {meta.sequence.stream} / pending: {meta.num_pending}", ""]
    if msg.headers:
        lines += ["Headers:", ""] + [f"  {k}: {v}" for k, v in msg.headers.items()] + [""]
    lines += ["Data:", "", body, ""]
    return "\n".join(lines) + "\n"


def cmd_next(args: argparse.Namespace) -> int:
    """Pull messages one at a time; ack (default), nak, or leave them unacknowledged."""
    from nats.errors import TimeoutError as NatsTimeout

    async def body(nc: Any) -> None:
        await consumer_info(nc, args.stream, args.consumer, args.timeout)
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{args.stream}.{args.consumer}"
        expires = int(max(args.timeout - 0.2, 0.1) * 1e9)
        # Delivered messages carry their stream subject, not the inbox, so nats-py's request()
        # could not match them to the request: listen on a private inbox instead.
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        for _ in range(args.count):
            await nc.publish(subject, json.dumps({"batch": 1, "expires": expires}).encode(), reply=inbox)
            try:
                msg = await sub.next_msg(timeout=args.timeout)
            except (NatsTimeout, TimeoutError):
                raise c.CLIError(f"no message received from {args.stream} > {args.consumer} "
                                 f"within {args.timeout:g}s") from None
            status = (msg.headers or {}).get("Status") if msg.headers else None
            if status or not (msg.reply or "").startswith("$JS.ACK."):
                desc = (msg.headers or {}).get("Description", "no message")
                raise c.CLIError(f"no message available from {args.stream} > {args.consumer}: "
                                 f"{status or ''} {desc}".strip())
            c.out(render_next(msg, args.raw))
            if args.nak:
                await nc.publish(msg.reply, b"-NAK")
                verdict = "NaK'd message"
            elif args.no_ack:
                verdict = ""
            else:
                try:
                    await nc.request(msg.reply, b"+ACK", timeout=args.timeout)
                except (NatsTimeout, TimeoutError):
                    raise c.CLIError("the server did not confirm the acknowledgment") from None
                verdict = "Acknowledged message"
            if verdict and not args.raw:
                c.out(verdict + "\n")
        await nc.flush(timeout=args.timeout)

    return c.run(args, body)


def cmd_report(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        infos = await c.paged(nc, f"CONSUMER.LIST.{args.stream}", "consumers", args.timeout)
        if args.json:
            c.print_json(sorted(infos, key=lambda i: i["name"]))
        elif not infos:
            c.out(f"No Consumers defined on Stream {args.stream}")
        else:
            c.out(render_consumer_report(args.stream, infos))

    return c.run(args, body)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    consumer = subparsers.add_parser("consumer", aliases=["con"], parents=[parent],
                                     help="JetStream consumer management")
    sub = c.subcommands(consumer, "consumer_command")

    p = sub.add_parser("ls", aliases=["list"], parents=[parent], help="list a stream's consumers")
    p.add_argument("stream")
    p.add_argument("-n", "--names", action="store_true", help="only the consumer names")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("info", parents=[parent], help="consumer configuration and state")
    p.add_argument("stream")
    p.add_argument("consumer")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("add", aliases=["create", "new"], parents=[parent], help="create a consumer")
    p.add_argument("stream")
    p.add_argument("consumer", nargs="?")
    p.add_argument("--ephemeral", action="store_true", help="create an ephemeral consumer")
    _add_config_flags(p)
    c.add_json_flag(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("edit", parents=[parent], help="change a consumer's configuration")
    p.add_argument("stream")
    p.add_argument("consumer")
    _add_config_flags(p)
    c.add_force_flag(p)
    c.add_json_flag(p)
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("rm", aliases=["delete"], parents=[parent], help="remove a consumer")
    p.add_argument("stream")
    p.add_argument("consumer")
    c.add_force_flag(p)
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("next", parents=[parent], help="fetch the next message from a pull consumer")
    p.add_argument("stream")
    p.add_argument("consumer")
    p.add_argument("--count", type=int, default=1, help="fetch this many messages")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-ack", action="store_true", help="do not acknowledge")
    group.add_argument("--nak", action="store_true", help="negatively acknowledge, for redelivery")
    p.add_argument("--raw", action="store_true", help="print only the bodies")
    p.set_defaults(func=cmd_next)

    p = sub.add_parser("report", parents=[parent], help="a table of a stream's consumers")
    p.add_argument("stream")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_report)
