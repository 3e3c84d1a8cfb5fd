"""`pyjetstream kv ...`: key-value buckets (add, put, get, del, ls, watch, history, rm, info).

Owns the KV commands and their rendering. Buckets and keys are handled by nats-py's key_value
API, except three reads: the bucket listing reads `$JS.API.STREAM.LIST` (KV buckets are the
`KV_*` streams; nats-py offers no bucket listing), and `ls BUCKET` and `history` are whole reads
through `pyjetstream.kvread` (nats-py's can end early). Must not import server code.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyjetstream.cli import common as c
from pyjetstream.cli.stream import STORAGE
from pyjetstream.kvread import KVReader

KV_PREFIX = "KV_"


def _kv_errors() -> tuple[type[BaseException], ...]:
    import nats.js.errors as jse

    return (jse.Error,)


async def _bucket(nc: Any, name: str, timeout: float) -> Any:
    import nats.js.errors as jse

    js = nc.jetstream(timeout=timeout)
    try:
        return await js.key_value(name)
    except jse.BucketNotFoundError:
        raise c.CLIError(f"bucket {name} not found") from None
    except jse.BadBucketError:
        raise c.CLIError(f"stream {KV_PREFIX}{name} is not a key-value bucket") from None
    except jse.InvalidBucketNameError:
        raise c.CLIError(f"invalid bucket name {name!r}", c.EXIT_USAGE) from None


def _js_error(exc: BaseException, context: str) -> c.CLIError:
    import nats.js.errors as jse

    if isinstance(exc, jse.APIError) and exc.err_code:
        return c.APIError(exc.code or 0, exc.err_code, exc.description or str(exc), context)
    text = str(exc).removeprefix("nats: ") or type(exc).__name__
    return c.CLIError(f"{context}: {text}")


def render_bucket_info(info: dict[str, Any]) -> str:
    """A bucket's status from its stream info, in the nats CLI's `kv info` layout."""
    cfg, state = info["config"], info.get("state", {})
    name = cfg["name"][len(KV_PREFIX):]
    cols = c.Columns(f"Information for Key-Value Store Bucket {name} created "
                     f"{c.format_time(c.parse_time_ns(info.get('created')))}")
    cols.section("Configuration")
    cols.row("Bucket Name", name)
    cols.row("History Kept", int(cfg.get("max_msgs_per_subject", 1)))
    cols.row("Values Stored", int(state.get("messages", 0)))
    cols.row_if_set("Description", cfg.get("description"))
    cols.row("Backing Store Kind", "JetStream")
    cols.row("Bucket Size", c.human_bytes(state.get("bytes", 0)))
    cols.row("Maximum Bucket Size", c.unlimited(cfg.get("max_bytes", -1), c.human_bytes))
    cols.row("Maximum Value Size", c.unlimited(cfg.get("max_msg_size", -1), c.human_bytes))
    max_age = int(cfg.get("max_age", 0) or 0)
    cols.row("Maximum Age", "unlimited" if max_age <= 0 else c.human_duration(max_age))
    cols.row("JetStream Stream", cfg["name"])
    cols.row("Storage", STORAGE.get(cfg.get("storage", "file"), ""))
    return cols.render()


def render_bucket_list(infos: list[dict[str, Any]], now_ns: int) -> str:
    if not infos:
        return "No Key-Value buckets found\n"
    table = c.Table("Key-Value Buckets", ["Bucket", "Description", "Created", "Size", "Values", "Last Update"],
                    shrinkable=(1,))
    for info in sorted(infos, key=lambda i: i["config"]["name"]):
        cfg, state = info["config"], info.get("state", {})
        table.add_row(cfg["name"][len(KV_PREFIX):], cfg.get("description", "") or "",
                      c.format_time(c.parse_time_ns(info.get("created"))), c.human_bytes(state.get("bytes", 0)),
                      c.fmt_int(state.get("messages", 0)), c.age(now_ns, c.parse_time_ns(state.get("last_ts"))))
    return table.render()


async def _bucket_infos(nc: Any, timeout: float) -> list[dict[str, Any]]:
    infos = await c.paged(nc, "STREAM.LIST", "streams", timeout)
    return [i for i in infos if i["config"]["name"].startswith(KV_PREFIX)]


def _op_name(op: str | None) -> str:
    return {"DEL": "DEL", "PURGE": "PURGE"}.get(op or "", "PUT")


def _entry_time(entry: Any) -> str:
    created = getattr(entry, "created", None)
    if created is None:
        return ""
    if hasattr(created, "timestamp"):
        return c.format_time(int(created.timestamp() * 1e9))
    return c.format_time(int(created))


# ---------------------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        from nats.js.api import KeyValueConfig, StorageType

        try:
            cfg = KeyValueConfig(
                bucket=args.bucket, description=args.description, history=args.history,
                ttl=c.parse_duration_ns(args.ttl) / 1e9 if args.ttl else None,
                max_bytes=c.parse_size(args.max_bucket_size) if args.max_bucket_size else None,
                max_value_size=c.parse_size(args.max_value_size) if args.max_value_size else None,
                storage=StorageType(args.storage), replicas=args.replicas)
        except ValueError as exc:
            raise c.CLIError(str(exc), c.EXIT_USAGE) from None
        js = nc.jetstream(timeout=args.timeout)
        try:
            await js.create_key_value(cfg)
        except _kv_errors() as exc:
            raise _js_error(exc, "could not create bucket") from None
        info = await c.api_request(nc, f"STREAM.INFO.{KV_PREFIX}{args.bucket}", None, args.timeout)
        if args.json:
            c.print_json(info)
        else:
            c.out(render_bucket_info(info))

    return c.run(args, body)


def cmd_info(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        await _bucket(nc, args.bucket, args.timeout)
        info = await c.api_request(nc, f"STREAM.INFO.{KV_PREFIX}{args.bucket}", None, args.timeout,
                                   context=f"bucket {args.bucket}")
        if args.json:
            c.print_json(info)
        else:
            c.out(render_bucket_info(info))

    return c.run(args, body)


def cmd_put(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        import sys

        value = args.value if args.value is not None else ("" if sys.stdin.isatty() else sys.stdin.read())
        kv = await _bucket(nc, args.bucket, args.timeout)
        try:
            await kv.put(args.key, value.encode())
        except _kv_errors() as exc:
            raise _js_error(exc, f"could not put {args.key}") from None
        c.out(value)

    return c.run(args, body)


def cmd_get(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        import nats.js.errors as jse

        kv = await _bucket(nc, args.bucket, args.timeout)
        try:
            entry = await kv.get(args.key, revision=args.revision) if args.revision else await kv.get(args.key)
        except (jse.KeyNotFoundError, jse.KeyDeletedError, jse.NotFoundError):
            raise c.CLIError(f"key {args.key} not found in bucket {args.bucket}") from None
        value = (entry.value or b"").decode(errors="replace")
        if args.json:
            c.print_json({"bucket": args.bucket, "key": entry.key, "revision": entry.revision, "value": value})
            return
        if args.raw:
            c.out(value)
            return
        # nats-py's Entry carries no timestamp for a plain get; the stored message has it.
        stored = await c.api_request(nc, f"STREAM.MSG.GET.{KV_PREFIX}{args.bucket}", {"seq": entry.revision},
                                     args.timeout)
        created = c.format_time(c.parse_time_ns(stored.get("message", {}).get("time")))
        c.out(f"{args.bucket} > {entry.key} revision: {entry.revision} created @ {created}\n\n{value}\n")

    return c.run(args, body)


def cmd_del(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        kv = await _bucket(nc, args.bucket, args.timeout)
        if not c.confirm(f"Really delete key {args.bucket} > {args.key}", args.force):
            c.out("Not deleting")
            return
        try:
            await kv.delete(args.key)
        except _kv_errors() as exc:
            raise _js_error(exc, f"could not delete {args.key}") from None
        c.out(f"Deleted key {args.key} from bucket {args.bucket}")

    return c.run(args, body)


def cmd_rm(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        await _bucket(nc, args.bucket, args.timeout)
        if not c.confirm(f"Really delete Key-Value bucket {args.bucket}", args.force):
            c.out("Not deleting")
            return
        try:
            await nc.jetstream(timeout=args.timeout).delete_key_value(args.bucket)
        except _kv_errors() as exc:
            raise _js_error(exc, f"could not remove bucket {args.bucket}") from None
        c.out(f"Deleted bucket {args.bucket}")

    return c.run(args, body)


def cmd_ls(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        if args.bucket:
            await _bucket(nc, args.bucket, args.timeout)
            # a whole read: nats-py's kv.keys() can end before values still in flight
            keys = await KVReader(nc, args.bucket, args.timeout).keys()
            if args.json:
                c.print_json(keys)
            elif keys:
                c.out("\n".join(keys))
            else:
                c.out("No keys found in bucket")
            return
        infos = await _bucket_infos(nc, args.timeout)
        if args.json:
            c.print_json(sorted(i["config"]["name"][len(KV_PREFIX):] for i in infos) if args.names
                         else sorted(infos, key=lambda i: i["config"]["name"]))
        elif args.names:
            names = sorted(i["config"]["name"][len(KV_PREFIX):] for i in infos)
            if names:
                c.out("\n".join(names))
        else:
            c.out(render_bucket_list(infos, c.Clock.from_env().now_ns()))

    return c.run(args, body)


def cmd_history(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        await _bucket(nc, args.bucket, args.timeout)
        # a whole read: nats-py's kv.history() can end before values still in flight
        entries = await KVReader(nc, args.bucket, args.timeout).history(args.key)
        if not entries:
            raise c.CLIError(f"key {args.key} not found in bucket {args.bucket}")
        if args.json:
            c.print_json([{"key": e.key, "revision": e.revision, "operation": _op_name(e.operation),
                           "value": (e.value or b"").decode(errors="replace")} for e in entries])
            return
        table = c.Table(f"History for {args.bucket} > {args.key}",
                        ["Key", "Revision", "Op", "Created", "Length", "Value"], shrinkable=(5,))
        for e in entries:
            value = (e.value or b"").decode(errors="replace")
            table.add_row(e.key, c.fmt_int(e.revision), _op_name(e.operation), _entry_time(e),
                          c.fmt_int(len(e.value or b"")), value)
        c.out(table.render())

    return c.run(args, body)


def cmd_watch(args: argparse.Namespace) -> int:
    async def body(nc: Any) -> None:
        kv = await _bucket(nc, args.bucket, args.timeout)
        watcher = await kv.watch(args.key or ">", include_history=args.history)
        c.out(f"Watching {args.bucket} > {args.key or '>'}")
        seen = 0
        try:
            while not args.count or seen < args.count:
                try:
                    entry = await watcher.updates(timeout=3600)
                except (TimeoutError, c.CLIError):
                    continue
                except _kv_errors():
                    continue
                if entry is None:  # end of the initial values
                    continue
                seen += 1
                op = _op_name(entry.operation)
                stamp = _entry_time(entry)
                if op == "PUT":
                    value = (entry.value or b"").decode(errors="replace")
                    c.out(f"[{stamp}] {op} {args.bucket} > {entry.key}: {value}")
                else:
                    c.out(f"[{stamp}] {op} {args.bucket} > {entry.key}")
        finally:
            await watcher.stop()

    return c.run(args, body)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    kv = subparsers.add_parser("kv", parents=[parent], help="key-value buckets")
    sub = c.subcommands(kv, "kv_command")

    p = sub.add_parser("add", aliases=["new"], parents=[parent], help="create a bucket")
    p.add_argument("bucket")
    p.add_argument("--history", type=int, default=1, help="values kept per key")
    p.add_argument("--ttl", metavar="DURATION", help="expire values after this long")
    p.add_argument("--max-bucket-size", metavar="SIZE")
    p.add_argument("--max-value-size", metavar="SIZE")
    p.add_argument("--storage", choices=("file", "memory"), default="file")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--description")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("info", aliases=["status"], parents=[parent], help="bucket configuration and size")
    p.add_argument("bucket")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("put", parents=[parent], help="store a value")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("get", parents=[parent], help="read a value")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("--revision", type=int, help="read this revision instead of the newest")
    p.add_argument("--raw", action="store_true", help="print only the value")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("del", parents=[parent], help="delete a key (its history remains)")
    p.add_argument("bucket")
    p.add_argument("key")
    c.add_force_flag(p)
    p.set_defaults(func=cmd_del)

    p = sub.add_parser("rm", parents=[parent], help="remove a bucket and all its data")
    p.add_argument("bucket")
    c.add_force_flag(p)
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("ls", aliases=["list"], parents=[parent], help="list buckets, or a bucket's keys")
    p.add_argument("bucket", nargs="?")
    p.add_argument("-n", "--names", action="store_true", help="only bucket names")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("history", parents=[parent], help="every stored revision of a key")
    p.add_argument("bucket")
    p.add_argument("key")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("watch", parents=[parent], help="print changes as they happen")
    p.add_argument("bucket")
    p.add_argument("key", nargs="?", help="key or wildcard, default all keys")
    p.add_argument("--history", action="store_true", help="replay the stored history first")
    p.add_argument("--count", type=int, default=0, help="exit after this many updates")
    p.set_defaults(func=cmd_watch)
