"""Subscription manifests: parsing, Kyma's validation rules and messages, status shape."""

import hashlib
import json
from pathlib import Path

import pytest

from pyjetstream.eventing import subscriptions as s

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lastorder-sub.yaml"


def make(**spec):
    base = {"sink": "http://127.0.0.1:9000", "source": "myapp", "types": ["order.created.v1"]}
    base.update(spec)
    return s.Subscription.from_manifest({"apiVersion": s.API_VERSION, "kind": "Subscription",
                                         "metadata": {"name": "test", "namespace": "test"}, "spec": base})


def test_example_manifest_is_valid():
    (sub,) = s.parse_manifests(EXAMPLE.read_text())
    assert (sub.name, sub.namespace, sub.source, sub.types) == ("lastorder-sub", "default", "myapp",
                                                                ["order.received.v1"])
    assert s.validate(sub) == []


def test_several_documents_yaml_and_json():
    text = EXAMPLE.read_text()
    two = text + "---\n" + text.replace("lastorder-sub", "other-sub")
    assert [x.name for x in s.parse_manifests(two)] == ["lastorder-sub", "other-sub"]
    docs = [x.to_manifest() for x in s.parse_manifests(two)]
    assert [x.name for x in s.parse_manifests(json.dumps(docs))] == ["lastorder-sub", "other-sub"]
    assert len(s.parse_manifests(json.dumps({"kind": "List", "items": docs}))) == 2


def test_manifest_errors():
    with pytest.raises(s.ManifestError, match="apiVersion"):
        s.parse_manifests("apiVersion: eventing.kyma-project.io/v1alpha1\nkind: Subscription\n"
                          "metadata: {name: a}\nspec: {}\n")
    with pytest.raises(s.ManifestError, match="kind"):
        s.parse_manifests("apiVersion: v1\nkind: Pod\n")
    with pytest.raises(s.ManifestError, match="cannot parse"):
        s.parse_manifests("{not json")


def test_default_config_and_stringified_values():
    sub = make(config={"maxInFlightMessages": 5})
    assert sub.config == {"maxInFlightMessages": "5"} and sub.max_in_flight() == 5
    assert make().config == {"maxInFlightMessages": "10"}


@pytest.mark.parametrize("spec,expected", [
    ({"typeMatching": "fuzzy"}, 'spec.typeMatching: Invalid value: "fuzzy": must be a valid TypeMatching value exact or standard'),
    ({"source": ""}, 'spec.source: Invalid value: "": must not be empty'),
    ({"types": []}, "spec.types: Invalid value: []: must not be empty"),
    ({"types": ["a.v1", "a.v1"]}, 'spec.types: Invalid value: "a.v1": must not have duplicate types'),
    ({"types": [""]}, 'spec.types: Invalid value: "": must not be of length zero'),
    ({"types": ["order"]}, 'spec.types: Invalid value: "order": must have minimum 2 segments'),
    ({"types": ["sap.kyma.custom.app.order.v1"]}, "must not have sap.kyma.custom as type prefix"),
    ({"config": {"maxInFlightMessages": "ten"}}, "maxInFlightMessages must be a stringified int value"),
    ({"config": {"qos": "MAYBE"}}, "must be a valid QoS value AT_LEAST_ONCE or AT_MOST_ONCE"),
    ({"sink": ""}, 'spec.sink: Invalid value: "": must not be empty'),
    ({"sink": "ftp://x"}, "must have URL scheme 'http' or 'https'"),
    ({"types": ["order..v1"]}, "must not produce empty subject segments"),
    ({"config": {"backoffDelay": "soon"}}, "backoffDelay must be a duration"),
])
def test_kyma_validation_messages(spec, expected):
    errors = s.validate(make(**spec))
    assert any(expected in e for e in errors), errors


def test_exact_matching_allows_empty_source_but_not_wildcards():
    assert s.validate(make(source="", typeMatching="exact", types=["sap.kyma.custom.app.order.v1"])) == []
    assert any("wildcards" in e for e in s.validate(make(typeMatching="exact", types=["a.*.v1"])))


def test_strict_sinks():
    assert s.validate(make(sink="http://127.0.0.1:9000"), strict_sinks=False) == []
    assert "svc.cluster.local" in s.validate(make(sink="http://127.0.0.1:9000"), strict_sinks=True)[0]
    assert "5 sub-domains" in s.validate(make(sink="http://a.svc.cluster.local"), strict_sinks=True)[0]
    assert "same namespace" in s.validate(make(sink="http://fn.other.svc.cluster.local"), strict_sinks=True)[0]
    assert s.validate(make(sink="http://fn.test.svc.cluster.local:8080/path"), strict_sinks=True) == []


def test_validation_message_aggregates():
    assert s.validation_message(["a"]) == "Subscription validation failed: a"
    assert s.validation_message(["a", "b"]) == "Subscription validation failed: [a, b]"


def test_status_matches_kyma_example():
    sub = make()
    st = s.status_synced(sub, "2024-01-01T00:00:00Z")
    assert st["ready"] is True
    assert st["types"] == [{"originalType": "order.created.v1", "cleanType": "order.created.v1"}]
    name = hashlib.sha256(b"test/test/kyma.myapp.order.created.v1").hexdigest()[:32]
    assert st["backend"]["types"] == [{"originalType": "order.created.v1", "consumerName": name}]
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("Subscription spec valid", "True", "Subscription spec has no validation errors"),
        ("Subscription active", "True", "NATS Subscription active")]


def test_status_keeps_transition_time_while_unchanged_and_invalid_resets():
    sub = make()
    sub.status = s.status_synced(sub, "2024-01-01T00:00:00Z")
    again = s.status_synced(sub, "2024-02-02T00:00:00Z")
    assert again["conditions"][1]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    failed = s.status_synced(sub, "2024-03-03T00:00:00Z", error="failed to add a consumer")
    assert failed["ready"] is False and failed["conditions"][1]["reason"] == "NATS Subscription not active"
    assert failed["conditions"][1]["lastTransitionTime"] == "2024-03-03T00:00:00Z"
    bad = make(source="")
    invalid = s.status_invalid(bad, s.validate(bad), "2024-01-01T00:00:00Z")
    assert invalid["ready"] is False and invalid["types"] == [] and invalid["backend"] == {}
    assert [c["reason"] for c in invalid["conditions"]] == ["Subscription spec has validation errors"]
    assert invalid["conditions"][0]["message"].startswith("Subscription validation failed: spec.source")
