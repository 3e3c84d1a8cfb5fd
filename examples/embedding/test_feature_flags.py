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
    on = await flags.set("dark-mode", True)
    assert await flags.enabled("dark-mode") is True
    off = await flags.set("dark-mode", False)
    assert await flags.enabled("dark-mode") is False
    # The bucket keeps history: the earlier value stays readable by its revision. (Not
    # kv.history(): nats-py's can end before entries still in flight, nats-io/nats.py#842.)
    assert (await flags.kv.get("dark-mode", revision=on)).value == b"on"
    assert (await flags.kv.get("dark-mode")).revision == off > on
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
