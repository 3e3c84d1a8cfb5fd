"""The publisher proxy over real HTTP against a real NATS server: codes, bodies, stored form."""

from __future__ import annotations

import json

import aiohttp
import nats
import pytest
from servers import flushed

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing.testing import wait_until

from .conftest import fast_config

TUTORIAL_HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
                    "ce-eventtypeversion": "v1", "ce-id": "759815c3-b142-48f2-bf18-c6502dc0998f",
                    "content-type": "application/json"}
LIMITS = {"retention": "limits"}  # keep messages without consumers so the test can read them


async def post(url, path, headers=None, data=b"", method="POST"):
    async with aiohttp.ClientSession() as http, http.request(method, url + path, headers=headers, data=data) as r:
        return r.status, await r.read(), dict(r.headers)


@pytest.fixture
async def proxy(make_service):
    svc = await make_service(fast_config(stream=LIMITS))
    return svc, f"http://127.0.0.1:{svc.port}"


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def last_msg(svc, subject):
    return await svc.nc.jetstream().get_last_msg(svc.config.stream.name, subject)


async def test_binary_publish_is_stored_with_kyma_subject_and_originaltype(proxy):
    svc, url = proxy
    status, body, _ = await post(url, "/publish", {**TUTORIAL_HEADERS, "traceparent": TRACEPARENT},
                                 b'{"orderCode":"3211213"}')
    assert (status, body) == (204, b"")
    msg = await last_msg(svc, "kyma.myapp.order.received.v1")
    stored = ce.parse_structured(msg.data)
    assert stored.type == "kyma.myapp.order.received.v1"
    assert stored.get("originaltype") == "order.received.v1"
    assert stored.get("traceparent") == TRACEPARENT
    assert json.loads(stored.data) == {"orderCode": "3211213"}
    assert msg.headers["ce-type"] == "kyma.myapp.order.received.v1"
    assert msg.headers["ce-id"] == TUTORIAL_HEADERS["ce-id"]


async def test_structured_publish(proxy):
    svc, url = proxy
    doc = {"specversion": "1.0", "source": "/default/sap.kyma/kt1", "type": "sap.kyma.FreightOrder.Arrived.v1",
           "eventtypeversion": "v1", "id": "A234-1234-1234", "data": "{\"foo\":\"bar\"}",
           "datacontenttype": "application/json"}
    status, _, _ = await post(url, "/publish", {"content-type": "application/cloudevents+json"},
                              json.dumps(doc).encode())
    assert status == 204
    msg = await last_msg(svc, "kyma.defaultsapkymakt1.sap.kyma.FreightOrder.Arrived.v1")
    assert ce.parse_structured(msg.data).get("originaltype") == "sap.kyma.FreightOrder.Arrived.v1"


@pytest.mark.parametrize("change,expected", [
    ({"ce-type": None}, b"type: MUST be a non-empty string"),
    ({"ce-type": "order..v1"}, b"empty segments after cleaning"),
    ({"ce-type": "sap.kyma.custom.app.v1"}, b"invalid format"),
    ({"ce-specversion": None}, b"unknown Message encoding"),
])
async def test_bad_events_get_400_with_reason(proxy, change, expected):
    _, url = proxy
    headers = {k: v for k, v in {**TUTORIAL_HEADERS, **change}.items() if v is not None}
    status, body, _ = await post(url, "/publish", headers, b"{}")
    assert status == 400
    assert expected in body


async def test_request_size_limit(make_service):
    svc = await make_service(fast_config(stream=LIMITS, max_request_size=1024))
    url = f"http://127.0.0.1:{svc.port}"
    status, body, _ = await post(url, "/publish", TUTORIAL_HEADERS, b'"' + b"x" * 2000 + b'"')
    assert status == 400 and b"too large" in body
    status, body, _ = await post(url, "/myapp/v1/events", {"content-type": "application/json"},
                                 json.dumps({"data": "x" * 2000}).encode())
    assert status == 413 and json.loads(body)["type"] == "request_body_too_large"


async def test_duplicate_source_and_id_is_stored_once_with_dedupe(make_service):
    svc = await make_service(fast_config(stream=LIMITS, dedupe=True))
    url = f"http://127.0.0.1:{svc.port}"
    for _ in range(3):
        assert (await post(url, "/publish", TUTORIAL_HEADERS, b"{}"))[0] == 204
    info = await svc.nc.jetstream().stream_info("sap")
    assert info.state.messages == 1


async def test_without_dedupe_the_same_event_is_stored_again(proxy):
    svc, url = proxy
    for _ in range(2):
        assert (await post(url, "/publish", TUTORIAL_HEADERS, b"{}"))[0] == 204
    assert (await svc.nc.jetstream().stream_info("sap")).state.messages == 2


async def test_no_stream_gives_504_and_full_stream_507(proxy):
    svc, url = proxy
    js = svc.nc.jetstream()
    await js.delete_stream("sap")
    assert (await post(url, "/publish", TUTORIAL_HEADERS, b"{}"))[0] == 504
    await js.add_stream(name="sap", subjects=["kyma.>"], max_bytes=600, discard="new", storage="memory")
    codes = []
    for i in range(10):
        headers = {**TUTORIAL_HEADERS, "ce-id": f"id-{i}"}
        codes.append((await post(url, "/publish", headers, b'{"pad":"' + b"x" * 100 + b'"}'))[0])
    assert codes[0] == 204 and codes[-1] == 507


async def test_nats_down_gives_502_and_readyz_503(proxy, nats_server):
    svc, url = proxy
    assert (await post(url, "/readyz", method="GET"))[0] == 200
    nats_server.stop()
    await wait_until(lambda: not svc.nc.is_connected, what="client to notice the server is gone")
    assert (await post(url, "/publish", TUTORIAL_HEADERS, b"{}"))[0] == 502
    status, body, _ = await post(url, "/readyz", method="GET")
    assert status == 503 and b"NATS connection is" in body
    assert (await post(url, "/healthz", method="GET"))[0] == 200


async def test_legacy_endpoint_publishes_twice_and_answers_200(proxy):
    svc, url = proxy
    doc = {"event-type": "order.received", "event-type-version": "v1", "event-time": "2020-09-28T14:47:16.491Z",
           "data": {"orderCode": "3211213"}}
    status, body, headers = await post(url, "/myapp/v1/events", {"content-type": "application/json"},
                                       json.dumps(doc).encode())
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["status"] == "" and answer["reason"] == "" and answer["event-id"]
    first = ce.parse_structured((await last_msg(svc, "kyma.myapp.order.received.v1")).data)
    assert first.id == answer["event-id"] and first.get("eventtypeversion") == "v1"
    assert first.get("originaltype") == "order.received.v1"
    second = ce.parse_structured((await last_msg(svc, "kyma.sap.kyma.custom.myapp.order.received.v1")).data)
    assert second.id == answer["event-id"] and second.source == "kyma"


@pytest.mark.parametrize("doc,field,kind", [
    ({"event-type-version": "v1", "event-time": "2020-09-28T14:47:16Z", "data": 1}, "event-type", "missing_field"),
    ({"event-type": "a", "event-time": "2020-09-28T14:47:16Z", "data": 1}, "event-type-version", "missing_field"),
    ({"event-type": "a", "event-type-version": "-", "event-time": "2020-09-28T14:47:16Z", "data": 1},
     "event-type-version", "invalid_field"),
    ({"event-type": "a", "event-type-version": "v1", "event-time": "yesterday", "data": 1}, "event-time",
     "invalid_field"),
    ({"event-type": "a", "event-type-version": "v1", "event-time": "2020-09-28T14:47:16Z", "event-id": "x",
      "data": 1}, "event-id", "invalid_field"),
    ({"event-type": "a", "event-type-version": "v1", "event-time": "2020-09-28T14:47:16Z", "data": ""}, "data",
     "missing_field"),
])
async def test_legacy_validation(proxy, doc, field, kind):
    _, url = proxy
    status, body, _ = await post(url, "/myapp/v1/events", {"content-type": "application/json"},
                                 json.dumps(doc).encode())
    answer = json.loads(body)
    assert status == 400 and answer["type"] == "validation_violation"
    assert answer["details"][0]["field"] == field and answer["details"][0]["type"] == kind


async def test_legacy_bad_json(proxy):
    _, url = proxy
    status, body, _ = await post(url, "/myapp/v1/events", {"content-type": "application/json"}, b"{oops")
    assert status == 400 and json.loads(body)["type"] == "bad_payload_syntax"


async def test_routes_methods_and_metrics(proxy):
    _, url = proxy
    assert (await post(url, "/publish", method="GET"))[0] == 405
    assert (await post(url, "/nothing/here", method="GET"))[0] == 404
    await post(url, "/publish", TUTORIAL_HEADERS, b"{}")
    status, body, _ = await post(url, "/metrics", method="GET")
    assert status == 200
    assert b'eventing_epp_requests_total{code="204",method="post",path="/publish"} 1.0' in body
    assert b"eventing_epp_event_type_published_total" in body


async def test_subscribed_lists_standard_and_exact_types(proxy):
    svc, url = proxy
    from pyjetstream.eventing.subscriptions import Subscription
    for name, spec in {"a": {"source": "myapp", "types": ["order.created.v1", "order.deleted.v2"]},
                       "b": {"source": "", "typeMatching": "exact", "types": ["sap.kyma.custom.myapp.user.made.v1"]},
                       "c": {"source": "other", "types": ["x.y.v1"]}}.items():
        doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
               "metadata": {"name": name}, "spec": {"sink": "http://127.0.0.1:1", **spec}}
        await svc.store.apply(Subscription.from_manifest(doc))
    await wait_until(lambda: len(svc.manager.subscriptions()) == 3, what="manager to see 3 subscriptions")
    status, body, _ = await post(url, "/myapp/v1/events/subscribed", method="GET")
    assert status == 200
    assert sorted(json.loads(body)["eventsInfo"], key=lambda e: e["name"]) == [
        {"name": "order.created", "version": "v1"}, {"name": "order.deleted", "version": "v2"},
        {"name": "user.made", "version": "v1"}]


async def test_publish_reaches_plain_nats_subscriber(proxy):
    svc, url = proxy
    nc = await nats.connect(svc.nats_url)
    try:
        sub = await nc.subscribe("kyma.>")
        await flushed(nc)  # the server must know the subscription before the proxy publishes
        status, body, _ = await post(url, "/publish", TUTORIAL_HEADERS, b'{"a":1}')
        assert (status, body) == (204, b"")
        msg = await sub.next_msg(timeout=5)
        assert msg.subject == "kyma.myapp.order.received.v1"
    finally:
        await nc.close()
