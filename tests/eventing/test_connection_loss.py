"""The proxy when its NATS server goes away: not ready meanwhile, 5xx for publishes (never a
2xx for an event that is not stored), ready again after the server is back, no acknowledged
event lost, an unexpected -ERR answered by reconnecting, and a stop that ends promptly.

Real server processes (both implementations, see conftest) killed with SIGKILL and
restarted on the same port and store; real HTTP over sockets.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import nats
import pytest

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import wait_until

from .conftest import fast_config

GOOD = {"ce-specversion": "1.0", "ce-type": "order.created.v1", "ce-source": "app",
        "content-type": "application/json"}
LIMITS = {"retention": "limits"}


async def publish(http: aiohttp.ClientSession, port: int, event_id: str) -> int:
    try:
        async with http.post(f"http://127.0.0.1:{port}/publish", headers={**GOOD, "ce-id": event_id},
                             data=b"{}", timeout=aiohttp.ClientTimeout(total=15)) as r:
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0  # no answer is not an acknowledgement either


async def readyz(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as r:
        return r.status, await r.text()


async def stored_ids(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("sap")
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg("sap", seq)
            except nats.js.errors.NotFoundError:
                continue
            ids.append(ce.parse_structured(msg.data).id)
        return ids
    finally:
        await nc.close()


async def test_restart_not_ready_meanwhile_5xx_and_nothing_acknowledged_lost(make_service, nats_server) -> None:
    svc = await make_service(fast_config(stream=LIMITS), run_dispatcher=False)
    acked: list[str] = []
    async with aiohttp.ClientSession() as http:
        for i in range(20):
            assert await publish(http, svc.port, f"before-{i}") == 204
            acked.append(f"before-{i}")
        assert (await readyz(svc.port))[0] == 200

        nats_server.kill()
        await wait_until(lambda: not svc.nc.is_connected, what="the proxy to notice the server is gone")
        status, reason = await readyz(svc.port)
        assert status == 503 and "NATS connection is reconnecting" in reason
        for i in range(3):
            status = await publish(http, svc.port, f"outage-{i}")
            assert 500 <= status < 600, status

        nats_server.start()
        await wait_until(lambda: svc.nc.is_connected, timeout=30, what="the proxy to reconnect")
        assert not svc.nc.is_closed
        assert (await readyz(svc.port))[0] == 200
        for i in range(5):
            assert await publish(http, svc.port, f"after-{i}") == 204
            acked.append(f"after-{i}")
    stored = await stored_ids(nats_server.url)
    assert [i for i in acked if i not in stored] == []
    assert not [i for i in stored if i.startswith("outage-")]


async def test_publishing_through_a_kill_loses_no_acknowledged_event(make_service, nats_server) -> None:
    """Publishers keep going while the server is killed and restarted: every id answered with
    a 2xx is in the stream afterwards; the others got a 5xx or no answer."""
    svc = await make_service(fast_config(stream=LIMITS), run_dispatcher=False)
    answers: dict[str, int] = {}
    stop = asyncio.Event()

    async def publisher(n: int) -> None:
        async with aiohttp.ClientSession() as http:
            i = 0
            while not stop.is_set():
                event_id = f"p{n}-{i}"
                answers[event_id] = await publish(http, svc.port, event_id)
                i += 1
                await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(publisher(n)) for n in range(3)]
    try:
        await wait_until(lambda: sum(1 for s in answers.values() if s == 204) >= 30, what="publishes before the kill")
        nats_server.kill()
        await wait_until(lambda: not svc.nc.is_connected, what="the proxy to notice")
        await asyncio.sleep(0.3)
        nats_server.start()
        await wait_until(lambda: svc.nc.is_connected, timeout=30, what="the proxy to reconnect")
        after = len(answers)
        await wait_until(lambda: sum(1 for k, s in list(answers.items())[after:] if s == 204) >= 10,
                         timeout=20, what="publishes after the restart")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert set(answers.values()) <= {204, 0} | set(range(500, 600)), set(answers.values())
    assert any(s != 204 for s in answers.values())  # the outage was seen
    stored = set(await stored_ids(nats_server.url))
    lost = [k for k, s in answers.items() if s == 204 and k not in stored]
    assert lost == []


async def test_an_unexpected_err_reconnects_instead_of_closing_for_good(make_service) -> None:
    """nats-py closes its connection for good on an -ERR it does not know; the service's client
    reconnects instead. A pedantic connection publishing to an invalid subject makes both
    servers answer -ERR 'Invalid Publish Subject'."""
    svc = await make_service(fast_config(stream=LIMITS), run_dispatcher=False,
                             connect_options={"pedantic": True})
    nc = svc.nc
    reconnects = nc.stats["reconnects"]
    await nc.publish("kyma..bad", b"x")
    await wait_until(lambda: nc.stats["reconnects"] > reconnects, timeout=20, what="a reconnect after the -ERR")
    await wait_until(lambda: nc.is_connected, timeout=20, what="connected again")
    assert svc.nc is nc and not nc.is_closed
    async with aiohttp.ClientSession() as http:
        assert await publish(http, svc.port, "after-err") == 204
    assert (await readyz(svc.port))[0] == 200


@pytest.fixture
def subscriptions():
    def make(sink_url: str, n: int) -> list[Subscription]:
        return [Subscription.from_manifest({
            "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
            "metadata": {"name": f"s{i}", "namespace": "default"},
            "spec": {"sink": sink_url, "source": "app", "types": [f"order.t{i}.v1"]}}) for i in range(n)]
    return make


async def test_stop_is_prompt_when_the_server_is_gone(make_service, nats_server, sink, subscriptions) -> None:
    svc = await make_service()
    for sub in subscriptions(sink.url, 3):
        await svc.store.apply(sub)
    await wait_until(lambda: len(svc.dispatcher.bound()) == 3, what="three consumers bound")
    nats_server.kill()
    await wait_until(lambda: not svc.nc.is_connected, what="the service to notice")
    started = time.monotonic()
    await svc.stop()
    # generous for a loaded machine; it used to take 10 s and more (a stop waiting on a dead server)
    assert time.monotonic() - started < 4.0
    assert svc.nc.is_closed


async def test_stop_right_after_the_kill_is_bounded(make_service, nats_server, sink, subscriptions) -> None:
    """The kill may not be noticed yet when stop() begins: still bounded, by the drain grace."""
    svc = await make_service()
    for sub in subscriptions(sink.url, 3):
        await svc.store.apply(sub)
    await wait_until(lambda: len(svc.dispatcher.bound()) == 3, what="three consumers bound")
    nats_server.kill()
    started = time.monotonic()
    await svc.stop()
    assert time.monotonic() - started < 9.0
