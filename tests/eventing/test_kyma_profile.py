"""The `kyma` delivery profile: Kyma's dispatcher exactly, chosen globally or per Subscription.

Kyma NAKs every failed delivery with a fixed 30 s delay (`NakWithDelay`), its consumers have
AckWait 30 s and MaxDeliver 100, its HTTP client has no timeout, and after the last delivery
the event stays in the stream. Tests inject a short NAK delay instead of waiting 30 s; the
real 30 s is checked on the wire (the NAK a real nats-py spy sees) and on the consumer.
"""

from __future__ import annotations

import json

import aiohttp
import nats
import pytest
from servers import flushed

from pyjetstream.eventing import types as t
from pyjetstream.eventing.config import EventingConfig, KymaDelivery
from pyjetstream.eventing.retry import (
    PROFILE_KYMA,
    Outcome,
    RetryPolicy,
    classify,
    kyma_policy,
    next_delay,
)
from pyjetstream.eventing.subscriptions import Subscription, validate
from pyjetstream.eventing.testing import wait_until

from .conftest import fast_config

SUBJECT = "kyma.myapp.order.received.v1"
HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
           "content-type": "application/json"}


def manifest(name="kyma-sub", sink="http://127.0.0.1:9", **config):
    return Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"sink": sink, "source": "myapp", "types": ["order.received.v1"],
                 "config": {"maxInFlightMessages": "10", **config}}})


def consumer(name="kyma-sub"):
    return t.consumer_name("default", name, SUBJECT)


# -- the policy (pure) --------------------------------------------------------------------------

def test_kyma_policy_is_a_fixed_delay_for_every_failure():
    policy = kyma_policy()
    assert (policy.max_deliveries, policy.initial_delay, policy.max_delay) == (100, 30.0, 30.0)
    assert policy.delivery_timeout == 0 and not policy.dead_letter and policy.profile == PROFILE_KYMA
    for status in (None, 400, 404, 429, 500, 503):
        for n in (1, 2, 50, 99, 100, 150):
            assert classify(status, policy, n) is Outcome.RETRY  # never dead-lettered
            assert next_delay(n, policy, retry_after=3600.0) == 30.0  # Retry-After is ignored as by Kyma
    assert classify(204, policy, 100) is Outcome.ACK


def test_profile_resolution_global_and_per_subscription():
    default = EventingConfig()
    assert default.delivery_policy({}) == RetryPolicy()
    assert default.delivery_policy({"deliveryProfile": "kyma"}) == kyma_policy()
    assert default.delivery_policy({"maxDeliveryAttempts": "5"}).max_deliveries == 5
    kyma = EventingConfig(delivery_profile="kyma", kyma_delivery=KymaDelivery(nak_delay=0.5))
    assert kyma.delivery_policy({}) == kyma_policy(0.5)
    # a Subscription can opt out of a global kyma profile, and then its keys apply again
    opted_out = kyma.delivery_policy({"deliveryProfile": "default", "maxDeliveryAttempts": "5"})
    assert opted_out.profile == "default" and opted_out.max_deliveries == 5


def test_validation_of_the_delivery_profile_key():
    assert validate(manifest(deliveryProfile="kyma")) == []
    assert validate(manifest(deliveryProfile="default", backoffDelay="1s")) == []
    errors = validate(manifest(deliveryProfile="Kyma"))
    assert errors == ['spec.config: Invalid value: "Kyma": deliveryProfile must be one of default, kyma']
    errors = validate(manifest(deliveryProfile="kyma", maxDeliveryAttempts="5", deadLetter="true"))
    assert errors == [
        'spec.config: Invalid value: "maxDeliveryAttempts": maxDeliveryAttempts cannot be combined with '
        'deliveryProfile kyma',
        'spec.config: Invalid value: "deadLetter": deadLetter cannot be combined with deliveryProfile kyma']


# -- against a real server -------------------------------------------------------------------------

async def _ready(svc, sub):
    async def check():
        got = await svc.store.get(sub.namespace, sub.name)
        return bool(got and got.status and got.status.get("ready")
                    and got.status.get("observedGeneration") == got.generation)
    await wait_until(check, what=f"{sub.key} ready")


async def _publish(svc, event_id: str) -> int:
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}/publish", headers={**HEADERS, "ce-id": event_id},
                      data=json.dumps({"id": event_id}).encode()) as r:
        return r.status


@pytest.mark.parametrize("global_profile,sub_config,kyma", [
    ("default", {"deliveryProfile": "kyma"}, True),
    ("default", {}, False),
    ("kyma", {}, True),
    ("kyma", {"deliveryProfile": "default"}, False),
])
async def test_consumer_settings_follow_the_profile(make_service, global_profile, sub_config, kyma):
    svc = await make_service(fast_config(delivery_profile=global_profile))
    sub = manifest(**sub_config)
    await svc.store.apply(sub)
    await _ready(svc, sub)
    cfg = (await svc.nc.jetstream().consumer_info("sap", consumer())).config
    if kyma:
        assert (cfg.max_deliver, cfg.ack_wait) == (100, 30)  # Kyma's jsConsumerMaxRedeliver and AckWait
    else:
        assert (cfg.max_deliver, cfg.ack_wait) == (100 + 5, 30)  # our dead-letter slack


async def test_switching_a_subscription_to_kyma_updates_its_consumer_in_place(make_service):
    svc = await make_service()
    await svc.store.apply(manifest())
    await _ready(svc, manifest())
    js = svc.nc.jetstream()
    assert (await js.consumer_info("sap", consumer())).config.max_deliver == 105
    changed = manifest(deliveryProfile="kyma")
    await svc.store.apply(changed)

    async def updated():
        return (await js.consumer_info("sap", consumer())).config.max_deliver == 100
    await wait_until(updated, what="consumer max_deliver 100")


async def test_a_failure_is_naked_with_kyma_s_30s_delay_on_the_wire(make_service, sink, nats_server):
    """The real 30 s: a spy on the consumer's ack subjects sees the NAK the dispatcher sends."""
    svc = await make_service(fast_config(delivery_profile="kyma"))
    sink.mode = "fail"
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await _ready(svc, sub)
    spy = await nats.connect(nats_server.url)
    acks: list[bytes] = []
    try:
        async def record(msg):
            acks.append(msg.data)
        await spy.subscribe(f"$JS.ACK.sap.{consumer()}.>", cb=record)
        await flushed(spy)
        assert await _publish(svc, "k1") == 204
        await wait_until(lambda: acks, what="the dispatcher's answer to the first delivery")
        assert acks[0].startswith(b"-NAK")
        assert json.loads(acks[0][len(b"-NAK"):]) == {"delay": 30 * 10**9}
        assert sink.attempts["k1"] == 1
        info = await svc.nc.jetstream().consumer_info("sap", consumer())
        assert info.num_ack_pending == 1 and info.num_redelivered == 0  # waiting out the 30 s
    finally:
        await spy.close()


async def test_after_max_deliver_the_event_stays_and_nothing_is_dead_lettered(make_service, sink):
    """100 deliveries with an injected 10 ms NAK delay, then nothing: no TERM, no dead letter."""
    svc = await make_service(fast_config(delivery_profile="kyma", kyma_delivery=KymaDelivery(nak_delay=0.01)))
    sink.mode, sink.fail_status = "fail", 503
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await _ready(svc, sub)
    assert await _publish(svc, "doomed") == 204
    js = svc.nc.jetstream()
    await wait_until(lambda: sink.attempts["doomed"] >= 100, timeout=60, what="100 deliveries")


    async def given_up():
        # Delivered 100 times and answered: nothing pending, nothing left to redeliver.
        info = await js.consumer_info("sap", consumer())
        return info.delivered.consumer_seq >= 100 and info.num_ack_pending == 0
    await wait_until(given_up, what="the 100th delivery answered")
    assert (await js.consumer_info("sap", consumer())).delivered.consumer_seq == 100
    assert sink.attempts["doomed"] == 100
    assert (await js.stream_info("sap")).state.messages == 1  # still there: Kyma removes nothing
    assert (await js.stream_info("sap-dlq")).state.messages == 0


async def test_a_poison_event_is_retried_not_dead_lettered(make_service, sink):
    svc = await make_service(fast_config(delivery_profile="kyma", kyma_delivery=KymaDelivery(nak_delay=0.01)))
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await _ready(svc, sub)
    js = svc.nc.jetstream()
    await js.publish(SUBJECT, b"not a cloudevent")

    async def exhausted():
        return (await js.consumer_info("sap", consumer())).delivered.consumer_seq >= 100
    await wait_until(exhausted, timeout=60, what="100 deliveries of the poison event")
    assert (await js.stream_info("sap")).state.messages == 1
    assert (await js.stream_info("sap-dlq")).state.messages == 0
    assert sum(sink.attempts.values()) == 0


async def test_no_delivery_timeout_a_slow_sink_is_still_acked(make_service, sink):
    """fast_config's default policy gives up on a sink after 2 s; Kyma's client waits."""
    svc = await make_service(fast_config())
    assert svc.config.retry.delivery_timeout == 2.0
    sink.delay = 2.5
    sub = manifest(sink=sink.url, deliveryProfile="kyma")
    await svc.store.apply(sub)
    await _ready(svc, sub)
    assert await _publish(svc, "slow") == 204
    await wait_until(lambda: "slow" in sink.ids(), timeout=15, what="the slow delivery")
    assert sink.attempts["slow"] == 1

    async def acked():
        info = await svc.nc.jetstream().consumer_info("sap", consumer())
        return info.num_ack_pending == 0 and info.ack_floor.stream_seq >= 1
    await wait_until(acked, what="the slow delivery acked")
