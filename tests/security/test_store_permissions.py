"""Store files are not world-readable: every file JetStream writes is 0640 and every directory
0750 (nats-server's defaultFilePerms/defaultDirPerms), even under a umask of 0.

The same scenario runs against nats-server 2.9.10 (skipped when the binary is missing): streams
of both storage kinds, durable consumers with acks, a KV bucket, a restart, more writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import KeyValueConfig
from servers import KINDS, ServerProc, have_nats_server, start_server

pytestmark = pytest.mark.timeout(180)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    # the server inherits our umask; 0 shows the modes the server asks for
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def start(kind: str, tmp: Path, store: Path) -> ServerProc:
    with umask(0):
        return start_server(kind, tmp, "-js", "-sd", str(store))


async def scenario(url: str, second: bool) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    tag = "2" if second else "1"
    for storage in ("file", "memory"):
        name = f"S{storage}{tag}"
        await nc.request(f"$JS.API.STREAM.CREATE.{name}",
                         json.dumps({"name": name, "subjects": [f"{name}.>"], "storage": storage}).encode())
        for i in range(20):
            await js.publish(f"{name}.{i % 3}", b"x" * 100)
        sub = await js.pull_subscribe(f"{name}.>", durable=f"D{tag}", stream=name)
        for m in await sub.fetch(5, timeout=5):
            await m.ack()
    kv = await js.create_key_value(KeyValueConfig(bucket=f"kv{tag}", history=3))
    for i in range(5):
        await kv.put(f"k{i}", b"v")
    await kv.delete("k0")
    await nc.request("$JS.API.STREAM.PURGE.Sfile1", json.dumps({"filter": "Sfile1.0"}).encode())
    await asyncio.sleep(0.3)  # consumer state is written on a short timer
    await nc.close()


def modes(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = Path(d) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = ("d" if stat.S_ISDIR(st.st_mode) else "f") + oct(st.st_mode & 0o777)
    return out


def kinds() -> list[Any]:
    return [pytest.param(k, marks=pytest.mark.skipif(k == "nats-server" and not have_nats_server(),
                                                     reason="nats-server not installed")) for k in KINDS]


@pytest.mark.parametrize("kind", kinds())
async def test_store_files_are_0640_and_dirs_0750(kind: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    srv = start(kind, tmp_path, store)
    try:
        await scenario(srv.url, second=False)
        srv.stop()
        srv = start(kind, tmp_path, store)
        await scenario(srv.url, second=True)
    finally:
        srv.stop()
    found = modes(store / "jetstream")
    assert len(found) > 10, found
    wrong = {p: m for p, m in found.items() if m not in ("d0o750", "f0o640")}
    assert not wrong, wrong
    # the jetstream directory itself, made by the server under the given store directory
    assert oct((store / "jetstream").stat().st_mode & 0o777) == "0o750"
