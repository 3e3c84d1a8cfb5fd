"""Fixtures for the eventing tests: a real NATS server process, a real HTTP sink, the service.

The server is a parameter: the reference nats-server and the project's own server
(`pyjetstream server`), both started by tests/servers.py; set EVENTING_SERVERS to
`nats-server` or `pyjetstream` to pick one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from servers import ServerProc, have_nats_server, start_server

from pyjetstream.eventing.config import EventingConfig, StreamSettings
from pyjetstream.eventing.retry import RetryPolicy
from pyjetstream.eventing.service import EventingService
from pyjetstream.eventing.testing import FlakySink

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def server_params() -> list:
    wanted = os.environ.get("EVENTING_SERVERS", "nats-server,pyjetstream").split(",")
    params = []
    if "nats-server" in wanted:
        params.append(pytest.param("nats-server", id="nats-server", marks=pytest.mark.skipif(
            not have_nats_server(), reason="nats-server binary not installed")))
    if "pyjetstream" in wanted:
        params.append(pytest.param("pyjetstream", id="pyjetstream"))
    return params


@pytest.fixture(params=server_params())
def server_kind(request) -> str:
    """"nats-server" or "pyjetstream" (a kind of tests/servers.py)."""
    return request.param


def start_nats(kind: str, tmp_path: Path, *extra: str) -> ServerProc:
    """A server of `kind` with JetStream storing under tmp_path/store, plus `extra` flags."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    return start_server(kind, tmp_path, "-js", "-sd", str(store), *extra)


@pytest.fixture
def nats_server(server_kind, tmp_path):
    with start_nats(server_kind, tmp_path) as proc:
        yield proc


@pytest.fixture
async def sink():
    s = await FlakySink().start()
    yield s
    await s.stop()


def fast_config(**overrides) -> EventingConfig:
    """Short retry delays so failure tests finish quickly; everything else is Kyma's default."""
    base = EventingConfig(publish_port=0, retry=RetryPolicy(initial_delay=0.1, max_delay=0.5, delivery_timeout=2.0))
    stream = overrides.pop("stream", None)
    cfg = base.with_overrides(**overrides)
    if stream:
        cfg = cfg.with_overrides(stream=StreamSettings(**stream))
    return cfg


@pytest.fixture
async def make_service(nats_server):
    started: list[EventingService] = []

    async def factory(config: EventingConfig | None = None, url: str | None = None, **kw) -> EventingService:
        svc = EventingService(url or nats_server.url, config or fast_config(), resync_interval=kw.pop("resync", 2.0),
                              **kw)
        await svc.start()
        started.append(svc)
        if svc.run_dispatcher:
            await svc.wait_synced()
        return svc

    yield factory
    for svc in started:
        await svc.stop()
