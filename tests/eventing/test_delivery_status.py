"""The last delivery error per Subscription: the dispatcher's record, its rate-limited write into
the status (`backend.deliveryStatus` and the "Webhook call status" condition), what the CLI
shows, and its clearing after a success. Real NATS server, real HTTP sink, nats-py."""

from __future__ import annotations

from eventing.test_dispatch import manifest, publish, ready
from pyjetstream.cli.subscription import render_subscription
from pyjetstream.console.sampler import status_failure
from pyjetstream.eventing import subscriptions as subs
from pyjetstream.eventing.delivery_status import DeliveryStatusBook
from pyjetstream.eventing.dispatcher import DeliveryResult
from pyjetstream.eventing.testing import wait_until

FAST_RETRY = {"backoffPolicy": "constant", "backoffDelay": "100ms", "backoffMax": "100ms"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_book_rate_limits_writes_and_marks_recovery():
    wall, mono = FakeClock(), FakeClock()
    book = DeliveryStatusBook(interval=2.0, wall=wall, monotonic=mono)
    changes: list[int] = []
    book.on_change = lambda: changes.append(1)
    book.succeeded("ns/a")                       # nothing failed: nothing to write
    assert book.due() == ([], None) and not changes

    book.failed("ns/a", "connection\nrefused", None, 1, "c1")
    due, wait = book.due()
    assert [k for k, _ in due] == ["ns/a"] and wait is None
    fields = due[0][1]
    assert fields["lastFailedDeliveryReason"] == "connection refused"   # one line
    assert fields["lastFailedDeliveryAttempt"] == 1 and "lastSuccessfulDelivery" not in fields
    book.written("ns/a", fields)
    assert book.due() == ([], None)

    # More failures within the interval: due only when the interval has passed.
    mono.now += 0.5
    wall.now += 0.5
    book.failed("ns/a", "HTTP 503: busy", 503, 2, "c1")
    assert book.due() == ([], 1.5)
    mono.now += 1.5
    due, _ = book.due()
    assert due[0][1]["lastFailedDeliveryStatusCode"] == 503 and due[0][1]["lastFailedDeliveryAttempt"] == 2
    book.written("ns/a", due[0][1])

    # A failed write is tried again after the interval, not at once.
    book.succeeded("ns/a")
    mono.now += 2.0
    due, _ = book.due()
    assert "lastSuccessfulDelivery" in due[0][1]
    book.written("ns/a", None)
    assert book.due() == ([], 2.0)
    mono.now += 2.0
    assert [k for k, _ in book.due()[0]] == ["ns/a"]
    book.forget("ns/a")
    assert book.due() == ([], None) and not book.failing
    assert len(changes) == 3


def test_status_merge_keeps_manager_fields_and_condition_transitions():
    sub = manifest()
    base = subs.status_synced(sub, "2026-12-03T00:00:00Z")
    failing = subs.with_delivery(base, {"lastFailedDelivery": "x", "lastFailedDeliveryReason": "HTTP 503"},
                                 "2026-12-03T00:00:01Z")
    assert failing["ready"] and failing["backend"]["types"] == base["backend"]["types"]
    cond = failing["conditions"][-1]
    assert cond["type"] == subs.COND_WEBHOOK and cond["status"] == "False" and cond["message"] == "HTTP 503"
    assert base["backend"].get("deliveryStatus") is None  # the input is not changed
    # The manager's next status keeps what the dispatcher wrote.
    again = subs.carry_delivery(subs.status_synced(sub, "2026-12-03T00:00:05Z"), failing)
    assert again["backend"]["deliveryStatus"] == failing["backend"]["deliveryStatus"]
    assert subs.without_timestamps(again) == subs.without_timestamps(failing)
    ok = subs.with_delivery(failing, {"lastFailedDelivery": "x", "lastFailedDeliveryReason": "HTTP 503",
                                      "lastSuccessfulDelivery": "y"}, "2026-12-03T00:00:09Z")
    cond = ok["conditions"][-1]
    assert cond["status"] == "True" and cond["message"] == "" and cond["lastTransitionTime"] == "2026-12-03T00:00:09Z"
    assert len([c for c in ok["conditions"] if c["type"] == subs.COND_WEBHOOK]) == 1


def test_failure_descriptions():
    assert DeliveryResult(503, "busy\n now").describe() == "HTTP 503: busy now"
    assert DeliveryResult(500).describe() == "HTTP 500"
    assert DeliveryResult(None, "x", cause="connection refused").describe() == "connection refused"
    assert DeliveryResult(None, "sink address 169.254.169.254 is link-local", refused=True).describe() \
        .startswith("sink refused by policy: sink address 169.254.169.254")


async def _status(svc, sub):
    return await svc.store.get_status(sub.namespace, sub.name)


def _delivery(status):
    return ((status or {}).get("backend") or {}).get("deliveryStatus") or {}


async def _revision(svc, sub):
    return (await svc.store.kv.get(subs.status_key(sub.namespace, sub.name))).revision


async def fast_retry_subscription(make_service, sink):
    """A service with one ready subscription to sink, retried every 100 ms: (service, subscription)."""
    svc = await make_service()
    sub = manifest(sink=sink.url, config=FAST_RETRY)
    await svc.store.apply(sub)
    await ready(svc, sub)
    return svc, sub


async def test_sink_down_shows_the_error_then_clears(make_service, sink):
    svc, sub = await fast_retry_subscription(make_service, sink)
    assert await publish(svc, "ok-1") == 204
    await wait_until(lambda: "ok-1" in sink.ids(), what="first delivery")
    assert "deliveryStatus" not in (await _status(svc, sub))["backend"]   # no failure, no field

    await sink.stop()                                     # connection refused from now on
    assert await publish(svc, "down-1") == 204

    async def error_shown():
        return _delivery(await _status(svc, sub)).get("lastFailedDeliveryReason") == "connection refused"
    await wait_until(error_shown, what="the connection error in the status")
    status = await _status(svc, sub)
    fields = _delivery(status)
    assert fields["lastFailedDeliveryAttempt"] >= 1 and "lastFailedDeliveryStatusCode" not in fields
    assert fields["lastFailedDeliveryConsumer"] == status["backend"]["types"][0]["consumerName"]
    assert "lastSuccessfulDelivery" not in fields
    assert status["ready"] is True      # the Subscription is still served; its sink is not answering
    cond = next(c for c in status["conditions"] if c["type"] == subs.COND_WEBHOOK)
    assert cond["status"] == "False" and cond["message"] == "connection refused"
    got = await svc.store.get(sub.namespace, sub.name)
    shown = render_subscription(got, None)
    assert "Last Delivery Error" in shown and "connection refused" in shown and "failing" in shown
    assert status_failure(status).text == "connection refused"

    await sink.start()                                    # back on the same port

    async def recovered():
        return "lastSuccessfulDelivery" in _delivery(await _status(svc, sub))
    await wait_until(recovered, what="the recovery in the status")
    await wait_until(lambda: "down-1" in sink.ids(), what="redelivery")
    status = await _status(svc, sub)
    cond = next(c for c in status["conditions"] if c["type"] == subs.COND_WEBHOOK)
    assert cond["status"] == "True" and cond["message"] == ""
    assert _delivery(status)["lastFailedDeliveryReason"] == "connection refused"   # kept, marked recovered
    assert "recovered at" in render_subscription(await svc.store.get(sub.namespace, sub.name), None)
    assert status_failure(status).recovered_at is not None


async def test_failures_do_not_rewrite_the_status_per_delivery(make_service, sink):
    svc, sub = await fast_retry_subscription(make_service, sink)
    sink.mode, sink.fail_status = "fail", 503
    assert await publish(svc, "busy-1") == 204

    async def shown():
        return _delivery(await _status(svc, sub)).get("lastFailedDeliveryStatusCode") == 503
    await wait_until(shown, what="the 503 in the status")
    assert _delivery(await _status(svc, sub))["lastFailedDeliveryReason"] == "HTTP 503: sink failing on purpose"
    book = svc.dispatcher.delivery_status
    book.interval = 3600.0                       # from now on, no write is due
    revision = await _revision(svc, sub)
    tried = sink.attempts["busy-1"]
    await wait_until(lambda: sink.attempts["busy-1"] >= tried + 5, what="five more failed deliveries")
    await svc.manager.resync()                   # a re-sync must not drop or rewrite the fields either
    assert await _revision(svc, sub) == revision
    assert book.states[sub.key].attempt >= tried + 5  # recorded in memory, not written

    book.interval = 0.0
    book.on_change()                             # wake the writer as a new failure would

    async def newer():
        return _delivery(await _status(svc, sub)).get("lastFailedDeliveryAttempt", 0) >= tried + 5
    await wait_until(newer, what="the newest attempt written once allowed")


async def test_hostile_sink_answer_is_one_bounded_line(make_service, sink):
    svc, sub = await fast_retry_subscription(make_service, sink)
    sink.mode, sink.fail_status = "fail", 502
    hostile = "<script>alert(1)</script>\r\n" + "x" * 5000
    # FlakySink answers its fixed text; make it answer ours.
    original = sink._handle

    async def handle(request):
        from aiohttp import web
        await request.read()
        sink.attempts[request.headers.get("ce-id", "?")] += 1
        return web.Response(status=502, text=hostile)
    sink._handle = handle
    try:
        await sink.stop()
        await sink.start()
        assert await publish(svc, "h-1") == 204

        async def shown():
            return _delivery(await _status(svc, sub)).get("lastFailedDeliveryStatusCode") == 502
        await wait_until(shown, what="the 502 in the status")
    finally:
        sink._handle = original
    reason = _delivery(await _status(svc, sub))["lastFailedDeliveryReason"]
    assert reason.startswith("HTTP 502: <script>alert(1)</script> xxx") and "\n" not in reason
    assert len(reason) <= 256
