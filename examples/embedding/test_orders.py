"""Testing a nats-py consumer against an in-process server: the `jetstream_server` fixture comes
from pyjetstream's pytest plugin; no nats-server binary is needed (`--nats-server=PATH` runs the
same test against one)."""

from __future__ import annotations

import json

import nats
import pytest
from orders import ensure_stream, total_of_new_orders


@pytest.mark.asyncio
async def test_billing_totals_orders(jetstream_server):
    nc = await nats.connect(jetstream_server.client_url)
    js = nc.jetstream()
    await ensure_stream(js)
    for amount in (10.0, 2.5, 7.25):
        ack = await js.publish("orders.created", json.dumps({"amount": amount}).encode())
        assert ack.stream == "ORDERS"
    await nc.close()

    assert await total_of_new_orders(jetstream_server.client_url, expected=3) == 19.75

    # every order was acknowledged: nothing left for the durable consumer
    nc = await nats.connect(jetstream_server.client_url)
    info = await nc.jetstream().consumer_info("ORDERS", "billing")
    assert info.num_pending == 0 and info.num_ack_pending == 0
    await nc.close()
