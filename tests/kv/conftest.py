"""Fixtures for KV and object-store tests: our server in-process on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from servers import start_in_process

from pyjetstream.server.server import Server


@pytest.fixture
async def ours(tmp_path) -> AsyncIterator[Server]:
    srv: Server = await start_in_process(tmp_path / "js")
    yield srv
    await srv.shutdown()


@pytest.fixture
async def nc(ours: Server) -> AsyncIterator[nats.NATS]:
    c = await nats.connect(f"nats://127.0.0.1:{ours.port}")
    yield c
    await c.close()
