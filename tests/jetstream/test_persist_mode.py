"""persist_mode (nats-server 2.12): `async` acknowledges a stream's writes before they are
synced to disk, even on a server that syncs every write; `default` follows the server."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import nats
import pytest

from pyjetstream.jetstream.store import _sync

from .conftest import FakeClock, FakeServer
from .procs import own_server_available, start_js
from .test_manager import request, start


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fdatasync the stores' writer threads make, by file descriptor."""
    seen: list[int] = []
    lock = threading.Lock()
    real = os.fdatasync

    def counting(fd: int) -> None:
        with lock:
            seen.append(fd)
        real(fd)

    monkeypatch.setattr(_sync.os, "fdatasync", counting)
    return seen


async def test_async_stream_acks_without_syncing(tmp_path: Any, clock: FakeClock, fsyncs: list[int]) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock, sync=None)  # the server syncs every write
    for name, mode in (("D", "default"), ("A", "async")):
        r = json.loads((await request(server, f"$JS.API.STREAM.CREATE.{name}",
                                      {"name": name, "subjects": [name.lower()], "persist_mode": mode})).payload)
        assert "error" not in r, r
        assert r["config"].get("persist_mode") == ("async" if mode == "async" else None)
    before = len(fsyncs)
    for i in range(3):
        ack = json.loads((await request(server, "d", b"%d" % i)).payload)
        assert ack["seq"] == i + 1
    assert len(fsyncs) > before  # the default stream's acks waited for fdatasync
    before = len(fsyncs)
    for i in range(3):
        ack = json.loads((await request(server, "a", b"%d" % i)).payload)
        assert ack == {"stream": "A", "seq": i + 1}
    assert len(fsyncs) == before  # acknowledged with the data only handed to the OS
    # the data is there all the same, and survives a clean restart
    await js.stop()
    js2 = await start(FakeServer(), str(tmp_path), clock, sync=None)
    st = js2.accounts["$G"].streams["A"].store.state()
    assert (st.msgs, st.last_seq) == (3, 3)
    assert js2.accounts["$G"].streams["A"].config.persist_mode == "async"
    await js2.stop()


@pytest.mark.parametrize(("cfg", "error"), [
    ({"persist_mode": "async", "storage": "memory"},
     (500, 10052, "async persist mode is only supported on file storage")),
    ({"persist_mode": "async", "num_replicas": 3},
     (500, 10052, "async persist mode is not supported on replicated streams")),
    ({"persist_mode": "later"}, (400, 10025, 'invalid JSON: can not unmarshal "\\"later\\""')),
    ({"persist_mode": 1}, (400, 10025, 'invalid JSON: can not unmarshal "1"')),
    ({"persist_mode": "Async"}, (400, 10025, 'invalid JSON: can not unmarshal "\\"Async\\""')),
])
async def test_refused_persist_modes(tmp_path: Any, clock: FakeClock, cfg: dict[str, Any],
                                     error: tuple[int, int, str]) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    r = json.loads((await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", **cfg})).payload)
    assert (r["error"]["code"], r["error"]["err_code"], r["error"]["description"]) == error
    await js.stop()


async def test_persist_mode_cannot_change(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "persist_mode": "async"})
    for mode in ("default", ""):
        r = json.loads((await request(server, "$JS.API.STREAM.UPDATE.S", {"name": "S", "persist_mode": mode})).payload)
        assert r["error"]["description"] == "stream configuration update can not change persist mode"
    await request(server, "$JS.API.STREAM.CREATE.T", {"name": "T"})
    # "default" is the zero value: naming it is no change
    r = json.loads((await request(server, "$JS.API.STREAM.UPDATE.T", {"name": "T", "persist_mode": "default"})).payload)
    assert "error" not in r and "persist_mode" not in r["config"]
    await js.stop()


@pytest.mark.skipif(not own_server_available(), reason="no server")
async def test_nats_py_async_persist_stream(tmp_path: Any) -> None:
    proc = start_js("pyjetstream", str(tmp_path / "store"))
    nc = await nats.connect(proc.url)
    try:
        body = {"name": "A", "subjects": ["a.>"], "persist_mode": "async"}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.A", json.dumps(body).encode())).data)
        assert r["config"]["persist_mode"] == "async"
        js = nc.jetstream()
        acks = [await js.publish(f"a.{i}", b"x") for i in range(5)]
        assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
        assert (await js.stream_info("A")).state.messages == 5
    finally:
        await nc.close()
        proc.stop()
