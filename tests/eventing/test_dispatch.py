"""Manager + dispatcher against a real NATS server and a real HTTP sink."""

from __future__ import annotations

import json

import aiohttp
import nats
import nats.errors
import nats.js.errors

from pyjetstream.eventing import types as t
from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import wait_until

HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
           "ce-eventtypeversion": "v1", "content-type": "application/json"}


def _v(value):
    return getattr(value, "value", value)


def manifest(name="lastorder-sub", sink="http://127.0.0.1:9", types=("order.received.v1",), **spec):
    doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"sink": sink, "source": "myapp", "types": list(types), **spec}}
    return Subscription.from_manifest(doc)


async def publish(svc, event_id, event_type="order.received.v1", data=None, extra=None):
    headers = {**HEADERS, "ce-id": event_id, "ce-type": event_type, **(extra or {})}
    body = json.dumps(data if data is not None else {"id": event_id}).encode()
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}/publish", headers=headers, data=body) as r:
        return r.status


async def ready(svc, sub):
    async def check():
        got = await svc.store.get(sub.namespace, sub.name)
        return got is not None and got.status and got.status.get("ready") and \
            got.status.get("observedGeneration") == got.generation
    await wait_until(check, what=f"{sub.key} to become ready")
    return await svc.store.get(sub.namespace, sub.name)


async def test_subscription_gets_kyma_consumer_and_ready_status(make_service, sink):
    svc = await make_service()
    sub = manifest(sink=sink.url, config={"maxInFlightMessages": "7"})
    assert await svc.store.apply(sub) == "created"
    got = await ready(svc, sub)
    subject = "kyma.myapp.order.received.v1"
    name = t.consumer_name("default", "lastorder-sub", subject)
    assert got.status["backend"]["types"] == [{"originalType": "order.received.v1", "consumerName": name}]
    info = await svc.nc.jetstream().consumer_info("sap", name)
    cfg = info.config
    assert cfg.description == f"default/lastorder-sub/{subject}"
    assert cfg.filter_subject == subject and cfg.max_ack_pending == 7
    assert _v(cfg.ack_policy) == "explicit" and _v(cfg.deliver_policy) == "new"
    assert cfg.ack_wait == 30 and cfg.flow_control and cfg.deliver_subject
    stream = await svc.nc.jetstream().stream_info("sap")
    assert stream.config.subjects == ["kyma.>"] and _v(stream.config.retention) == "interest"
    assert stream.config.max_msgs_per_subject == 1_000_000 and _v(stream.config.discard) == "new"


async def test_delivery_in_binary_mode_with_original_type_and_tracing(make_service, sink):
    svc = await make_service()
    sub = manifest(sink=sink.url, types=["order.payment*success.v1"])
    await svc.store.apply(sub)
    got = await ready(svc, sub)
    assert got.status["types"] == [{"originalType": "order.payment*success.v1",
                                    "cleanType": "order.paymentsuccess.v1"}]
    assert await publish(svc, "e1", "order.payment*success.v1", {"orderCode": "3211213"},
                         {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "X-B3-TraceId": "463ac35c9f6413ad"}) == 204
    await wait_until(lambda: len(sink.received) == 1, what="delivery")
    event, headers = sink.received[0], sink.headers[0]
    assert event.type == "order.payment*success.v1"
    assert event.get("originaltype") == "order.payment*success.v1"
    assert event.get("eventtypeversion") == "v1" and event.source == "myapp"
    assert json.loads(event.data) == {"orderCode": "3211213"}
    assert headers["traceparent"].startswith("00-0af7") and headers["X-B3-TraceId"] == "463ac35c9f6413ad"
    assert "ce-traceparent" not in {k.lower() for k in headers}
    assert headers["Content-Type"] == "application/json"


async def test_max_in_flight_bounds_concurrent_deliveries(make_service, sink):
    svc = await make_service()
    sink.delay = 0.05
    sub = manifest(sink=sink.url, config={"maxInFlightMessages": "3"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    for i in range(20):
        assert await publish(svc, f"m{i}") == 204
    await wait_until(lambda: len(sink.received) == 20, what="20 deliveries")
    assert 1 <= sink.max_in_flight <= 3


async def test_consumers_follow_spec_changes_and_deletion(make_service, sink):
    svc = await make_service()
    js = svc.nc.jetstream()
    sub = manifest(sink=sink.url, types=["a.created.v1", "b.created.v1"])
    await svc.store.apply(sub)
    got = await ready(svc, sub)
    names = [b["consumerName"] for b in got.status["backend"]["types"]]
    assert len(names) == 2
    changed = manifest(sink=sink.url, types=["a.created.v1"], config={"maxInFlightMessages": "4"})
    assert await svc.store.apply(changed) == "configured"
    got = await ready(svc, changed)
    assert [b["consumerName"] for b in got.status["backend"]["types"]] == names[:1]

    async def b_gone():
        try:
            await js.consumer_info("sap", names[1])
        except nats.js.errors.NotFoundError:
            return True
        return False
    await wait_until(b_gone, what="removed type's consumer to be deleted")
    await wait_until(lambda: _max_ack_pending(js, names[0], 4), what="maxInFlight update")
    assert await svc.store.delete("default", "lastorder-sub")

    async def all_gone():
        return not [c for c in await js.consumers_info("sap")]
    await wait_until(all_gone, what="consumers deleted with the subscription")
    await wait_until(lambda: _status_gone(svc), what="status removed")


async def _max_ack_pending(js, name, value):
    return (await js.consumer_info("sap", name)).config.max_ack_pending == value


async def _status_gone(svc):
    return await svc.store.get_status("default", "lastorder-sub") is None


async def test_invalid_subscription_status_has_kyma_condition(make_service):
    svc = await make_service()
    bad = manifest(types=["order"], sink="ftp://nowhere")
    await svc.store.apply(bad)

    async def invalid():
        st = await svc.store.get_status("default", "lastorder-sub")
        return st and st["conditions"][0]["reason"] == "Subscription spec has validation errors"
    await wait_until(invalid, what="invalid status")
    st = await svc.store.get_status("default", "lastorder-sub")
    assert st["ready"] is False and st["types"] == []
    assert "must have minimum 2 segments" in st["conditions"][0]["message"]
    assert "must have URL scheme 'http' or 'https'" in st["conditions"][0]["message"]


async def test_orphaned_consumers_are_removed_at_start(make_service, nats_server):
    import nats
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="sap", subjects=["kyma.>"], retention="interest")
    await js.add_consumer("sap", durable_name="orphan", ack_policy="explicit", filter_subject="kyma.x.y.z")
    await nc.close()
    svc = await make_service()
    assert [c.name for c in await svc.nc.jetstream().consumers_info("sap")] == []


async def test_dead_letter_after_max_attempts(make_service, sink):
    svc = await make_service()
    sink.mode = "fail"
    sub = manifest(sink=sink.url, config={"maxDeliveryAttempts": "3", "backoffDelay": "50ms"})
    await svc.store.apply(sub)
    got = await ready(svc, sub)
    assert await publish(svc, "doomed") == 204
    js = svc.nc.jetstream()
    dl_subject = got.status["deadLetter"]["subjects"][0]

    async def dead_lettered():
        return (await js.stream_info("sap-dlq")).state.messages == 1
    await wait_until(dead_lettered, what="dead-lettered event")
    assert sink.attempts["doomed"] == 3
    msg = await js.get_last_msg("sap-dlq", dl_subject)
    assert msg.headers["Eventing-Dead-Letter-Reason"] == "MaxDeliveryAttemptsExceeded"
    assert msg.headers["Eventing-Last-Status"] == "500"
    assert msg.headers["Eventing-Subscription"] == "default/lastorder-sub"
    assert json.loads(msg.data)["id"] == "doomed"
    await wait_until(lambda: _stream_empty(js), what="sap stream empty after TERM")


async def _stream_empty(js):
    return (await js.stream_info("sap")).state.messages == 0


async def test_non_retryable_status_goes_to_dead_letter_at_once(make_service, sink):
    svc = await make_service()
    sink.mode, sink.fail_status = "fail", 400
    sub = manifest(sink=sink.url, config={"noRetryStatusCodes": "400"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    assert await publish(svc, "bad-request") == 204
    js = svc.nc.jetstream()

    async def dead_lettered():
        return (await js.stream_info("sap-dlq")).state.messages == 1
    await wait_until(dead_lettered, what="dead-lettered event")
    assert sink.attempts["bad-request"] == 1


async def test_stream_and_consumers_come_back_after_restart(make_service, sink, nats_server):
    svc = await make_service()
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await ready(svc, sub)
    js = svc.nc.jetstream()
    await js.delete_stream("sap")  # takes the consumers with it
    nats_server.kill()
    nats_server.start()

    async def consumer_back():
        try:
            return len(await js.consumers_info("sap")) == 1
        except (nats.errors.Error, TimeoutError):
            return False
    await wait_until(consumer_back, timeout=15, what="sap stream and consumer re-created after reconnect")
    assert (await js.stream_info("sap")).config.subjects == ["kyma.>"]
    assert await publish(svc, "after-restart") == 204
    await wait_until(lambda: "after-restart" in sink.ids(), what="delivery after restart")


def _delivered(svc) -> float:
    return sum(s.value for m in svc.metrics.deliveries.collect() for s in m.samples if s.name.endswith("_total"))


async def test_two_dispatchers_share_the_work_exactly_once(make_service, sink):
    one = await make_service()
    two = await make_service()
    sub = manifest(sink=sink.url, config={"maxInFlightMessages": "20"})
    await one.store.apply(sub)
    await ready(one, sub)
    await wait_until(lambda: len(two.dispatcher.bound()) == 1, what="second dispatcher bound")
    for i in range(200):
        assert await publish(one if i % 2 else two, f"s{i}") == 204
    await wait_until(lambda: len(sink.received) >= 200, what="200 deliveries")
    assert set(sink.ids()) == {f"s{i}" for i in range(200)}
    assert max(sink.ids().values()) == 1
    # A delivery is counted after the sink's answer came back, so the last count may trail
    # the sink's receipt by a moment.
    await wait_until(lambda: _delivered(one) + _delivered(two) >= 200, what="200 deliveries counted")
    assert _delivered(one) > 0 and _delivered(two) > 0
    assert _delivered(one) + _delivered(two) == 200


async def test_poison_message_is_dead_lettered_without_retries(make_service, sink):
    svc = await make_service()
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await ready(svc, sub)
    js = svc.nc.jetstream()
    await js.publish("kyma.myapp.order.received.v1", b"not a cloudevent")

    async def dead_lettered():
        return (await js.stream_info("sap-dlq")).state.messages == 1
    await wait_until(dead_lettered, what="poison message dead-lettered")
    got = await svc.store.get("default", "lastorder-sub")
    msg = await js.get_last_msg("sap-dlq", got.status["deadLetter"]["subjects"][0])
    assert msg.headers["Eventing-Dead-Letter-Reason"] == "InvalidCloudEvent"
    assert msg.data == b"not a cloudevent"
    assert sum(sink.attempts.values()) == 0


async def test_without_dead_letter_the_event_stays_after_the_last_attempt(make_service, sink):
    svc = await make_service()
    sink.mode, sink.fail_status = "fail", 503
    sub = manifest(sink=sink.url, config={"backoffPolicy": "constant", "backoffDelay": "100ms",
                                          "maxDeliveryAttempts": "4", "deadLetter": "false"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    assert await publish(svc, "r1") == 204
    await wait_until(lambda: sink.attempts["r1"] >= 4, what="four attempts")
    js = svc.nc.jetstream()
    # deadLetter=false keeps Kyma's behaviour: the event stays in the stream.
    assert (await js.stream_info("sap")).state.messages == 1
    assert (await js.stream_info("sap-dlq")).state.messages == 0


async def test_stream_drift_is_corrected_in_place(make_service, nats_server):
    import nats as nats_client
    nc = await nats_client.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="sap", subjects=["kyma.>"], retention="interest", storage="file", max_bytes=1000)
    await nc.close()
    svc = await make_service()
    info = await svc.nc.jetstream().stream_info("sap")
    assert info.config.max_bytes == 700 * 1024 * 1024  # updated in place to Kyma's setting
    # A drift that cannot be updated in place refuses the start: tests/eventing/test_trust.py.


async def _ack_pending(url, name):
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().consumer_info("sap", name)).num_ack_pending
    finally:
        await nc.close()


async def test_batched_acks_settle_every_delivery(make_service, sink, nats_server):
    svc = await make_service()
    sub = manifest(sink=sink.url, config={"maxInFlightMessages": "50"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    for i in range(40):
        assert await publish(svc, f"b{i}") == 204
    await wait_until(lambda: len(sink.received) >= 40, what="40 deliveries")
    name = t.consumer_name("default", "lastorder-sub", "kyma.myapp.order.received.v1")

    async def settled():
        return await _ack_pending(nats_server.url, name) == 0
    await wait_until(settled, what="every delivery acked")
    assert max(sink.ids().values()) == 1


async def test_acks_held_in_the_batch_are_sent_when_the_dispatcher_stops(make_service, sink, nats_server):
    svc = await make_service()
    svc.dispatcher.ack_batch_window = 3600.0  # only stop() can send them
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await ready(svc, sub)
    for i in range(5):
        assert await publish(svc, f"h{i}") == 204
    await wait_until(lambda: len(sink.received) >= 5, what="5 deliveries")
    name = t.consumer_name("default", "lastorder-sub", "kyma.myapp.order.received.v1")
    await wait_until(lambda: len(svc.dispatcher._acks) == 5, what="5 acks held")
    assert await _ack_pending(nats_server.url, name) == 5
    await svc.stop()
    assert await _ack_pending(nats_server.url, name) == 0
