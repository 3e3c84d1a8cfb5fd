"""A user's application code: a JetStream consumer that totals order amounts.

Nothing here knows about pyjetstream; it is plain nats-py, as it would run against nats-server.
"""

from __future__ import annotations

import json

import nats
from nats.js.api import ConsumerConfig


async def ensure_stream(js: nats.js.JetStreamContext) -> None:
    await js.add_stream(name="ORDERS", subjects=["orders.>"])


async def total_of_new_orders(url: str, expected: int, timeout: float = 5.0) -> float:
    """Pull `expected` orders with a durable consumer, ack each, and return their total."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        psub = await js.pull_subscribe("orders.created", durable="billing",
                                       config=ConsumerConfig(ack_wait=5))
        total, seen = 0.0, 0
        while seen < expected:
            for msg in await psub.fetch(expected - seen, timeout=timeout):
                total += json.loads(msg.data)["amount"]
                await msg.ack()
                seen += 1
        return total
    finally:
        await nc.close()
