"""Dead letters through the CLI: listed with their reason, replayed once the sink works again."""

from __future__ import annotations

import json

from pyjetstream.eventing.testing import wait_until

from .test_cli import cli
from .test_dispatch import manifest, publish, ready


async def test_list_and_replay_dead_letters(make_service, sink, nats_server):
    svc = await make_service()
    sink.mode = "fail"
    sub = manifest(sink=sink.url, config={"maxDeliveryAttempts": "2", "backoffDelay": "50ms"})
    await svc.store.apply(sub)
    await ready(svc, sub)
    for i in range(3):
        assert await publish(svc, f"dl-{i}") == 204
    js = svc.nc.jetstream()

    async def three():
        return (await js.stream_info("sap-dlq")).state.messages == 3
    await wait_until(three, what="three dead letters")
    code, out, err = await cli("-s", nats_server.url, "subscription", "dead-letters", "lastorder-sub", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["id"] for r in rows) == ["dl-0", "dl-1", "dl-2"]
    assert {r["reason"] for r in rows} == {"MaxDeliveryAttemptsExceeded"}
    assert {r["lastStatus"] for r in rows} == {"500"} and {r["type"] for r in rows} == {"order.received.v1"}
    code, out, _ = await cli("-s", nats_server.url, "subscription", "get", "lastorder-sub")
    assert "Messages: 3" in " ".join(out.split())

    sink.mode = "ok"
    code, out, err = await cli("-s", nats_server.url, "subscription", "dead-letters", "lastorder-sub", "--replay")
    assert code == 0, err
    assert "replayed 3 of 3" in out
    await wait_until(lambda: {"dl-0", "dl-1", "dl-2"} <= set(sink.ids()), what="replayed events delivered")
    assert (await js.stream_info("sap-dlq")).state.messages == 0
