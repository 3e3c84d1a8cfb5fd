"""Differential with a second client: nats.go runs the same stream/KV calls against
nats-server 2.9.10 and against ours, and must print exactly the same transcript."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

GO = shutil.which("go")
GOPATH = "/usr/share/gocode"
SRC = Path(__file__).resolve().parents[1] / "jetstream" / "nats_go_check"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
OURS = str(Path(sys.executable).parent / "pyjetstream")

pytestmark = pytest.mark.skipif(
    GO is None or not os.path.isdir(f"{GOPATH}/src/github.com/nats-io/nats.go") or not os.path.exists(NATS_SERVER),
    reason="needs go, nats.go in GOPATH and nats-server",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_against(cmd: list[str], store: Path, binary: Path) -> str:
    port = _free_port()
    store.mkdir(parents=True, exist_ok=True)
    with open(store / "server.log", "wb") as log:
        proc = subprocess.Popen([*cmd, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while True:
                assert proc.poll() is None, "server exited"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.02)
            out = subprocess.run([str(binary), f"nats://127.0.0.1:{port}"], capture_output=True, text=True,
                                 timeout=30)
            return out.stdout + out.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_nats_go_sees_the_same_as_on_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    binary = tmp_path / "natsgo_check"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH}
    build = subprocess.run([GO, "build", "-o", str(binary), "."], cwd=SRC, env=env, capture_output=True, text=True,
                           timeout=120)
    assert build.returncode == 0, build.stderr
    ref = _run_against([NATS_SERVER], tmp_path / "ref", binary)
    ours = _run_against([OURS, "server"], tmp_path / "ours", binary)
    assert ref.rstrip().endswith("OK"), ref
    assert ours == ref
