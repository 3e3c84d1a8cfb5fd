"""`pyjetstream eventing --nats URL`: the publisher proxy and dispatcher against any NATS.

Owns the command line of the eventing layer (stream settings, ports, Kyma switches), the
mapping of those flags to an EventingConfig (shared with `up`), logging set-up and signal
handling. The work itself is `pyjetstream.eventing.service.run_eventing`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import nats.errors

from pyjetstream.cli.common import CLIError, add_auth_options, auth_kwargs
from pyjetstream.eventing.config import EventingConfig, from_env, normalize_deliver_policy, parse_size
from pyjetstream.eventing.egress import MODES, SinkPolicy
from pyjetstream.eventing.manager import StreamConfigError


def add_eventing_arguments(p: argparse.ArgumentParser, publish_port_flag: bool = True) -> None:
    if publish_port_flag:
        p.add_argument("--publish-port", type=int, default=8080, help="publisher proxy port (default 8080)")
    p.add_argument("--publish-host", default="127.0.0.1", help="publisher proxy address (default 127.0.0.1)")
    p.add_argument("--kyma-strict-sinks", action="store_true",
                   help="accept only Kyma's cluster-local sinks (svc.cluster.local, same namespace)")
    p.add_argument("--stream-name", default=None, help="stream name (default sap, env JS_STREAM_NAME)")
    p.add_argument("--stream-storage", choices=("file", "memory"), default=None)
    p.add_argument("--stream-replicas", type=int, default=None)
    p.add_argument("--stream-retention", choices=("interest", "limits"), default=None)
    p.add_argument("--stream-max-bytes", default=None, help="e.g. 700Mi (Kyma's default) or -1")
    p.add_argument("--stream-max-msgs", type=int, default=None)
    p.add_argument("--max-msgs-per-subject", type=int, default=None)
    p.add_argument("--discard", choices=("new", "old"), default=None)
    p.add_argument("--deliver-policy", default=None, help="all | last | last_per_subject | new (default)")
    p.add_argument("--max-request-size", type=int, default=None, help="bytes (default 65536)")
    p.add_argument("--dedupe", action="store_true",
                   help="set Nats-Msg-Id from source+id so a retried POST is stored once (2 min window)")
    p.add_argument("--no-dead-letter", action="store_true", help="do not keep events that ran out of retries")
    p.add_argument("--sink-policy", choices=MODES, default="default",
                   help="which sink addresses the dispatcher may connect to: default (all but link-local and "
                        "cloud metadata addresses) or public (only public addresses; for exposed deployments)")
    p.add_argument("--sink-allow", action="append", default=[], metavar="CIDR|HOST",
                   help="allow sinks at these addresses or host names (*.example.com) whatever the policy; "
                        "repeat or separate with commas")
    p.add_argument("--sink-deny", action="append", default=[], metavar="CIDR|HOST",
                   help="refuse sinks at these addresses or host names; wins over --sink-allow")
    p.add_argument("--publish-token", action="append", default=[], metavar="TOKEN",
                   help="require 'Authorization: Bearer TOKEN' on the proxy's publish endpoints (/healthz, "
                        "/readyz and /metrics stay open); repeat for several tokens. Default: "
                        f"${PUBLISH_TOKENS_ENV} (comma separated), else no token needed")
    p.add_argument("--no-publisher", action="store_true", help="run only the manager and dispatcher")
    p.add_argument("--no-dispatcher", action="store_true", help="run only the publisher proxy")
    p.add_argument("-D", "--debug", action="store_true", help="debug logging")


PUBLISH_TOKENS_ENV = "PYJETSTREAM_PUBLISH_TOKENS"
# RFC 6750's b64token: what can follow "Bearer " in a header at all.
_BEARER_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def publish_tokens(flags: list[str], env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The proxy's bearer tokens: the flags if any were given, else the environment variable.
    A token no client could send in an Authorization header is refused (ValueError)."""
    env = os.environ if env is None else env
    raw = list(flags) if flags else [t for t in env.get(PUBLISH_TOKENS_ENV, "").split(",") if t.strip()]
    tokens = []
    for token in raw:
        token = token.strip()
        if not _BEARER_TOKEN.match(token):
            raise ValueError("a publish token must be non-empty and made of letters, digits and -._~+/ "
                             "(optionally ending in =)")
        tokens.append(token)
    return tuple(dict.fromkeys(tokens))


def config_from_args(args: argparse.Namespace) -> EventingConfig:
    cfg = from_env()
    s = cfg.stream
    stream_changes: dict[str, Any] = {}
    for attr, field_name in (("stream_name", "name"), ("stream_storage", "storage"),
                             ("stream_replicas", "replicas"), ("stream_retention", "retention"),
                             ("stream_max_msgs", "max_msgs"), ("max_msgs_per_subject", "max_msgs_per_subject"),
                             ("discard", "discard")):
        value = getattr(args, attr, None)
        if value is not None:
            stream_changes[field_name] = value
    if getattr(args, "stream_max_bytes", None) is not None:
        stream_changes["max_bytes"] = parse_size(args.stream_max_bytes)
    if stream_changes.get("name") is not None and len(stream_changes["name"]) > 32:
        raise ValueError("stream name should be max 32 characters long")
    cfg = replace(cfg, stream=replace(s, **stream_changes))
    if getattr(args, "deliver_policy", None):
        cfg = replace(cfg, consumer=replace(cfg.consumer, deliver_policy=normalize_deliver_policy(args.deliver_policy)))
    top: dict[str, Any] = {"publish_host": args.publish_host, "strict_sinks": args.kyma_strict_sinks,
                           "dedupe": args.dedupe}
    if getattr(args, "publish_port", None) is not None:
        top["publish_port"] = args.publish_port
    if args.max_request_size is not None:
        top["max_request_size"] = args.max_request_size
    if args.no_dead_letter:
        top["dead_letter"] = replace(cfg.dead_letter, enabled=False)
    top["publish_tokens"] = publish_tokens(getattr(args, "publish_token", None) or [])
    top["sink_policy"] = SinkPolicy(getattr(args, "sink_policy", "default"), tuple(getattr(args, "sink_allow", ())),
                                    tuple(getattr(args, "sink_deny", ())))
    return replace(cfg, **top)


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s [%(levelname).3s] %(name)s: %(message)s")
    for noisy in ("asyncio", "aiohttp.access", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyjetstream eventing",
                                description="Kyma-style publisher proxy + subscription manager + dispatcher")
    p.add_argument("--nats", "-s", "--server", dest="nats", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
                   help="NATS URL(s), comma separated (env NATS_URL)")
    add_auth_options(p)
    p.add_argument("--connect-retry", type=float, default=float("inf"), metavar="SECONDS",
                   help="keep retrying the first connection this long (default: forever)")
    add_eventing_arguments(p)
    return p


async def _run(args: argparse.Namespace, config: EventingConfig, options: dict[str, Any]) -> int:
    from pyjetstream.eventing.service import EventingService

    stop = asyncio.Event()
    install_stop_signals(stop)
    service = EventingService(args.nats, config, connect_options=options,
                              run_publisher=not args.no_publisher, run_dispatcher=not args.no_dispatcher,
                              connect_retry=args.connect_retry)
    starting = asyncio.ensure_future(service.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        # Let the cancelled start unwind first, or stop() could run past parts it is still
        # creating (a runner set up after stop() looked for it would stay open).
        await asyncio.wait({starting})
        await service.stop()
        return 0
    stopping.cancel()
    starting.result()
    if service.port:
        print(f"Publisher proxy on http://{config.publish_host}:{service.port}, NATS {args.nats}", flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.debug)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"pyjetstream eventing: {exc}", file=sys.stderr)
        return 2
    try:
        options = auth_kwargs(args)
    except CLIError as exc:
        print(f"pyjetstream eventing: {exc}", file=sys.stderr)
        return 1
    try:
        import uvloop  # about a tenth less CPU per event when available; never required
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(_run(args, config, options))
    except KeyboardInterrupt:
        return 0
    except (OSError, nats.errors.Error, StreamConfigError) as exc:
        print(f"pyjetstream eventing: {exc}", file=sys.stderr)
        return 1
