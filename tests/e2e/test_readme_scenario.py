"""The README tutorial, step by step, with the real commands as subprocesses.

1. a NATS server (nats-server, or ours) + `pyjetstream eventing`; or `pyjetstream up` alone
2. `pyjetstream sink --port P` prints `Received event: {...}`
3. `pyjetstream subscription apply -f lastorder-sub.yaml`; `subscription get` shows it ready
4. the tutorial's binary-mode POST to /publish is printed by the sink
5. sink stopped, publish again: the `sap` stream holds exactly 1 message
6. sink started again: the event is delivered and the stream is empty (interest retention)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import nats
from servers import free_port

from pyjetstream.eventing.testing import wait_until

from .conftest import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]
CLI = str(VENV_BIN / "pyjetstream")
TUTORIAL_HEADERS = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
                    "ce-eventtypeversion": "v1", "ce-id": "759815c3-b142-48f2-bf18-c6502dc0998f",
                    "content-type": "application/json"}


class Proc:
    """A CLI subprocess whose output lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Proc:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=2)


async def cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(errors="replace")


async def wait_http(url: str, timeout: float = 20.0) -> None:
    async def up():
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False
    await wait_until(up, timeout=timeout, interval=0.1, what=url)


async def publish(proxy: str) -> int:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{proxy}/publish", headers=TUTORIAL_HEADERS, data=b'{"orderCode":"3211213"}') as r:
        return r.status


async def run_tutorial(nats_url: str, proxy: str, tmp_path: Path) -> None:
    sink_port = free_port()
    manifest = tmp_path / "lastorder-sub.yaml"
    manifest.write_text((ROOT / "examples" / "lastorder-sub.yaml").read_text()
                        .replace("http://127.0.0.1:9000", f"http://127.0.0.1:{sink_port}"))
    sink = await Proc(CLI, "sink", "--port", str(sink_port)).start()
    nc = await nats.connect(nats_url)
    try:
        await wait_until(lambda: any("listening" in line for line in sink.lines), timeout=20, what="sink start")
        code, out = await cli("-s", nats_url, "subscription", "apply", "-f", str(manifest))
        assert code == 0, out
        assert "subscription.eventing.kyma-project.io/lastorder-sub created" in out
        code, out = await cli("-s", nats_url, "subscription", "get", "lastorder-sub", "--wait", "20")
        assert code == 0, out
        assert "Ready" in out and "true" in out and "NATS Subscription active" in out
        code, out = await cli("-s", nats_url, "subscription", "get", "lastorder-sub", "-o", "yaml")
        assert "ready: true" in out and "consumerName:" in out and "cleanType: order.received.v1" in out

        # Step 4: the tutorial's curl.
        assert await publish(proxy) == 204
        await wait_until(lambda: 'Received event: {"orderCode": "3211213"}' in sink.output(), timeout=20,
                         what="the sink to print the event")
        js = nc.jetstream()

        async def empty():
            return (await js.stream_info("sap")).state.messages == 0
        # the sink prints before it answers, and the ack follows the answer: stopping the sink
        # in between (seen in CI) leaves the first event unacked, to be delivered again
        await wait_until(empty, timeout=10, what="the first event to be acknowledged")

        # Step 5: sink gone, publish again: the event waits in the stream.
        await sink.stop()
        assert await publish(proxy) == 204
        info = await js.stream_info("sap")
        assert info.state.messages == 1 and info.state.bytes > 0
        code, out = await cli("-s", nats_url, "stream", "ls")
        if code == 0:  # the `stream` command is another module's; check it when it is there
            row = next(line for line in out.splitlines() if " sap " in line)
            assert " 1 " in row

        # Step 6: the sink comes back and gets the event; nothing stays in the stream.
        sink2 = await Proc(CLI, "sink", "--port", str(sink_port)).start()
        try:
            await wait_until(lambda: "Received event" in sink2.output(), timeout=40,
                             what="redelivery to the restarted sink")
            await wait_until(empty, timeout=10, what="sap stream to be empty")
        finally:
            await sink2.stop()
    finally:
        await sink.stop()
        await nc.close()


async def test_tutorial_with_eventing_command(nats_server, tmp_path):
    port = free_port()
    eventing = await Proc(CLI, "eventing", "--nats", nats_server.url, "--publish-port", str(port)).start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz")
        await run_tutorial(nats_server.url, f"http://127.0.0.1:{port}", tmp_path)
    finally:
        await eventing.stop()
    assert eventing.proc.returncode == 0, eventing.output()


async def test_tutorial_with_up(tmp_path):
    port, mon, proxy = free_port(), free_port(), free_port()
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "--publish-port", str(proxy)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        await run_tutorial(f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{proxy}", tmp_path)
    finally:
        await up.stop()
    assert up.proc.returncode == 0, up.output()


def test_python_is_the_venv():
    # The subprocesses above run the installed entry point; make sure it is this checkout's.
    assert Path(CLI).exists(), f"{CLI} missing; run `make test` to install"
    assert sys.prefix
