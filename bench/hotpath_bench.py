#!/usr/bin/env python3
"""In-process cost of the core relay path, without sockets: parse a batch of PUBs on one
connection, route, frame MSGs for one subscriber, flush. Prints ns per message.

Owns nothing of the server; builds one with fake transports so the figure isolates our Python
from the kernel and the client.  .venv/bin/python bench/hotpath_bench.py [--msgs N] [--size B]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from pyjetstream.server.options import ServerOptions
from pyjetstream.server.server import Server


class FakeTransport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    # the connection pauses its reading for a loop turn after a read budget (client.READ_BUDGET)
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=500, help="PUBs per data_received call")
    a = ap.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = Server(ServerOptions(port=0))
    server.loop = loop
    server._info_base = {}  # start() fills this; no socket here
    pub, sub = server._new_client(), server._new_client()
    for c in (pub, sub):
        c.connection_made(FakeTransport())  # type: ignore[arg-type]
        c.data_received(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n')
    sub.data_received(b"SUB bench.core 1\r\n")
    chunk = (b"PUB bench.core %d\r\n" % a.size + b"x" * a.size + b"\r\n") * a.batch
    rounds = a.msgs // a.batch
    server._flush_dirty()
    t0 = time.process_time()
    for _ in range(rounds):
        pub.data_received(chunk)
        server._flush_dirty()
    dt = time.process_time() - t0
    n = rounds * a.batch
    assert sub.out_msgs >= n
    print(json.dumps({"bench": "core_relay_inprocess", "msgs": n, "size": a.size,
                      "ns_per_msg": round(dt / n * 1e9)}))


if __name__ == "__main__":
    main()
