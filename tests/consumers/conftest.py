"""Fixtures for consumer tests: our server in-process on a free loopback port, and the
reference nats-server 2.9.10 as a subprocess for differential tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
import servers
from servers import have_nats_server, start_in_process

from pyjetstream.server.server import Server


async def start_server(store_dir: str, port: int = 0) -> Server:
    srv: Server = await start_in_process(store_dir, port)
    return srv


@pytest.fixture
async def ours(tmp_path) -> AsyncIterator[Server]:
    srv = await start_server(str(tmp_path / "js"))
    yield srv
    await srv.shutdown()


@pytest.fixture
async def nc(ours: Server) -> AsyncIterator[nats.NATS]:
    c = await nats.connect(f"nats://127.0.0.1:{ours.port}")
    yield c
    await c.close()


@pytest.fixture
def reference_server(tmp_path) -> Iterator[str]:
    """A nats-server 2.9.10 with JetStream on a loopback port; yields its URL."""
    if not have_nats_server():
        pytest.skip("reference nats-server not installed")
    with servers.start_server("nats-server", tmp_path, "-js", "-sd", str(tmp_path / "ref")) as proc:
        yield proc.url


async def eventually(pred, timeout: float = 5.0, interval: float = 0.02):
    """Poll an (async or plain) predicate until it returns truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
