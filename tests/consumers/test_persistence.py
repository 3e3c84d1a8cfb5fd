"""Consumer state survives restarts: after a clean stop and after kill -9, nothing acked is
redelivered and nothing unacked is forgotten."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from servers import free_port

from .conftest import start_server

LAUNCH = textwrap.dedent("""
    import asyncio, sys
    from pyjetstream.server.options import JetStreamOptions, ServerOptions
    from pyjetstream.server.server import Server

    async def main():
        srv = Server(ServerOptions(host="127.0.0.1", port=int(sys.argv[1]),
                                   jetstream=JetStreamOptions(enabled=True, store_dir=sys.argv[2])))
        await srv.start()
        print("ready", flush=True)
        await srv.wait_closed()

    asyncio.run(main())
""")


async def _fetch_all(psub, timeout=1.0):
    """Everything the consumer hands out until it goes quiet, acking as we go (unacked
    messages would come back after ack_wait and keep it from going quiet)."""
    out = []
    while True:
        try:
            msgs = await psub.fetch(50, timeout=timeout)
        except nats.errors.TimeoutError:
            return out
        for m in msgs:
            await m.ack_sync()
        out.extend(msgs)


def _info_state(ci):
    return (ci.delivered.consumer_seq, ci.delivered.stream_seq, ci.ack_floor.consumer_seq,
            ci.ack_floor.stream_seq, ci.num_ack_pending, ci.num_redelivered, ci.num_pending)


async def test_clean_restart_keeps_acks_and_pending(tmp_path):
    store_dir = str(tmp_path / "js")
    srv = await start_server(store_dir)
    port = srv.port
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="R", subjects=["r.>"], storage=StorageType.FILE))
    for i in range(10):
        await js.publish("r.x", str(i).encode())
    await js.add_consumer("R", ConsumerConfig(durable_name="dur", ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0))
    psub = await js.pull_subscribe_bind("dur", "R")
    msgs = await psub.fetch(8, timeout=2)
    for m in msgs[:4] + [msgs[6]]:
        await m.ack_sync()
    await msgs[5].nak()
    again = await psub.fetch(1, timeout=2)
    assert again[0].metadata.sequence.stream == 6
    before = _info_state(await js.consumer_info("R", "dur"))
    await nc.close()
    await srv.shutdown()

    srv = await start_server(store_dir, port)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        js = nc.jetstream()
        assert _info_state(await js.consumer_info("R", "dur")) == before
        psub = await js.pull_subscribe_bind("dur", "R")
        got = await _fetch_all(psub, timeout=2.5)
        seqs = sorted(m.metadata.sequence.stream for m in got)
        assert seqs == [5, 6, 8, 9, 10]
        counts = {m.metadata.sequence.stream: m.metadata.num_delivered for m in got}
        assert counts == {5: 2, 6: 3, 8: 2, 9: 1, 10: 1}
        await nc.close()
    finally:
        await srv.shutdown()


def _spawn(port: int, store_dir: str) -> subprocess.Popen:
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port), store_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env)
    assert p.stdout is not None
    deadline = time.monotonic() + 20
    line = b""
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.strip() == b"ready" or not line:
            break
    if line.strip() != b"ready":
        p.kill()
        p.wait()
        pytest.fail("server subprocess did not start")
    return p


@pytest.mark.slow
async def test_kill_9_loses_no_ack_and_no_pending(tmp_path):
    store_dir = str(tmp_path / "js")
    port = free_port()
    proc = _spawn(port, store_dir)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="K", subjects=["k.>"], storage=StorageType.FILE))
        total = 200
        for i in range(total):
            await js.publish("k.x", str(i).encode())
        await js.add_consumer("K", ConsumerConfig(durable_name="kd", ack_policy=AckPolicy.EXPLICIT,
                                                  ack_wait=1.0))
        psub = await js.pull_subscribe_bind("kd", "K")
        acked: set[int] = set()
        delivered: set[int] = set()
        while len(delivered) < 150:
            for m in await psub.fetch(25, timeout=2):
                s = m.metadata.sequence.stream
                delivered.add(s)
                if s % 3:
                    await m.ack_sync()  # returns only once the ack is durable
                    acked.add(s)
        await nc.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    proc = _spawn(port, store_dir)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        js = nc.jetstream()
        psub = await js.pull_subscribe_bind("kd", "K")
        got: list[int] = []
        for m in await _fetch_all(psub, timeout=2.5):
            got.append(m.metadata.sequence.stream)
        assert not (set(got) & acked), "acked messages were redelivered"
        assert set(got) == set(range(1, total + 1)) - acked, "unacked messages were forgotten"
        await asyncio.sleep(0)
        await nc.close()
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
