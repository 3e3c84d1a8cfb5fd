"""Runs the eventing layer: publisher proxy + manager + dispatcher on one nats-py connection.

Owns start-up order and shutdown (HTTP first, then the manager, then in-flight deliveries,
then the connection) and the reconnect hook. `run_eventing` is what `pyjetstream up` and
`pyjetstream eventing` call; it knows nothing about how the NATS server itself runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
from aiohttp import web
from nats.aio.client import Client as NATSClient

from .config import EventingConfig
from .dispatcher import Dispatcher
from .manager import EventingManager, StreamConfigError
from .metrics import EventingMetrics
from .publisher import EventPublisher, SubscriptionsProvider, create_app
from .subscriptions import StoreListing, SubscriptionStore

log = logging.getLogger("pyjetstream.eventing")

# Reconnect backoff: the first retry soon (a restarting server is back in a moment), then
# doubling up to a ceiling, with jitter so that many proxies do not reconnect in step.
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 5.0
_HAS_RECONNECT_HANDLER = "reconnect_to_server_handler" in inspect.signature(NATSClient.connect).parameters


def reconnect_backoff(servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
    """nats-py's reconnect_to_server_handler: the server tried least often, and how long to
    wait before trying it (older nats-py waits `reconnect_time_wait` between tries instead)."""
    server = min(servers, key=lambda s: s.reconnects)
    delay = min(RECONNECT_MAX, RECONNECT_FIRST * 2 ** min(server.reconnects, 8))
    return server, delay * random.uniform(0.8, 1.2)


class _Client(NATSClient):
    """nats-py's client, except that an -ERR it does not know closes nothing for good, plus
    two shortcuts for the eventing's hot paths (issue 14).

    nats-py answers any -ERR but a permissions violation or a stale connection by closing the
    connection without reconnecting, which would leave the proxy unready until restarted.
    The server has closed (or will close) its side anyway; reconnecting is what it does for
    a lost server, and the subscriptions are replayed.

    `direct[sid]`: messages of that subscription go to a plain function (subject, reply, data,
    raw header block) as the parser hands them over: no Msg object, no header parsing, no
    per-subscription queue and task. `publish_framed`: an HPUB whose header block the caller
    already built (and checked, `wire.check_publish`), written with nats-py's own buffering.
    """

    def __init__(self) -> None:
        super().__init__()
        self.direct: dict[int, Callable[[bytes, bytes, bytes, bytes | None], None]] = {}

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                           headers: bytes | None) -> None:
        handler = self.direct.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        handler(subject, reply, data, headers)

    def _remove_sub(self, sid: int, max_msgs: int = 0) -> None:
        self.direct.pop(sid, None)
        super()._remove_sub(sid, max_msgs)

    async def publish_framed(self, subject: bytes, reply: bytes, block: bytes, payload: bytes) -> None:
        """nats-py's publish() checks and buffering, for an HPUB framed here."""
        if self.is_closed:
            raise nats.errors.ConnectionClosedError
        if self.is_draining_pubs:
            raise nats.errors.ConnectionDrainingError
        size = len(block) + len(payload)
        if not self.is_connected and (self._max_pending_size <= 0
                                      or size + self._pending_data_size > self._max_pending_size):
            raise nats.errors.OutboundBufferLimitError
        if len(payload) > self._max_payload:
            raise nats.errors.MaxPayloadError
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += len(payload)
        await self._send_command(b"HPUB %b %b %d %d\r\n%b%b\r\n" % (subject, reply, len(block), size, block,
                                                                        payload))
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    async def _process_err(self, err_msg: str) -> None:
        if "permissions violation" in err_msg.lower() or not self.is_connected:
            await super()._process_err(err_msg)
            return
        err = nats.errors.Error(f"nats: {err_msg.strip(chr(39))}")
        log.error("the NATS server answered %s; reconnecting", err_msg)
        self._err = err
        await self._process_op_err(err)

__all__ = ["EventingService", "StreamConfigError", "run_eventing"]


@dataclass
class EventingService:
    nats_url: str
    config: EventingConfig = field(default_factory=EventingConfig)
    connect_options: dict[str, Any] = field(default_factory=dict)
    run_publisher: bool = True
    run_dispatcher: bool = True
    resync_interval: float = 30.0
    connect_retry: float = 0.0  # seconds to keep retrying the first connect
    resolver: Any = None        # aiohttp resolver under the egress guard (tests map names)
    nc: Any = None
    manager: EventingManager | None = None
    dispatcher: Dispatcher | None = None
    publisher: EventPublisher | None = None
    store: SubscriptionStore | None = None
    metrics: EventingMetrics = field(default_factory=EventingMetrics)
    port: int | None = None
    _runner: web.AppRunner | None = None

    async def _connect(self) -> Any:
        # nats-py keeps retrying refused servers inside connect() when reconnects are
        # unlimited (Kyma's RetryOnFailedConnect); `connect_retry` bounds that wait.
        options: dict[str, Any] = {
            "servers": self.nats_url.split(","), "name": "pyjetstream-eventing", "max_reconnect_attempts": -1,
            "reconnect_time_wait": RECONNECT_FIRST, "allow_reconnect": True, "reconnected_cb": self._reconnected,
            "disconnected_cb": self._disconnected, "error_cb": self._error}
        if _HAS_RECONNECT_HANDLER:
            options["reconnect_to_server_handler"] = reconnect_backoff
        options.update(self.connect_options)
        nc = _Client()
        connecting = nc.connect(**options)
        if self.connect_retry == float("inf"):
            await connecting
            return nc
        try:
            await asyncio.wait_for(connecting, max(self.connect_retry, 2.0))
        except TimeoutError:
            raise nats.errors.NoServersError() from None
        return nc

    async def start(self) -> None:
        self.nc = await self._connect()
        try:
            await self._start_parts()
        except Exception:
            # A half-started service (say, the proxy port is taken) must not leave its NATS
            # connection, consumers' subscriptions and HTTP session open behind the error.
            await self.stop()
            raise

    async def _start_parts(self) -> None:
        self.store = await SubscriptionStore.open(self.nc, self.config.kv_bucket,
                                                  replicas=self.config.stream.replicas)
        self.dispatcher = Dispatcher(self.nc, self.config, self.metrics, resolver=self.resolver)
        await self.dispatcher.start()
        self.manager = EventingManager(self.nc, self.config, self.dispatcher, self.store, self.metrics,
                                       self.resync_interval)
        if self.run_dispatcher:
            await self.manager.start()
        else:
            await self.manager.ensure_streams()
        if self.run_publisher:
            self.publisher = EventPublisher(self.nc, self.config, self.metrics)
            # Without the manager nothing keeps Subscriptions in memory: `/subscribed` reads the store.
            listing: SubscriptionsProvider = (self.manager.subscriptions if self.run_dispatcher
                                              else StoreListing(self.store))
            app = create_app(self.publisher, listing, self.metrics)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.publish_host, self.config.publish_port)
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else self.config.publish_port
            log.info("publisher proxy listening on http://%s:%s", self.config.publish_host, self.port)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        assert self.manager is not None
        await asyncio.wait_for(self.manager.synced.wait(), timeout)

    async def stop(self) -> None:
        # Every step is bounded: a stop that hangs (a NATS request that never returns, a
        # handler stuck on a dead server) must not keep the process or a test from ending.
        if self.nc is not None and not self.nc.is_connected and not self.nc.is_closed:
            # The server is gone: stop reconnecting first, so that nothing below waits for it.
            # Deliveries that cannot be acked now are redelivered by JetStream after ack_wait.
            await self._close_connection()
        if self._runner is not None:
            await _bounded("publisher proxy", self._runner.cleanup(), 10.0)
            self._runner = None
        if self.manager is not None:
            await _bounded("subscription manager", self.manager.stop(), 10.0)
        if self.dispatcher is not None:
            await _bounded("dispatcher", self.dispatcher.stop(), 30.0)
        await self._close_connection()

    async def _close_connection(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await _bounded("NATS connection", self.nc.close(), 5.0)
            except (OSError, nats.errors.Error) as exc:
                log.debug("closing the NATS connection: %s", exc)  # the server may be gone already

    async def _reconnected(self) -> None:
        log.info("reconnected to NATS")
        if self.manager is not None and self.run_dispatcher:
            self.manager.on_reconnect()

    async def _disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _error(self, exc: Exception) -> None:
        if self.nc is None:
            log.warning("cannot connect to %s yet: %s", self.nats_url, exc)
        else:
            log.debug("NATS client error: %s", exc)


async def _bounded(what: str, aw: Any, seconds: float) -> None:
    try:
        await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        log.warning("stopping the %s took longer than %.0fs; abandoned", what, seconds)


async def run_eventing(nats_url: str, config: EventingConfig | None = None,
                       stop: asyncio.Event | None = None, **connect_options: Any) -> EventingService:
    """Start proxy + manager + dispatcher; with `stop` given, run until it is set, then shut down."""
    service = EventingService(nats_url, config or EventingConfig(), connect_options=connect_options)
    await service.start()
    if stop is not None:
        try:
            await stop.wait()
        finally:
            await service.stop()
    return service
