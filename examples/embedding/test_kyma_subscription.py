"""A Kyma Subscription end to end, in-process: the `eventing` fixture runs the publisher proxy
and dispatcher on a fresh server, `recording_sink` is the subscriber's HTTP sink."""

from __future__ import annotations

import json
import urllib.request

MANIFEST = """
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata:
  name: order-created
  namespace: default
spec:
  sink: {sink}
  source: myapp
  types:
    - order.created.v1
"""


def publish(proxy: str, event_id: str, data: dict) -> int:
    req = urllib.request.Request(
        f"{proxy}/publish", data=json.dumps(data).encode(), method="POST",
        headers={"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": event_id,
                 "ce-type": "order.created.v1", "ce-source": "myapp"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_event_reaches_the_sink(eventing, recording_sink):
    eventing.apply(MANIFEST.format(sink=recording_sink.url))
    status = eventing.wait_ready("order-created")
    assert status["ready"] is True

    assert publish(eventing.url, "A-1", {"orderId": 1}) == 204
    [event] = recording_sink.wait_for(1)
    assert event.id == "A-1"
    assert event.type == "order.created.v1"
    assert json.loads(event.data) == {"orderId": 1}


def test_at_least_once_when_the_sink_fails_then_recovers(eventing, recording_sink):
    eventing.apply(MANIFEST.format(sink=recording_sink.url))
    eventing.wait_ready("order-created")
    recording_sink.fail(503)
    assert publish(eventing.url, "B-1", {"orderId": 2}) == 204
    # the event is kept and retried; once the sink answers 2xx it arrives
    recording_sink.wait_attempts("B-1", 1)
    recording_sink.recover()
    [event] = recording_sink.wait_for(1, timeout=30)
    assert event.id == "B-1"
    assert recording_sink.attempts["B-1"] >= 2
