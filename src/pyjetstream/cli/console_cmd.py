"""`pyjetstream console`: the web console as a NATS client; and its part of `pyjetstream up`.

Owns the command line (listener, access token, publisher proxy, the CLI's connection
options), the one-line start-up report, and how `up` starts the console next to the
embedded server (same credentials as the embedded eventing; a busy port costs the console,
never the server). The console itself lives in `pyjetstream.console`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from pyjetstream.cli import common as c

TOKEN_ENV = "PYJETSTREAM_CONSOLE_TOKEN"
PUBLISHER_TOKEN_ENV = "PYJETSTREAM_PUBLISH_TOKEN"
log = logging.getLogger("pyjetstream.console")


def _settings(host: str, port: int, token: str | None, connect_options: dict[str, Any], publisher_url: str,
              read_only: bool, allow_open: bool, **more: Any) -> Any:
    from pyjetstream.console.settings import ConsoleAuth, ConsoleSettings

    return ConsoleSettings(host=host, port=port, auth=ConsoleAuth.from_options(token, connect_options),
                           publisher_url=publisher_url, read_only=read_only, allow_open=allow_open, **more)


def cmd_console(args: argparse.Namespace) -> int:
    from pyjetstream.cli.eventing_cmd import install_stop_signals
    from pyjetstream.console.server import run_console
    from pyjetstream.eventing.config import EventingConfig

    try:
        options = c.auth_kwargs(args)
        settings = _settings(args.host, args.port, args.console_token, options, args.publisher_url,
                             args.read_only, args.allow_open, interval=args.interval, timeout=args.timeout,
                             publisher_token=args.publisher_token,
                             eventing=EventingConfig().with_overrides(kv_bucket=args.bucket))
        settings.check()
    except c.CLIError as exc:
        c.err(f"pyjetstream: error: {exc.message}")
        return c.EXIT_USAGE
    except ValueError as exc:
        c.err(f"pyjetstream: error: {exc}")
        return c.EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname).3s] %(name)s: %(message)s")
    for noisy in ("asyncio", "aiohttp.access", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def main() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        return await run_console(settings, c.server_urls(args.server), options, stop,
                                 announce=lambda line: c.out(line))

    import nats.errors

    try:
        return asyncio.run(main())
    except nats.errors.NoServersError:
        c.err(f"pyjetstream: error: could not connect to {', '.join(c.server_urls(args.server))}")
        return c.EXIT_ERROR
    except (OSError, nats.errors.Error) as exc:
        c.err(f"pyjetstream: error: {exc}")
        return c.EXIT_ERROR
    except KeyboardInterrupt:
        return c.EXIT_INTERRUPTED


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    p = subparsers.add_parser("console", parents=[parent],
                              help="the web console: streams, consumers, Subscriptions, dead letters (live)")
    p.add_argument("--port", type=int, default=8090, help="HTTP port (default 8090)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--console-token", default=os.environ.get(TOKEN_ENV),
                   help=f"token a visitor must give (env {TOKEN_ENV}); without it, the NATS "
                        "credentials of -s/--user/--token gate the console when given")
    p.add_argument("--publisher-url", default="http://127.0.0.1:8080",
                   help="publisher proxy for the Publish page and delivery counters (default http://127.0.0.1:8080)")
    p.add_argument("--publisher-token", default=os.environ.get(PUBLISHER_TOKEN_ENV),
                   help=f"bearer token for the publisher proxy (env {PUBLISHER_TOKEN_ENV})")
    p.add_argument("--bucket", default="eventing-subscriptions", help="KV bucket holding the Subscriptions")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between live updates (default 1)")
    p.add_argument("--read-only", action="store_true", help="views only: no purge, delete, replay or publish")
    p.add_argument("--allow-open", action="store_true",
                   help="allow a non-loopback --host without any token or credentials")
    p.set_defaults(func=cmd_console)


# -- inside `pyjetstream up` ----------------------------------------------------------------------

def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    """`up`'s console flags; they all start with --console- (see up.UP_FLAG_PREFIXES)."""
    parser.add_argument("--console-port", type=int, default=8090, help="web console port (0: no console)")
    parser.add_argument("--console-host", default="127.0.0.1", help="web console address (default 127.0.0.1)")
    parser.add_argument("--console-token", default=os.environ.get(TOKEN_ENV), help="token the console asks for")
    parser.add_argument("--console-read-only", action="store_true", help="console views only, no actions")
    parser.add_argument("--console-allow-open", action="store_true",
                        help="allow a non-loopback --console-host without any token or credentials")


async def start_in_up(args: argparse.Namespace | None, nats_url: str, auth: dict[str, Any], service: Any) -> Any:
    """The console next to `up`'s server and eventing, or None (turned off, or it could not
    start: the reason is printed and the rest of `up` runs on)."""
    import nats.errors

    from pyjetstream.console.server import Console

    if args is None or getattr(args, "console_port", 0) == 0:
        return None
    config = service.config
    host = config.publish_host if config.publish_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    tokens = getattr(config, "publish_tokens", ()) or ()
    try:
        settings = _settings(args.console_host, args.console_port, args.console_token, auth,
                             f"http://{host}:{service.port}", args.console_read_only, args.console_allow_open,
                             eventing=config, publisher_token=tokens[0] if tokens else None)
        console = await Console.connect(settings, [nats_url], auth, registry=service.metrics.registry)
    except (ValueError, OSError, nats.errors.Error) as exc:
        print(f"pyjetstream up: console not started: {exc}", flush=True)
        return None
    try:
        await console.start()
    except OSError as exc:
        print(f"pyjetstream up: console not started: {exc.strerror or exc}", flush=True)
        return None
    print(f"pyjetstream up: console {console.url}", flush=True)
    return console


async def stop_in_up(console: Any) -> None:
    if console is not None:
        await console.stop()
