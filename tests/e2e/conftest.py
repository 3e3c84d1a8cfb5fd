"""Fixtures for the end-to-end eventing tests (same as tests/eventing): a real NATS server process, a real HTTP sink, the service.

The server command is a parameter: real nats-server always, and the project's own server
(`pyjetstream server`) once `pyjetstream.server.server` exists; set EVENTING_SERVERS to
`nats-server` or `pyjetstream` to pick one.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pytest

from pyjetstream.eventing.config import EventingConfig, StreamSettings
from pyjetstream.eventing.retry import RetryPolicy
from pyjetstream.eventing.service import EventingService
from pyjetstream.eventing.testing import NATS_SERVER, NATS_SERVER_CMD, FlakySink, ServerProcess

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
PYJETSTREAM_CMD = (str(VENV_BIN / "pyjetstream"), "server", "-a", "127.0.0.1", "-p", "{PORT}", "-js",
                   "-sd", "{STORE}")


def _own_server_missing() -> str | None:
    try:
        importlib.import_module("pyjetstream.server.server")
    except ImportError as exc:
        return f"pyjetstream.server.server is not importable yet ({exc})"
    return None


def server_params() -> list:
    wanted = os.environ.get("EVENTING_SERVERS", "nats-server,pyjetstream").split(",")
    params = []
    if "nats-server" in wanted:
        params.append(pytest.param(NATS_SERVER_CMD, id="nats-server", marks=pytest.mark.skipif(
            shutil.which(NATS_SERVER) is None, reason="nats-server binary not installed")))
    if "pyjetstream" in wanted:
        reason = _own_server_missing()
        params.append(pytest.param(PYJETSTREAM_CMD, id="pyjetstream",
                                   marks=pytest.mark.skipif(reason is not None, reason=reason or "")))
    return params


@pytest.fixture(params=server_params())
def server_cmd(request):
    return request.param


@pytest.fixture
def nats_server(server_cmd, tmp_path):
    proc = ServerProcess(server_cmd, str(tmp_path / "store"))
    os.makedirs(proc.store, exist_ok=True)
    proc.start()
    yield proc
    proc.stop()


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
