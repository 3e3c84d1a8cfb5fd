"""Testing a KV-backed service against a fresh in-memory server per test (`nats_server`)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from feature_flags import FeatureFlags


@pytest.mark.asyncio
async def test_flags_default_set_and_history(nats_server):
    nc = await nats.connect(nats_server.client_url)
    flags = await FeatureFlags.open(nc)
    assert await flags.enabled("dark-mode") is False
    assert await flags.enabled("dark-mode", default=True) is True
    await flags.set("dark-mode", True)
    assert await flags.enabled("dark-mode") is True
    await flags.set("dark-mode", False)
    history = await flags.kv.history("dark-mode")
    assert [e.value for e in history] == [b"on", b"off"]
    await nc.close()


@pytest.mark.asyncio
async def test_watchers_see_changes(nats_server):
    nc = await nats.connect(nats_server.client_url)
    flags = await FeatureFlags.open(nc)
    changes: asyncio.Queue[bool] = asyncio.Queue()
    task = asyncio.create_task(flags.follow("beta", changes))
    await flags.set("beta", True)
    await flags.set("beta", False)
    assert await asyncio.wait_for(changes.get(), 5) is True
    assert await asyncio.wait_for(changes.get(), 5) is False
    task.cancel()
    await nc.close()
