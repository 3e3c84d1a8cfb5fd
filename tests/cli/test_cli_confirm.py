"""Destructive commands ask on a terminal: answered through a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import time

from conftest import LiveServer, cli_cmd, cli_env


def _run_on_tty(server: LiveServer, args: list[str], answer: bytes, timeout: float = 30) -> tuple[int, str]:
    """Run the CLI with a pty as stdin/stdout, type `answer` after the question appears."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_cmd(*args), env=cli_env(server), stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal: it is done
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"(y/N)" in out:
                os.write(master, answer)
                answered = True
        rc = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, out.decode(errors="replace").replace("\r\n", "\n")


async def test_rm_asks_and_respects_the_answer(server: LiveServer, nc) -> None:
    js = nc.jetstream()
    await js.add_stream(name="KEEP", subjects=["keep"])
    rc, out = await asyncio.to_thread(_run_on_tty, server, ["stream", "rm", "KEEP"], b"n\n")
    assert rc == 0 and "? Really delete Stream KEEP (y/N)" in out and "Not deleting" in out
    assert (await js.stream_info("KEEP")).config.name == "KEEP"

    rc, out = await asyncio.to_thread(_run_on_tty, server, ["stream", "rm", "KEEP"], b"y\n")
    assert rc == 0 and "Stream KEEP was removed" in out
    names = (await js.streams_info())
    assert [s.config.name for s in names] == []
