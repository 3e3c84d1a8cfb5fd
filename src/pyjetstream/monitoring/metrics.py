"""Prometheus exposition for /metrics: server, stream, consumer and eventing figures.

Owns a per-request collector that reads live state (no counters duplicated here) and a
registry hook other components (eventing) use to add their own metrics. Reads only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from pyjetstream.server.server import Server

# Extra collectors (objects with collect()) registered by other components in this process.
EXTRA_COLLECTORS: list[Any] = []


class ServerCollector:
    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        s = self.server
        t = s.totals()
        yield GaugeMetricFamily("nats_connections", "Open client connections", value=len(s.clients))
        yield CounterMetricFamily("nats_total_connections", "Connections accepted", value=s.total_connections)
        yield GaugeMetricFamily("nats_subscriptions", "Subscriptions",
                                value=sum(a.sublist.count for a in s.accounts.values()))
        yield CounterMetricFamily("nats_in_msgs", "Messages received from open connections", value=t["in_msgs"])
        yield CounterMetricFamily("nats_out_msgs", "Messages sent to open connections", value=t["out_msgs"])
        yield CounterMetricFamily("nats_in_bytes", "Bytes received from open connections", value=t["in_bytes"])
        yield CounterMetricFamily("nats_out_bytes", "Bytes sent to open connections", value=t["out_bytes"])
        yield CounterMetricFamily("nats_slow_consumers", "Slow consumers disconnected", value=s.slow_consumers)
        js = s.jetstream
        if js is not None and hasattr(js, "metrics"):
            yield from js.metrics()


def render_metrics(server: Server) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    for c in EXTRA_COLLECTORS:
        registry.register(c)
    return generate_latest(registry), CONTENT_TYPE_LATEST
