"""Fixtures for the client-compatibility suite: build/install the foreign clients once per
machine (cached under /tmp by content hash), and run one client scenario against a fresh
pyjetstream server and a fresh reference nats-server side by side.

Owns only test plumbing: it knows how to start servers (through tests/servers.py), how to
cache a Go binary or an npm install, and how to run a client program that prints JSON.
It must not interpret scenario results; the test modules compare and assert.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# compare.py asserts for the test modules: pytest shows the values as in a test module
pytest.register_assert_rewrite(f"{__package__}.compare")

from servers import (  # noqa: E402
    KINDS,
    ServerProc,
    have_nats_server,
    have_newer_nats_server,
    have_openssl,
    self_signed_cert,
)

HERE = Path(__file__).resolve().parent
GO_SRC = HERE / "go" / "natscompat"
NODE_SRC = HERE / "node"
GO_ENV = {"GO111MODULE": "off", "GOPATH": "/usr/share/gocode"}
NATS_GO_DIR = Path("/usr/share/gocode/src/github.com/nats-io/nats.go")
CACHE_ROOT = Path(os.environ.get("PYJETSTREAM_COMPAT_CACHE", "/tmp/pyjetstream-compat"))
CLIENT_TIMEOUT = 60.0


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:20]


def _tree_bytes(root: Path, suffixes: tuple[str, ...]) -> bytes:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in suffixes and "node_modules" not in p.parts:
            out.append(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return b"\0\0".join(out)


def _publish_dir(tmp: Path, final: Path) -> None:
    """Move a finished build into place atomically; a concurrent twin may have won the race."""
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise


@pytest.fixture(scope="session")
def go_client() -> Path:
    """The natscompat binary, built against Debian's nats.go; skip when Go is not there."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go toolchain not installed (Debian package golang-go)")
    if not NATS_GO_DIR.is_dir():
        pytest.skip(f"nats.go sources missing at {NATS_GO_DIR} (golang-github-nats-io-go-nats-dev)")
    version = subprocess.run([go, "version"], capture_output=True, timeout=30).stdout
    key = _digest(_tree_bytes(GO_SRC, (".go",)), version, _tree_bytes(NATS_GO_DIR, (".go",)))
    final = CACHE_ROOT / f"go-{key}"
    binary = final / "natscompat"
    if binary.exists():
        return binary
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="go-build-", dir=CACHE_ROOT))
    env = {**os.environ, **GO_ENV, "GOCACHE": str(CACHE_ROOT / "gocache")}
    r = subprocess.run([go, "build", "-o", str(tmp / "natscompat"), "."], cwd=GO_SRC, env=env,
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"go build failed:\n{r.stderr.decode(errors='replace')}")
    _publish_dir(tmp, final)
    return binary


@pytest.fixture(scope="session")
def node_client() -> Path:
    """A directory holding the pinned @nats-io packages and our script; skip without npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed")
    manifest = (NODE_SRC / "package.json").read_bytes()
    final = CACHE_ROOT / f"node-{_digest(manifest)}"
    if not (final / "node_modules").is_dir():
        CACHE_ROOT.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="npm-install-", dir=CACHE_ROOT))
        (tmp / "package.json").write_bytes(manifest)
        try:
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tmp,
                               capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip("npm install timed out (registry unreachable?)")
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip(f"npm install failed: {r.stderr.decode(errors='replace')[-400:]}")
        _publish_dir(tmp, final)
    # ESM resolves imports next to the script, so the script lives beside node_modules;
    # named by content so concurrent sessions with different scripts do not clash.
    script_src = (NODE_SRC / "natscompat.mjs").read_bytes()
    script = final / f"natscompat-{_digest(script_src)}.mjs"
    if not script.exists():
        tmp_script = final / f".{script.name}.{os.getpid()}"
        tmp_script.write_bytes(script_src)
        os.replace(tmp_script, script)
    return script


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (it is its own CA) and its key."""
    if not have_openssl():
        pytest.skip("openssl CLI not installed")
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    return Path(cert), Path(key)


@dataclass
class ClientRun:
    kind: str
    stdout: str
    stderr: str
    returncode: int
    server_log: str

    def json(self) -> dict[str, Any]:
        if self.returncode != 0:
            raise AssertionError(f"client against {self.kind} exited {self.returncode}:\n{self.stderr}\n"
                                 f"--- server log tail ---\n{self.server_log[-3000:]}")
        return json.loads(self.stdout)


RunBoth = Callable[..., dict[str, ClientRun]]
# The servers each scenario runs against: ours, nats-server 2.9.10, and nats-server 2.15
# (servers.py's kind "nats-server-new") when NATS_SERVER_NEW names it.
REFERENCES = ("nats-server", "nats-server-new")


def compared_kinds() -> tuple[str, ...]:
    return KINDS + (("nats-server-new",) if have_newer_nats_server() else ())


@pytest.fixture(scope="session")
def run_both(tmp_path_factory: pytest.TempPathFactory) -> RunBoth:
    """Run the same client command against a fresh pyjetstream, a fresh nats-server 2.9.10
    and, when NATS_SERVER_NEW is set, a fresh newer nats-server (JetStream on, file store, new
    directories), all at once; `{url}` in the command is replaced by each server's URL;
    `server_args` are extra flags for all. With `restart_marker`, when the client prints that
    line the server is stopped and started again on the same port and store, and the client is
    told to go on by a line on its stdin. The servers are stopped before this returns; the
    result maps each kind to its run."""
    if not have_nats_server():
        pytest.skip("reference nats-server not installed")
    kinds = compared_kinds()

    def run(label: str, cmd: list[str], restart_marker: str | None = None,
            server_args: Sequence[str] = ()) -> dict[str, ClientRun]:
        base = tmp_path_factory.mktemp(label)
        servers: dict[str, ServerProc] = {}
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            for kind in kinds:
                servers[kind] = ServerProc(kind, base / kind, ("-js", "-sd", str(base / kind / "store"),
                                                               *server_args)).start()
            for kind, srv in servers.items():
                procs[kind] = subprocess.Popen(
                    [a.replace("{url}", srv.url) for a in cmd], text=True, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, stdin=subprocess.PIPE if restart_marker else subprocess.DEVNULL)
            head: dict[str, str] = {kind: "" for kind in kinds}
            if restart_marker:
                for kind, p in procs.items():
                    assert p.stdout is not None and p.stdin is not None
                    while (line := p.stdout.readline()) and line.strip() != restart_marker:
                        head[kind] += line
                    if not line:
                        continue  # the client died; its exit status and stderr tell why
                    # the same ServerProc again: same port, store and (appended) log
                    servers[kind].stop()
                    servers[kind].start()
                    p.stdin.write("\n")
                    p.stdin.flush()
            out = {}
            for kind, p in procs.items():
                try:
                    so, se = p.communicate(timeout=CLIENT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    so, se = p.communicate()
                    se += f"\n[killed after {CLIENT_TIMEOUT}s]"
                out[kind] = ClientRun(kind, head[kind] + so, se, p.returncode, servers[kind].log())
            return out
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for srv in servers.values():
                srv.stop()

    return run
