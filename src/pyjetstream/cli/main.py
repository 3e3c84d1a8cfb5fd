"""Entry point of the `pyjetstream` command: picks the subcommand module and hands over.

Owns only the command table; the global connection options are cli.common's. Each subcommand
lives in its own module under `pyjetstream.cli` and exposes `register(subparsers, common)`; commands that
parse nats-server's Go-style flags themselves (`server`, `up`, `eventing`) are listed in
RAW_COMMANDS and get the raw argument list.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

# Nothing more at module level: `pyjetstream server` starts through here, and argparse, logging
# set-up and the client commands' plumbing (cli.common) are not its business (start-up time).

# Commands that take nats-server style flags (`-sd DIR`, `-js`) and parse argv themselves.
RAW_COMMANDS: dict[str, str] = {
    "server": "pyjetstream.cli.server_cmd",
    "up": "pyjetstream.cli.up",
    "eventing": "pyjetstream.cli.eventing_cmd",
}

# argparse-based command modules, each with register(subparsers, common).
COMMAND_MODULES: tuple[str, ...] = (
    "stream",
    "consumer",
    "msg",
    "kv",
    "server_info",
    "bench",
    "subscription",
    "event",
    "sink",
    "console_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from pyjetstream.cli.common import common_options

    common = common_options()
    parser = argparse.ArgumentParser(prog="pyjetstream", parents=[common],
                                     description="NATS server with JetStream, Kyma-style eventing and CLI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in RAW_COMMANDS:
        sub.add_parser(name, help=f"{name} (takes nats-server style flags; see `pyjetstream {name} -h`)")
    for mod_name in COMMAND_MODULES:
        importlib.import_module(f"pyjetstream.cli.{mod_name}").register(sub, common)
    return parser


def _command_index(args: list[str]) -> int | None:
    """Index of the command word, skipping global options and their values."""
    if not args or not args[0].startswith("-"):
        return 0 if args else None  # the usual case, `pyjetstream server ...` among it: no parser built
    from pyjetstream.cli.common import common_options

    with_value = {o for a in common_options()._actions if a.nargs != 0 for o in a.option_strings}
    i = 0
    while i < len(args):
        a = args[i]
        if a in with_value:
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            return i
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `server info` / `server check` are client commands; bare `server` runs the server.
    i = _command_index(args_list)
    if i is not None and args_list[i] == "server" and args_list[i + 1:i + 2] in (["info"], ["check"]):
        from pyjetstream.cli import server_info

        return int(server_info.main(args_list[:i] + args_list[i + 1:]) or 0)
    if args_list and args_list[0] in RAW_COMMANDS:
        module = importlib.import_module(RAW_COMMANDS[args_list[0]])
        return int(module.main(args_list[1:]) or 0)
    import logging

    parser = build_parser()
    args = parser.parse_args(args_list)
    # A client command reports failures in one line of its own; asyncio's warnings (a TLS
    # peer closing during the handshake) would add a second, unformatted one.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
