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
from pyjetstream.eventing.config import FLAG_KEYS, EventingConfig, from_env, from_flags, load_file
from pyjetstream.eventing.egress import MODES
from pyjetstream.eventing.manager import StreamConfigError
from pyjetstream.eventing.retry import PROFILES


def add_eventing_arguments(p: argparse.ArgumentParser, publish_port_flag: bool = True,
                           config_flags: tuple[str, ...] = ("--eventing-config",)) -> None:
    # Flags default to None: only a flag that was given overrides the config file and the
    # environment (file < env < flags).
    p.add_argument(*config_flags, dest="eventing_config", default=None, metavar="FILE",
                   help="eventing config file (YAML; docs/cli.md); the environment and flags override it")
    if publish_port_flag:
        p.add_argument("--publish-port", default=None, help="publisher proxy port (default 8080)")
    p.add_argument("--publish-host", default=None, help="publisher proxy address (default 127.0.0.1)")
    p.add_argument("--kyma-strict-sinks", action="store_true", default=None,
                   help="accept only Kyma's cluster-local sinks (svc.cluster.local, same namespace)")
    p.add_argument("--stream-name", default=None, help="stream name (default sap, env JS_STREAM_NAME)")
    p.add_argument("--stream-storage", choices=("file", "memory"), default=None)
    p.add_argument("--stream-replicas", default=None)
    p.add_argument("--stream-retention", choices=("interest", "limits"), default=None)
    p.add_argument("--stream-max-bytes", default=None, help="e.g. 700Mi (Kyma's default) or -1")
    p.add_argument("--stream-max-msgs", default=None)
    p.add_argument("--max-msgs-per-subject", default=None)
    p.add_argument("--discard", choices=("new", "old"), default=None)
    p.add_argument("--deliver-policy", default=None, help="all | last | last_per_subject | new (default)")
    p.add_argument("--max-request-size", default=None, help="bytes (default 65536)")
    p.add_argument("--dedupe", action="store_true", default=None,
                   help="set Nats-Msg-Id from source+id so a retried POST is stored once (2 min window)")
    p.add_argument("--no-dead-letter", action="store_true", default=None,
                   help="do not keep events that ran out of retries")
    p.add_argument("--delivery-profile", choices=PROFILES, default=None,
                   help="default (backoff, delivery timeout, dead letters) or kyma (Kyma's dispatcher exactly: "
                        "NAK with 30s delay, 100 deliveries, no timeout, nothing removed); a Subscription's "
                        "config key deliveryProfile wins")
    p.add_argument("--application-type", action="append", default=None, metavar="APP=TYPE",
                   help="publish events of application APP under TYPE, as Kyma's application-type label; "
                        "repeat for several")
    p.add_argument("--sink-policy", choices=MODES, default=None,
                   help="which sink addresses the dispatcher may connect to: default (all but link-local and "
                        "cloud metadata addresses) or public (only public addresses; for exposed deployments)")
    p.add_argument("--sink-allow", action="append", default=None, metavar="CIDR|HOST",
                   help="allow sinks at these addresses or host names (*.example.com) whatever the policy; "
                        "repeat or separate with commas")
    p.add_argument("--sink-deny", action="append", default=None, metavar="CIDR|HOST",
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


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> EventingConfig:
    """The eventing config file, then Kyma's environment variables, then the flags given.
    Raises ConfigError (a ValueError) naming the file key, variable or flag at fault."""
    cfg = EventingConfig()
    if getattr(args, "eventing_config", None):
        cfg = load_file(args.eventing_config, cfg)
    cfg = from_env(env, cfg)
    given = {flag: getattr(args, flag.lstrip("-").replace("-", "_"), None) for flag in FLAG_KEYS}
    cfg = from_flags({flag: value for flag, value in given.items() if value is not None}, cfg)
    top: dict[str, Any] = {}
    top["publish_tokens"] = publish_tokens(getattr(args, "publish_token", None) or [], env)
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
    add_eventing_arguments(p, config_flags=("--config", "--eventing-config"))
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
