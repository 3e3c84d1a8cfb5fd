"""Who may use the publisher proxy (issue 11 item 7: `--publish-token`) and `/subscribed` on a
publisher-only process (item 10), over real HTTP against a real NATS server (both engines)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from servers import free_port

from pyjetstream.cli.eventing_cmd import PUBLISH_TOKENS_ENV, publish_tokens
from pyjetstream.cli.up import split_argv
from pyjetstream.eventing.subscriptions import StoreListing, Subscription
from pyjetstream.eventing.testing import wait_until

from .conftest import fast_config
from .test_cli import CLI

HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp", "ce-id": "e1",
           "content-type": "application/json"}
LEGACY = json.dumps({"event-type": "order.received", "event-type-version": "v1",
                     "event-time": "2024-01-01T00:00:00Z", "data": {"a": 1}}).encode()
TOKENS = ("tok-alpha-0123456789", "tok-beta-9876543210")


async def request(url: str, method: str = "POST", headers: dict | None = None, data: bytes = b"{}"
                  ) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers, data=data) as r:
        return r.status, await r.text(), dict(r.headers)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def guarded(make_service):
    svc = await make_service(fast_config(stream={"retention": "limits"}).with_overrides(publish_tokens=TOKENS))
    return svc, f"http://127.0.0.1:{svc.port}"


async def stored(svc) -> int:
    return (await svc.nc.jetstream().stream_info(svc.config.stream.name)).state.messages


async def test_publish_endpoints_need_a_valid_bearer_token(guarded):
    svc, url = guarded
    status, body, headers = await request(url + "/publish", headers=HEADERS)
    assert status == 401 and "missing bearer token" in body
    assert headers["WWW-Authenticate"].startswith("Bearer realm=")
    for wrong in ({"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKENS[0]}"},
                  {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKENS[0]}x"},
                  {"Authorization": f"Bearer {TOKENS[0][:-1]}"}, {"Authorization": TOKENS[0]}):
        status, body, headers = await request(url + "/publish", headers={**HEADERS, **wrong})
        assert status == 401, wrong
        assert "bearer token" in body
    status, body, headers = await request(url + "/publish", headers={**HEADERS, "Authorization": "Bearer nope"})
    assert 'error="invalid_token"' in headers["WWW-Authenticate"] and "invalid bearer token" in body
    assert await stored(svc) == 0  # nothing refused was stored
    # legacy endpoints answer in the legacy API's JSON shape
    status, body, _ = await request(url + "/myapp/v1/events", headers={"content-type": "application/json"},
                                    data=LEGACY)
    assert status == 401 and json.loads(body)["type"] == "unauthorized"
    status, body, _ = await request(url + "/myapp/v1/events/subscribed", method="GET")
    assert status == 401 and json.loads(body)["status"] == 401
    # an unknown path tells a client without a token nothing either
    assert (await request(url + "/nothing", method="GET"))[0] == 401
    assert await stored(svc) == 0
    # either token works; the scheme is case-insensitive
    assert (await request(url + "/publish", headers={**HEADERS, **bearer(TOKENS[0])}))[0] == 204
    assert (await request(url + "/publish", headers={**HEADERS, "ce-id": "e2",
                                                     "Authorization": f"bearer {TOKENS[1]}"}))[0] == 204
    assert (await request(url + "/myapp/v1/events", headers={"content-type": "application/json",
                                                             **bearer(TOKENS[1])}, data=LEGACY))[0] == 200
    assert (await request(url + "/myapp/v1/events/subscribed", method="GET", headers=bearer(TOKENS[0])))[0] == 200
    assert await stored(svc) == 4  # two publishes, two legacy copies


async def test_health_and_metrics_stay_open(guarded):
    _, url = guarded
    assert (await request(url + "/healthz", method="GET"))[0] == 200
    assert (await request(url + "/readyz", method="GET"))[0] == 200
    await request(url + "/publish", headers=HEADERS)
    status, body, _ = await request(url + "/metrics", method="GET")
    assert status == 200
    assert 'eventing_epp_requests_total{code="401",method="post",path="/publish"} 1.0' in body


async def test_without_tokens_no_header_is_needed(make_service):
    svc = await make_service()
    url = f"http://127.0.0.1:{svc.port}"
    assert (await request(url + "/publish", headers=HEADERS))[0] == 204


def test_tokens_from_flags_or_environment() -> None:
    assert publish_tokens([], {}) == ()
    assert publish_tokens([], {PUBLISH_TOKENS_ENV: "a1, b2,,a1"}) == ("a1", "b2")
    assert publish_tokens(["c3"], {PUBLISH_TOKENS_ENV: "a1"}) == ("c3",)  # flags win
    assert publish_tokens(["abc+/=="], {}) == ("abc+/==",)
    for bad in ("", " ", "two words", "tab\there", "quote\"", "x=y", "ünicode"):
        with pytest.raises(ValueError, match="publish token"):
            publish_tokens([bad], {})


def test_up_passes_publish_tokens_to_the_eventing() -> None:
    server, eventing = split_argv(["-p", "4222", "--publish-token", "t1", "--publish-token=t2", "-js"])
    assert server == ["-p", "4222", "-js"]
    assert eventing == ["--publish-token", "t1", "--publish-token=t2"]


async def test_eventing_command_takes_publish_tokens(nats_server):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        CLI, "eventing", "--nats", nats_server.url, "--publish-port", str(port), "--publish-token", TOKENS[0],
        "--publish-token", TOKENS[1], "--no-dispatcher",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            try:
                return (await request(url + "/readyz", method="GET"))[0] == 200
            except aiohttp.ClientError:
                return False
        await wait_until(ready, timeout=20, what="eventing proxy ready")
        assert (await request(url + "/publish", headers=HEADERS))[0] == 401
        assert (await request(url + "/publish", headers={**HEADERS, **bearer(TOKENS[1])}))[0] == 204
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def test_eventing_command_refuses_a_token_no_client_could_send(nats_server):
    proc = await asyncio.create_subprocess_exec(
        CLI, "eventing", "--nats", nats_server.url, "--publish-port", str(free_port()), "--publish-token", "a b",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"publish token" in err


# -- /subscribed without the manager (item 10) -------------------------------------------------

def manifest(name: str, **spec) -> Subscription:
    return Subscription.from_manifest({"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
                                       "metadata": {"name": name}, "spec": {"sink": "http://127.0.0.1:1", **spec}})


async def subscribed(url: str, app: str = "myapp") -> list[dict]:
    status, body, _ = await request(f"{url}/{app}/v1/events/subscribed", method="GET")
    assert status == 200, body
    return sorted(json.loads(body)["eventsInfo"], key=lambda e: e["name"])


async def test_subscribed_on_a_publisher_only_process(make_service):
    svc = await make_service(run_dispatcher=False)
    assert svc.manager is not None and not svc.manager.subscriptions()  # nothing kept in memory
    url = f"http://127.0.0.1:{svc.port}"
    await svc.store.apply(manifest("a", source="myapp", types=["order.created.v1", "order.deleted.v2"]))
    await svc.store.apply(manifest("b", source="", typeMatching="exact",
                                   types=["sap.kyma.custom.myapp.user.made.v1"]))
    await svc.store.apply(manifest("c", source="other", types=["x.y.v1"]))

    async def listed() -> bool:
        return len(await subscribed(url)) == 3
    await wait_until(listed, what="/subscribed to list the stored Subscriptions")
    assert await subscribed(url) == [{"name": "order.created", "version": "v1"},
                                     {"name": "order.deleted", "version": "v2"},
                                     {"name": "user.made", "version": "v1"}]
    assert await subscribed(url, "other") == [{"name": "x.y", "version": "v1"}]
    # a deletion shows too
    await svc.store.delete("default", "a")

    async def gone() -> bool:
        return await subscribed(url) == [{"name": "user.made", "version": "v1"}]
    await wait_until(gone, what="/subscribed to drop the deleted Subscription")


async def test_a_flood_of_subscribed_requests_reads_the_store_once(make_service):
    svc = await make_service(run_dispatcher=False)
    await svc.store.apply(manifest("a", source="myapp", types=["order.created.v1"]))
    reads = 0
    original = svc.store.list

    async def counting(*args, **kwargs):
        nonlocal reads
        reads += 1
        return await original(*args, **kwargs)
    svc.store.list = counting
    url = f"http://127.0.0.1:{svc.port}"
    async with aiohttp.ClientSession() as http:
        async def one() -> int:
            async with http.get(f"{url}/myapp/v1/events/subscribed") as r:
                await r.read()
                return r.status
        assert set(await asyncio.gather(*(one() for _ in range(60)))) == {200}
    assert reads == 1


async def test_listing_survives_a_caller_that_goes_away(make_service):
    svc = await make_service(run_dispatcher=False)
    await svc.store.apply(manifest("a", source="myapp", types=["order.created.v1"]))
    listing = StoreListing(svc.store, ttl=60)
    first = asyncio.ensure_future(listing())
    second = asyncio.ensure_future(listing())
    await asyncio.sleep(0)
    first.cancel()
    assert [s.name for s in await second] == ["a"]


async def test_undecodable_or_oversized_authorization_is_refused(guarded):
    svc, url = guarded
    port = svc.port

    async def raw(header: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nce-specversion: 1.0\r\n"
                     b"ce-type: order.received.v1\r\nce-source: myapp\r\nce-id: raw\r\n"
                     b"content-type: application/json\r\n" + header + b"\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer.split(b"\r\n", 1)[0]

    assert b" 401 " in await raw(b"Authorization: Bearer \xff\xfe\x80")
    assert b" 401 " in await raw(b"Authorization: Bearer " + TOKENS[0].encode() + b"\xff")
    assert b" 401 " in await raw(b"Authorization: Bearer  ")
    assert b" 401 " in await raw(b"Authorization: Bearer " + TOKENS[0].encode() + b" extra")
    status = await raw(b"Authorization: Bearer " + b"a" * 70000)
    assert b" 400 " in status or b" 431 " in status  # the HTTP parser's header limit
    assert await stored(svc) == 0
    assert (await request(url + "/publish", headers={**HEADERS, **bearer(TOKENS[0])}))[0] == 204


async def test_subscribed_answers_503_while_the_store_cannot_be_read(make_service):
    svc = await make_service(run_dispatcher=False)
    await svc.store.apply(manifest("a", source="myapp", types=["order.created.v1"]))
    original = svc.store.list
    failing = True

    async def flaky(*args, **kwargs):
        if failing:
            raise TimeoutError("bucket unavailable")
        return await original(*args, **kwargs)
    svc.store.list = flaky
    url = f"http://127.0.0.1:{svc.port}"
    status, body, _ = await request(f"{url}/myapp/v1/events/subscribed", method="GET")
    assert status == 503 and "Subscriptions" in body
    failing = False  # a failed read is not cached: the next request reads again
    assert await subscribed(url) == [{"name": "order.created", "version": "v1"}]
