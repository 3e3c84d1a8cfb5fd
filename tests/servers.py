"""Start a NATS server as a subprocess for tests: ours (`pyjetstream server`) or the reference
/usr/sbin/nats-server 2.9.10, on a loopback port, and stop it by PID; our server in-process
(`start_in_process`); `free_port`; plus RawClient, a blocking raw-socket peer for byte-level
checks; `flushed`, a flush that is a barrier for earlier publishes.

Owns process handling only (command line, readiness wait, log file, stop). It knows nothing
about what a test does with the server. Usage (tests import it as `from servers import ...`;
tests/conftest.py puts this directory on sys.path):

    srv = start_server("pyjetstream", tmp_path, "-m", "-1", config="max_payload: 4096")
    ...  # srv.url, srv.port, srv.http_port, srv.get_json("/varz"), srv.log()
    srv.stop()  # SIGTERM, then SIGKILL after a timeout; returns the exit code
    # or: with start_server("nats-server", tmp_path, "--user", "u", "--pass", "p") as srv: ...

`kind` is "pyjetstream", "nats-server" or "nats-server-new" (the binary NATS_SERVER_NEW
names; callers skip unless have_newer_nats_server()). Ready means: the client port sends INFO, and the
monitoring port (when -m is given) answers /varz. Ports picked by the server (-1, the
default) are read from its log. Every path and port is loopback-local.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NATS_SERVER = "/usr/sbin/nats-server"
# A newer nats-server for keys 2.9.10 lacks (.ci/run sets it); kind "nats-server-new" runs it.
NATS_SERVER_NEW = os.environ.get("NATS_SERVER_NEW", "")
KINDS = ("pyjetstream", "nats-server")
_LISTEN_RE = re.compile(rb"Listening for client connections on [^\s:]+:(\d+)")
_MONITOR_RE = re.compile(rb"[Ss]tarting http monitor on [^\s:]+:(\d+)")


def have_nats_server() -> bool:
    return shutil.which(NATS_SERVER) is not None


def have_newer_nats_server() -> bool:
    return bool(NATS_SERVER_NEW) and os.path.exists(NATS_SERVER_NEW)


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def self_signed_cert(directory: str | os.PathLike[str], names: str = "IP:127.0.0.1,DNS:localhost") -> tuple[str, str]:
    """A throwaway self-signed certificate (it is its own CA) for `names` (a subjectAltName
    value) and its key, made with the openssl CLI; callers skip when not have_openssl()."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost", "-addext", f"subjectAltName={names}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def free_port() -> int:
    """A port that was free a moment ago (the OS may hand it out again; good enough on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_in_process(store_dir: str | os.PathLike[str], port: int = 0, **options: Any) -> Any:
    """Our server (pyjetstream.server.server.Server) in the calling test's event loop, with
    JetStream storing under `store_dir`, on 127.0.0.1 (`port` 0: a free one, see `.port`);
    `options` are further ServerOptions fields (http_port=-1: a monitoring port of its own).
    The caller awaits `shutdown()`."""
    from pyjetstream.server.options import JetStreamOptions, ServerOptions
    from pyjetstream.server.server import Server

    srv = Server(ServerOptions(host="127.0.0.1", port=port,
                               jetstream=JetStreamOptions(enabled=True, store_dir=str(store_dir)), **options))
    await srv.start()
    return srv


def server_command(kind: str) -> list[str]:
    if kind == "pyjetstream":
        return [sys.executable, "-m", "pyjetstream", "server"]
    if kind == "nats-server":
        return [NATS_SERVER]
    if kind == "nats-server-new" and NATS_SERVER_NEW:
        return [NATS_SERVER_NEW]
    raise ValueError(f"unknown server kind {kind!r}")


class ServerProc:
    """One running server. `port` and `http_port` are known once `start()` returned."""

    def __init__(self, kind: str, workdir: str | os.PathLike[str], args: Sequence[str] = (),
                 config: str | None = None, port: int | None = None, listen_flags: bool = True,
                 tls_first: ssl.SSLContext | None = None) -> None:
        """`listen_flags=False` leaves out `-a 127.0.0.1 -p PORT`, so the config file's
        listen/port decide (`port` must then say which port that is). `tls_first`: the server
        sends INFO only after a TLS handshake (handshake_first), so readiness is checked with
        this client context."""
        self.kind = kind
        self.tls_first = tls_first
        self.listen_flags = listen_flags
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = self.workdir / f"{kind}.conf"
            self.config_path.write_text(config)
        # By default the server picks (-1) and we read the port from its log, which cannot race
        # with other processes; with -l the log is elsewhere, so we pick a free port up front.
        logs_elsewhere = any(a in ("-l", "--l", "-log", "--log") or a.startswith(("-l=", "--l=", "-log=", "--log="))
                             for a in self.args)
        if port is None:
            port = free_port() if logs_elsewhere else -1
        self.port = port
        self.http_port = 0
        self.log_path = self.workdir / f"{kind}-{os.getpid()}-{time.monotonic_ns()}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = server_command(self.kind)
        if self.listen_flags:
            cmd += ["-a", "127.0.0.1", "-p", str(self.port)]
        if self.config_path is not None:
            cmd += ["-c", str(self.config_path)]
        return cmd + self.args

    def start(self, timeout: float = 20.0) -> ServerProc:
        cmd = self.command()  # an unknown kind is refused before any file is made
        # append: a restart (after stop or kill) keeps the earlier runs' log
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        want_http = any(a in ("-m", "--m", "-http_port", "--http_port") or a.startswith(("-m=", "--m="))
                        for a in self.args)
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} not ready after {timeout}s:\n{self.log()}")
            raw = self.log_path.read_bytes()
            if self.port <= 0:
                m = _LISTEN_RE.search(raw)
                if m:
                    self.port = int(m.group(1))
            if want_http and not self.http_port:
                m = _MONITOR_RE.search(raw)
                if m:
                    self.http_port = int(m.group(1))
            if self.port > 0 and (self.http_port or not want_http) and self._answers():
                return
            time.sleep(0.03)

    def _answers(self) -> bool:
        if self.tls_first is not None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw, \
                        self.tls_first.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.recv(4096).startswith(b"INFO ")
            except OSError:
                return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                # read the whole INFO line: closing with unread bytes would be a TCP reset
                got = b""
                while not got.endswith(b"\r\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    got += chunk
                if not got.startswith(b"INFO"):
                    return False
        except OSError:
            return False
        if self.http_port:
            try:
                self.get_json("/varz")
            except OSError:
                return False
        return True

    def get_json(self, path: str) -> dict:
        """GET a monitoring document (needs -m)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the process (by PID, via Popen) and reap it; SIGKILL if it does not exit."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def kill(self) -> int | None:
        """SIGKILL, as a crash: the next `start()` runs the server again on the same port and
        store (clients reconnect to it)."""
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(kind: str, workdir: str | os.PathLike[str], *args: str, config: str | None = None,
                 port: int | None = None, timeout: float = 20.0, tls_first: ssl.SSLContext | None = None) -> ServerProc:
    """Start and wait until ready. `args` are extra server flags (nats-server syntax)."""
    return ServerProc(kind, workdir, args, config, port, tls_first=tls_first).start(timeout)


async def flushed(nc: Any, timeout: float = 10.0) -> None:
    """Return once the server has read everything `nc` (a nats-py client) sent before: the
    CLI's barrier (pyjetstream.cli.common.flushed, which says why one flush is not one), with
    nats-py's default flush timeout."""
    from pyjetstream.cli.common import flushed as barrier

    await barrier(nc, timeout)


class RawClient:
    """A blocking raw-socket NATS peer for byte-level tests: it reads the INFO line on
    connect, then sends exactly what the test gives it. `sync()` sends PING and returns what
    arrived before the answering PONG, so tests need no sleeps."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        line = self.read_until(b"\r\n")
        self.info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}

    def send(self, data: bytes) -> None:
        """Send; a peer that has already closed is recorded (`closed`), not raised."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def _recv(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer; got so far {self.buf!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_until(self, marker: bytes, count: int = 1) -> bytes:
        """Everything up to and including the `count`-th `marker` (or up to close)."""
        deadline = time.monotonic() + self.timeout
        while True:
            pos = -1
            for _ in range(count):
                pos = self.buf.find(marker, pos + 1)
                if pos < 0:
                    break
            if pos >= 0:
                end = pos + len(marker)
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            if self.closed or not self._recv(deadline):
                out, self.buf = self.buf, b""
                return out

    def read_until_closed(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while not self.closed and self._recv(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def sync(self, extra_pongs: int = 0) -> bytes:
        """PING, then everything received up to its PONG (the PONG itself is dropped).
        `extra_pongs`: PINGs the test itself sent since the last sync and not yet read."""
        self.send(b"PING\r\n")
        out = self.read_until(b"PONG\r\n", 1 + extra_pongs)
        return out[:-6] if out.endswith(b"PONG\r\n") else out

    def close(self) -> None:
        self.sock.close()
