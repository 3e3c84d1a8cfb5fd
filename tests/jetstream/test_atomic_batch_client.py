"""Atomic batch publish from nats-py over real sockets, against our server with file storage:
a consumer sees nothing of a batch until its commit, then all of it; a committed batch survives a
hard kill, an uncommitted one does not (its continuation is refused as incomplete)."""

from __future__ import annotations

import json
import signal
from typing import Any

import nats
import pytest

from .procs import own_server_available, start_js

pytestmark = pytest.mark.skipif(not own_server_available(), reason="no server yet")


def bh(bid: str, seq: int, commit: str = "") -> dict[str, str]:
    h = {"Nats-Batch-Id": bid, "Nats-Batch-Sequence": str(seq)}
    if commit:
        h["Nats-Batch-Commit"] = commit
    return h


async def test_batch_is_invisible_until_commit_and_survives_a_hard_kill(tmp_path: Any) -> None:
    store = str(tmp_path / "store")
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        js = nc.jetstream()
        await nc.request("$JS.API.STREAM.CREATE.B", json.dumps(
            {"name": "B", "subjects": ["b.>"], "allow_atomic": True}).encode(), timeout=5)
        psub = await js.pull_subscribe("b.>", "C", stream="B")
        for i in (1, 2):
            r = await nc.request("b.x", b"%d" % i, headers=bh("one", i), timeout=5)
            assert r.data == b""
        with pytest.raises(nats.errors.TimeoutError):
            await psub.fetch(1, timeout=0.3)
        r = await nc.request("b.x", b"3", headers=bh("one", 3, "1"), timeout=5)
        assert json.loads(r.data) == {"stream": "B", "seq": 3, "batch": "one", "count": 3}
        got = await psub.fetch(3, timeout=5)
        assert [m.data for m in got] == [b"1", b"2", b"3"]
        assert got[2].headers is not None and got[2].headers["Nats-Batch-Commit"] == "1"
        # a second batch is staged but never committed before the kill
        r = await nc.request("b.y", b"s", headers=bh("two", 1), timeout=5)
        assert r.data == b""
        await nc.close()
    finally:
        proc.stop(signal.SIGKILL)
    proc = start_js("pyjetstream", store)
    try:
        nc = await nats.connect(proc.url)
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.B", b"", timeout=5)).data)
        assert info["state"]["messages"] == 3
        assert info["config"]["allow_atomic"] is True
        r = await nc.request("b.y", b"t", headers=bh("two", 2, "1"), timeout=5)
        assert json.loads(r.data)["error"]["err_code"] == 10176
        await nc.close()
    finally:
        proc.stop()
