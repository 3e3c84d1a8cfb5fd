#!/usr/bin/env python3
"""In-process cost of a push consumer with explicit acks, without the kernel or a client.

Owns nothing of the server: it runs the real Server with JetStream on a file store, drives one
client connection through a fake transport, fills a stream, then lets a push consumer deliver
while the "client" acks every message it sees (acks fed back in the chunks they arrived in).
Prints CPU ns per delivered-and-acked message; `--profile` adds a cProfile table.
  .venv/bin/python bench/push_inprocess.py [--msgs N] [--chunk ACKS_PER_READ] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import re
import tempfile
import time

from hotpath_bench import FakeTransport  # bench/ is on the path when run as a script

from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server

_MSG = re.compile(rb"MSG (\S+) (\S+) (\S+) (\d+)\r\n")


class Transport(FakeTransport):
    """Keeps what the server wrote, for the fake client to read its deliveries from."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


async def spin(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def run(msgs: int, size: int, profile: bool, ack_chunk: int = 0) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        opts = ServerOptions(host="127.0.0.1", port=0)
        opts.jetstream = JetStreamOptions(enabled=True, store_dir=d)
        server = Server(opts)
        await server.start()
        c = server._new_client()
        t = Transport()
        c.connection_made(t)  # type: ignore[arg-type]
        c.data_received(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nSUB _R.* 9\r\n')
        cfg = json.dumps({"name": "BENCH", "subjects": ["bench.>"], "storage": "file"}).encode()
        c.data_received(b"PUB $JS.API.STREAM.CREATE.BENCH _R.1 %d\r\n%s\r\n" % (len(cfg), cfg))
        await spin()
        body = b"x" * size
        chunk = (b"PUB bench.a %d\r\n" % size + body + b"\r\n") * 500
        for _ in range(msgs // 500):
            c.data_received(chunk)
            await spin(1)
        await spin()
        t.take()
        c.data_received(b"SUB dlv 1\r\n")
        ccfg = json.dumps({"stream_name": "BENCH", "config": {
            "durable_name": "BPUSH", "deliver_subject": "dlv", "ack_policy": "explicit",
            "max_ack_pending": 1000}}).encode()
        prof = cProfile.Profile() if profile else None
        t0 = time.process_time()
        if prof:
            prof.enable()
        c.data_received(b"PUB $JS.API.CONSUMER.DURABLE.CREATE.BENCH.BPUSH _R.2 %d\r\n%s\r\n" % (len(ccfg), ccfg))
        acked = 0
        idle = 0
        client_cpu = 0.0  # the fake client's own parsing, subtracted from the figure
        ack_cpu = 0.0  # the server taking in the acks (the rest is delivery)
        while acked < msgs and idle < 1000:
            await spin(1)
            t1 = time.process_time()
            out = t.take()
            acks = [b"PUB %s 0\r\n\r\n" % m.group(3) for m in _MSG.finditer(out) if m.group(1).startswith(b"bench.")]
            data = b"".join(acks)
            client_cpu += time.process_time() - t1
            if not acks:
                idle += 1
                continue
            idle = 0
            acked += len(acks)
            if ack_chunk:
                # small reads, the loop running between them: what a slower client causes
                for i in range(0, len(acks), ack_chunk):
                    t1 = time.process_time()
                    c.data_received(b"".join(acks[i:i + ack_chunk]))
                    ack_cpu += time.process_time() - t1
                    await spin(1)
                continue
            t1 = time.process_time()
            c.data_received(data)
            ack_cpu += time.process_time() - t1
        await spin()
        if prof:
            prof.disable()
        dt = time.process_time() - t0 - client_cpu
        await server.shutdown()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return {"bench": "push_inprocess", "msgs": msgs, "ack_chunk": ack_chunk, "acked": acked, "ns_per_msg": round(dt / max(acked, 1) * 1e9),
            "ack_ns_per_msg": round(ack_cpu / max(acked, 1) * 1e9),
            "client_ns_per_msg": round(client_cpu / max(acked, 1) * 1e9)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--chunk", type=int, default=0, help="acks per read (default: all that arrived)")
    a = ap.parse_args()
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(a.msgs, a.size, a.profile, a.chunk))))


if __name__ == "__main__":
    main()
