"""Fixtures for consumer tests: our server in-process on a free loopback port, and the
reference nats-server 2.9.10 as a subprocess for differential tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from servers import free_port, start_in_process

from pyjetstream.server.server import Server

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


async def start_server(store_dir: str, port: int = 0) -> Server:
    srv: Server = await start_in_process(store_dir, port)
    return srv


@pytest.fixture
async def ours(tmp_path) -> AsyncIterator[Server]:
    srv = await start_server(str(tmp_path / "js"))
    yield srv
    await srv.shutdown()


@pytest.fixture
async def nc(ours: Server) -> AsyncIterator[nats.NATS]:
    c = await nats.connect(f"nats://127.0.0.1:{ours.port}")
    yield c
    await c.close()


@pytest.fixture
def reference_server(tmp_path) -> Iterator[str]:
    """A nats-server 2.9.10 with JetStream on a free loopback port; yields its URL."""
    if not os.path.exists(NATS_SERVER):
        pytest.skip("reference nats-server not installed")
    port = free_port()
    sd = tmp_path / "ref"
    proc = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(sd)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("nats-server did not start")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def eventually(pred, timeout: float = 5.0, interval: float = 0.02):
    """Poll an (async or plain) predicate until it returns truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
