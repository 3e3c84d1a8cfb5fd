"""nats-py key_value end to end against our server: every operation a bucket user relies on."""

from __future__ import annotations

import asyncio

import pytest
from consumers.conftest import eventually
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError


@pytest.fixture(params=[StorageType.MEMORY, StorageType.FILE], ids=["memory", "file"])
def storage(request):
    return request.param


async def test_put_get_revisions_create_update(nc, storage):
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="cfg", history=5, storage=storage))
    r1 = await kv.put("a", b"1")
    r2 = await kv.put("a", b"2")
    assert r2 > r1
    e = await kv.get("a")
    assert (e.key, e.value, e.revision) == ("a", b"2", r2)
    assert (await kv.get("a", revision=r1)).value == b"1"
    rc = await kv.create("b", b"new")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create("b", b"again")
    ru = await kv.update("b", b"upd", last=rc)
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update("b", b"stale", last=rc)
    assert (await kv.get("b")).revision == ru
    with pytest.raises(KeyNotFoundError):
        await kv.get("missing")


async def test_delete_purge_keys_history(nc, storage):
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="h", history=10, storage=storage))
    for v in (b"x", b"y", b"z"):
        await kv.put("k", v)
    await kv.put("other", b"o")
    assert sorted(await kv.keys()) == ["k", "other"]
    assert [e.value for e in await kv.history("k")] == [b"x", b"y", b"z"]
    await kv.delete("k")
    with pytest.raises((KeyNotFoundError, KeyDeletedError)):
        await kv.get("k")
    assert await kv.keys() == ["other"]
    hist = await kv.history("k")
    assert [e.operation for e in hist][-1] == "DEL" and len(hist) == 4
    # create works again over a delete marker
    await kv.create("k", b"back")
    assert (await kv.get("k")).value == b"back"
    await kv.purge("k")
    hist = await kv.history("k")
    assert len(hist) == 1 and hist[0].operation == "PURGE"
    # a recreated key after purge_deletes: the markers are gone from the stream
    await kv.purge_deletes(olderthan=-1)
    assert await kv.keys() == ["other"]
    st = await kv.status()
    assert st.bucket == "h" and st.history == 10 and st.values == 1


async def test_watch_initial_values_then_updates(nc, storage):
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="w", storage=storage))
    await kv.put("a", b"1")
    await kv.put("b", b"2")
    await kv.delete("a")
    w = await kv.watchall()
    seen = []
    async for e in w:
        if e is None:
            break
        seen.append((e.key, e.value, e.operation))
    assert seen == [("b", b"2", None), ("a", b"", "DEL")]
    await kv.put("c", b"3")
    e = await asyncio.wait_for(w.updates(), 3)
    assert (e.key, e.value) == ("c", b"3")
    await w.stop()
    # a filtered watch of a key that has no value yet ends its initial data at once
    w2 = await kv.watch("nothing.here")
    assert await asyncio.wait_for(w2.updates(), 3) is None
    await w2.stop()


async def test_bucket_ttl_expires_values(nc, storage):
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="t", ttl=0.3, storage=storage))
    await kv.put("gone", b"soon")
    assert (await kv.get("gone")).value == b"soon"

    async def expired():
        try:
            await kv.get("gone")
        except KeyNotFoundError:
            return True
        return False

    await eventually(expired, timeout=5)
    assert (await kv.status()).values == 0


async def test_bucket_lifecycle(nc, storage):
    js = nc.jetstream()
    await js.create_key_value(KeyValueConfig(bucket="life", storage=storage))
    kv = await js.key_value("life")
    await kv.put("a", b"1")
    assert await js.delete_key_value("life")
    with pytest.raises(BucketNotFoundError):
        await js.key_value("life")
