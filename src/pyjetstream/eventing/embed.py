"""The eventing as a library: proxy + Subscription manager + dispatcher inside the calling process.

Owns a small front over `EventingService` for tests and apps: start on a free port, the proxy's
URL, applying Subscription manifests, waiting for a Subscription to be Ready, and a threaded
variant for synchronous code. Must not hold process-wide state or configure logging; the NATS
server it talks to may be embedded, a nats-server binary or a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from typing import Any

import yaml

from .config import EventingConfig
from .service import EventingService
from .subscriptions import Subscription, parse_manifests

__all__ = ["EmbeddedEventing", "EventingThread", "serve", "serve_in_thread"]


class EmbeddedEventing:
    """A running eventing layer: `url` is the publisher proxy (`POST {url}/publish`)."""

    def __init__(self, nats_url: str, config: EventingConfig | None = None, *, run_dispatcher: bool = True,
                 resolver: Any = None, connect_options: dict[str, Any] | None = None, **settings: Any) -> None:
        cfg = config or EventingConfig()
        # The library's default port is a free one, so parallel tests never collide.
        settings.setdefault("publish_port", 0 if config is None else cfg.publish_port)
        cfg = dataclasses.replace(cfg, **settings)
        self.service = EventingService(nats_url, cfg, connect_options=dict(connect_options or {}),
                                       run_dispatcher=run_dispatcher, resolver=resolver, resync_interval=1.0)

    @property
    def config(self) -> EventingConfig:
        return self.service.config

    @property
    def url(self) -> str:
        return f"http://{self.service.config.publish_host}:{self.service.port}"

    async def start(self) -> EmbeddedEventing:
        await self.service.start()
        return self

    async def close(self) -> None:
        await self.service.stop()

    async def apply(self, manifest: str | dict[str, Any], namespace: str = "default") -> list[Subscription]:
        """Store Subscriptions from a Kyma v1alpha2 manifest (YAML text, possibly several
        documents, or one parsed document), as `pyjetstream subscription apply` does."""
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        subs = parse_manifests(text, namespace)
        store = self.service.store
        assert store is not None, "not started"
        for sub in subs:
            await store.apply(sub, self.config.strict_sinks)
        return subs

    async def wait_ready(self, name: str, namespace: str = "default", timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the Subscription's status says Ready; return that status."""
        store = self.service.store
        assert store is not None, "not started"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        status: dict[str, Any] | None = None
        while True:
            status = await store.get_status(namespace, name)
            if status and status.get("ready") is True:
                return status
            if loop.time() > deadline:
                raise TimeoutError(f"Subscription {namespace}/{name} not Ready after {timeout}s: {status}")
            # The manager writes the status when it has created the consumer; a short poll
            # of the KV store costs less than a watch for the few calls a test makes.
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serve(nats_url: str, config: EventingConfig | None = None, **kwargs: Any) -> AsyncIterator[EmbeddedEventing]:
    """`async with pyjetstream.eventing.serve(nats_url=srv.url) as ev:` — `ev.url` is the proxy.

    Keyword arguments: `EventingConfig` fields (`publish_port`, `legacy_type_prefix`, ...),
    `run_dispatcher`, `resolver`, `connect_options` (for nats.connect: user, password, tls...).
    """
    ev = await EmbeddedEventing(nats_url, config, **kwargs).start()
    try:
        yield ev
    finally:
        await ev.close()


class EventingThread:
    """`EmbeddedEventing` on its own event loop in a daemon thread, for synchronous code."""

    def __init__(self, nats_url: str, config: EventingConfig | None = None, **kwargs: Any) -> None:
        self._args = (nats_url, config, kwargs)
        self.eventing: EmbeddedEventing | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        assert self.eventing is not None, "not started"
        return self.eventing.url

    def run(self, coro: Any, timeout: float | None = 30.0) -> Any:
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def apply(self, manifest: str | dict[str, Any], namespace: str = "default") -> list[Subscription]:
        assert self.eventing is not None, "not started"
        return list(self.run(self.eventing.apply(manifest, namespace)))

    def wait_ready(self, name: str, namespace: str = "default", timeout: float = 10.0) -> dict[str, Any]:
        assert self.eventing is not None, "not started"
        return dict(self.run(self.eventing.wait_ready(name, namespace, timeout), timeout + 5))

    def start(self, timeout: float = 30.0) -> EventingThread:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="pyjetstream-eventing", daemon=True)
        self._thread.start()
        ready.result(timeout)
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        nats_url, config, kwargs = self._args
        try:
            self.eventing = await EmbeddedEventing(nats_url, config, **kwargs).start()
        except BaseException as e:  # noqa: BLE001 - re-raised in the thread that called start()
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self.eventing.close()

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is None or stop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> EventingThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_in_thread(nats_url: str, config: EventingConfig | None = None, **kwargs: Any) -> Iterator[EventingThread]:
    with EventingThread(nats_url, config, **kwargs) as ev:
        yield ev
