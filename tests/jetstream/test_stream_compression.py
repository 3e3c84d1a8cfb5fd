"""Stream `compression: s2` on file storage: the stream's records are stored compressed, info
reports it, an update switches the form of new records, and clients see no difference."""

from __future__ import annotations

import json
import os
from typing import Any

import nats
import pytest

from pyjetstream.jetstream.store import file as file_mod

from .conftest import FakeClock, FakeServer
from .procs import own_server_available, start_js
from .test_manager import request, start


def _kinds(directory: str) -> list[int]:
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".seg"):
            data = open(os.path.join(directory, name), "rb").read()
            pos = 0
            while pos + file_mod.HS <= len(data):
                reclen, kind, *_ = file_mod._HDR.unpack_from(data, pos)
                if reclen == 0:
                    break  # the tail's preallocated space
                out.append(kind)
                pos += reclen
    return out


async def test_s2_stream_stores_compressed_and_update_switches(tmp_path: Any, clock: FakeClock) -> None:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    r = json.loads((await request(server, "$JS.API.STREAM.CREATE.Z",
                                  {"name": "Z", "subjects": ["z"], "compression": "s2"})).payload)
    assert r["config"]["compression"] == "s2"
    body = b"a compressible payload, repeated; " * 20
    for _ in range(3):
        await request(server, "z", body)
    stream = js.accounts["$G"].streams["Z"]
    stream.store.flush()
    msgs_dir = os.path.join(stream.store.directory)
    assert _kinds(msgs_dir) == [file_mod.K_MSGZ] * 3
    cfg = json.loads((await request(server, "$JS.API.STREAM.INFO.Z")).payload)["config"]
    r = json.loads((await request(server, "$JS.API.STREAM.UPDATE.Z", {**cfg, "compression": "none"})).payload)
    assert r["config"]["compression"] == "none"
    await request(server, "z", body)
    stream.store.flush()
    assert _kinds(msgs_dir) == [file_mod.K_MSGZ] * 3 + [file_mod.K_MSG]
    for seq in range(1, 5):
        m = json.loads((await request(server, "$JS.API.STREAM.MSG.GET.Z", {"seq": seq})).payload)["message"]
        assert m["seq"] == seq and len(m["data"]) > 0
    await js.stop()
    # reopened with the config it was stored with: all four read back
    js2 = await start(FakeServer(), str(tmp_path), clock)
    store = js2.accounts["$G"].streams["Z"].store
    assert [bytes(store.load_msg(s).data) for s in range(1, 5)] == [body] * 4  # type: ignore[union-attr]
    await js2.stop()


@pytest.mark.skipif(not own_server_available(), reason="no server")
async def test_nats_py_reads_a_compressed_stream(tmp_path: Any) -> None:
    proc = start_js("pyjetstream", str(tmp_path / "store"))
    nc = await nats.connect(proc.url)
    try:
        body = {"name": "Z", "subjects": ["z.>"], "compression": "s2"}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.Z", json.dumps(body).encode())).data)
        assert r["config"]["compression"] == "s2"
        js = nc.jetstream()
        payloads = [(b"event %d; " % i) * (i + 1) * 10 for i in range(10)]
        for i, p in enumerate(payloads):
            await js.publish(f"z.{i}", p, headers={"Seq": str(i)})
        sub = await js.pull_subscribe("z.>", "d")
        got = []
        while len(got) < 10:
            got += await sub.fetch(10 - len(got), timeout=5)
        assert [m.data for m in got] == payloads
        assert [m.headers["Seq"] for m in got] == [str(i) for i in range(10)]  # type: ignore[index]
        bad = json.loads((await nc.request("$JS.API.STREAM.CREATE.B", json.dumps(
            {"name": "B", "compression": "zstd"}).encode())).data)
        assert bad["error"] == {"code": 400, "err_code": 10025,
                                "description": "invalid JSON: unknown compression algorithm"}
    finally:
        await nc.close()
        proc.stop()
