"""Start a real server process (ours or nats-server) with JetStream for a test, through the
suite's shared helper (tests/servers.py: the server picks its port, we read it from the log)."""

from __future__ import annotations

import os

from servers import NATS_SERVER, ServerProc, start_server

__all__ = ["NATS_SERVER", "ServerProc", "own_server_available", "start_js"]


def own_server_available() -> bool:
    try:
        import pyjetstream.server.server  # noqa: F401
    except ImportError:
        return False
    return True


def start_js(kind: str, store_dir: str, *args: str) -> ServerProc:
    """`kind` is "pyjetstream" or "nats-server"; JetStream on, storing in store_dir."""
    os.makedirs(store_dir, exist_ok=True)
    return start_server(kind, store_dir, "-js", "-sd", store_dir, *args)
