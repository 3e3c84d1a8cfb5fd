"""Fixtures for KV and object-store tests: our server in-process on a free loopback port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import nats
import pytest

from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server


@pytest.fixture
async def ours(tmp_path) -> AsyncIterator[Server]:
    srv = Server(ServerOptions(host="127.0.0.1", port=0,
                               jetstream=JetStreamOptions(enabled=True, store_dir=str(tmp_path / "js"))))
    await srv.start()
    yield srv
    await srv.shutdown()


@pytest.fixture
async def nc(ours: Server) -> AsyncIterator[nats.NATS]:
    c = await nats.connect(f"nats://127.0.0.1:{ours.port}")
    yield c
    await c.close()


async def eventually(pred, timeout: float = 5.0, interval: float = 0.02):
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
