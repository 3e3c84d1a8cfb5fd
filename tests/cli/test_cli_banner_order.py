"""`sub` and `reply` print their banner only once the server has read their SUB: scripts start
publishing when they see it. nats-py's flush writes its PING ahead of a SUB still in the
client's buffer, so one flush can be answered first; the CLI flushes twice (cli.common.flushed).

The server here is a scripted fake over a real socket, because the test needs to hold the
server at one point: it answers the handshake, then, at the first PING it reads before the
SUB, sends the PONG and stops processing. A banner printed while it is held announced a
subscription the server did not have yet.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from conftest import Running, cli_cmd, cli_env


@dataclass
class HoldingServer:
    port: int = 0
    seen: list[bytes] = field(default_factory=list)  # every command line processed, in order
    held: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    subject: bytes = b"orders.new"

    def has_sub(self) -> bool:
        return any(line.startswith(b"SUB " + self.subject + b" ") for line in self.seen)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = {"server_id": "FAKE", "version": "2.9.10", "proto": 1, "headers": True, "max_payload": 1048576}
        writer.write(b"INFO " + json.dumps(info).encode() + b"\r\n")
        handshake_done = False
        try:
            while line := await reader.readline():
                self.seen.append(line)
                if line.startswith(b"PING"):
                    writer.write(b"PONG\r\n")
                    await writer.drain()
                    if handshake_done and not self.has_sub() and not self.held.is_set():
                        self.held.set()
                        await self.resume.wait()  # what follows the PING stays unread
                    handshake_done = True
                elif line.startswith((b"PUB ", b"HPUB ")):
                    size = int(line.split()[-1])
                    await reader.readexactly(size + 2)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("command", [["sub", "orders.new"], ["reply", "orders.new", "ok"]])
async def test_banner_follows_the_servers_copy_of_the_sub(command: list[str]) -> None:
    fake = HoldingServer()
    srv = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = srv.sockets[0].getsockname()[1]
    env = cli_env(None, NATS_URL=f"nats://127.0.0.1:{fake.port}")
    proc = await asyncio.create_subprocess_exec(*cli_cmd(*command), env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    running = Running(proc)
    banner = "Subscribing on" if command[0] == "sub" else "Listening on"
    try:
        waiting = asyncio.ensure_future(running.wait_for_line(banner, timeout=30))
        await asyncio.wait([waiting, asyncio.ensure_future(fake.held.wait())],
                                     return_when=asyncio.FIRST_COMPLETED, timeout=30)
        if fake.held.is_set():
            # held after answering a PING that came before the SUB: a banner now would be early;
            # with one flush it came within milliseconds of that PONG
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting), 0.5)
            assert not fake.has_sub()
            fake.resume.set()
        await waiting
        assert fake.has_sub(), fake.seen
    finally:
        fake.resume.set()
        await running.stop()
        srv.close()
        await srv.wait_closed()
