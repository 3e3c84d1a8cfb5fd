"""Start and stop the console: its own NATS connection, the sampler, the HTTP listener.

`Console` is what `pyjetstream console` and `pyjetstream up` run. It connects with nats-py
(reconnecting for ever, like any long-running client), so it works against nats-server and
clusters as well as the embedded server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import nats.errors
from aiohttp import web

from pyjetstream.console.app import create_app
from pyjetstream.console.sampler import Sampler
from pyjetstream.console.settings import ConsoleSettings

log = logging.getLogger("pyjetstream.console")


async def _quiet(*_args: Any) -> None:
    return None


async def connect(servers: list[str], connect_options: dict[str, Any], timeout: float = 5.0) -> Any:
    """A reconnecting nats-py connection; the first connect gives up after `timeout` seconds."""
    async def error_cb(exc: Exception) -> None:
        log.debug("console NATS connection: %s", exc)

    connecting = nats.connect(servers=servers, name="pyjetstream-console", allow_reconnect=True,
                              max_reconnect_attempts=-1, reconnect_time_wait=1.0, error_cb=error_cb,
                              disconnected_cb=_quiet, reconnected_cb=_quiet, closed_cb=_quiet, **connect_options)
    try:
        return await asyncio.wait_for(connecting, timeout)
    except TimeoutError:
        raise nats.errors.NoServersError() from None


class Console:
    def __init__(self, settings: ConsoleSettings, nc: Any, registry: Any = None, own_connection: bool = False) -> None:
        settings.check()
        self.settings = settings
        self.nc = nc
        self.own_connection = own_connection
        self.sampler = Sampler(nc, settings, registry)
        self.app = create_app(settings, nc, self.sampler)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @classmethod
    async def connect(cls, settings: ConsoleSettings, servers: list[str], connect_options: dict[str, Any],
                      registry: Any = None) -> Console:
        nc = await connect(servers, connect_options, max(settings.timeout, 2.0))
        try:
            return cls(settings, nc, registry, own_connection=True)
        except Exception:
            await nc.close()
            raise

    @property
    def url(self) -> str:
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await self.sampler.start()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("console listening on %s", self.url)

    async def stop(self) -> None:
        # Live streams first (they wait on the sampler's ticks), then the sampler.
        self.sampler.stopped = True
        self.sampler.next_tick().set()
        if self._runner is not None:
            try:
                await asyncio.wait_for(self._runner.cleanup(), 5.0)
            except TimeoutError:
                log.warning("stopping the console's HTTP listener took longer than 5s; abandoned")
            self._runner = None
        await self.sampler.stop()
        if self.own_connection and self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 5.0)
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                log.debug("closing the console's NATS connection: %s", exc)


async def run_console(settings: ConsoleSettings, servers: list[str], connect_options: dict[str, Any],
                      stop: asyncio.Event, announce: Any = print) -> int:
    console = await Console.connect(settings, servers, connect_options)
    try:
        await console.start()
        announce(f"pyjetstream console: {console.url} (NATS {console.sampler.snapshot.server.get('url', '')})")
        await stop.wait()
    finally:
        await console.stop()
    return 0
