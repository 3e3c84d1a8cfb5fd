"""The eventing's shortcuts past nats-py (issue 14): deliveries and PubAcks handed over raw by
EventingService's connection, HPUBs framed from the header block the publisher built, the
delivery count read from the ack subject. The same flows through a plain nats-py client (the
fallback any other connection gets), real NATS server and real HTTP sink."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import nats.aio.client

from eventing.test_dispatch import manifest, publish, ready
from pyjetstream.eventing import service as service_module
from pyjetstream.eventing.config import EventingConfig
from pyjetstream.eventing.dispatcher import Dispatcher, _num_delivered, _raw_header
from pyjetstream.eventing.testing import wait_until


def test_delivery_count_from_the_ack_subject():
    def msg(reply):
        return SimpleNamespace(reply=reply, metadata=SimpleNamespace(num_delivered=77))
    assert _num_delivered(msg("$JS.ACK.sap.c1.3.10.9.1700000000000000000.0")) == 3
    assert _num_delivered(msg("$JS.ACK.hub.ACCHASH.sap.c1.4.10.9.1700000000000000000.0")) == 4
    assert _num_delivered(msg("$JS.ACK.hub.ACCHASH.sap.c1.5.10.9.1700000000000000000.0.rnd")) == 5
    assert _num_delivered(msg("$JS.ACK.sap.c1.x.10.9.1.0")) == 77        # not a number: nats-py decides
    assert _num_delivered(msg("something.else")) == 77


def test_raw_header_lookup():
    block = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nnats-consumer-stalled: $JS.FC.x.y\r\n\r\n"
    assert _raw_header(block, b"Nats-Consumer-Stalled") == "$JS.FC.x.y"
    assert _raw_header(block, b"Missing") == ""


async def test_flow_control_and_stalled_heartbeats_are_answered():
    sent: list[tuple[str, bytes]] = []

    class FakeNC:
        def jetstream(self, timeout):
            return None

        async def publish(self, subject, payload=b"", **kw):
            sent.append((subject, payload))

    d = Dispatcher(FakeNC(), EventingConfig())
    d._on_raw("c1", 1, b"_EVENTING.sap.c1", b"$JS.FC.sap.c1.abc", b"", b"NATS/1.0 100 FlowControl Request\r\n\r\n")
    d._on_raw("c1", 1, b"_EVENTING.sap.c1", b"", b"",
              b"NATS/1.0 100 Idle Heartbeat\r\nNats-Consumer-Stalled: $JS.FC.sap.c1.def\r\n\r\n")
    d._on_raw("c1", 1, b"_EVENTING.sap.c1", b"", b"", b"NATS/1.0 100 Idle Heartbeat\r\n\r\n")
    await asyncio.gather(*list(d._tasks))
    assert sent == [("$JS.FC.sap.c1.abc", b""), ("$JS.FC.sap.c1.def", b"")]


async def fail_retry_deliver(svc, sink, event_id: str):
    """A subscription retried every 100 ms; event_id fails at the sink, is retried, and is
    delivered once the sink answers again. Returns the subscription."""
    sub = manifest(sink=sink.url, config={"backoffPolicy": "constant", "backoffDelay": "100ms"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    sink.mode = "fail"
    assert await publish(svc, event_id) == 204
    await wait_until(lambda: sink.attempts[event_id] >= 2, what="a retry")
    sink.mode = "ok"
    await wait_until(lambda: event_id in sink.ids(), what="delivery after the retry")
    return sub


async def test_raw_paths_deliver_and_retry(make_service, sink):
    svc = await make_service()
    assert isinstance(svc.nc, service_module._Client) and svc.publisher._framed
    sub = await fail_retry_deliver(svc, sink, "r-1")
    state = svc.dispatcher.delivery_status.states[sub.key]
    assert state.attempt >= 1 and state.reason.startswith("HTTP 500")
    # No stream takes the subject: the PubAck inbox gets a no-responders status, answered 5xx.
    await svc.nc.jetstream().delete_stream("sap")
    assert await publish(svc, "r-2") == 504


async def test_plain_nats_client_takes_the_public_paths(make_service, sink, monkeypatch):
    monkeypatch.setattr(service_module, "_Client", nats.aio.client.Client)
    svc = await make_service()
    assert not svc.publisher._framed and not hasattr(svc.nc, "direct")
    await fail_retry_deliver(svc, sink, "p-1")
    await svc.nc.jetstream().delete_stream("sap")
    assert await publish(svc, "p-2") == 504


async def test_delivery_timeout_by_the_watchdog(make_service, sink):
    """A sink that never answers: each delivery ends after the subscription's deliveryTimeout
    (the dispatcher's watchdog, not an aiohttp timer per request), is retried, and is delivered
    once the sink answers again; the dispatcher keeps its tasks and settles everything."""
    svc = await make_service()
    sub = manifest(sink=sink.url, config={"backoffPolicy": "constant", "backoffDelay": "100ms",
                                          "deliveryTimeout": "500ms"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    sink.mode = "hang"
    assert await publish(svc, "t-1") == 204
    await wait_until(lambda: sink.attempts["t-1"] >= 2, what="a second attempt after the timeout")
    state = svc.dispatcher.delivery_status.states[sub.key]
    assert state.reason == "no answer within the delivery timeout of 0.5s" and state.status_code is None
    sink.mode = "ok"
    sink._hang.set()
    await wait_until(lambda: "t-1" in sink.ids(), what="delivery once the sink answers")
    assert await publish(svc, "t-2") == 204
    await wait_until(lambda: "t-2" in sink.ids(), what="the next delivery")
    await wait_until(lambda: not svc.dispatcher._deadlines and not svc.dispatcher._expired,
                     what="no delivery left under watch")


async def test_sink_cookies_are_never_sent_back(make_service):
    """A sink's Set-Cookie is not kept (as Kyma's Go client without a jar): otherwise every
    Subscription whose sink is on that host would send it, and aiohttp would filter a cookie
    jar on every delivery."""
    from aiohttp import web

    from pyjetstream.eventing.testing import StaticResolver, free_port

    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request.headers.get("Cookie"))
        resp = web.Response(status=204)
        resp.set_cookie("session", "secret-of-sink-a", path="/")
        return resp

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        svc = await make_service(resolver=StaticResolver({"sink-a.example.com": "127.0.0.1"}))
        sub = manifest(sink=f"http://sink-a.example.com:{port}/")
        await svc.store.apply(sub)
        await ready(svc, sub)
        for i in range(3):
            assert await publish(svc, f"c-{i}") == 204
            await wait_until(lambda n=i: len(seen) > n, what=f"delivery {i}")
        assert seen == [None, None, None]
    finally:
        await runner.cleanup()
