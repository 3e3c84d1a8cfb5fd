"""The eventing layer on a 3-node nats-server JetStream cluster: R3 `sap`, one node killed mid-test.

Every event the proxy accepted before, during and after the node loss reaches the sink.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace

import nats.errors
import pytest

from pyjetstream.eventing.config import DeadLetterSettings
from pyjetstream.eventing.service import EventingService
from pyjetstream.eventing.testing import NATS_SERVER, Cluster, wait_until

from .conftest import fast_config
from .test_reliability import all_arrive, publish_many, subscribe

pytestmark = pytest.mark.skipif(shutil.which(NATS_SERVER) is None, reason="nats-server binary not installed")


@pytest.fixture
def cluster():
    c = Cluster(3).start()
    yield c
    c.stop()


async def start_when_cluster_ready(urls: str) -> EventingService:
    cfg = fast_config()
    cfg = replace(cfg, stream=replace(cfg.stream, replicas=3),
                  dead_letter=DeadLetterSettings(replicas=3))
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        svc = EventingService(urls, cfg, resync_interval=2.0)
        try:
            await svc.start()
            await svc.wait_synced()
            return svc
        except (nats.errors.Error, TimeoutError):
            # The JetStream meta leader is elected a few seconds after the nodes start.
            await svc.stop()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_r3_stream_survives_a_killed_node(cluster, sink):
    svc = await start_when_cluster_ready(cluster.urls)
    try:
        info = await svc.nc.jetstream().stream_info("sap")
        assert info.config.num_replicas == 3
        await subscribe(svc, sink)
        ids = [f"c-{i}" for i in range(600)]
        publishing = asyncio.create_task(publish_many(lambda: svc.port, ids, concurrency=4))
        await wait_until(lambda: len(sink.received) >= 50, timeout=20, what="deliveries before the kill")
        connected = svc.nc.connected_url.port
        victim = next(n for n in cluster.nodes if n.port == connected)
        victim.kill()  # the node this client talks to, to force a reconnect as well
        accepted = await publishing
        assert len(accepted) >= 50
        await all_arrive(sink, accepted, timeout=30)
    finally:
        await svc.stop()
