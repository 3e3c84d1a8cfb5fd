"""pytest plugin (entry point `pytest11`): NATS + JetStream servers and the eventing as fixtures.

Fixtures: `nats_server` (per test, fresh throwaway store), `nats_server_session` (one per
session), `jetstream_server` (file store under `tmp_path`), `recording_sink` (an HTTP sink that
can be told to fail, hang or vanish) and `eventing` (publisher proxy + dispatcher on a
`nats_server`). Every fixture is synchronous and runs its server on a background thread, so
sync tests and any async framework can use them alike. `--nats-server=PATH` runs the same
tests against a nats-server binary instead of the embedded server.

Must stay cheap to import: pytest loads it in every session of every project that has
pyjetstream installed, so the server modules are imported only when a fixture is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ExternalServer"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pyjetstream")
    group.addoption("--nats-server", action="store", default=None, metavar="PATH",
                    help="run pyjetstream's fixtures against this nats-server binary ('auto': the one "
                         "on PATH) instead of the embedded server")


class ExternalServer:
    """A nats-server binary with JetStream, shaped like the embedded server's handle."""

    def __init__(self, binary: str, store: str | None = None) -> None:
        from pyjetstream.eventing.testing import ServerProcess

        self._own_store = store is None
        self.store_dir = store or tempfile.mkdtemp(prefix="pyjetstream-nats-server-")
        os.makedirs(self.store_dir, exist_ok=True)
        cmd = (binary, "-a", "127.0.0.1", "-p", "{PORT}", "-js", "-sd", "{STORE}")
        self._proc = ServerProcess(cmd, self.store_dir)

    @property
    def port(self) -> int:
        return self._proc.port

    @property
    def url(self) -> str:
        return self._proc.url

    client_url = url

    def start(self) -> ExternalServer:
        self._proc.start()
        return self

    def stop(self) -> None:
        try:
            self._proc.stop()
        finally:
            if self._own_store:
                shutil.rmtree(self.store_dir, ignore_errors=True)


_BINARY = pytest.StashKey[str | None]()


def pytest_configure(config: pytest.Config) -> None:
    # Checked once at start-up: a wrong path is the user's mistake, not a failure of each test.
    value = config.getoption("--nats-server", None)
    path = None
    if value:
        path = shutil.which("nats-server") if value == "auto" else value
        if not path or not os.access(path, os.X_OK):
            raise pytest.UsageError(f"--nats-server: no executable nats-server at {value!r}")
    config.stash[_BINARY] = path


def _binary(config: pytest.Config) -> str | None:
    return config.stash.get(_BINARY, None)


def _start(config: pytest.Config, store: str | None) -> Any:
    binary = _binary(config)
    if binary:
        return ExternalServer(binary, store).start()
    from pyjetstream.embed import ServerThread

    return ServerThread(jetstream=True, store=store or "memory").start()


@pytest.fixture
def nats_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A NATS server with JetStream for one test (`.url`, `.client_url`, `.port`), fresh and
    empty; in memory unless `--nats-server` names a binary."""
    srv = _start(request.config, None)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def nats_server_session(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One server for the whole session: faster, but tests share its streams."""
    srv = _start(request.config, None)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def jetstream_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A server with JetStream on a file store in `tmp_path / "jetstream"` (`.store_dir`)."""
    srv = _start(request.config, str(tmp_path / "jetstream"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def recording_sink() -> Iterator[Any]:
    """An HTTP sink (`.url`) that records accepted events (`.events`, `.wait_for(n)`) and can be
    told to `.fail(status)`, `.hang()`, `.vanish()` and `.recover()`."""
    from pyjetstream.eventing.testing import RecordingSink

    sink = RecordingSink().start()
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def eventing(nats_server: Any) -> Iterator[Any]:
    """Publisher proxy + Subscription manager + dispatcher on `nats_server`: `.url` is the proxy,
    `.apply(manifest)` stores Subscriptions, `.wait_ready(name)` waits for Ready."""
    from pyjetstream.eventing.embed import EventingThread

    ev = EventingThread(nats_server.client_url).start()
    try:
        yield ev
    finally:
        ev.stop()
