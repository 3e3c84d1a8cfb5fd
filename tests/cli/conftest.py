"""Fixtures for the CLI tests: a live server per test and a way to run the CLI as a subprocess.

The server comes from a command template, so the same tests run against the reference
nats-server and against our own server (`pyjetstream server`), which is skipped until its
module exists. Set PYJETSTREAM_CLI_SERVERS=nats-server (or pyjetstream) to run one variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"

SERVER_TEMPLATES: dict[str, str] = {
    "nats-server": "/usr/sbin/nats-server -a 127.0.0.1 -p {PORT} -js -sd {STORE}",
    "pyjetstream": f"{VENV_BIN}/pyjetstream server -a 127.0.0.1 -p {{PORT}} -js -sd {{STORE}}",
}


def _skip_reason(name: str) -> str | None:
    wanted = os.environ.get("PYJETSTREAM_CLI_SERVERS")
    if wanted and name not in wanted.split(","):
        return f"PYJETSTREAM_CLI_SERVERS={wanted}"
    if name == "nats-server" and not os.path.exists("/usr/sbin/nats-server"):
        return "reference nats-server binary not installed"
    if name == "pyjetstream":
        try:
            found = importlib.util.find_spec("pyjetstream.server.server") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return "pyjetstream.server.server is not importable yet"
    return None


@dataclass
class LiveServer:
    name: str
    port: int
    store: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def _wait_ready(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 15.0) -> None:
    """Poll until the server sends its INFO line; a real process has no faster signal."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"INFO"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not become ready")


@contextlib.contextmanager
def start_server(name: str, tmp_path: Path, extra: str = "") -> Iterator[LiveServer]:
    """Run the server of template `name` (plus `extra` flags) until the block ends."""
    port = free_port()
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    cmd = shlex.split(SERVER_TEMPLATES[name].format(PORT=port, STORE=store) + " " + extra)
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(port, proc)
        yield LiveServer(name, port, store, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(params=sorted(SERVER_TEMPLATES))
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
