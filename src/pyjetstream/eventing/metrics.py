"""Prometheus metrics of the publisher proxy and the dispatcher, with Kyma's metric names.

One registry per running eventing instance (tests start many in one process), rendered
by the publisher's `/metrics` route. Counting only; no decisions are taken here.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class EventingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("eventing_epp_requests", "HTTP requests to the publisher proxy",
                                ["method", "code", "path"], registry=r)
        self.request_duration = Histogram("eventing_epp_requests_duration_seconds",
                                          "Publisher proxy request duration", ["method", "code", "path"],
                                          registry=r)
        self.backend_duration = Histogram(
            "eventing_epp_backend_duration_milliseconds", "Time to publish to JetStream and get the PubAck",
            ["code", "destination_service"], registry=r,
            buckets=(0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000))
        self.published = Counter("eventing_epp_event_type_published", "Events published by type",
                                 ["event_type", "event_source", "code"], registry=r)
        self.health = Gauge("eventing_epp_health", "1 when the proxy is connected to NATS", registry=r)
        self.deliveries = Counter("eventing_ec_nats_delivery_per_subscription", "Deliveries to sinks",
                                  ["subscription_name", "event_type", "sink", "response_code",
                                   "consumer_name"], registry=r)
        self.dispatch_duration = Histogram("eventing_ec_nats_subscriber_dispatch_duration_seconds",
                                           "Duration of one HTTP delivery to a sink",
                                           ["subscription_name", "event_type", "sink", "response_code"],
                                           registry=r)
        self.dead_lettered = Counter("eventing_ec_dead_lettered", "Events moved to the dead-letter stream",
                                     ["subscription_name", "consumer_name", "reason"], registry=r)
        self.subscription_status = Gauge("eventing_ec_subscription_status", "1 when the Subscription is ready",
                                         ["subscription_name", "namespace"], registry=r)

        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, memoized: the hot path asks for the same few children."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
