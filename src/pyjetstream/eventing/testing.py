"""Test and benchmark support: NATS server processes and a sink that can be told to misbehave.

Owns subprocess handling for `nats-server`-compatible commands (single node or a loopback
cluster, each on free ports, stopped by PID) and `FlakySink`, a real HTTP sink that can
answer 5xx, hang, reset connections or vanish. Not imported by production code.

ServerProcess serves what cannot import the repository's tests/ folder: the pytest plugin
shipped with the package, the benchmarks and the cluster of `Cluster`. The project's own tests
start servers with tests/servers.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from . import cloudevents as ce

NATS_SERVER = "/usr/sbin/nats-server"
NATS_SERVER_CMD = (NATS_SERVER, "-a", "127.0.0.1", "-p", "{PORT}", "-js", "-sd", "{STORE}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class ServerProcess:
    """One server started from a command template with {PORT} and {STORE} placeholders."""

    command: Sequence[str]
    store: str
    port: int = 0
    extra: Sequence[str] = ()
    proc: subprocess.Popen | None = None
    log_path: str = ""

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        # A port picked here can be taken by a parallel test before the server binds it;
        # then pick another. A restart keeps its port (clients reconnect to it).
        attempts = 3 if not self.port else 1
        for attempt in range(attempts):
            if attempts > 1:
                self.port = free_port()
            args = [a.replace("{PORT}", str(self.port)).replace("{STORE}", self.store) for a in self.command]
            args += list(self.extra)
            self.log_path = os.path.join(self.store, f"server-{self.port}.log")
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_for_port(self.port, timeout, self.proc)
                return self
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Cluster:
    """A JetStream cluster of real nats-server processes on loopback."""

    size: int = 3
    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="evcluster-"))
    nodes: list[ServerProcess] = field(default_factory=list)

    def start(self) -> Cluster:
        ports = [free_port() for _ in range(self.size)]
        cports = [free_port() for _ in range(self.size)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cports)
        for i in range(self.size):
            store = os.path.join(self.root, f"n{i}")
            os.makedirs(store, exist_ok=True)
            extra = ("--name", f"n{i}", "--cluster_name", "evc", "--cluster", f"nats://127.0.0.1:{cports[i]}",
                     "--routes", routes)
            node = ServerProcess(NATS_SERVER_CMD, store, ports[i], extra)
            node.port = ports[i]
            self.nodes.append(node)
        for node in self.nodes:
            node.start()
        return self

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class FlakySink:
    """A real HTTP sink. `mode`: ok | fail (500) | hang | reset | gone (port closed)."""

    def __init__(self, port: int = 0, status: int = 500) -> None:
        self.port = port or free_port()
        self.mode = "ok"
        self.fail_status = status
        self.received: list[ce.CloudEvent] = []      # accepted with 2xx
        self.attempts: Counter[str] = Counter()      # every request by ce-id
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._hang = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.attempts[request.headers.get("ce-id", "?")] += 1
        mode = self.mode
        if mode == "hang":
            await self._hang.wait()
        if mode == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("sink reset the connection on purpose")
        if mode == "fail":
            return web.Response(status=self.fail_status, text="sink failing on purpose")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            event = ce.parse_http(request.headers, body)
        except ce.CloudEventError as exc:
            return web.Response(status=400, text=str(exc))
        finally:
            self.in_flight -= 1
        self.received.append(event)
        self.headers.append(dict(request.headers))
        return web.Response(status=204)

    async def start(self) -> FlakySink:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._hang = asyncio.Event()
        return self

    async def stop(self) -> None:
        self._hang.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> Counter[str]:
        return Counter(e.id for e in self.received)


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> None:
    """Poll a real process's observable state until `predicate()` is true or the deadline passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class StaticResolver(AbstractResolver):
    """Names mapped to fixed addresses, so a test can point a sink name at 169.254.169.254
    without DNS; unknown names fail like NXDOMAIN."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = {k.lower().rstrip("."): v for k, v in names.items()}
        self.lookups: Counter[str] = Counter()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        self.lookups[host] += 1
        address = self.names.get(host.lower().rstrip("."))
        if address is None:
            raise OSError(socket.EAI_NONAME, f"unknown host {host}")
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        result: Any = {"hostname": host, "host": address, "port": port, "family": fam, "proto": 0,
                       "flags": socket.AI_NUMERICHOST}
        return [result]

    async def close(self) -> None:
        return None


class RecordingSink:
    """`FlakySink` on its own event loop thread, for synchronous tests (the `recording_sink`
    fixture): records every event it accepts and can be told to fail, hang or vanish."""

    def __init__(self, status: int = 500) -> None:
        import threading

        self._sink = FlakySink(status=status)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pyjetstream-sink", daemon=True)
        self._thread.start()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def url(self) -> str:
        return self._sink.url

    @property
    def events(self) -> list[ce.CloudEvent]:
        return list(self._sink.received)

    @property
    def attempts(self) -> Counter[str]:
        return Counter(self._sink.attempts)

    def start(self) -> RecordingSink:
        self._call(self._sink.start())
        return self

    def fail(self, status: int | None = None) -> None:
        """Answer every delivery with `status` (default 500) until `recover()`."""
        if status is not None:
            self._sink.fail_status = status
        self._sink.mode = "fail"

    def hang(self) -> None:
        """Accept connections but never answer until `recover()`."""
        self._sink.mode = "hang"

    def vanish(self) -> None:
        """Close the port: deliveries see connection refused until `recover()`."""
        self._call(self._sink.stop())

    def recover(self) -> None:
        async def _recover() -> None:
            self._sink.mode = "ok"
            self._sink._hang.set()          # releases requests held by hang()
            if self._sink._runner is None:  # vanished: listen again on the same port
                await self._sink.start()
            else:
                self._sink._hang = asyncio.Event()
        self._call(_recover())

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ce.CloudEvent]:
        """Block until at least `count` events were accepted; return them."""
        deadline = time.monotonic() + timeout
        while len(self._sink.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink got {len(self._sink.received)} events, expected {count}, "
                                   f"after {timeout}s")
            time.sleep(0.01)
        return self.events

    def wait_attempts(self, event_id: str, count: int, timeout: float = 10.0) -> int:
        """Block until the event with `event_id` was tried at least `count` times (answered
        or not); return the number of tries."""
        deadline = time.monotonic() + timeout
        while self._sink.attempts[event_id] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"event {event_id} tried {self._sink.attempts[event_id]} times, "
                                   f"expected {count}, after {timeout}s")
            time.sleep(0.01)
        return self._sink.attempts[event_id]

    def close(self) -> None:
        try:
            self._call(self._sink.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
