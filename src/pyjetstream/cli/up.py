"""`pyjetstream up`: the embedded NATS server, monitoring, publisher proxy and dispatcher in one process.

Owns the command line of `up` (the server's own nats-server flags plus --publish-port and the
eventing switches), the defaults of the tutorial (:4222, :8222, :8080, JetStream in ./data)
and the start/stop order: server first, eventing on top through nats-py, eventing stopped
first. The eventing part is `run_eventing`-style and knows nothing about the server; its
metrics registry is also exposed on the server's monitoring /metrics when both run here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import ssl
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import nats.errors

from pyjetstream.cli.console_cmd import add_up_arguments, start_in_up, stop_in_up
from pyjetstream.cli.eventing_cmd import add_eventing_arguments, config_from_args, install_stop_signals
from pyjetstream.eventing.config import EventingConfig
from pyjetstream.eventing.manager import StreamConfigError

log = logging.getLogger("pyjetstream.up")

# Flags `up` understands beyond nats-server's own; everything else goes to the server parser.
UP_FLAG_PREFIXES = ("--publish-", "--kyma-", "--stream-", "--max-msgs-per-subject", "--discard",
                    "--deliver-policy", "--max-request-size", "--dedupe", "--no-dead-letter", "--sink-",
                    "--eventing-config", "--delivery-profile", "--application-type")
CONSOLE_FLAG_PREFIX = "--console-"  # the web console's flags (pyjetstream.cli.console_cmd)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate eventing flags from the server's flags (values follow their flag)."""
    eventing_parser = argparse.ArgumentParser(add_help=False)
    add_eventing_arguments(eventing_parser)
    add_up_arguments(eventing_parser)
    takes_value = {opt for action in eventing_parser._actions if action.nargs != 0 for opt in action.option_strings}
    server, eventing = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name.startswith(UP_FLAG_PREFIXES) or name.startswith(CONSOLE_FLAG_PREFIX):
            eventing.append(arg)
            if "=" not in arg and name in takes_value and i + 1 < len(argv):
                eventing.append(argv[i + 1])
                i += 1
        else:
            server.append(arg)
        i += 1
    return server, eventing


def with_defaults(server_argv: list[str]) -> list[str]:
    """The tutorial's defaults where neither the flags nor a config file (-c) set them:
    JetStream on, monitoring on 8222, data in ./data (the client port already defaults to 4222)."""
    from pyjetstream.server.options import parse_server_args

    out = list(server_argv)
    opts, _ = parse_server_args(out)
    if not opts.jetstream.enabled:
        out.append("-js")
    if not opts.http_port:
        out += ["-m", "8222"]
    if not opts.jetstream.store_dir:
        out += ["-sd", "./data"]
    return out


# -- server part: the embedded pyjetstream server ------------------------------------------------

async def start_server(server_argv: list[str], bucket: str = EventingConfig.kv_bucket
                       ) -> tuple[Any, str, dict[str, Any]]:
    """Start `pyjetstream.server.server.Server`; returns (server, client URL, nats-py auth options).

    With a users list, the eventing runs as its own user and only it may write the
    Subscriptions bucket `bucket` (see `eventing_identity`)."""
    from pyjetstream.server.options import parse_server_args
    from pyjetstream.server.server import Server

    opts, _extras = parse_server_args(server_argv)
    identity = eventing_identity(opts, bucket) if opts.users else None
    server = Server(opts)
    await server.start()
    host = opts.host if opts.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    auth: dict[str, Any] = {}
    if getattr(opts, "username", None):
        auth = {"user": opts.username, "password": opts.password or ""}
    elif getattr(opts, "token", None):
        auth = {"token": opts.token}
    elif identity is not None:
        auth = {"user": identity[0], "password": identity[1]}
    if opts.tls:
        auth["tls"] = embedded_tls(opts)
        if opts.tls_handshake_first:
            auth["tls_handshake_first"] = True
    return server, f"nats://{host}:{server.port}", auth


EVENTING_USER = "eventing"
EVENTING_PASSWORD_ENV = "PYJETSTREAM_EVENTING_PASSWORD"
_STREAM_WRITES = ("CREATE", "UPDATE", "DELETE", "PURGE", "RESTORE", "MSG.DELETE")


def subscription_write_denials(bucket: str) -> list[str]:
    """Publish subjects that change the Subscriptions bucket: its keys and its stream's
    write API. Reading (stream info, message get, watches) stays open to everyone."""
    return [f"$KV.{bucket}.>", *(f"$JS.API.STREAM.{verb}.KV_{bucket}" for verb in _STREAM_WRITES)]


def eventing_identity(opts: Any, bucket: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Who the embedded eventing connects as when the config lists users, made the only user
    of its account that may write Subscriptions; returns (user, password) and changes `opts`.

    The user named `eventing` if the config lists one (a bcrypt password needs its plain text
    in $PYJETSTREAM_EVENTING_PASSWORD), else one added under that name with the password from
    that variable or a random one, in the account `embedded_user` picks. Every other user of
    that account, the no_auth_user included, gets `subscription_write_denials` added to its
    publish deny list: a Subscription names a sink the dispatcher will call, so writing one
    is the eventing operator's right, as writing the CR is in Kyma."""
    from pyjetstream.server.auth import is_bcrypt
    from pyjetstream.server.options import OptionsError, Permissions, User

    env = os.environ if env is None else env
    given = env.get(EVENTING_PASSWORD_ENV, "")
    mine = next((u for u in opts.users if u.user == EVENTING_USER), None)
    if mine is None:
        account = embedded_user(opts.users).account
        mine = User(EVENTING_USER, given or secrets.token_urlsafe(32), account)
        opts.users.append(mine)
        how = "the password in $" + EVENTING_PASSWORD_ENV if given else "a random password"
        log.warning("user %s added (account %s) with %s; only it may write Subscriptions. To apply "
                    "Subscriptions yourself, list user %s in the config", EVENTING_USER, account, how, EVENTING_USER)
    elif is_bcrypt(mine.password) and not given:
        raise OptionsError(f"user {EVENTING_USER} has a bcrypt password: give its plain text in "
                           f"${EVENTING_PASSWORD_ENV} so the embedded eventing can log in")
    password = given or mine.password
    if mine.permissions is not None:
        log.warning("user %s has permissions in the config; the eventing needs JetStream and the "
                    "Subscriptions bucket %s", EVENTING_USER, bucket)
    denials = subscription_write_denials(bucket)
    for u in opts.users:
        if u is mine or u.account != mine.account:
            continue
        # A copy per user: users of one `default_permissions` block share one object.
        perms = u.permissions or Permissions()
        u.permissions = replace(perms, pub_deny=[*perms.pub_deny, *(d for d in denials if d not in perms.pub_deny)])
    log.info("the embedded eventing connects as user %s (account %s); only it may write Subscriptions",
             mine.user, mine.account)
    return mine.user, password


def embedded_user(users: list[Any]) -> Any:
    """Whom the embedded eventing connects as when the config lists users: the first one of
    the global account without permissions, else the first without permissions, else the
    first listed (its permissions must then allow what eventing does; the log says who)."""
    free = [u for u in users if u.permissions is None]
    for u in free:
        if u.account == "$G":
            return u
    return free[0] if free else users[0]


def embedded_tls(opts: Any) -> ssl.SSLContext:
    """The eventing's TLS context for the embedded server: it trusts exactly that server's own
    certificate (pinned, so a CA-signed one needs no CA file), and presents the same
    certificate when the server verifies clients."""
    # with `certs`, the server presents the first pair to a client that names no host
    cert, key = (opts.tls_cert, opts.tls_key) if opts.tls_cert else opts.tls_certs[0]
    ctx = ssl.create_default_context(cafile=cert)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the pinned leaf is its own trust anchor
    ctx.check_hostname = False  # the link dials an IP address; the certificate may name hosts only
    if opts.tls_verify:
        ctx.load_cert_chain(cert, key)
    return ctx


async def stop_server(server: Any) -> None:
    await server.shutdown()


# -- eventing part -------------------------------------------------------------------------------

async def run_up(server_argv: list[str], config: EventingConfig, stop: asyncio.Event,
                 console: argparse.Namespace | None = None) -> int:
    from pyjetstream.eventing.service import EventingService
    from pyjetstream.monitoring.metrics import add_collector, remove_collector

    server, url, auth = await start_server(server_argv, config.kv_bucket)
    service = EventingService(url, config, connect_options=auth)
    web_console = None
    try:
        await service.start()
        # the same registry the proxy's /metrics renders, read per scrape: nothing is counted twice
        add_collector(server, service.metrics.registry)
        print(f"pyjetstream up: NATS {url}, publisher proxy http://{config.publish_host}:{service.port}",
              flush=True)
        web_console = await start_in_up(console, url, auth, service)
        await stop.wait()
    finally:
        await stop_in_up(web_console)
        remove_collector(server, service.metrics.registry)
        await service.stop()
        await stop_server(server)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print("Usage: pyjetstream up [nats-server flags: -a -p -m -sd -c ...] [--publish-port 8080] "
              "[--publish-host H] [--kyma-strict-sinks] [--stream-* ...]\n"
              "       [--eventing-config FILE] [--delivery-profile default|kyma] [--application-type APP=TYPE]\n"
              "       [--sink-policy default|public] [--sink-allow CIDR|HOST] [--sink-deny CIDR|HOST]\n"
              "       [--console-port 8090] [--console-host H] [--console-token T] [--console-read-only]\n"
              "Defaults: -p 4222 -m 8222 -sd ./data -js, publisher proxy on 8080, console on 8090 (0: none).")
        return 0
    server_argv, eventing_argv = split_argv(argv)
    parser = argparse.ArgumentParser(prog="pyjetstream up", add_help=False)
    add_eventing_arguments(parser)
    add_up_arguments(parser)
    args = parser.parse_args(eventing_argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"pyjetstream up: {exc}", file=sys.stderr)
        return 2
    from pyjetstream.cli.server_cmd import new_event_loop, setup_logging
    from pyjetstream.server.options import OptionsError, parse_server_args

    try:
        full_server_argv = with_defaults(server_argv)
        opts, _ = parse_server_args(full_server_argv)
        if opts.tls:
            from pyjetstream.server.tls import build_context

            build_context(opts)  # a certificate that does not load stops start-up here
    except OptionsError as exc:
        print(f"pyjetstream up: {exc}", file=sys.stderr)
        return 1
    setup_logging(opts)

    async def runner() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        return await run_up(full_server_argv, config, stop, console=args)

    loop = new_event_loop()
    try:
        return loop.run_until_complete(runner())
    except (OSError, nats.errors.Error, StreamConfigError) as exc:
        print(f"pyjetstream up: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
