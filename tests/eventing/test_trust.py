"""Eventing you can expose and trust: poison events, start-up cleanup, legacy copies, stream
drift, sink answers and the egress (SSRF) guard, each against both engines."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import aiohttp
import nats
import pytest
from aiohttp import web
from servers import free_port

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing import types as t
from pyjetstream.eventing.egress import SinkPolicy
from pyjetstream.eventing.manager import StreamConfigError
from pyjetstream.eventing.subscriptions import Subscription
from pyjetstream.eventing.testing import StaticResolver, wait_until

from .conftest import VENV_BIN, fast_config

SUBJECT = "kyma.myapp.order.received.v1"
CONSUMER = t.consumer_name("default", "orders", SUBJECT)
# Well below the consumer's 30 s ack_wait: an event whose delivery died unsettled would hold
# its in-flight slot past this deadline.
PROMPT = 15.0


def manifest(sink: str, name: str = "orders", **config: str) -> Subscription:
    return Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"sink": sink, "source": "myapp", "types": ["order.received.v1"],
                 "config": {"maxInFlightMessages": "10", **config}}})


async def status_of(svc, name: str = "orders") -> dict:
    return (await svc.store.get_status("default", name)) or {}


async def until_ready(svc, name: str = "orders") -> None:
    async def ready():
        return bool((await status_of(svc, name)).get("ready"))
    await wait_until(ready, timeout=20, what=f"{name} ready")


async def post_event(svc, event_id: str, extra: dict | None = None) -> tuple[int, str]:
    headers = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp", "ce-id": event_id,
               "content-type": "application/json", **(extra or {})}
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}/publish", headers=headers, data=b'{"n":1}') as r:
        return r.status, await r.text()


def stored(event_id: str, **attrs: str) -> bytes:
    """An event in the stream's stored form, as the proxy writes it (or as anyone with
    publish rights on the stream subject can write it, bypassing the proxy)."""
    doc = {"specversion": "1.0", "id": event_id, "source": "myapp", "type": SUBJECT,
           "originaltype": "order.received.v1", "datacontenttype": "application/json", "data": {"n": 1}, **attrs}
    return json.dumps(doc).encode()


async def dead_letters(js) -> list:
    try:
        sub = await js.pull_subscribe("kyma-dlq.>", stream="sap-dlq")
    except nats.js.errors.NotFoundError:
        return []
    try:
        return await sub.fetch(100, timeout=1.0)
    except (nats.errors.TimeoutError, TimeoutError):
        return []
    finally:
        await sub.unsubscribe()


async def dlq_count(js) -> int:
    return (await js.stream_info("sap-dlq")).state.messages


# -- 1. poison events -------------------------------------------------------------------------

POISON = {
    "crlf-traceparent": {"traceparent": "00-abc\r\nX-Injected: 1"},
    "crlf-datacontenttype": {"datacontenttype": "application/json\r\nX-Injected: 1"},
}


async def test_proxy_refuses_attributes_that_would_break_header_lines(make_service):
    svc = await make_service()
    status, text = await post_event(svc, "p1", {"ce-traceparent": "00-abc%0D%0AX-Injected:%201"})
    assert status == 400 and "traceparent" in text
    status, text = await post_event(svc, "p2", {"traceparent": "not-a-trace"})
    assert status == 400 and "W3C traceparent" in text
    status, text = await post_event(svc, "p3", {"X-B3-SpanId": "xyz"})
    assert status == 400 and "b3spanid" in text
    body = json.dumps({"specversion": "1.0", "id": "p4", "source": "myapp", "type": "order.received.v1",
                       "datacontenttype": "application/json\r\nX-Injected: 1", "data": {}}).encode()
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}/publish", data=body,
                      headers={"content-type": "application/cloudevents+json"}) as r:
        assert r.status == 400 and "datacontenttype" in await r.text()
    assert (await svc.nc.jetstream().stream_info("sap")).state.messages == 0


@pytest.mark.parametrize("validated", [True, False], ids=["stored-events-validated", "send-fails"])
async def test_poison_events_do_not_stall_a_subscription(make_service, sink, monkeypatch, validated):
    if not validated:
        # Exercise the dispatcher's own guard: the attribute check is off, so the poison
        # reaches aiohttp, which refuses the header while building or writing the request.
        monkeypatch.setattr(ce, "header_attribute_problems", lambda attrs: [], raising=False)
        monkeypatch.setattr(ce, "string_problem", lambda value: None)  # CR/LF are not Strings either
    svc = await make_service()
    await svc.store.apply(manifest(sink.url, maxInFlightMessages="2"))
    await until_ready(svc)
    js = svc.nc.jetstream()
    for name, attrs in POISON.items():
        await js.publish(SUBJECT, stored(name, **attrs))
    for n in range(3):
        await js.publish(SUBJECT, stored(f"good-{n}"))
    await wait_until(lambda: len(sink.received) == 3, timeout=PROMPT, what="good events past the poison")
    assert sorted(e.id for e in sink.received) == ["good-0", "good-1", "good-2"]
    assert all("X-Injected" not in h and "x-injected" not in h for h in sink.headers)

    async def both_dead_lettered():
        return await dlq_count(js) == 2
    await wait_until(both_dead_lettered, timeout=PROMPT, what="poison events dead-lettered")
    letters = await dead_letters(js)
    assert sorted(json.loads(m.data)["id"] for m in letters) == sorted(POISON)
    reason = "InvalidCloudEvent" if validated else "UnsendableEvent"
    assert {m.headers["Eventing-Dead-Letter-Reason"] for m in letters} == {reason}

    async def settled():
        info = await js.consumer_info("sap", CONSUMER)
        return info.num_ack_pending == 0 and info.num_pending == 0
    await wait_until(settled, timeout=PROMPT, what="every delivery settled")


# -- 2. start-up cleanup ----------------------------------------------------------------------

async def test_invalid_subscription_keeps_its_consumer_and_backlog_over_a_restart(make_service, sink, nats_server):
    first = await make_service()
    await first.store.apply(manifest(sink.url))
    await until_ready(first)
    await first.stop()
    nc = await nats.connect(nats_server.url)
    try:
        for n in range(3):
            await nc.jetstream().publish(SUBJECT, stored(f"waiting-{n}"))
    finally:
        await nc.close()
    # Restarted with Kyma's strict sink rules, the 127.0.0.1 sink makes the spec invalid.
    strict = await make_service(fast_config(strict_sinks=True))
    assert (await status_of(strict))["ready"] is False
    info = await strict.nc.jetstream().consumer_info("sap", CONSUMER)
    assert info.num_pending == 3
    assert sink.received == []
    await strict.stop()
    # Valid again: the backlog is delivered.
    await make_service()
    await wait_until(lambda: len(sink.received) == 3, timeout=PROMPT, what="backlog delivered")
    assert sorted(e.id for e in sink.received) == ["waiting-0", "waiting-1", "waiting-2"]


# -- 3. legacy single-segment types -----------------------------------------------------------

async def post_legacy(svc, event_type: str) -> tuple[int, dict]:
    body = {"event-type": event_type, "event-type-version": "v1", "event-time": "2020-04-02T21:37:00Z",
            "data": {"n": 1}}
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}/myapp/v1/events", json=body) as r:
        return r.status, await r.json()


def _keeping() -> object:
    # Limits retention keeps events nobody subscribed to, so the test can count them.
    return fast_config(stream={"retention": "limits"})


async def test_legacy_single_segment_type_is_stored_once_per_copy(make_service):
    svc = await make_service(_keeping())
    status, body = await post_legacy(svc, "created")
    assert status == 200 and body["event-id"]
    js = svc.nc.jetstream()
    assert (await js.stream_info("sap")).state.messages == 2
    first = await js.get_last_msg("sap", "kyma.myapp.created.v1")
    second = await js.get_last_msg("sap", "kyma.sap.kyma.custom.myapp.created.v1")
    assert json.loads(first.data)["id"] == json.loads(second.data)["id"] == body["event-id"]


async def test_legacy_request_that_cannot_store_every_copy_stores_none(make_service):
    svc = await make_service(_keeping())
    # The first copy's subject would be fine; the second's type loses every character.
    status, body = await post_legacy(svc, "$$")
    assert status == 400 and body["type"] == "bad_payload_syntax"
    assert (await svc.nc.jetstream().stream_info("sap")).state.messages == 0


# -- 4. stream drift that cannot be updated ---------------------------------------------------

async def _limits_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(name="sap", subjects=["kyma.>"], retention="limits", storage="file")
    finally:
        await nc.close()


async def test_start_is_refused_when_the_stream_cannot_be_updated(make_service, nats_server):
    await _limits_stream(nats_server.url)
    with pytest.raises(StreamConfigError, match="retention: limits -> interest"):
        await make_service()
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info("sap")
        assert getattr(info.config.retention, "value", info.config.retention) == "limits"  # left as it was
    finally:
        await nc.close()


async def test_eventing_command_exits_with_the_reason(nats_server):
    await _limits_stream(nats_server.url)
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "pyjetstream"), "eventing", "--nats", nats_server.url, "--publish-port", str(free_port()),
        "--connect-retry", "5", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1
    assert b"cannot be updated" in err and b"retention" in err


# -- 5. sink answers: redirects and huge bodies -----------------------------------------------

class _App:
    """A one-route sink with a custom handler on a free loopback port."""

    def __init__(self, handler) -> None:
        self.port = free_port()
        self.handler = handler
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> _App:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handler)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_redirects_are_not_followed(make_service, sink):
    attempts: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        attempts.append(request.headers.get("ce-id", "?"))
        raise web.HTTPTemporaryRedirect(sink.url + "/elsewhere")

    async with _App(redirect) as redirector:
        svc = await make_service()
        await svc.store.apply(manifest(redirector.url, maxDeliveryAttempts="2", backoffDelay="50ms"))
        await until_ready(svc)
        assert (await post_event(svc, "r1"))[0] == 204
        js = svc.nc.jetstream()

        async def dead_lettered():
            return await dlq_count(js) == 1
        await wait_until(dead_lettered, timeout=PROMPT, what="redirected event dead-lettered")
    letter = (await dead_letters(js))[0]
    assert letter.headers["Eventing-Last-Status"] == "307"
    assert "not followed" in letter.headers["Eventing-Last-Error"]
    assert attempts == ["r1", "r1"]
    assert sum(sink.attempts.values()) == 0  # the redirect target never saw the event


HUGE = 256 * 1024 * 1024
CHUNK = b"\0" * (64 * 1024)


async def test_huge_sink_answer_is_not_read(make_service):
    written: list[int] = []
    finished = asyncio.Event()

    async def stream_forever(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        sent = 0
        try:
            while sent < HUGE:
                await resp.write(CHUNK)
                sent += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass  # the dispatcher closed the connection: what this test wants
        finally:
            written.append(sent)
            finished.set()
        return resp

    async with _App(stream_forever) as huge:
        svc = await make_service()
        await svc.store.apply(manifest(huge.url))
        await until_ready(svc)
        assert (await post_event(svc, "big"))[0] == 204
        js = svc.nc.jetstream()

        async def acked():
            info = await js.consumer_info("sap", CONSUMER)
            return info.delivered.stream_seq == 1 and info.num_ack_pending == 0 and info.num_pending == 0
        await wait_until(acked, timeout=PROMPT, what="200 with a huge body acked")
        await asyncio.wait_for(finished.wait(), PROMPT)
    assert len(written) == 1  # acked on the first attempt
    # The client read 1 KiB and closed; only socket buffers were filled, not 256 MiB.
    assert written[0] < 32 * 1024 * 1024
    assert await dlq_count(js) == 0


# -- 6. egress (SSRF) guard -------------------------------------------------------------------

async def _waits_undelivered(svc, event_id: str) -> None:
    assert (await post_event(svc, event_id))[0] == 204
    js = svc.nc.jetstream()

    async def pending():
        info = await js.consumer_info("sap", CONSUMER)
        return info.num_pending + info.num_ack_pending == 1
    await wait_until(pending, timeout=PROMPT, what="event waiting in the consumer")
    assert await dlq_count(js) == 0


async def test_sink_resolving_to_metadata_address_is_refused(make_service):
    resolver = StaticResolver({"metadata.test": "169.254.169.254"})
    svc = await make_service(resolver=resolver)
    await svc.store.apply(manifest("http://metadata.test/latest/meta-data/"))

    async def refused():
        st = await status_of(svc)
        return st.get("ready") is False and "egress policy" in json.dumps(st)
    await wait_until(refused, timeout=PROMPT, what="refusal in the status")
    message = (await status_of(svc))["conditions"][1]["message"]
    assert "169.254.169.254" in message and "metadata" in message
    await _waits_undelivered(svc, "m1")
    assert resolver.lookups["metadata.test"] >= 1


class _Rebinding(StaticResolver):
    """Answers the sink check with the harmless address, every later lookup with metadata."""

    async def resolve(self, host, port=0, family=0):
        if self.lookups[host] == 0:
            self.lookups[host] += 1
            return await StaticResolver({host: "127.0.0.1"}).resolve(host, port, family)
        self.names[host] = "169.254.169.254"
        return await super().resolve(host, port, family)


async def test_dns_rebinding_is_refused_at_connect_time(make_service, sink):
    svc = await make_service(resolver=_Rebinding({}))
    await svc.store.apply(manifest(f"http://rebind.test:{sink.port}/"))
    await until_ready(svc)  # the check saw 127.0.0.1
    assert (await post_event(svc, "rb1"))[0] == 204

    async def refused():
        st = await status_of(svc)
        return st.get("ready") is False and "169.254.169.254" in json.dumps(st)
    await wait_until(refused, timeout=PROMPT, what="connect-time refusal in the status")
    assert sink.received == [] and sum(sink.attempts.values()) == 0
    js = svc.nc.jetstream()
    info = await js.consumer_info("sap", CONSUMER)
    assert info.num_pending + info.num_ack_pending == 1  # the event waits
    assert await dlq_count(js) == 0


async def test_public_policy_refuses_loopback_until_allowed(make_service, sink):
    svc = await make_service(fast_config(sink_policy=SinkPolicy("public")))
    await svc.store.apply(manifest(sink.url))

    async def refused():
        st = await status_of(svc)
        return st.get("ready") is False and "not a public address" in json.dumps(st)
    await wait_until(refused, timeout=PROMPT, what="public-policy refusal in the status")
    await _waits_undelivered(svc, "pub1")
    assert sink.received == []
    await svc.stop()
    await make_service(fast_config(sink_policy=SinkPolicy("public", allow=("127.0.0.0/8",))))
    await wait_until(lambda: len(sink.received) == 1, timeout=PROMPT, what="delivery once allow-listed")
    assert sink.received[0].id == "pub1"


def test_policy_decisions():
    default = SinkPolicy()
    assert default.refusal("127.0.0.1") is None and default.refusal("10.0.0.5") is None
    assert "metadata" in default.refusal("169.254.169.254")
    assert default.refusal("fe80::1") and default.refusal("fd00:ec2::254")
    assert default.refusal("x.test", "::ffff:169.254.169.254")  # IPv4-mapped is judged as IPv4
    assert SinkPolicy(allow=("169.254.169.254",)).refusal("169.254.169.254") is None
    public = SinkPolicy("public", allow=("*.corp.example",), deny=("bad.corp.example",))
    assert public.refusal("127.0.0.1") and public.refusal("192.168.1.1") and public.refusal("100.64.0.1")
    assert public.refusal("8.8.8.8") is None
    assert public.refusal("svc.corp.example", "10.1.2.3") is None
    assert "deny list" in public.refusal("bad.corp.example", "8.8.8.8")
    assert "deny list" in SinkPolicy(deny=("8.8.8.0/24",), allow=("8.8.8.8",)).refusal("8.8.8.8")
    with pytest.raises(ValueError, match="not a CIDR or host name"):
        SinkPolicy(allow=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="sink policy"):
        SinkPolicy("open")


def test_sink_options_reach_the_config_through_both_commands():
    from pyjetstream.cli import up
    from pyjetstream.cli.eventing_cmd import build_parser, config_from_args

    argv = ["--sink-policy", "public", "--sink-allow", "10.0.0.0/8,*.corp.example", "--sink-deny=evil.example"]
    cfg = config_from_args(build_parser().parse_args(argv))
    assert cfg.sink_policy == SinkPolicy("public", ("10.0.0.0/8,*.corp.example",), ("evil.example",))
    assert cfg.sink_policy.refusal("10.1.1.1") is None and cfg.sink_policy.refusal("evil.example")
    server, eventing = up.split_argv(["-p", "1", *argv])
    assert server == ["-p", "1"] and eventing == argv
    assert config_from_args(build_parser().parse_args([])).sink_policy == SinkPolicy()
    with pytest.raises(ValueError):
        config_from_args(build_parser().parse_args(["--sink-allow", "not a host"]))
    assert sys.modules["pyjetstream.cli.up"] is up
