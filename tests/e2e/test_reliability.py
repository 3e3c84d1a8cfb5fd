"""At-least-once under a failing sink, and exactly once when nothing fails.

A real HTTP sink (FlakySink) answers 5xx, hangs, resets connections or vanishes; every
event the proxy accepted (2xx) must reach it at least once. The services and the NATS
server are real processes or real sockets; nothing is mocked.
"""

from __future__ import annotations

import asyncio

import aiohttp

from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import wait_until

HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
           "content-type": "application/json"}


async def subscribe(svc, sink, **config):
    doc = {"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
           "metadata": {"name": "orders", "namespace": "default"},
           "spec": {"sink": sink.url, "source": "myapp", "types": ["order.received.v1"],
                    "config": {"maxInFlightMessages": "20", **config}}}
    sub = Subscription.from_manifest(doc)
    await svc.store.apply(sub)

    async def ready():
        st = await svc.store.get_status("default", "orders")
        return bool(st and st.get("ready") and st["conditions"][-1]["status"] == "True")
    await wait_until(ready, what="subscription ready")


async def publish_many(port_of, ids, concurrency=10):
    """POST every id; returns those the proxy accepted. `port_of()` may change mid-run."""
    accepted: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)

    async def worker(http):
        while not queue.empty():
            event_id = queue.get_nowait()
            try:
                async with http.post(f"http://127.0.0.1:{port_of()}/publish", headers={**HEADERS, "ce-id": event_id},
                                     data=b'{"n":1}') as r:
                    if 200 <= r.status < 300:
                        accepted.append(event_id)
            except aiohttp.ClientError:
                pass  # not accepted: the client would retry; at-least-once covers accepted events only

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return accepted


async def all_arrive(sink, accepted, timeout=20.0):
    wanted = set(accepted)
    await wait_until(lambda: wanted <= set(sink.ids()), timeout=timeout,
                     what=f"{len(wanted - set(sink.ids()))} of {len(wanted)} accepted events")


async def test_exactly_once_when_nothing_fails(make_service, sink):
    svc = await make_service()
    await subscribe(svc, sink)
    ids = [f"ok-{i}" for i in range(300)]
    accepted = await publish_many(lambda: svc.port, ids)
    assert sorted(accepted) == sorted(ids)
    await all_arrive(sink, accepted)
    counts = sink.ids()
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]


async def test_sink_answering_5xx_for_a_while(make_service, sink):
    svc = await make_service()
    await subscribe(svc, sink)
    sink.mode = "fail"
    accepted = await publish_many(lambda: svc.port, [f"e5-{i}" for i in range(60)])
    assert len(accepted) == 60
    await wait_until(lambda: sum(sink.attempts.values()) >= 60, what="failed attempts")
    assert sink.received == []
    sink.mode = "ok"
    await all_arrive(sink, accepted)


async def test_sink_hanging_then_recovering(make_service, sink):
    svc = await make_service()
    await subscribe(svc, sink, deliveryTimeout="300ms")
    sink.mode = "hang"
    accepted = await publish_many(lambda: svc.port, [f"hang-{i}" for i in range(30)])
    assert len(accepted) == 30
    await wait_until(lambda: len(sink.attempts) >= 20, what="hung attempts")
    sink.mode = "ok"
    sink._hang.set()  # let the hung handlers finish; the dispatcher has given up on them already
    await all_arrive(sink, accepted)


async def test_sink_resetting_connections(make_service, sink):
    svc = await make_service()
    await subscribe(svc, sink)
    sink.mode = "reset"
    accepted = await publish_many(lambda: svc.port, [f"rst-{i}" for i in range(40)])
    await wait_until(lambda: sum(sink.attempts.values()) >= 40, what="reset attempts")
    assert sink.received == []
    sink.mode = "ok"
    await all_arrive(sink, accepted)


async def test_sink_gone_for_a_while(make_service, sink):
    svc = await make_service()
    await subscribe(svc, sink)
    await sink.stop()
    accepted = await publish_many(lambda: svc.port, [f"gone-{i}" for i in range(50)])
    assert len(accepted) == 50
    js = svc.nc.jetstream()

    async def stored():
        return (await js.stream_info("sap")).state.messages == 50
    await wait_until(stored, what="50 events waiting in the stream")
    await sink.start()
    await all_arrive(sink, accepted)

    async def empty():
        return (await js.stream_info("sap")).state.messages == 0
    await wait_until(empty, what="stream drained (interest retention)")


async def test_eventing_restarted_mid_stream(make_service, sink):
    first = await make_service()
    await subscribe(first, sink)
    current = {"port": first.port}
    ids = [f"rs-{i}" for i in range(400)]
    publishing = asyncio.create_task(publish_many(lambda: current["port"], ids, concurrency=4))
    await wait_until(lambda: len(sink.received) >= 50, what="deliveries before the restart")
    await first.stop()
    second = await make_service()
    current["port"] = second.port
    accepted = await publishing
    assert len(accepted) >= 50
    await all_arrive(sink, accepted)


async def test_nats_server_killed_and_restarted_mid_stream(make_service, sink, nats_server):
    svc = await make_service()
    await subscribe(svc, sink)
    ids = [f"kill-{i}" for i in range(600)]
    publishing = asyncio.create_task(publish_many(lambda: svc.port, ids, concurrency=4))
    await wait_until(lambda: len(sink.received) >= 30, what="deliveries before the kill")
    nats_server.kill()
    await asyncio.sleep(0)  # let in-flight POSTs fail over to 5xx while the server is away
    nats_server.start()
    accepted = await publishing
    assert len(accepted) >= 30
    await all_arrive(sink, accepted, timeout=30)
