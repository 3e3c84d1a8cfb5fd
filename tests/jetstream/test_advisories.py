"""Consumer events are built in advisories.py and sent only to listeners, with nats-server's
envelope: type, id, timestamp, then the event's fields."""

from __future__ import annotations

import json

from pyjetstream.jetstream import advisories

from .conftest import FakeServer


def test_send_only_with_interest_and_in_nats_server_shape() -> None:
    server = FakeServer()
    acc = server.global_account
    adv = advisories.msg_terminated("S", "C", 3, 7, 2, reason="")
    assert adv.subject == "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C"
    assert "reason" not in adv.fields  # omitempty, as nats-server
    assert advisories.send(server, acc, adv, 1_700_000_000_000_000_000) is False
    assert server.outbox == []
    server.listening.add("$JS.EVENT.ADVISORY.>")
    assert advisories.send(server, acc, adv, 1_700_000_000_000_000_000) is True
    doc = json.loads(server.outbox[-1].payload)
    assert list(doc)[:3] == ["type", "id", "timestamp"]
    assert doc["type"] == "io.nats.jetstream.advisory.v1.terminated"
    assert doc["timestamp"] == "2023-11-14T22:13:20Z"
    assert {k: doc[k] for k in ("stream", "consumer", "consumer_seq", "stream_seq", "deliveries")} == {
        "stream": "S", "consumer": "C", "consumer_seq": 3, "stream_seq": 7, "deliveries": 2}
    metric = advisories.consumer_ack_metric("S", "C", 1, 2, 250, 1)
    assert metric.subject == "$JS.EVENT.METRIC.CONSUMER.ACK.S.C"
    assert metric.type == "io.nats.jetstream.metric.v1.consumer_ack"
    assert advisories.max_deliver("S", "C", 9, 5).fields == {"stream": "S", "consumer": "C", "stream_seq": 9,
                                                             "deliveries": 5}
