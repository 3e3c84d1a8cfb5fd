"""Whole reads of a KV bucket (pyjetstream.kvread) on our server and both nats-server releases,
and the Subscription store's initial state when nats-py's watcher marks it done too early
(nats-io/nats.py#842: the CI failure that led here)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import nats.js.errors
import pytest
from servers import ServerProc, have_nats_server, have_newer_nats_server, start_server

from pyjetstream.eventing.subscriptions import SPEC_PREFIX, Subscription, SubscriptionStore
from pyjetstream.kvread import KVReader

KINDS = ["pyjetstream"] + (["nats-server"] if have_nats_server() else []) + (
    ["nats-server-new"] if have_newer_nats_server() else [])


@pytest.fixture(scope="module", params=KINDS)
def server(request, tmp_path_factory) -> Any:
    d = tmp_path_factory.mktemp(request.param)
    srv: ServerProc = start_server(request.param, d, "-js", "-sd", str(d / "store"))
    yield srv
    srv.stop()


@pytest.fixture
async def nc(server):
    c = await nats.connect(server.url)
    yield c
    await c.close()


_buckets = iter(range(10**6))


@pytest.fixture
async def kv(nc):
    # a fresh bucket per test: the server lives for the module
    return await nc.jetstream().create_key_value(bucket=f"b{next(_buckets)}", history=10)


async def test_keys_leave_out_deleted_and_purged_keys(nc, kv) -> None:
    for key, value in (("a", b"1"), ("b.x", b"2"), ("b.y", b"3"), ("gone", b"4"), ("purged", b"5")):
        await kv.put(key, value)
    await kv.put("a", b"1b")
    await kv.delete("gone")
    await kv.purge("purged")
    reader = KVReader(nc, kv._name)
    assert await reader.keys() == ["a", "b.x", "b.y"]
    assert await reader.keys("b.*") == ["b.x", "b.y"]
    latest = {e.key: (e.value, e.operation) for e in await reader.latest()}
    assert latest == {"a": (b"1b", "PUT"), "b.x": (b"2", "PUT"), "b.y": (b"3", "PUT"),
                      "gone": (b"", "DEL"), "purged": (b"", "PURGE")}


async def test_history_in_order_with_revisions_and_markers(nc, kv) -> None:
    revs = [await kv.put("k", v) for v in (b"x", b"y")]
    await kv.put("other", b"o")
    revs.append(await kv.put("k", b"z"))
    await kv.delete("k")
    history = await KVReader(nc, kv._name).history("k")
    assert [(e.value, e.operation) for e in history] == [(b"x", "PUT"), (b"y", "PUT"), (b"z", "PUT"), (b"", "DEL")]
    assert [e.revision for e in history][:3] == revs
    assert history[0].created > 0 and history[0].bucket == kv._name
    assert await KVReader(nc, kv._name).history("never") == []


async def test_empty_bucket_and_missing_bucket(nc, kv) -> None:
    assert await KVReader(nc, kv._name).keys() == []
    with pytest.raises(nats.js.errors.NotFoundError):
        await KVReader(nc, "no-such-bucket").keys()


@pytest.mark.parametrize("bucket", ["a.b", "KV>", "*", "", "a b", "a\r\nPUB x 1"])
def test_a_bucket_name_that_is_not_one_token_is_refused(bucket) -> None:
    with pytest.raises(ValueError, match="invalid bucket name"):
        KVReader(None, bucket)


async def test_odd_keys_read_nothing_on_both_servers(nc, kv) -> None:
    """Keys go into the JSON body, never into a subject of ours: an odd key reads nothing."""
    await kv.put("a", b"1")
    reader = KVReader(nc, kv._name)
    for key in ("a b", "", "a..b", ".a", "a\r\nPUB x 1"):
        assert await reader.history(key) == []
        assert await reader.keys(key) == []
    assert [e.value for e in await reader.history("*")] == [b"1"]


async def test_listing_follows_every_page_of_subjects(tmp_path) -> None:
    """STREAM.INFO pages its subject map (100,000 per page on both servers, too many to store
    in a test), so a scripted responder answers in pages of two."""
    from servers import start_in_process

    srv = await start_in_process(tmp_path)
    nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
    subjects = [f"$KV.paged.k{i}" for i in range(5)]
    requests: list[dict[str, Any]] = []

    async def stream_info(msg: Any) -> None:
        req = json.loads(msg.data)
        requests.append(req)
        page = subjects[req.get("offset", 0):req.get("offset", 0) + 2]
        await msg.respond(json.dumps({"type": "io.nats.jetstream.api.v1.stream_info_response", "total": 5,
                                      "offset": req.get("offset", 0), "limit": 2,
                                      "state": {"subjects": {s: 1 for s in page}}}).encode())

    try:
        # the server's own API would answer $JS.API; a domain's prefix reaches the script
        await nc.subscribe("$JS.scripted.API.STREAM.INFO.KV_paged", cb=stream_info)
        assert await KVReader(nc, "paged", api_prefix="$JS.scripted.API").subjects() == subjects
        assert [r.get("offset", 0) for r in requests] == [0, 2, 4]
        assert {r["subjects_filter"] for r in requests} == {"$KV.paged.>"}
    finally:
        await nc.close()
        await srv.shutdown()


class EarlyMarkerKV:
    """nats-py's KeyValue, whose watcher marks the initial values done before any of them: what
    nats-py does when the consumer-info reply overtakes deliveries in flight."""

    def __init__(self, kv: Any) -> None:
        self._kv = kv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def watch(self, keys: str, **kwargs: Any) -> Any:
        watcher = await self._kv.watch(keys, **kwargs)
        early: asyncio.Queue[Any] = asyncio.Queue()
        early.put_nowait(None)
        while not watcher._updates.empty():
            early.put_nowait(watcher._updates.get_nowait())
        watcher._updates = early
        return watcher


def _manifest(name: str) -> Subscription:
    return Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"sink": "http://127.0.0.1:1/", "source": "shop", "types": ["order.created.v1"]}})


async def test_store_initial_state_is_whole_when_the_watcher_marks_it_early(nc) -> None:
    bucket = f"subs{next(_buckets)}"
    store = await SubscriptionStore.open(nc, bucket)
    for name in ("one", "two", "three"):
        await store.apply(_manifest(name))
    await store.delete("default", "two")
    hurried = SubscriptionStore(EarlyMarkerKV(store.kv), store.reader)
    events: list[Any] = []
    stream = hurried.watch()
    async for event in stream:
        events.append(event)
        if event is None:
            break
    assert sorted(e.name for e in events[:-1]) == ["one", "three"]
    assert all(e.subscription is not None for e in events[:-1])
    # the watcher's replay of the same revisions is not repeated; a later change is live
    await store.apply(_manifest("four"))
    await store.delete("default", "one")
    live = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
    assert [(e.name, e.subscription is None) for e in live] == [("four", False), ("one", True)]
    await stream.aclose()
    assert sorted(s.name for s in await hurried.list()) == ["four", "three"]


async def test_a_hand_written_key_without_namespace_is_skipped(nc) -> None:
    store = await SubscriptionStore.open(nc, f"subs{next(_buckets)}")
    await store.apply(_manifest("ok"))
    await store.kv.put(f"{SPEC_PREFIX}.lonely", b"{}")
    await store.kv.put(f"{SPEC_PREFIX}.default.bad", b"not json")
    assert [s.name for s in await store.list()] == ["ok"]
    stream = store.watch()
    first = [e async for e in _until_marker(stream)]
    await stream.aclose()
    assert [e.name for e in first] == ["ok"]


async def _until_marker(stream: Any) -> Any:
    async for event in stream:
        if event is None:
            return
        yield event
