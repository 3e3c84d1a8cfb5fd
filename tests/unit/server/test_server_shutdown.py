"""Server.shutdown() called again while one is under way (a second SIGTERM, lame duck ending).

A real server on a loopback port; JetStream is replaced by a stand-in whose stop() blocks
until released, so that the two shutdowns overlap for certain.
"""

from __future__ import annotations

import asyncio

from pyjetstream.server.options import ServerOptions
from pyjetstream.server.server import Server


class BlockingJetStream:
    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def stop(self) -> None:
        self.calls += 1
        self.entered.set()
        await self.release.wait()


async def test_overlapping_shutdowns_stop_jetstream_once_and_both_return() -> None:
    server = Server(ServerOptions(host="127.0.0.1", port=0))
    await server.start()
    js = BlockingJetStream()
    server.jetstream = js
    first = asyncio.create_task(server.shutdown())
    await asyncio.wait_for(js.entered.wait(), 5)
    second = asyncio.create_task(server.shutdown())
    await asyncio.sleep(0)  # let the second call reach its wait
    assert not second.done()
    js.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert js.calls == 1
    await asyncio.wait_for(server.wait_closed(), 5)
