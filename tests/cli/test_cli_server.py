"""`server info`, `server check` (exit codes for scripts) and `bench`, against a live server."""

from __future__ import annotations

import json
import sys

from conftest import LiveServer, cli_env, run_cli
from servers import free_port

from pyjetstream.cli.server_info import CRITICAL, OK, WARNING, CheckResult

# `server` is dispatched raw by cli.main to the server command; until that module hands `info`
# and `check` over, the tests reach the same entry point directly.
SERVER = ("-m", "pyjetstream.cli.server_info")
LOOSE = ("--connect-warn", "30s", "--connect-critical", "60s")  # a busy CI box is not a failed check


async def server_cli(server: LiveServer | None, *args: str, **env: str):
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, *SERVER, *args, env=cli_env(server, **env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


def test_check_result_grading_and_nagios_line() -> None:
    r = CheckResult("Stream")
    r.threshold("messages", 5, 10, 2, "5", higher_is_worse=False)
    r.add_perf("messages", 5, "", 10, 2)
    assert r.status == WARNING
    assert r.render() == "WARNING Stream WARN:messages 5 | messages=5;10;2"
    r.criticals.append("gone")
    assert r.status == CRITICAL and r.render().startswith("CRITICAL Stream CRIT:gone WARN:messages 5")
    ok = CheckResult("Connection")
    ok.threshold("rtt", 0.001, 0.5, 1.0, "1ms")
    ok.add_perf("rtt", 0.001, "s", 0.5, 1.0)
    assert (ok.status, ok.render()) == (OK, "OK Connection OK:rtt 1ms | rtt=0.0010s;0.5;1")


async def test_server_info(server: LiveServer, nc) -> None:
    await nc.jetstream().add_stream(name="S", subjects=["s"])
    rc, out, err = await server_cli(server, "info")
    assert rc == 0, err
    stripped = [ln.strip() for ln in out.splitlines()]
    assert out.startswith("Server information for ")
    assert f"Host: 127.0.0.1:{server.port}" in stripped
    assert "JetStream: true" in stripped and "Streams: 1 of unlimited" in stripped
    rc, out, _ = await server_cli(server, "info", "--json")
    data = json.loads(out)
    assert data["server"]["port"] == server.port and data["jetstream"]["streams"] == 1


async def test_server_check_exit_codes(server: LiveServer, nc) -> None:
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s"])
    for _ in range(3):
        await js.publish("s", b"x")

    rc, out, _ = await server_cli(server, "check", "connection", *LOOSE)
    assert rc == 0 and out.startswith("OK Connection OK:connected to ") and "rtt=" in out
    rc, out, _ = await server_cli(server, "check", "connection", *LOOSE, "--rtt-warn", "1ns")
    assert rc == 1 and out.startswith("WARNING Connection WARN:rtt time ")

    rc, out, _ = await server_cli(server, "check", "stream", "--stream", "S", *LOOSE, "--msgs-critical", "1")
    assert rc == 0 and "stream S has 3 messages" in out and "messages=3;;1" in out
    rc, out, _ = await server_cli(server, "check", "stream", "--stream", "S", *LOOSE, "--msgs-warn", "5")
    assert rc == 1 and "WARN:messages 3" in out
    rc, out, _ = await server_cli(server, "check", "stream", "--stream", "S", *LOOSE, "--msgs-critical", "3")
    assert rc == 2 and out.startswith("CRITICAL Stream CRIT:messages 3")
    rc, out, _ = await server_cli(server, "check", "stream", "--stream", "NOPE", *LOOSE)
    assert rc == 2 and "CRIT:stream NOPE: stream not found (err_code=10059, code=404)" in out

    rc, out, _ = await server_cli(server, "check", "jetstream", *LOOSE, "--streams-critical", "1")
    assert rc == 2 and "CRIT:streams 1" in out
    rc, out, _ = await server_cli(server, "check", "jetstream", *LOOSE, "--format", "json")
    assert rc == 0 and json.loads(out)["status"] == "OK"


async def test_server_check_unreachable_is_critical() -> None:
    rc, out, _ = await server_cli(None, "-s", f"nats://127.0.0.1:{free_port()}", "check", "connection")
    assert rc == 2
    assert out.startswith("CRITICAL Connection CRIT:could not connect to nats://127.0.0.1:")


async def test_bench_core_and_jetstream(server: LiveServer, nc) -> None:
    res = await run_cli(server, "bench", "bench.core", "--pub", "2", "--sub", "2", "--msgs", "2000", "--size", "16")
    assert res.rc == 0, res.err
    rows = {tuple(x.strip() for x in ln.strip("│").split("│"))[:3] for ln in res.out.splitlines()
            if ln.startswith("│ Pub") or ln.startswith("│ Sub")}
    assert ("Publish", "all", "2,000") in rows and ("Subscribe", "#1", "2,000") in rows
    assert ("Subscribe", "all", "4,000") in rows
    assert "Pub stats: " in res.out and "Sub stats: " in res.out

    res = await run_cli(server, "bench", "bench.js", "--js", "--sub", "1", "--msgs", "500", "--json")
    assert res.rc == 0, res.err
    samples = json.loads(res.out)
    assert [(s["role"], s["msgs"]) for s in samples] == [("Publish", 500), ("Subscribe", 500)]
    names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"")).data)["streams"] or []
    assert "benchstream" not in names  # the throwaway stream is removed afterwards
