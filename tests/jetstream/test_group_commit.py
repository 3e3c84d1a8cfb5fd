"""Group commit through the server: the publishes a loop pass reads share one fsync, and each
PubAck leaves only after the fsync that covers its message.

A file stream on the real server, fed over a raw socket so that many PUBs arrive in one read;
fdatasync is counted by wrapping it where the store calls it (loop thread and writer thread).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from pyjetstream.jetstream.store import _sync, file
from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server


@pytest.fixture
async def server(tmp_path: Path):  # -> Server
    srv = Server(ServerOptions(host="127.0.0.1", port=0, jetstream=JetStreamOptions(
        enabled=True, store_dir=str(tmp_path / "js"))))
    await srv.start()
    yield srv
    await srv.shutdown()


def _record_syncs(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    real = os.fdatasync

    def counting(fd: int) -> None:
        real(fd)
        events.append("sync")

    monkeypatch.setattr(_sync.os, "fdatasync", counting)
    monkeypatch.setattr(file.os, "fdatasync", counting)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()  # INFO
    w.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'
            b"SUB ack.> 1\r\nPING\r\n")
    assert await r.readline() == b"PONG\r\n"
    return r, w


async def _acks(r: asyncio.StreamReader, n: int, events: list[str]) -> list[tuple[str, int]]:
    """The next n PubAcks as (reply subject, seq); each also marks `events` when it arrives."""
    out = []
    for _ in range(n):
        head = (await asyncio.wait_for(r.readline(), 10)).split()
        assert head[0] == b"MSG", head
        body = await r.readexactly(int(head[-1]) + 2)
        events.append("ack")
        out.append((head[1].decode(), json.loads(body)["seq"]))
    return out


async def _add_file_stream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    cfg = json.dumps({"name": "G", "subjects": ["g.>"], "storage": "file"}).encode()
    w.write(b"PUB $JS.API.STREAM.CREATE.G ack.create %d\r\n%s\r\n" % (len(cfg), cfg))
    head = (await asyncio.wait_for(r.readline(), 10)).split()
    body = json.loads(await r.readexactly(int(head[-1]) + 2))
    assert "error" not in body, body


@pytest.mark.parametrize("inline", [True, False])
async def test_publishes_read_together_share_a_sync(server: Server, monkeypatch: pytest.MonkeyPatch,
                                                    inline: bool) -> None:
    monkeypatch.setattr(file, "_INLINE", inline)
    r, w = await _connect(server.port)
    await _add_file_stream(r, w)
    events: list[str] = []
    _record_syncs(monkeypatch, events)
    n = 300
    w.write(b"".join(b"PUB g.%d ack.%d 5\r\nhello\r\n" % (i, i) for i in range(n)))
    got = await _acks(r, n, events)
    assert got == [(f"ack.{i}", i + 1) for i in range(n)]
    # one sync per pass that read some of them; one per message would be 300
    assert 1 <= events.count("sync") <= 30, events.count("sync")
    assert events[0] == "sync"  # no PubAck before the first sync
    w.close()


async def test_a_lone_publisher_gets_each_ack_after_its_own_sync(server: Server,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    r, w = await _connect(server.port)
    await _add_file_stream(r, w)
    events: list[str] = []
    _record_syncs(monkeypatch, events)
    for i in range(20):
        w.write(b"PUB g.x ack.%d 5\r\nhello\r\n" % i)
        assert await _acks(r, 1, events) == [(f"ack.{i}", i + 1)]
    assert events == ["sync", "ack"] * 20
    w.close()
