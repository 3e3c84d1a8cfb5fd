"""Application types (Kyma's `application-type` label on an Application CR) as a config mapping.

Kyma's publisher proxy looks the event's source (CloudEvents path, legacy first copy) or the
app segment (`sap.kyma.custom.<app>...` types, legacy second copy) up as an Application and
puts its type in the stored event type; the `source` attribute is left alone. Today's
eventing-manager cleans Subscription types without any lookup, so subscribers name the type.
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing import types as t
from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import FlakySink, wait_until

from .conftest import fast_config

APPS = {"myapp": "mytype", "dashed": "my-type"}


@pytest.mark.parametrize("source,event_type,subject", [
    # standard path: the source is replaced before Kyma's source cleaning (dots etc. go, '-' stays)
    ("myapp", "order.created.v1", "kyma.mytype.order.created.v1"),
    ("dashed", "order.created.v1", "kyma.my-type.order.created.v1"),
    ("unmapped", "order.created.v1", "kyma.unmapped.order.created.v1"),
    ("my.app", "order.created.v1", "kyma.myapp.order.created.v1"),  # no entry: cleaned as before
    # legacy-prefixed type: the app segment is replaced, then cleaned to alphanumerics
    ("anything", "sap.kyma.custom.myapp.order.created.v1", "kyma.sap.kyma.custom.mytype.order.created.v1"),
    ("anything", "sap.kyma.custom.dashed.order.created.v1", "kyma.sap.kyma.custom.mytype.order.created.v1"),
    ("anything", "sap.kyma.custom.other.order.created.v1", "kyma.sap.kyma.custom.other.order.created.v1"),
])
def test_publish_target_uses_the_application_type(source, event_type, subject):
    target = t.publish_target(source, event_type, app_types=APPS)
    assert target.subject == subject
    if not event_type.startswith("sap.kyma.custom"):
        assert target.original_type == event_type  # the sink still sees the type as sent


def test_without_a_mapping_nothing_changes():
    assert t.publish_target("myapp", "order.created.v1").subject == "kyma.myapp.order.created.v1"
    assert t.publish_target("x", "sap.kyma.custom.my_app.order.created.v1").subject == \
        "kyma.sap.kyma.custom.myapp.order.created.v1"


def manifest(name, sink, source, types, matching="standard"):
    return Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"sink": sink, "source": source, "types": list(types), "typeMatching": matching}})


async def _ready(svc, sub):
    async def check():
        got = await svc.store.get(sub.namespace, sub.name)
        return bool(got and got.status and got.status.get("ready")
                    and got.status.get("observedGeneration") == got.generation)
    await wait_until(check, what=f"{sub.key} ready")


async def _post(svc, path, headers, body):
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}{path}", headers=headers, data=body) as r:
        return r.status, await r.read()


async def test_legacy_post_for_a_mapped_app_reaches_subscribers_of_the_type(make_service, sink):
    svc = await make_service(fast_config(application_types={"myapp": "mytype"}))
    exact_sink, name_sink = await FlakySink().start(), await FlakySink().start()
    try:
        standard = manifest("by-type", sink.url, "mytype", ["order.created.v1"])
        exact = manifest("by-exact-type", exact_sink.url, "", ["sap.kyma.custom.mytype.order.created.v1"],
                         matching="exact")
        by_name = manifest("by-name", name_sink.url, "myapp", ["order.created.v1"])
        for sub in (standard, exact, by_name):
            await svc.store.apply(sub)
        for sub in (standard, exact, by_name):
            await _ready(svc, sub)

        doc = {"event-type": "order.created", "event-type-version": "v1", "event-time": "2024-01-02T03:04:05Z",
               "event-id": "8954ad1c-78ed-4c58-a639-68bd44031de0", "data": {"orderCode": "1"}}
        status, body = await _post(svc, "/myapp/v1/events", {"content-type": "application/json"},
                                   json.dumps(doc).encode())
        assert status == 200 and json.loads(body)["event-id"] == doc["event-id"]
        await wait_until(lambda: len(sink.received) == 1 and len(exact_sink.received) == 1,
                         what="both copies delivered")
        # The standard subscriber sees the type as the application sent it, from source `myapp`.
        event = sink.received[0]
        assert (event.type, event.source, event.id) == ("order.created.v1", "myapp", doc["event-id"])
        # The exact subscriber gets Kyma's v1alpha1 copy under the application type.
        copy = exact_sink.received[0]
        assert (copy.type, copy.source, copy.id) == ("sap.kyma.custom.mytype.order.created.v1", "kyma",
                                                     doc["event-id"])
        # Nothing was stored under the application's name.
        js = svc.nc.jetstream()
        info = await js.consumer_info("sap", t.consumer_name("default", "by-name", "kyma.myapp.order.created.v1"))
        assert (info.delivered.consumer_seq, info.num_pending, info.num_ack_pending) == (0, 0, 0)
        assert sum(name_sink.attempts.values()) == 0
    finally:
        await exact_sink.stop()
        await name_sink.stop()


async def test_cloudevents_publish_for_a_mapped_source_and_legacy_prefixed_type(make_service, sink):
    svc = await make_service(fast_config(application_types={"myapp": "mytype"}, stream={"retention": "limits"}))
    standard = manifest("by-type", sink.url, "mytype", ["order.created.v1"])
    exact = manifest("by-exact-type", sink.url, "", ["sap.kyma.custom.mytype.order.created.v1"], matching="exact")
    for sub in (standard, exact):
        await svc.store.apply(sub)
        await _ready(svc, sub)
    headers = {"ce-specversion": "1.0", "ce-type": "order.created.v1", "ce-source": "myapp", "ce-id": "std-1",
               "content-type": "application/json"}
    assert (await _post(svc, "/publish", headers, b'{"n":1}'))[0] == 204
    legacy_type = {**headers, "ce-type": "sap.kyma.custom.myapp.order.created.v1", "ce-id": "legacy-1"}
    assert (await _post(svc, "/publish", legacy_type, b'{"n":2}'))[0] == 204
    await wait_until(lambda: set(sink.ids()) == {"std-1", "legacy-1"}, what="both events delivered")
    got = {e.id: e for e in sink.received}
    assert (got["std-1"].type, got["std-1"].source) == ("order.created.v1", "myapp")
    assert got["legacy-1"].type == "sap.kyma.custom.mytype.order.created.v1"
    js = svc.nc.jetstream()
    stored = ce.parse_structured((await js.get_last_msg("sap", "kyma.mytype.order.created.v1")).data)
    assert (stored.type, stored.source, stored.get("originaltype")) == \
        ("kyma.mytype.order.created.v1", "myapp", "order.created.v1")
    legacy = await js.get_last_msg("sap", "kyma.sap.kyma.custom.mytype.order.created.v1")
    assert ce.parse_structured(legacy.data).id == "legacy-1"
