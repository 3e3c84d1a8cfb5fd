#!/usr/bin/env python3
"""Server restart with a big stream: time to ready and memory, ours next to nats-server.

Owns one measurement, end to end through real server processes: fill a file stream with
N messages (default 1,000,000 x 128 B) over the NATS protocol, then
  crash   SIGKILL the idle server (no clean shutdown) and start it again: the recovery path;
  clean   SIGTERM it and start it again: the normal restart path;
and for each restart measure the seconds from spawn until `$JS.API.STREAM.INFO` answers (and
whether with the full count), and VmRSS/VmHWM from /proc right then and a moment later.
It must not be run by the test suite (it writes hundreds of MB and takes minutes).

  .venv/bin/python bench/restart_bench.py                       # ours and nats-server 2.9.10
  .venv/bin/python bench/restart_bench.py --nats215 "$(../shared/bench/get_newer_server.sh)"
  .venv/bin/python bench/restart_bench.py --count 100000 --servers pyjetstream

Prints one JSON object per line, then a markdown table. The fill uses plain publishes without
a reply subject, pipelined over a few connections (no PubAck round trips), so it measures
ingest, not durability; both servers keep their default durability settings. A server that
sheds part of that flood (nats-server 2.15 does) gets the remainder with acknowledged publishes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from _harness import free_port  # bench/ is on the path when run as a script

ROOT = Path(__file__).resolve().parent.parent
OURS = [str(ROOT / ".venv" / "bin" / "pyjetstream"), "server"]
NATS_SERVER = "/usr/sbin/nats-server"
STREAM = "BENCH"
SUBJECTS = 8  # a few subjects: per-subject bookkeeping is allowed to cost memory, messages are not


def proc_mem_mib(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def dir_mib(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return round(total / 2**20, 1)


@dataclass
class Server:
    name: str
    cmd: list[str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> float:
        store = self.workdir / "store"
        store.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd + ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        return t0

    def signal_and_wait(self, sig: int, timeout: float = 120) -> float:
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return time.monotonic() - t0

    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


async def probe_info(srv: Server, deadline: float) -> bool:
    """True once the server accepts a connection and sends INFO. A raw probe, because nats-py's
    connect waits its reconnect interval (2 s) after a refusal, which would swamp the measurement."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    except OSError:
        return False
    try:
        hello = await asyncio.wait_for(r.readline(), max(0.1, deadline - time.monotonic()))
    except (TimeoutError, OSError):
        hello = b""
    w.close()
    return hello.startswith(b"INFO")


async def wait_ready(srv: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await probe_info(srv, deadline):
        if srv.proc is not None and srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.name} exited with {srv.proc.returncode}; see {srv.workdir}/server.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{srv.name} not listening")
        await asyncio.sleep(0.005)


async def stream_info(srv: Server, deadline: float) -> tuple[dict[str, Any], float]:
    """Poll until the server answers STREAM.INFO for the bench stream; returns (info, monotonic time)."""
    while True:
        if srv.proc is not None and srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.name} exited with {srv.proc.returncode}; see {srv.workdir}/server.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{srv.name} did not answer STREAM.INFO in time")
        if not await probe_info(srv, deadline):
            await asyncio.sleep(0.005)
            continue
        try:
            nc = await nats.connect(srv.url(), allow_reconnect=False, connect_timeout=2, error_cb=_quiet)
        except (TimeoutError, OSError, nats.errors.Error):
            await asyncio.sleep(0.005)
            continue
        try:
            while time.monotonic() < deadline:
                try:
                    msg = await nc.request(f"$JS.API.STREAM.INFO.{STREAM}", b"", timeout=2)
                except nats.errors.NoRespondersError:
                    await asyncio.sleep(0.005)  # JetStream not subscribed yet
                    continue
                except nats.errors.TimeoutError:
                    continue
                info = json.loads(msg.data)
                if "error" in info:
                    await asyncio.sleep(0.005)
                    continue
                return info, time.monotonic()
        finally:
            await nc.close()


async def _quiet(e: Exception) -> None:
    """nats-py logs every connection error by default; the bench expects refusals while polling."""


async def create_stream(srv: Server) -> None:
    info, _ = await _api(srv, f"$JS.API.STREAM.CREATE.{STREAM}", {
        "name": STREAM, "subjects": ["bench.>"], "storage": "file", "retention": "limits",
        "num_replicas": 1, "discard": "old", "max_msgs": -1, "max_bytes": -1, "max_age": 0,
    })
    if "error" in info:
        raise RuntimeError(f"{srv.name}: stream create failed: {info}")


async def _api(srv: Server, subject: str, req: dict[str, Any]) -> tuple[dict[str, Any], None]:
    nc = await nats.connect(srv.url(), allow_reconnect=False, error_cb=_quiet)
    try:
        for _ in range(200):
            try:
                msg = await nc.request(subject, json.dumps(req).encode(), timeout=5)
                return json.loads(msg.data), None
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.02)
        raise RuntimeError(f"{srv.name}: JetStream never answered")
    finally:
        await nc.close()


async def fill(srv: Server, count: int, size: int, conns: int) -> tuple[float, int]:
    """Publish `count` messages without reply subjects over `conns` connections; wait until stored."""
    body = b"x" * size
    t0 = time.monotonic()

    async def one(k: int, n: int) -> None:
        nc = await nats.connect(srv.url(), allow_reconnect=False, pending_size=64 * 1024 * 1024,
                                flush_timeout=120, error_cb=_quiet)
        try:
            subjects = [f"bench.{(k + j) % SUBJECTS}" for j in range(SUBJECTS)]
            for i in range(n):
                await nc.publish(subjects[i % SUBJECTS], body)
                if i % 20_000 == 19_999:
                    await nc.flush(timeout=120)  # bounds the client buffer; the server paces us via TCP
            await nc.flush(timeout=120)
        finally:
            await nc.close()

    share = [count // conns + (1 if k < count % conns else 0) for k in range(conns)]
    await asyncio.gather(*(one(k, n) for k, n in enumerate(share)))
    deadline = time.monotonic() + 300
    last, still, topped = -1, 0, 0
    while True:
        info, _ = await stream_info(srv, deadline)
        have = info["state"]["messages"]
        if have >= count:
            return time.monotonic() - t0, topped
        still = still + 1 if have == last else 0
        last = have
        if still >= 10:
            # Newer nats-server versions shed unacknowledged publishes beyond their ingest queue
            # ("excessive stream ingest rate"); the rest goes in with PubAcks, which pace us.
            topped += count - have
            await top_up(srv, count - have, body)
        await asyncio.sleep(0.05)


async def top_up(srv: Server, n: int, body: bytes) -> None:
    nc = await nats.connect(srv.url(), allow_reconnect=False, error_cb=_quiet)
    try:
        js = nc.jetstream(timeout=60, publish_async_max_pending=2000)
        futs = [await js.publish_async(f"bench.{i % SUBJECTS}", body) for i in range(n)]
        await asyncio.gather(*futs)
    finally:
        await nc.close()


async def restart(srv: Server, count: int, path: str) -> dict[str, Any]:
    t0 = srv.spawn()
    info, t_ready = await stream_info(srv, time.monotonic() + 600)
    assert srv.proc is not None
    mem_ready = proc_mem_mib(srv.proc.pid)
    await asyncio.sleep(2)  # let anything the server defers to after readiness settle
    mem_later = proc_mem_mib(srv.proc.pid)
    st = info["state"]
    return {
        "path": path, "ready_s": round(t_ready - t0, 3), "messages": st["messages"],
        "full": st["messages"] == count, "lost": (st.get("lost") or {}).get("msgs") and len(st["lost"]["msgs"]),
        "rss_mib": mem_ready.get("VmRSS"), "rss_2s_mib": mem_later.get("VmRSS"), "hwm_mib": mem_later.get("VmHWM"),
    }


async def bench_server(name: str, cmd: list[str], base: Path, count: int, size: int, conns: int) -> list[dict]:
    srv = Server(name, cmd, base / name)
    out: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> None:
        rec = {"server": name, "count": count, "size": size, **rec}
        print(json.dumps(rec), flush=True)
        out.append(rec)

    try:
        # an empty start, for the baseline memory of each server
        t0 = srv.spawn()
        await wait_ready(srv)
        await _api(srv, "$JS.API.INFO", {})
        assert srv.proc is not None
        emit({"path": "empty", "ready_s": round(time.monotonic() - t0, 3), **_mem(srv.proc.pid)})
        await create_stream(srv)
        fill_s, topped = await fill(srv, count, size, conns)
        await asyncio.sleep(1)  # nats-server writes behind its flusher; give it its usual moment
        emit({"path": "filled", "fill_s": round(fill_s, 1), "msgs_per_s": round(count / fill_s), "topped_up": topped,
              **_mem(srv.proc.pid), "disk_mib": dir_mib(srv.workdir / "store")})
        srv.signal_and_wait(signal.SIGKILL)
        emit(await restart(srv, count, "after kill -9"))
        stop_s = srv.signal_and_wait(signal.SIGTERM)
        rec = await restart(srv, count, "after SIGTERM")
        rec["shutdown_s"] = round(stop_s, 3)
        emit(rec)
    finally:
        srv.signal_and_wait(signal.SIGTERM, timeout=60)
    return out


def _mem(pid: int) -> dict[str, float | None]:
    m = proc_mem_mib(pid)
    return {"rss_mib": m.get("VmRSS"), "hwm_mib": m.get("VmHWM")}


def table(rows: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(r["server"] for r in rows))
    by = {(r["server"], r["path"]): r for r in rows}
    lines = ["| measurement | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, path: str, key: str, fmt: str = "{}") -> None:
        cells = []
        for n in names:
            v = by.get((n, path), {}).get(key)
            cells.append("-" if v is None else fmt.format(v))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("start with an empty store, ready (s)", "empty", "ready_s")
    row("RSS empty server (MiB)", "empty", "rss_mib")
    row("fill rate, no-ack publishes (msgs/s)", "filled", "msgs_per_s")
    row("... of which re-sent with PubAcks after being shed", "filled", "topped_up")
    row("RSS after fill (MiB)", "filled", "rss_mib")
    row("store on disk (MiB)", "filled", "disk_mib")
    for path in ("after kill -9", "after SIGTERM"):
        row(f"{path}: ready with stream info (s)", path, "ready_s")
        row(f"{path}: messages recovered", path, "messages")
        row(f"{path}: RSS at ready (MiB)", path, "rss_mib")
        row(f"{path}: RSS 2 s later (MiB)", path, "rss_2s_mib")
        row(f"{path}: peak RSS VmHWM (MiB)", path, "hwm_mib")
    row("clean shutdown (s)", "after SIGTERM", "shutdown_s")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--conns", type=int, default=4, help="publishing connections for the fill")
    ap.add_argument("--servers", default="pyjetstream,nats-server-2.9.10",
                    help="comma list of pyjetstream, nats-server-2.9.10, nats-server-2.15 (needs --nats215)")
    ap.add_argument("--nats215", default=os.environ.get("NATS_SERVER_215", ""),
                    help="path of a newer nats-server binary (../shared/bench/get_newer_server.sh prints one)")
    ap.add_argument("--dir", default="", help="work directory (default: a temp dir, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    a = ap.parse_args()
    cmds = {"pyjetstream": OURS, "nats-server-2.9.10": [NATS_SERVER]}
    servers = a.servers.split(",")
    if a.nats215:
        cmds["nats-server-2.15"] = [a.nats215]
        if "nats-server-2.15" not in servers:
            servers.append("nats-server-2.15")
    base = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="restart-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        for name in servers:
            if name not in cmds:
                print(f"unknown or unavailable server {name!r}", file=sys.stderr)
                return 2
            rows += asyncio.run(bench_server(name, cmds[name], base, a.count, a.size, a.conns))
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
