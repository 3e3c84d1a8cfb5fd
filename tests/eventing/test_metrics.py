"""Eventing metrics: Kyma's names, types, labels and buckets (issue 11 item 9), and bounded
cardinality (item 8), checked on the rendered exposition and over real HTTP on both engines."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port

from pyjetstream.eventing import types as t
from pyjetstream.eventing.metrics import (
    EC_DISPATCH_BUCKETS,
    EPP_BACKEND_BUCKETS,
    EPP_REQUEST_BUCKETS,
    EventingMetrics,
)
from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import wait_until

HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp", "ce-id": "e1",
           "content-type": "application/json"}

# name -> (type, label names) exactly as Kyma's collectors declare them
KYMA = {
    "eventing_epp_requests": ("counter", {"code", "method", "path"}),
    "eventing_epp_requests_duration_seconds": ("histogram", {"code", "method", "path"}),
    "eventing_epp_backend_duration_milliseconds": ("histogram", {"code", "destination_service"}),
    "eventing_epp_event_type_published": ("counter", {"event_type", "event_source", "code"}),
    "eventing_epp_health": ("gauge", set()),
    "eventing_ec_nats_delivery_per_subscription": (
        "counter", {"subscription_name", "subscription_namespace", "event_type", "sink", "response_code",
                    "consumer_name"}),
    "eventing_ec_nats_subscriber_dispatch_duration_seconds": (
        "histogram", {"subscription_name", "subscription_namespace", "event_type", "sink", "response_code",
                      "consumer_name"}),
    "eventing_ec_event_type_subscribed": (
        "counter", {"subscription_name", "subscription_namespace", "event_type", "consumer_name"}),
    "eventing_ec_health": ("gauge", set()),
    "eventing_ec_subscription_status": (
        "gauge", {"subscription_name", "subscription_namespace", "consumer_name", "eventing_backend", "stream_name"}),
}


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> list[tuple[dict, float]]:
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def value(text: str, name: str, **labels: str) -> float:
    found = [v for got, v in samples(text, name) if all(got.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found} in\n{text}"
    return found[0]


def buckets(text: str, name: str) -> list[float]:
    bounds = sorted({float(lbl["le"]) for lbl, _ in samples(text, name + "_bucket")})
    return [b for b in bounds if b != float("inf")]


def recorded_everything() -> EventingMetrics:
    m = EventingMetrics()
    m.publisher_started()
    m.dispatcher_started()
    m.record_request("POST", 204, "/publish", 0.003)
    m.record_backend(204, "nats://127.0.0.1:4222", 1.5)
    m.record_published("order.created.v1", "myapp")
    m.record_delivery("default/orders", "order.created.v1", "http://sink", 200, "c1", 0.01)
    m.record_subscribed("default/orders", "order.created.v1", "c1")
    m.record_subscription_status("orders", "default", ["c1"], "sap", True)
    return m


def test_kyma_names_types_labels_and_buckets() -> None:
    text = recorded_everything().render()[0].decode()
    fams = families(text)
    for name, (kind, labels) in KYMA.items():
        assert name in fams, name
        assert fams[name].type == kind, name
        got = {k for s in fams[name].samples for k in s.labels if k not in ("le",)}
        assert got == labels, name
    assert buckets(text, "eventing_epp_requests_duration_seconds") == list(EPP_REQUEST_BUCKETS)
    assert buckets(text, "eventing_epp_backend_duration_milliseconds") == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert list(EPP_BACKEND_BUCKETS) == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert buckets(text, "eventing_ec_nats_subscriber_dispatch_duration_seconds") == \
        pytest.approx([0.002 * 2**i for i in range(10)]) == list(EC_DISPATCH_BUCKETS)
    # promhttp's spelling: lower-case method, numeric code
    assert value(text, "eventing_epp_requests_total", method="post", code="204", path="/publish") == 1
    assert value(text, "eventing_ec_subscription_status", eventing_backend="NATS_Jetstream", stream_name="sap",
                 subscription_name="orders", subscription_namespace="default", consumer_name="c1") == 1
    # everything that is not Kyma's lives under our own prefix
    for name in fams:
        assert name in KYMA or name.startswith("pyjetstream_eventing_"), name


def test_health_is_one_from_start_and_only_for_the_parts_running() -> None:
    m = EventingMetrics()
    assert "eventing_epp_health" not in m.render()[0].decode()
    m.publisher_started()
    text = m.render()[0].decode()
    assert value(text, "eventing_epp_health") == 1
    assert "eventing_ec_health" not in text  # a publisher-only process has no dispatcher health
    m.dispatcher_started()
    m.publisher_started()  # idempotent: registering twice would raise
    assert value(m.render()[0].decode(), "eventing_ec_health") == 1


def test_label_values_fold_into_other_past_the_bound() -> None:
    m = EventingMetrics(max_label_values=3, max_series=100)
    for i in range(10):
        m.record_published(f"t{i}.v1", "src", 204)
    text = m.render()[0].decode()
    got = {lbl["event_type"]: v for lbl, v in samples(text, "eventing_epp_event_type_published_total")}
    assert got == {"t0.v1": 1, "t1.v1": 1, "t2.v1": 1, "other": 7}
    assert value(text, "pyjetstream_eventing_metric_series_capped",
                 metric="eventing_epp_event_type_published") == 1
    # a value seen before the bound keeps its own series
    m.record_published("t1.v1", "src", 204)
    assert value(m.render()[0].decode(), "eventing_epp_event_type_published_total", event_type="t1.v1") == 2


def test_series_bound_holds_against_a_cross_product() -> None:
    """Per-label bounds alone allow values x values series; the series bound caps the product."""
    m = EventingMetrics(max_label_values=50, max_series=20)
    for a in range(30):
        for b in range(30):
            m.record_published(f"t{a}.v1", f"s{b}", 204)
    series = samples(m.render()[0].decode(), "eventing_epp_event_type_published_total")
    assert len(series) == 21  # twenty of their own, one for all the rest
    assert sum(v for _, v in series) == 900
    assert dict(series[-1][0]) == {"event_type": "other", "event_source": "other", "code": "204"}


def test_methods_and_codes_outside_the_known_sets_are_folded() -> None:
    m = EventingMetrics()
    for i in range(50):
        m.record_request(f"M{i}", 405, "/publish", 0.001)
        m.record_backend(1000 + i, "nats://x:1", 1.0)
    text = m.render()[0].decode()
    assert {lbl["method"] for lbl, _ in samples(text, "eventing_epp_requests_total")} == {"other"}
    assert {lbl["code"] for lbl, _ in samples(text, "eventing_epp_backend_duration_milliseconds_count")} == {"other"}


def test_fold_memory_is_bounded_under_a_flood_of_values() -> None:
    m = EventingMetrics()
    for i in range(20_000):
        m.record_published("t.v1", f"source-{i}", 204)
    fam = m.published
    assert len(fam._cache) <= 4096 and len(fam._series) <= 101
    assert value(m.render()[0].decode(), "eventing_epp_event_type_published_total", event_source="other") == 19_900


def test_subscription_status_series_are_removed_with_their_consumers() -> None:
    m = EventingMetrics()
    m.record_subscription_status("orders", "default", ["c1", "c2"], "sap", True)
    m.remove_subscription_status("orders", "default", ["c1"], "sap")
    got = samples(m.render()[0].decode(), "eventing_ec_subscription_status")
    assert [lbl["consumer_name"] for lbl, _ in got] == ["c2"]


# -- over HTTP, both engines ----------------------------------------------------------------------

async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
        assert r.status == 200
        return await r.text()


async def post(url: str, path: str, headers: dict, body: bytes = b"{}") -> int:
    async with aiohttp.ClientSession() as http, http.post(url + path, headers=headers, data=body) as r:
        await r.read()
        return r.status


async def test_live_figures_carry_kyma_labels(make_service, sink, nats_server):
    svc = await make_service()
    url = f"http://127.0.0.1:{svc.port}"
    text = await scrape(url)
    assert value(text, "eventing_epp_health") == 1 and value(text, "eventing_ec_health") == 1
    doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
           "metadata": {"name": "orders", "namespace": "shop"},
           "spec": {"sink": sink.url, "source": "myapp", "types": ["order.received.v1"]}}
    sub = Subscription.from_manifest(doc)
    await svc.store.apply(sub)
    consumer = t.consumer_name("shop", "orders", "kyma.myapp.order.received.v1")

    async def ready() -> bool:
        return bool(((await svc.store.get_status("shop", "orders")) or {}).get("ready"))
    await wait_until(ready, what="subscription ready")
    for i in range(2):
        assert await post(url, "/publish", {**HEADERS, "ce-id": f"e{i}"}) == 204
    legacy = {"event-type": "order.received", "event-type-version": "v1", "event-time": "2024-01-01T00:00:00Z",
              "data": {"a": 1}}
    assert await post(url, "/myapp/v1/events", {"content-type": "application/json"},
                      json.dumps(legacy).encode()) == 200
    await wait_until(lambda: len(sink.received) == 3, what="three deliveries")
    await wait_until(lambda: sum(v for _, v in samples_now(svc, "eventing_ec_nats_delivery_per_subscription_total"))
                     == 3, what="deliveries counted")
    text = await scrape(url)
    assert value(text, "eventing_epp_requests_total", code="204", method="post", path="/publish") == 2
    assert value(text, "eventing_epp_requests_total", code="200", method="post",
                 path="/{application}/v1/events") == 1
    # the legacy request counts once, with Kyma's 204 (only stored events are counted)
    assert value(text, "eventing_epp_event_type_published_total", event_type="order.received.v1",
                 event_source="myapp", code="204") == 3
    destination = f"nats://127.0.0.1:{nats_server.port}"
    # two legacy copies (v1alpha2 and v1alpha1) plus two publishes reached the backend
    assert value(text, "eventing_epp_backend_duration_milliseconds_count", code="204",
                 destination_service=destination) == 4
    delivered = {"subscription_name": "orders", "subscription_namespace": "shop", "event_type": "order.received.v1",
                 "sink": sink.url, "consumer_name": consumer}
    codes = {lbl["response_code"]: v for lbl, v in samples(text, "eventing_ec_nats_delivery_per_subscription_total")
             if all(lbl.get(k) == w for k, w in delivered.items())}
    assert sum(codes.values()) == 3 and all(c.isdigit() for c in codes)
    assert value(text, "eventing_ec_event_type_subscribed_total", subscription_name="orders",
                 subscription_namespace="shop", event_type="order.received.v1", consumer_name=consumer) >= 1
    assert value(text, "eventing_ec_subscription_status", subscription_name="orders", subscription_namespace="shop",
                 consumer_name=consumer, eventing_backend="NATS_Jetstream", stream_name="sap") == 1
    for fam in families(text):
        assert fam in KYMA or fam.startswith("pyjetstream_eventing_"), fam


def samples_now(svc, name: str) -> list[tuple[dict, float]]:
    return samples(svc.metrics.render()[0].decode(), name)


async def test_delivery_without_answer_counts_as_500(make_service, sink):
    svc = await make_service()
    dead = f"http://127.0.0.1:{free_port()}"
    doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
           "metadata": {"name": "gone"}, "spec": {"sink": dead, "source": "myapp", "types": ["order.received.v1"]}}
    await svc.store.apply(Subscription.from_manifest(doc))

    async def ready() -> bool:
        return bool(((await svc.store.get_status("default", "gone")) or {}).get("ready"))
    await wait_until(ready, what="subscription ready")
    assert await post(f"http://127.0.0.1:{svc.port}", "/publish", HEADERS) == 204

    def failed() -> bool:
        return any(lbl.get("response_code") == "500"
                   for lbl, _ in samples_now(svc, "eventing_ec_nats_delivery_per_subscription_total"))
    await wait_until(failed, what="a failed delivery counted")
    text = svc.metrics.render()[0].decode()
    assert value(text, "pyjetstream_eventing_delivery_errors_total", subscription_name="gone",
                 reason="connection") >= 1


async def test_300_distinct_sources_and_types_add_a_bounded_number_of_lines(make_service):
    svc = await make_service()
    url = f"http://127.0.0.1:{svc.port}"
    assert await post(url, "/publish", HEADERS) == 204  # every family that a publish touches exists
    first = await scrape(url)
    before = len((await scrape(url)).splitlines())
    assert before == len(first.splitlines())  # a scrape is not itself counted
    async with aiohttp.ClientSession() as http:
        for i in range(300):
            headers = {**HEADERS, "ce-id": f"x{i}", "ce-source": f"app{i}", "ce-type": f"order.kind{i}.v1"}
            async with http.post(url + "/publish", headers=headers, data=b"{}") as r:
                assert r.status == 204
    text = await scrape(url)
    added = len(text.splitlines()) - before
    # 99 new type/source values of their own, one `other` series, the capped flag (and its
    # HELP/TYPE lines): not one line per source as before
    assert added <= 105, added
    assert value(text, "eventing_epp_event_type_published_total", event_type="other", event_source="other") == 201


def test_label_values_with_quotes_newlines_and_unicode_round_trip() -> None:
    m = EventingMetrics()
    hostile = 'a"b\\c\nd}{ é 🙂'
    m.record_published(hostile, hostile, 204)
    text = m.render()[0].decode()
    got = samples(text, "eventing_epp_event_type_published_total")
    assert got == [({"event_type": hostile, "event_source": hostile, "code": "204"}, 1.0)]
