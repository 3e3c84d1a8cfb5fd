"""The server as a library: `serve()` runs a NATS + JetStream server inside the calling process.

Owns turning library arguments into `ServerOptions` through the same path as the command line
and config file (`apply_config`, `finalize_options`; there is no second options model), a
throwaway store for `store="memory"`, and running a server on a background thread for code that
is not async. Must not configure logging (the application owns handlers) or keep any state
outside the objects it returns: several servers in one process are independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from pyjetstream.server.conf import ConfigError, load_config
from pyjetstream.server.options import (
    OptionsError,
    ServerOptions,
    apply_config,
    finalize_options,
)
from pyjetstream.server.server import Server

__all__ = ["EmbeddedServer", "OptionsError", "ServerThread", "serve", "serve_in_thread", "server_options"]

MEMORY = "memory"
_URL_DELIMITERS = frozenset(":/?#[]@% \t")


def _scratch_dir() -> str:
    # RAM-backed where the system offers it, so a "memory" store never waits on a disk.
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="pyjetstream-", dir=base)


def server_options(*, jetstream: bool | Mapping[str, Any] = False, store: str | os.PathLike[str] | None = None,
                   port: int = 0, host: str = "127.0.0.1",
                   config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                   **settings: Any) -> ServerOptions:
    """Options for one embedded server.

    `config` is a nats-server config file (path) or the same keys as a mapping; `settings` are
    further config-file keys (`max_payload="1MB"`, `authorization={...}`, `accounts={...}`,
    `http_port=0`...) and win over `config`. `jetstream` is the config file's `jetstream` value
    (True, or a block). `store`: a store directory, or "memory" (the default) for a throwaway
    one that `serve` removes on exit. `port=0` picks a free port.
    """
    merged: dict[str, Any] = {}
    if isinstance(config, Mapping):
        merged.update(config)
    elif config is not None:
        try:
            merged.update(load_config(config))
        except ConfigError as e:
            raise OptionsError(str(e)) from e
    merged.update(settings)
    if jetstream is not False or "jetstream" not in merged:
        merged["jetstream"] = dict(jetstream) if isinstance(jetstream, Mapping) else jetstream
    merged.setdefault("port", port)
    merged.setdefault("host", host)
    opts = ServerOptions()
    opts.auth_timeout = 0.0  # unset: finalize_options picks nats-server's default for TLS or not
    apply_config(opts, merged)
    if store is not None and os.fspath(store) != MEMORY:
        opts.jetstream.store_dir = os.fspath(store)
    return finalize_options(opts)


class EmbeddedServer:
    """A running in-process server: `url`, `client_url`, `port`; `close()` stops it."""

    def __init__(self, opts: ServerOptions, scratch: str | None = None) -> None:
        self.options = opts
        self.server = Server(opts)
        self._scratch = scratch

    @classmethod
    def from_args(cls, **kwargs: Any) -> EmbeddedServer:
        opts = server_options(**kwargs)
        scratch = None
        if opts.jetstream.enabled and not opts.jetstream.store_dir:
            scratch = opts.jetstream.store_dir = _scratch_dir()
        return cls(opts, scratch)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "tls" if self.options.tls else "nats"
        return f"{scheme}://{host}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """The single configured user or token as `nats.connect` keyword arguments
        (`nats.connect(srv.url, **srv.credentials)`); empty without (or with several) users."""
        o = self.options
        if o.username:
            return {"user": o.username, "password": o.password}
        if o.token:
            return {"token": o.token}
        return {}

    @property
    def client_url(self) -> str:
        """`url` with `credentials` in it, for `nats.connect(srv.client_url)`. nats-py takes the
        user info of a URL verbatim (it does not percent-decode), so credentials holding URL
        delimiters cannot travel in a URL: use `credentials` for those."""
        cred = ":".join(self.credentials.values())
        if not cred:
            return self.url
        if any(ch in cred.replace(":", "", 1 if len(self.credentials) == 2 else 0) for ch in _URL_DELIMITERS):
            raise ValueError("credentials with URL delimiters (:/?#[]@% or spaces) cannot be put in a URL; "
                             "use nats.connect(srv.url, **srv.credentials)")
        return self.url.replace("://", f"://{cred}@", 1)

    @property
    def monitor_url(self) -> str | None:
        mon = self.server.monitor
        if mon is None:
            return None
        return f"http://{self.options.http_host or self.host}:{mon.port}"

    @property
    def store_dir(self) -> str:
        return self.options.jetstream.store_dir

    async def start(self) -> EmbeddedServer:
        try:
            await self.server.start()
        except BaseException:
            self._remove_scratch()
            raise
        return self

    async def close(self) -> None:
        try:
            await self.server.shutdown()
            if self.server._server is not None:
                await self.server._server.wait_closed()
        finally:
            self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


@contextlib.asynccontextmanager
async def serve(**kwargs: Any) -> AsyncIterator[EmbeddedServer]:
    """`async with serve(jetstream=True) as srv:` runs a server on this event loop until the
    block ends. Arguments as `server_options`."""
    srv = await EmbeddedServer.from_args(**kwargs).start()
    try:
        yield srv
    finally:
        await srv.close()


class ServerThread:
    """An embedded server on its own event loop in a daemon thread, for code that is not async.

    `start()` returns once the server answers; `stop()` shuts it down and ends the thread.
    Attribute access (`url`, `client_url`, `port`, ...) is read-only and safe from any thread.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._embedded = EmbeddedServer.from_args(**kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._embedded, name)

    def start(self, timeout: float = 30.0) -> ServerThread:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="pyjetstream-server", daemon=True)
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
        try:
            await self._embedded.start()
        except BaseException as e:  # noqa: BLE001 - re-raised in the thread that called start()
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self._embedded.close()

    def run(self, coro: Any, timeout: float | None = 30.0) -> Any:
        """Run a coroutine on the server's loop (to reach `self.server` safely) and return its result."""
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is None or stop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_in_thread(**kwargs: Any) -> Iterator[ServerThread]:
    """`with serve_in_thread(jetstream=True) as srv:` — `serve` for synchronous code."""
    with ServerThread(**kwargs) as srv:
        yield srv
