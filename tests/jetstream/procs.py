"""Start a real server process (ours or nats-server) on a free loopback port for a test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_server_available() -> bool:
    try:
        import pyjetstream.server.server  # noqa: F401
    except ImportError:
        return False
    return True


class ServerProc:
    """One server subprocess; `kind` is "pyjetstream" or "nats-server"."""

    def __init__(self, kind: str, store_dir: str, extra: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.store_dir = store_dir
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerProc:
        self.port = free_port()
        if self.kind == "nats-server":
            cmd = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store_dir]
        else:
            cmd = [str(VENV_BIN / "pyjetstream"), "server", "-a", "127.0.0.1", "-p", str(self.port), "-js",
                   "-sd", self.store_dir]
        cmd += list(self.extra)
        os.makedirs(self.store_dir, exist_ok=True)
        self.log = open(os.path.join(self.store_dir, f"{self.kind}.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.log.close()
