"""`pyjetstream subscription apply|get|ls|delete`: Kyma Subscriptions stored in the KV bucket.

Owns the commands and their rendering only; manifests, validation and storage come from
`pyjetstream.eventing.subscriptions`. Reaches the system through the global -s/--server
option like every client command. `apply` refuses invalid manifests with Kyma's messages
(as Kyma's admission webhook once did); the manager validates again on its side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pyjetstream.cli import common as c

RESOURCE = "subscription.eventing.kyma-project.io"
DEFAULT_BUCKET = "eventing-subscriptions"


async def _store(nc: Any, args: argparse.Namespace, create: bool) -> Any:
    import nats.js.errors as jse

    from pyjetstream.eventing.subscriptions import SubscriptionStore

    try:
        return await SubscriptionStore.open(nc, args.bucket, create=create, timeout=args.timeout)
    except jse.BucketNotFoundError:
        return None
    except jse.Error as exc:
        raise c.CLIError(f"cannot open the subscription bucket {args.bucket}: {exc}") from None


def _read_manifests(paths: list[str], namespace: str | None) -> list[Any]:
    from pyjetstream.eventing.subscriptions import ManifestError, parse_manifests

    subs = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise c.CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            found = parse_manifests(text, namespace or "default")
        except ManifestError as exc:
            raise c.CLIError(f"{path}: {exc}") from None
        if namespace:
            for sub in found:
                sub.namespace = namespace
        subs.extend(found)
    return subs


def cmd_apply(args: argparse.Namespace) -> int:
    from pyjetstream.eventing.subscriptions import validate, validation_message

    try:
        subs = _read_manifests(args.filename, args.namespace)
    except c.CLIError as exc:
        c.err(f"pyjetstream: error: {exc.message}")
        return exc.exit_code
    bad = [(s, errs) for s in subs if (errs := validate(s, args.kyma_strict_sinks))]
    if bad:
        for sub, errs in bad:
            c.err(f'error: {RESOURCE} "{sub.name}" is invalid: {validation_message(errs)}')
        return c.EXIT_ERROR

    async def body(nc: Any) -> None:
        store = await _store(nc, args, create=True)
        for sub in subs:
            result = await store.apply(sub, args.kyma_strict_sinks)
            c.out(f"{RESOURCE}/{sub.name} {result}")

    return c.run(args, body)


async def _dead_letters(nc: Any, status: dict[str, Any] | None, timeout: float) -> int | None:
    import nats.js.errors as jse

    info = (status or {}).get("deadLetter")
    if not info:
        return None
    js = nc.jetstream(timeout=timeout)
    total = 0
    for subject in info.get("subjects", []):
        try:
            si = await js.stream_info(info["stream"], subjects_filter=subject)
        except jse.NotFoundError:
            return 0
        total += sum((si.state.subjects or {}).values())
    return total


def _age(created: str | None) -> str:
    if not created:
        return ""
    return c.age(c.Clock.from_env().now_ns(), c.parse_time_ns(created))


def render_subscription(sub: Any, dead_letters: int | None) -> str:
    st = sub.status or {}
    cols = c.Columns(f"Subscription {sub.namespace}/{sub.name}")
    cols.row("Ready", str(bool(st.get("ready"))).lower())
    cols.row("Source", sub.source or '""')
    cols.row("Type Matching", sub.type_matching)
    cols.row("Sink", sub.sink)
    cols.row("Max In Flight", sub.config.get("maxInFlightMessages", "10"))
    extra = {k: v for k, v in sub.config.items() if k != "maxInFlightMessages"}
    if extra:
        cols.row("Config", ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    cols.row("Generation", str(sub.generation))
    cols.row("Age", _age(sub.creation_timestamp))
    consumers = {b["originalType"]: b["consumerName"] for b in (st.get("backend") or {}).get("types", []) or []}
    cols.section("Types")
    for entry in st.get("types") or [{"originalType": ty, "cleanType": ""} for ty in sub.types]:
        original = entry["originalType"]
        cols.row(original, f"clean {entry.get('cleanType') or '-'}, consumer {consumers.get(original, '-')}")
    cols.section("Conditions")
    for cond in st.get("conditions", []) or []:
        text = f"{cond['status']} ({cond['reason']})"
        if cond.get("message"):
            text += f": {cond['message']}"
        cols.row(cond["type"], text)
    delivery = (st.get("backend") or {}).get("deliveryStatus")
    if isinstance(delivery, dict) and delivery.get("lastFailedDelivery"):
        cols.section("Last Delivery Error")
        recovered = delivery.get("lastSuccessfulDelivery")
        cols.row("State", f"recovered at {recovered}" if recovered else "failing")
        cols.row("Failed At", str(delivery.get("lastFailedDelivery")))
        cols.row("Reason", str(delivery.get("lastFailedDeliveryReason", "")))
        if delivery.get("lastFailedDeliveryStatusCode") is not None:
            cols.row("Status Code", str(delivery["lastFailedDeliveryStatusCode"]))
        cols.row("Attempt", str(delivery.get("lastFailedDeliveryAttempt", "")))
        if delivery.get("lastFailedDeliveryConsumer"):
            cols.row("Consumer", str(delivery["lastFailedDeliveryConsumer"]))
    if dead_letters is not None:
        cols.section("Dead Letters")
        cols.row("Stream", (st.get("deadLetter") or {}).get("stream", ""))
        cols.row("Messages", c.fmt_int(dead_letters))
    return cols.render()


def _emit(docs: list[dict[str, Any]], output: str, single: bool) -> None:
    import yaml

    if output == "json":
        payload: Any = docs[0] if single else {"apiVersion": "v1", "kind": "List", "items": docs}
        c.out(json.dumps(payload, indent=2))
    else:
        c.out(yaml.safe_dump_all(docs, sort_keys=False).rstrip())


def cmd_get(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> int:
        store = await _store(nc, args, create=False)
        sub = await store.get(args.namespace or "default", args.name) if store else None
        if args.wait and sub is not None:
            deadline = asyncio.get_running_loop().time() + args.wait
            while not (sub.status or {}).get("ready") and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
                sub = await store.get(sub.namespace, sub.name) or sub
        if sub is None:
            raise c.CLIError(f'{RESOURCE} "{args.name}" not found')
        dead = await _dead_letters(nc, sub.status, args.timeout)
        if args.output in ("yaml", "json"):
            doc = sub.to_manifest()
            if dead is not None and (doc.get("status") or {}).get("deadLetter") is not None:
                doc["status"]["deadLetter"]["messages"] = dead
            _emit([doc], args.output, single=True)
        else:
            c.out(render_subscription(sub, dead))
        return c.EXIT_OK if (sub.status or {}).get("ready") or not args.wait else c.EXIT_ERROR

    return c.run(args, body)


def cmd_ls(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        store = await _store(nc, args, create=False)
        namespace = None if args.all_namespaces else (args.namespace or "default")
        subs = await store.list(namespace) if store else []
        if args.output in ("yaml", "json"):
            _emit([s.to_manifest() for s in subs], args.output, single=False)
            return
        if not subs:
            c.out("No Subscriptions found" + ("" if namespace is None else f" in namespace {namespace}"))
            return
        table = c.Table("Subscriptions", ["Namespace", "Name", "Ready", "Source", "Types", "Sink", "Age"])
        for s in subs:
            table.add_row(s.namespace, s.name, str(bool((s.status or {}).get("ready"))).lower(), s.source,
                          ", ".join(s.types), s.sink, _age(s.creation_timestamp))
        c.out(table.render())

    return c.run(args, body)


def cmd_delete(args: argparse.Namespace) -> int:
    targets: list[tuple[str, str]] = []
    if args.filename:
        try:
            targets = [(s.namespace, s.name) for s in _read_manifests(args.filename, args.namespace)]
        except c.CLIError as exc:
            c.err(f"pyjetstream: error: {exc.message}")
            return exc.exit_code
    targets += [(args.namespace or "default", n) for n in args.names]
    if not targets:
        c.err("pyjetstream: error: give NAME(s) or -f FILE")
        return c.EXIT_USAGE

    async def body(nc: Any) -> int:
        store = await _store(nc, args, create=False)
        code = c.EXIT_OK
        for ns, name in targets:
            if store is not None and await store.delete(ns, name):
                c.out(f'{RESOURCE} "{name}" deleted')
            else:
                c.err(f'error: {RESOURCE} "{name}" not found in namespace {ns}')
                code = c.EXIT_ERROR
        return code

    return c.run(args, body)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from pyjetstream.eventing.config import EventingConfig
    from pyjetstream.eventing.deadletter import list_dead_letters, replay

    async def body(nc: Any) -> int:
        store = await _store(nc, args, create=False)
        sub = await store.get(args.namespace or "default", args.name) if store else None
        if sub is None:
            raise c.CLIError(f'{RESOURCE} "{args.name}" not found')
        consumers = sorted(sub.consumers())
        js = nc.jetstream(timeout=args.timeout)
        letters = await list_dead_letters(js, consumers, EventingConfig(), limit=args.limit)
        if args.replay:
            done, problems = await replay(js, letters, EventingConfig())
            for problem in problems:
                c.err(f"pyjetstream: {problem}")
            c.out(f"replayed {done} of {len(letters)} dead-lettered event(s) of {sub.key}")
            return c.EXIT_OK if not problems else c.EXIT_ERROR
        if args.json:
            c.print_json([x.summary() for x in letters])
            return c.EXIT_OK
        if not letters:
            c.out(f"No dead-lettered events for {sub.key}")
            return c.EXIT_OK
        table = c.Table(f"Dead-lettered events of {sub.key}",
                        ["Seq", "Event ID", "Type", "Reason", "Status", "Deliveries", "Error"])
        for x in letters:
            s = x.summary()
            table.add_row(str(s["sequence"]), s["id"] or "", s["type"] or "", s["reason"] or "",
                          s["lastStatus"] or "", s["deliveries"] or "", (s["error"] or "")[:60])
        c.out(table.render())
        return c.EXIT_OK

    return c.run(args, body)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    top = subparsers.add_parser("subscription", aliases=["subscriptions"], parents=[parent],
                                help="Kyma eventing Subscriptions (apply, get, ls, delete)")
    sub = c.subcommands(top, "subscription_command")

    def scoped(p: argparse.ArgumentParser) -> None:
        p.add_argument("-n", "--namespace", help="namespace (default: default)")
        p.add_argument("--bucket", default=DEFAULT_BUCKET, help="KV bucket holding the Subscriptions")

    p = sub.add_parser("apply", parents=[parent], help="create or update Subscriptions from manifests")
    p.add_argument("-f", "--filename", action="append", required=True, help="YAML or JSON manifest ('-' = stdin)")
    p.add_argument("--kyma-strict-sinks", action="store_true",
                   help="apply Kyma's cluster-local sink rules (svc.cluster.local, same namespace)")
    scoped(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("get", parents=[parent], help="one Subscription with its status")
    p.add_argument("name")
    p.add_argument("-o", "--output", choices=("yaml", "json", "text"), default="text")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for ready; exit 1 if it does not get ready")
    scoped(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("ls", aliases=["list"], parents=[parent], help="list Subscriptions")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=("yaml", "json", "text"), default="text")
    scoped(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("dead-letters", aliases=["dlq"], parents=[parent],
                       help="list (or --replay) the events that ran out of delivery attempts")
    p.add_argument("name")
    p.add_argument("--replay", action="store_true", help="publish them again and remove them from the DLQ")
    p.add_argument("--limit", type=int, default=1000)
    c.add_json_flag(p)
    scoped(p)
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("delete", aliases=["rm"], parents=[parent], help="delete Subscriptions")
    p.add_argument("names", nargs="*")
    p.add_argument("-f", "--filename", action="append", help="delete the Subscriptions in these manifests")
    scoped(p)
    p.set_defaults(func=cmd_delete)
