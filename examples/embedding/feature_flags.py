"""A user's KV-backed service: feature flags kept in a JetStream key-value bucket.

Plain nats-py: the service reads a flag, falls back to a default, and watches for changes.
"""

from __future__ import annotations

import asyncio

import nats
from nats.js.errors import KeyNotFoundError


class FeatureFlags:
    def __init__(self, kv: object) -> None:
        self.kv = kv
        self.cache: dict[str, bool] = {}

    @classmethod
    async def open(cls, nc: nats.NATS, bucket: str = "flags") -> FeatureFlags:
        js = nc.jetstream()
        kv = await js.create_key_value(bucket=bucket, history=5)
        return cls(kv)

    async def set(self, name: str, on: bool) -> int:
        return await self.kv.put(name, b"on" if on else b"off")

    async def enabled(self, name: str, default: bool = False) -> bool:
        try:
            entry = await self.kv.get(name)
        except KeyNotFoundError:
            return default
        return entry.value == b"on"

    async def follow(self, name: str, changes: asyncio.Queue[bool]) -> None:
        watcher = await self.kv.watch(name)
        async for entry in watcher:
            if entry is None:  # end of the initial values
                continue
            changes.put_nowait(entry.value == b"on")
