"""Prometheus metrics of the publisher proxy and the dispatcher, named and labelled as Kyma's.

Owns the metric families (names, types, label names and buckets as Kyma's
eventing-publisher-proxy `pkg/metrics` and eventing-manager `pkg/backend/metrics` define
them; figures Kyma does not have live under our own `pyjetstream_eventing_` prefix), the
bound on their cardinality, and the registry the publisher's `/metrics` renders. One
registry per running eventing instance (tests start many in one process). Counting only: no
decision is taken here, and nothing here talks to NATS or HTTP.

Cardinality: label values come from requests (event types, sources, HTTP methods) and from
Subscriptions and sinks, so every family keeps at most `max_label_values` distinct values
per such label and `max_series` series; a value past either bound is folded into `other`
and `pyjetstream_eventing_metric_series_capped{metric}` turns 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Kyma's Go collectors expose no `*_created` series; Python's would add one per counter and
# histogram series, doubling the lines. The switch is process-wide; nothing here reads them.
disable_created_metrics()

OTHER = "other"
# Kyma labels subscription-status series with its backend's name.
BACKEND_TYPE = "NATS_Jetstream"
# promhttp (which counts Kyma's proxy requests) spells the methods it knows in lower case.
_METHODS = frozenset({"get", "put", "head", "post", "delete", "connect", "options", "notify", "trace", "patch"})
# Status codes are numbers; an answer outside 100..599 (or none at all) is not one.
_CODES = frozenset(str(c) for c in range(100, 600))
# How many raw label tuples each family remembers the folded child of; beyond that the fold
# is recomputed per call (cheap), so a flood of distinct values costs no memory here.
_CACHE_LIMIT = 4096

# Bounds for values that come with requests (event types, sources): anyone who may publish
# chooses them. A histogram series costs one line per bucket plus three.
DEFAULT_MAX_LABEL_VALUES = 100
DEFAULT_MAX_SERIES = 250
DEFAULT_MAX_HISTOGRAM_SERIES = 50
# Bounds for values that come from Subscriptions (names, consumers, sinks, subscribed types):
# only their writers choose them, and a deployment may well have hundreds.
DEFAULT_MAX_SUBSCRIPTION_SERIES = 1000

# Kyma's buckets.
EPP_REQUEST_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.050, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35,
                       0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.5, 2, 3, 5)
EPP_BACKEND_BUCKETS = tuple(2.0 * 2**i for i in range(10))          # 2 .. 1024 ms
EC_DISPATCH_BUCKETS = tuple(0.002 * 2**i for i in range(10))        # 2 ms .. 1.024 s


class BoundedFamily:
    """One labelled metric whose label values are folded into `other` past its bounds.

    `bounded` names the labels whose values come from outside (requests, Subscriptions,
    sinks); the others must be small fixed sets (status codes, reasons).
    """

    def __init__(self, metric: Any, labels: Sequence[str], bounded: Sequence[str], max_values: int,
                 max_series: int, capped: Gauge) -> None:
        self.metric = metric
        self.name: str = getattr(metric, "_name", "")
        self._bounded = [i for i, name in enumerate(labels) if name in bounded]
        self._seen: list[set[str]] = [set() for _ in self._bounded]
        self._max_values = max_values
        self._max_series = max_series
        self._series: dict[tuple[str, ...], Any] = {}
        self._cache: dict[tuple[str, ...], Any] = {}
        self._capped = capped

    def child(self, *values: str) -> Any:
        found = self._cache.get(values)
        if found is not None:
            return found
        found = self._fold(values)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[values] = found
        return found

    def _fold(self, values: tuple[str, ...]) -> Any:
        folded = list(values)
        for slot, i in enumerate(self._bounded):
            seen = self._seen[slot]
            if folded[i] not in seen:
                if len(seen) < self._max_values:
                    seen.add(folded[i])
                else:
                    folded[i] = OTHER
                    self._mark_capped()
        key = tuple(folded)
        found = self._series.get(key)
        if found is not None:
            return found
        if len(self._series) >= self._max_series:
            # Every bounded label folded: what is left are the small fixed sets.
            for i in self._bounded:
                folded[i] = OTHER
            key = tuple(folded)
            self._mark_capped()
            found = self._series.get(key)
            if found is not None:
                return found
        found = self._series[key] = self.metric.labels(*key)
        return found

    def collect(self) -> Any:
        return self.metric.collect()

    def remove(self, *values: str) -> None:
        """Drop a series (a Subscription that is gone); its values stay counted as seen."""
        if values in self._series:
            del self._series[values]
            self._cache.clear()
            self.metric.remove(*values)

    def _mark_capped(self) -> None:
        self._capped.labels(self.name).set(1)


class EventingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
                 max_series: int = DEFAULT_MAX_SERIES,
                 max_histogram_series: int = DEFAULT_MAX_HISTOGRAM_SERIES,
                 max_subscription_series: int = DEFAULT_MAX_SUBSCRIPTION_SERIES) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.capped = Gauge("pyjetstream_eventing_metric_series_capped",
                            "1 when a metric reached its bound on label values or series and folds new values "
                            "into 'other'", ["metric"], registry=r)

        def family(metric: Any, labels: Sequence[str], bounded: Sequence[str], histogram: bool = False
                   ) -> BoundedFamily:
            return BoundedFamily(metric, labels, bounded, max_label_values,
                                 max_histogram_series if histogram else max_series, self.capped)

        def sub_family(metric: Any, labels: Sequence[str], bounded: Sequence[str], histogram: bool = False
                       ) -> BoundedFamily:
            limit = max_subscription_series // 2 if histogram else max_subscription_series
            return BoundedFamily(metric, labels, bounded, max_subscription_series, limit, self.capped)

        # -- publisher proxy (eventing-publisher-proxy pkg/metrics/collector.go) -------------
        req = ("code", "method", "path")
        self.requests = family(Counter("eventing_epp_requests", "The total number of requests", req, registry=r),
                               req, ())
        self.request_duration = family(Histogram(
            "eventing_epp_requests_duration_seconds",
            "The duration of processing an incoming request (includes sending to the backend)", req, registry=r,
            buckets=EPP_REQUEST_BUCKETS), req, (), histogram=True)
        backend = ("code", "destination_service")
        self.backend_duration = family(Histogram(
            "eventing_epp_backend_duration_milliseconds",
            "The duration of sending events to the messaging server in milliseconds", backend, registry=r,
            buckets=EPP_BACKEND_BUCKETS), backend, ("destination_service",), histogram=True)
        published = ("event_type", "event_source", "code")
        self.published = family(Counter(
            "eventing_epp_event_type_published", "The total number of events published for a given eventTypeLabel",
            published, registry=r), published, ("event_type", "event_source"))
        # Registered when the proxy starts, so a dispatcher-only process shows no proxy health.
        self.epp_health = Gauge("eventing_epp_health",
                                "The current health of the system. `1` indicates a healthy system", registry=None)
        self.health = self.epp_health

        # -- dispatcher and manager (eventing-manager pkg/backend/metrics/collector.go) -------
        sub = ("subscription_name", "subscription_namespace")
        delivery = (*sub, "event_type", "sink", "response_code", "consumer_name")
        delivery_bounded = (*sub, "event_type", "sink", "consumer_name")
        self.deliveries = sub_family(Counter(
            "eventing_ec_nats_delivery_per_subscription", "The total number of dispatched events per subscription",
            delivery, registry=r), delivery, delivery_bounded)
        self.dispatch_duration = sub_family(Histogram(
            "eventing_ec_nats_subscriber_dispatch_duration_seconds",
            "The duration of sending an incoming NATS message to the subscriber (not including processing the "
            "message in the dispatcher)", delivery, registry=r, buckets=EC_DISPATCH_BUCKETS),
            delivery, delivery_bounded, histogram=True)
        subscribed = (*sub, "event_type", "consumer_name")
        self.subscribed = sub_family(Counter(
            "eventing_ec_event_type_subscribed", "The total number of eventTypes subscribed using the Subscription CRD",
            subscribed, registry=r), subscribed, subscribed)
        status = (*sub, "consumer_name", "eventing_backend", "stream_name")
        self.subscription_status = sub_family(Gauge(
            "eventing_ec_subscription_status",
            "The status of a subscription. `1` indicates the subscription is marked as ready", status, registry=r),
            status, (*sub, "consumer_name"))
        self.ec_health = Gauge("eventing_ec_health", "The current health of the system. `1` indicates a healthy system",
                               registry=None)

        # -- ours -------------------------------------------------------------------------------
        dead = (*sub, "consumer_name", "reason")
        self.dead_lettered = sub_family(Counter(
            "pyjetstream_eventing_dead_lettered", "Events moved to the dead-letter stream", dead, registry=r),
            dead, (*sub, "consumer_name"))
        errors = (*sub, "consumer_name", "reason")
        self.delivery_errors = sub_family(Counter(
            "pyjetstream_eventing_delivery_errors",
            "Deliveries that got no HTTP answer (counted as 500 in eventing_ec_*), by reason: timeout, connection, "
            "refused (egress policy), unsendable", errors, registry=r), errors, (*sub, "consumer_name"))
        self._started: set[str] = set()

    # -- health: 1 from the start of each part, as Kyma sets it ----------------------------------
    def publisher_started(self) -> None:
        self._start("epp", self.epp_health)

    def dispatcher_started(self) -> None:
        self._start("ec", self.ec_health)

    def _start(self, part: str, gauge: Gauge) -> None:
        if part not in self._started:
            self._started.add(part)
            self.registry.register(gauge)
        gauge.set(1)

    # -- publisher proxy -------------------------------------------------------------------------
    def record_request(self, method: str, code: int, path: str, seconds: float) -> None:
        labels = (status_code(code), request_method(method), path)
        self.requests.child(*labels).inc()
        self.request_duration.child(*labels).observe(seconds)

    def record_backend(self, code: int, destination: str, milliseconds: float) -> None:
        self.backend_duration.child(status_code(code), destination).observe(milliseconds)

    def record_published(self, event_type: str, source: str, code: int = 204) -> None:
        self.published.child(event_type, source, status_code(code)).inc()

    # -- dispatcher ----------------------------------------------------------------------------
    def record_delivery(self, subscription: str, event_type: str, sink: str, code: int, consumer: str,
                        seconds: float) -> None:
        namespace, name = split_key(subscription)
        labels = (name, namespace, event_type, sink, status_code(code), consumer)
        self.deliveries.child(*labels).inc()
        self.dispatch_duration.child(*labels).observe(seconds)

    def record_delivery_error(self, subscription: str, consumer: str, reason: str) -> None:
        namespace, name = split_key(subscription)
        self.delivery_errors.child(name, namespace, consumer, reason).inc()

    def record_dead_letter(self, subscription: str, consumer: str, reason: str) -> None:
        namespace, name = split_key(subscription)
        self.dead_lettered.child(name, namespace, consumer, reason).inc()

    def record_subscribed(self, subscription: str, event_type: str, consumer: str) -> None:
        namespace, name = split_key(subscription)
        self.subscribed.child(name, namespace, event_type, consumer).inc()

    # -- manager -------------------------------------------------------------------------------
    def record_subscription_status(self, name: str, namespace: str, consumers: Sequence[str], stream: str,
                                   ready: bool) -> None:
        for consumer in consumers:
            self.subscription_status.child(name, namespace, consumer, BACKEND_TYPE, stream).set(1 if ready else 0)

    def remove_subscription_status(self, name: str, namespace: str, consumers: Sequence[str], stream: str) -> None:
        for consumer in consumers:
            self.subscription_status.remove(name, namespace, consumer, BACKEND_TYPE, stream)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def split_key(subscription: str) -> tuple[str, str]:
    """`<namespace>/<name>` -> (namespace, name)."""
    namespace, _, name = subscription.partition("/")
    return (namespace, name) if name else ("", namespace)


def status_code(code: int | str) -> str:
    text = str(code)
    return text if text in _CODES else OTHER


def request_method(method: str) -> str:
    lowered = method.lower()
    return lowered if lowered in _METHODS else OTHER
