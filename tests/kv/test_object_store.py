"""nats-py object_store end to end against our server: put, get, info, list, delete, watch."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import ObjectNotFoundError


@pytest.mark.parametrize("storage", [StorageType.MEMORY, StorageType.FILE], ids=["memory", "file"])
async def test_put_get_info_list_delete(nc, storage):
    js = nc.jetstream()
    obs = await js.create_object_store("files", config=ObjectStoreConfig(storage=storage))
    big = hashlib.sha256(b"seed").digest() * 20_000  # 640 KB: five chunks
    info = await obs.put("big.bin", big)
    assert info.size == len(big) and info.chunks == 5
    await obs.put("small.txt", b"hello")
    res = await obs.get("big.bin")
    assert res.data == big and res.info.name == "big.bin"
    assert (await obs.get("small.txt")).data == b"hello"
    i = await obs.get_info("small.txt")
    assert i.size == 5 and i.chunks == 1 and not i.deleted
    assert sorted(o.name for o in await obs.list()) == ["big.bin", "small.txt"]
    # replacing an object drops the old chunks (rollup on the meta subject, purge of chunks)
    await obs.put("big.bin", b"tiny now")
    assert (await obs.get("big.bin")).data == b"tiny now"
    await obs.delete("small.txt")
    with pytest.raises(ObjectNotFoundError):
        await obs.get("small.txt")
    listed = {o.name: o.deleted for o in await obs.list()}
    assert {k: bool(v) for k, v in listed.items()} == {"big.bin": False, "small.txt": True}
    assert [o.name for o in await obs.list(ignore_deletes=True)] == ["big.bin"]
    st = await obs.status()
    assert st.bucket == "files"


async def test_watch_sees_puts_and_deletes(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("wb", config=ObjectStoreConfig(storage=StorageType.MEMORY))
    await obs.put("first", b"1")
    w = await obs.watch()
    e = await asyncio.wait_for(w.updates(), 3)
    assert e.name == "first"
    assert await asyncio.wait_for(w.updates(), 3) is None  # end of initial data
    await obs.put("second", b"22")
    e = await asyncio.wait_for(w.updates(), 3)
    assert e.name == "second" and e.size == 2
    await obs.delete("first")
    e = await asyncio.wait_for(w.updates(), 3)
    assert e.name == "first" and e.deleted
    await w.stop()
