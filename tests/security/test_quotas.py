"""Account JetStream quotas hold on every path that writes, not only client publishes: stream
sources and mirrors, republish into a stream of the same account, KV and object-store puts;
and work-queue consumers stay exclusive on update as on create.

Each scenario runs with nats-py against our server and against nats-server 2.9.10 (skipped
when the binary is missing). nats-server checks the account's usage before storing and so may
go one message past the limit; we check the message's size first and never do (stricter, as the
issue asks). The assertions allow nats-server that one message and hold us to the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType
from servers import KINDS, flushed, have_nats_server, start_server

pytestmark = pytest.mark.timeout(180)

MAX_FILE = 16 * 1024
MSG = b"x" * 200  # a file-store record of this is < 300 bytes in both servers
SLACK = 300  # what nats-server may store past the limit (its one message)


def conf(store: Path) -> str:
    return f"""
jetstream {{ store_dir: "{store}" }}
accounts {{
  A: {{
    jetstream: {{ max_file: {MAX_FILE}, max_mem: 1MB, max_streams: 20, max_consumers: 20 }}
    users: [ {{ user: a, password: a }} ]
  }}
}}
"""


def kinds() -> list[Any]:
    return [k if k == "pyjetstream" else pytest.param(k, marks=pytest.mark.skipif(
        not have_nats_server(), reason="nats-server not installed")) for k in KINDS]


async def api(nc: nats.NATS, subject: str, body: Any = b"") -> dict[str, Any]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return json.loads((await nc.request("$JS.API." + subject, data, timeout=10)).data)


async def usage(nc: nats.NATS) -> int:
    return int((await api(nc, "INFO"))["storage"])


async def wait_stable(nc: nats.NATS, stream: str, seconds: float = 2.5) -> int:
    """Messages in `stream` once they stop changing (sources copy in the background)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < seconds:
        n = (await api(nc, f"STREAM.INFO.{stream}"))["state"]["messages"]
        if n != last:
            last, since = n, time.monotonic()
        await asyncio.sleep(0.1)
    return last


@pytest.fixture(params=kinds())
def server_url(request: Any, tmp_path: Path) -> Any:
    kind = request.param
    with start_server(kind, tmp_path, config=conf(tmp_path / "js")) as srv:
        yield kind, f"nats://a:a@127.0.0.1:{srv.port}"


async def test_source_stops_at_the_account_file_quota(server_url: Any) -> None:
    kind, url = server_url
    nc = await nats.connect(url)
    try:
        # the origin lives in memory, so only the sourcing stream spends the file quota
        r = await api(nc, "STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"], "storage": "memory"})
        assert "error" not in r, r
        for i in range(200):  # ~45 KB: far more than the file quota
            await nc.publish(f"o.{i}", MSG)
        await flushed(nc)
        r = await api(nc, "STREAM.CREATE.S", {"name": "S", "storage": "file", "sources": [{"name": "O"}]})
        assert "error" not in r, r
        stored = await wait_stable(nc, "S")
        used = await usage(nc)
        assert 0 < stored < 200, stored  # it copied until the quota, then stopped
        assert used <= MAX_FILE + (SLACK if kind == "nats-server" else 0), used
        if kind == "nats-server":
            return  # 2.9.10 leaves the source stalled after a purge (at least for seconds)
        # ours retries: a purge frees the quota and the source goes on where it stopped
        await api(nc, "STREAM.PURGE.S")
        more = await wait_stable(nc, "S")
        assert 0 < more < 200 and await usage(nc) <= MAX_FILE
    finally:
        await nc.close()


async def test_mirror_stops_at_the_account_file_quota(server_url: Any) -> None:
    kind, url = server_url
    nc = await nats.connect(url)
    try:
        await api(nc, "STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"], "storage": "memory"})
        for i in range(200):
            await nc.publish(f"o.{i}", MSG)
        await flushed(nc)
        r = await api(nc, "STREAM.CREATE.M", {"name": "M", "storage": "file", "mirror": {"name": "O"}})
        assert "error" not in r, r
        stored = await wait_stable(nc, "M")
        assert 0 < stored < 200, stored
        assert await usage(nc) <= MAX_FILE + (SLACK if kind == "nats-server" else 0)
    finally:
        await nc.close()


async def test_republish_into_another_stream_respects_the_quota(server_url: Any) -> None:
    kind, url = server_url
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        r = await api(nc, "STREAM.CREATE.R", {"name": "R", "subjects": ["in.>"], "storage": "memory",
                                              "republish": {"src": "in.>", "dest": "copy.>"}})
        assert "error" not in r, r
        r = await api(nc, "STREAM.CREATE.C", {"name": "C", "subjects": ["copy.>"], "storage": "file"})
        assert "error" not in r, r
        for i in range(200):
            await js.publish(f"in.{i}", MSG)  # R takes every one: memory has room
        await asyncio.sleep(0.5)
        copies = (await api(nc, "STREAM.INFO.C"))["state"]["messages"]
        assert (await api(nc, "STREAM.INFO.R"))["state"]["messages"] == 200
        assert 0 < copies < 200, copies
        assert await usage(nc) <= MAX_FILE + (SLACK if kind == "nats-server" else 0)
    finally:
        await nc.close()


async def test_kv_and_object_store_puts_respect_the_quota(server_url: Any) -> None:
    kind, url = server_url
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        kv = await js.create_key_value(KeyValueConfig(bucket="kv", history=1, storage=StorageType.FILE))
        refused = 0
        for i in range(200):
            try:
                await kv.put(f"k{i}", MSG)
            except nats.js.errors.Error:
                refused += 1
        assert refused > 0
        assert await usage(nc) <= MAX_FILE + (SLACK if kind == "nats-server" else 0)
        await js.delete_key_value("kv")
        assert await usage(nc) == 0
        obs = await js.create_object_store("ob", ObjectStoreConfig(storage=StorageType.FILE))
        with pytest.raises(nats.js.errors.Error):
            await obs.put("big", b"y" * (4 * MAX_FILE))
        assert await usage(nc) <= MAX_FILE + (SLACK if kind == "nats-server" else 0)
    finally:
        await nc.close()


async def test_stream_max_bytes_is_reserved_against_the_quota(server_url: Any) -> None:
    _kind, url = server_url
    nc = await nats.connect(url)
    try:
        r = await api(nc, "STREAM.CREATE.BIG", {"name": "BIG", "subjects": ["big"], "storage": "file",
                                                "max_bytes": MAX_FILE * 2})
        assert r["error"]["err_code"] == 10047, r  # insufficient storage resources
        r = await api(nc, "STREAM.CREATE.HALF", {"name": "HALF", "subjects": ["half"], "storage": "file",
                                                 "max_bytes": MAX_FILE // 2})
        assert "error" not in r, r
        r = await api(nc, "STREAM.CREATE.MORE", {"name": "MORE", "subjects": ["more"], "storage": "file",
                                                 "max_bytes": MAX_FILE})
        assert r["error"]["err_code"] == 10047, r
    finally:
        await nc.close()


async def test_workqueue_filters_stay_exclusive_on_update(server_url: Any) -> None:
    kind, url = server_url
    nc = await nats.connect(url)
    try:
        await api(nc, "STREAM.CREATE.WQ", {"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue",
                                           "storage": "memory"})

        def cons(name: str, filt: str) -> dict[str, Any]:
            return {"stream_name": "WQ", "config": {"durable_name": name, "filter_subject": filt,
                                                    "ack_policy": "explicit"}}
        assert "error" not in await api(nc, "CONSUMER.CREATE.WQ.A", cons("A", "wq.a"))
        assert "error" not in await api(nc, "CONSUMER.CREATE.WQ.B", cons("B", "wq.b"))
        # on create, nats-server 2.9.10 and we agree
        r = await api(nc, "CONSUMER.CREATE.WQ.C", cons("C", "wq.*"))
        assert r["error"]["err_code"] == 10100, r
        r = await api(nc, "CONSUMER.CREATE.WQ.D", {"stream_name": "WQ", "config": {
            "durable_name": "D", "ack_policy": "explicit"}})
        assert r["error"]["err_code"] == 10099, r
        # an update to a filter that another consumer holds
        r = await api(nc, "CONSUMER.CREATE.WQ.B", cons("B", "wq.a"))
        if kind == "nats-server":
            # 2.9.10 does not check on update (fixed in later releases): it lets B overlap A
            assert "error" not in r, r
            return
        assert r["error"]["err_code"] == 10100, r
        r = await api(nc, "CONSUMER.CREATE.WQ.B", cons("B", "wq.>"))
        assert r["error"]["err_code"] == 10100, r
        r = await api(nc, "CONSUMER.CREATE.WQ.B", cons("B", ""))  # unfiltered while A exists
        assert r["error"]["err_code"] == 10100, r
        info = await api(nc, "CONSUMER.INFO.WQ.B")
        assert info["config"]["filter_subject"] == "wq.b"
        # a disjoint change is still an update like any other
        r = await api(nc, "CONSUMER.CREATE.WQ.B", cons("B", "wq.c"))
        assert "error" not in r and r["config"]["filter_subject"] == "wq.c", r
    finally:
        await nc.close()
