"""Prometheus exposition for /metrics: server, stream, consumer and eventing figures.

Owns the collectors that read live state on every scrape (server totals, each stream's
state, each consumer's info) and the hooks other components in the same process use to add
their own collectors (`add_collector` per server, `EXTRA_COLLECTORS` process-wide). It keeps
no counters of its own and never changes the state it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from pyjetstream.monitoring.view import MonitoredServer

log = logging.getLogger("pyjetstream.monitoring")

# Collectors (objects with collect(), such as a CollectorRegistry) added to every /metrics in
# this process. Prefer `add_collector(server, ...)`, which scopes one to one server.
EXTRA_COLLECTORS: list[Any] = []

STREAM_LABELS = ["account", "stream"]
CONSUMER_LABELS = ["account", "stream", "consumer"]


class ServerCollector:
    """Core server figures, read from the server's own counters."""

    def __init__(self, server: MonitoredServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        s = self.server
        t = s.totals()
        yield GaugeMetricFamily("nats_connections", "Open client connections", value=len(s.clients))
        yield CounterMetricFamily("nats_total_connections", "Connections accepted", value=s.total_connections)
        yield GaugeMetricFamily("nats_subscriptions", "Subscriptions",
                                value=sum(a.sublist.count for a in s.accounts.values()))
        yield CounterMetricFamily("nats_in_msgs", "Messages received since start", value=t["in_msgs"])
        yield CounterMetricFamily("nats_out_msgs", "Messages sent since start", value=t["out_msgs"])
        yield CounterMetricFamily("nats_in_bytes", "Bytes received since start", value=t["in_bytes"])
        yield CounterMetricFamily("nats_out_bytes", "Bytes sent since start", value=t["out_bytes"])
        yield CounterMetricFamily("nats_slow_consumers", "Slow consumers disconnected", value=s.slow_consumers)


class JetStreamCollector:
    """Per-stream and per-consumer gauges, labelled by account/stream/consumer, from the
    same `Stream.info()` and consumer `info()` the JetStream API answers with."""

    def __init__(self, server: MonitoredServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        js = self.server.jetstream
        if js is None:
            return
        g = GaugeMetricFamily
        api_total = CounterMetricFamily("pyjetstream_jetstream_api_requests", "JetStream API requests",
                                        value=js.api_total)
        api_errors = CounterMetricFamily("pyjetstream_jetstream_api_errors", "JetStream API requests answered "
                                         "with an error", value=js.api_errors)
        stream_fams = {
            "messages": g("pyjetstream_stream_messages", "Messages stored in the stream", labels=STREAM_LABELS),
            "bytes": g("pyjetstream_stream_bytes", "Bytes stored in the stream", labels=STREAM_LABELS),
            "first_seq": g("pyjetstream_stream_first_seq", "First sequence in the stream", labels=STREAM_LABELS),
            "last_seq": g("pyjetstream_stream_last_seq", "Last sequence in the stream", labels=STREAM_LABELS),
            "consumer_count": g("pyjetstream_stream_consumers", "Consumers of the stream", labels=STREAM_LABELS),
        }
        consumer_fams = {
            "num_pending": g("pyjetstream_consumer_num_pending", "Stream messages not yet delivered",
                             labels=CONSUMER_LABELS),
            "num_ack_pending": g("pyjetstream_consumer_num_ack_pending", "Delivered messages awaiting an ack",
                                 labels=CONSUMER_LABELS),
            "num_redelivered": g("pyjetstream_consumer_num_redelivered", "Messages delivered more than once",
                                 labels=CONSUMER_LABELS),
            "num_waiting": g("pyjetstream_consumer_num_waiting", "Pull requests waiting", labels=CONSUMER_LABELS),
            "delivered": g("pyjetstream_consumer_delivered_stream_seq", "Stream sequence last delivered",
                           labels=CONSUMER_LABELS),
            "ack_floor": g("pyjetstream_consumer_ack_floor_stream_seq", "Stream sequence of the ack floor",
                           labels=CONSUMER_LABELS),
        }
        usage = {
            "memory": g("pyjetstream_jetstream_memory_bytes", "Bytes stored in memory streams", labels=["account"]),
            "storage": g("pyjetstream_jetstream_storage_bytes", "Bytes stored in file streams", labels=["account"]),
        }
        for acct_name, jsa in sorted(js.accounts.items()):
            mem, store = jsa.usage()
            usage["memory"].add_metric([acct_name], mem)
            usage["storage"].add_metric([acct_name], store)
            for stream_name, stream in sorted(jsa.streams.items()):
                state = stream.info()["state"]
                for key, fam in stream_fams.items():
                    fam.add_metric([acct_name, stream_name], state.get(key, 0))
                for consumer_name, consumer in sorted(stream.consumers.items()):
                    info = consumer.info()
                    labels = [acct_name, stream_name, consumer_name]
                    for key in ("num_pending", "num_ack_pending", "num_redelivered", "num_waiting"):
                        consumer_fams[key].add_metric(labels, info.get(key, 0))
                    for key in ("delivered", "ack_floor"):
                        consumer_fams[key].add_metric(labels, info.get(key, {}).get("stream_seq", 0))
        yield api_total
        yield api_errors
        yield from usage.values()
        yield from stream_fams.values()
        yield from consumer_fams.values()


class _Guarded:
    """One added collector; its failure costs its own figures, not the whole scrape."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Any]:
        try:
            return list(self.inner.collect())
        except Exception:  # noqa: BLE001 - scrape boundary: a foreign collector must not break /metrics
            log.exception("metrics collector %r failed", self.inner)
            return []


def add_collector(server: MonitoredServer, collector: Any) -> None:
    """Expose `collector` (anything with collect(), e.g. a CollectorRegistry) on this server's
    monitoring /metrics, read at every scrape. No-op if the server runs no monitoring port."""
    monitor = server.monitor
    if monitor is not None:
        monitor.collectors.append(collector)


def remove_collector(server: MonitoredServer, collector: Any) -> None:
    monitor = server.monitor
    if monitor is not None and collector in monitor.collectors:
        monitor.collectors.remove(collector)


def render_metrics(server: MonitoredServer, extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    registry.register(JetStreamCollector(server))
    for c in [*EXTRA_COLLECTORS, *extra]:
        registry.register(_Guarded(c))
    return generate_latest(registry), CONTENT_TYPE_LATEST
