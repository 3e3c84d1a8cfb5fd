"""Fixtures for the CLI tests: a live server per test and a way to run the CLI as a subprocess.

The server is started by tests/servers.py, so the same tests run against the reference
nats-server and against our own server (`pyjetstream server`). Set
PYJETSTREAM_CLI_SERVERS=nats-server (or pyjetstream) to run one variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import servers
from servers import ServerProc

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"

SERVER_KINDS = servers.KINDS


def _skip_reason(name: str) -> str | None:
    wanted = os.environ.get("PYJETSTREAM_CLI_SERVERS")
    if wanted and name not in wanted.split(","):
        return f"PYJETSTREAM_CLI_SERVERS={wanted}"
    if name == "nats-server" and not servers.have_nats_server():
        return "reference nats-server binary not installed"
    return None


# The one server harness (tests/servers.py): a process by PID, its port read from its log.
LiveServer = ServerProc


@contextlib.contextmanager
def start_server(name: str, tmp_path: Path, extra: str = "") -> Iterator[LiveServer]:
    """Run server `name` ("nats-server" or "pyjetstream") with JetStream and `extra` flags
    until the block ends."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    with servers.start_server(name, tmp_path, "-js", "-sd", str(store), *shlex.split(extra)) as live:
        yield live


@pytest.fixture(params=sorted(SERVER_KINDS))
def server_name(request: pytest.FixtureRequest) -> str:
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture
def server(server_name: str, tmp_path: Path) -> Iterator[LiveServer]:
    with start_server(server_name, tmp_path) as live:
        yield live


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli_env(server: LiveServer | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env.update({"TZ": "UTC", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"})
    if server is not None:
        env["NATS_URL"] = server.url
    env.update(extra)
    return env


def cli_cmd(*args: str) -> list[str]:
    exe = VENV_BIN / "pyjetstream"
    if exe.exists():
        return [str(exe), *args]
    return [sys.executable, "-m", "pyjetstream", *args]


async def run_cli(server: LiveServer | None, *args: str, stdin: bytes | None = None, timeout: float = 30,
                  **env: str) -> Result:
    """Run the CLI to completion without blocking the test's own event loop."""
    proc = await asyncio.create_subprocess_exec(
        *cli_cmd(*args), env=cli_env(server, **env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Result(proc.returncode or 0, out.decode(), err.decode())


class Running:
    """A long-running CLI command (sub, reply, kv watch) whose output is read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def wait_for_line(self, needle: str, timeout: float = 15) -> str:
        async def read() -> str:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                raw = await self.proc.stdout.readline()  # type: ignore[union-attr]
                if not raw:
                    raise AssertionError(f"process ended before printing {needle!r}: {self.lines}")
                self.lines.append(raw.decode())

        return await asyncio.wait_for(read(), timeout)

    async def finish(self, timeout: float = 15) -> Result:
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        return Result(self.proc.returncode or 0, "".join(self.lines) + out.decode(), err.decode())

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def start_cli() -> AsyncIterator:
    started: list[Running] = []

    async def start(server: LiveServer, *args: str, **env: str) -> Running:
        proc = await asyncio.create_subprocess_exec(
            *cli_cmd(*args), env=cli_env(server, **env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        running = Running(proc)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


@pytest.fixture
async def nc(server: LiveServer) -> AsyncIterator:
    import nats

    conn = await nats.connect(server.url)
    yield conn
    await conn.close()


def has_nats_server() -> bool:
    return shutil.which("nats-server") is not None or os.path.exists("/usr/sbin/nats-server")
