"""`pyjetstream server` as a process: signals (SIGTERM/SIGINT clean exit, SIGUSR2 lame duck),
-P pid file, -l log file, `-p -1`, a config file using every key issue 2 lists (also
accepted by nats-server -t), the command line winning over the config file, and refusal of
unsupported flags. Waits poll with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from servers import (
    NATS_SERVER,
    RawClient,
    ServerProc,
    free_port,
    have_nats_server,
    server_command,
    start_server,
)

FULL_CONF = """
# every key of issue 2, single-user variant
listen: 127.0.0.1:4999
port: {port}
server_name: "conf-test"
max_payload: 64KB
max_pending: 32MB
ping_interval: "30s"
ping_max: 3
write_deadline: "5s"
jetstream {{
  store_dir: "{store}"
  max_mem: 256MB
  max_file: 1GB
}}
authorization {{
  user: alice
  password: "s3cret"
  timeout: 1.5
}}
"""


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command("pyjetstream"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.03)


def test_sigterm_exits_cleanly_and_removes_pid_file(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "srv.pid", tmp_path / "srv.log"
    srv = start_server("pyjetstream", tmp_path, "-P", str(pid_file), "-l", str(log_file))
    assert pid_file.read_text().strip() == str(srv.pid)
    raw = RawClient(srv.port)
    assert srv.stop(signal.SIGTERM) == 0
    assert raw.read_until_closed() == b""  # clients are closed, not left hanging
    raw.close()
    assert not pid_file.exists()
    log = log_file.read_text()
    assert f"Listening for client connections on 127.0.0.1:{srv.port}" in log
    assert "Server Exiting" in log
    assert srv.log() == ""  # with -l nothing goes to stdout/stderr


def test_trace_logs_the_raw_protocol(tmp_path: Path) -> None:
    log_file = tmp_path / "trace.log"
    with start_server("pyjetstream", tmp_path, "-V", "-l", str(log_file)) as srv:
        raw = RawClient(srv.port)
        raw.send(b"CONNECT {\"verbose\":false}\r\nSUB traced 1\r\nPUB traced 2\r\nhi\r\n")
        assert raw.sync() == b"MSG traced 1 2\r\nhi\r\n"
        raw.close()
    log = log_file.read_text()
    assert "<<- " in log and "PUB traced 2" in log
    assert "->> " in log and "MSG traced 1 2" in log


def test_sigint_exits_cleanly(tmp_path: Path) -> None:
    srv = start_server("pyjetstream", tmp_path)
    assert srv.stop(signal.SIGINT) == 0


@pytest.mark.parametrize("port", [-1, 0])
def test_port_minus_one_or_zero_picks_a_free_port_and_logs_it(tmp_path: Path, port: int) -> None:
    with start_server("pyjetstream", tmp_path, port=port) as srv:
        assert srv.port > 0  # found in the log line "Listening for client connections on ..."
        raw = RawClient(srv.port)
        assert raw.info["port"] == srv.port
        raw.close()


def test_lame_duck_sends_ldm_then_closes(tmp_path: Path) -> None:
    # a long duration must not hold the server: closes are at most a second apart
    conf = 'lame_duck_duration: "60s"\nlame_duck_grace_period: "100ms"\n'
    srv = start_server("pyjetstream", tmp_path, config=conf)
    try:
        raw = RawClient(srv.port)
        raw.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n")
        assert raw.sync() == b""
        old = RawClient(srv.port)  # protocol 0: gets no asynchronous INFO, only the close
        old.send(b"CONNECT {\"verbose\":false}\r\n")
        assert old.sync() == b""
        srv.send_signal(signal.SIGUSR2)
        out = raw.read_until_closed()
        assert out.startswith(b"INFO ") and out.endswith(b"\r\n")
        info = json.loads(out[5:out.index(b"\r\n")])
        assert info["ldm"] is True and info["client_id"] > 0
        assert old.read_until_closed() == b""
        assert srv.wait(15) == 0
        assert "lame duck" in srv.log().lower()
    finally:
        srv.stop(signal.SIGKILL)


async def test_config_file_with_every_key(tmp_path: Path) -> None:
    port = free_port()
    conf = FULL_CONF.format(port=port, store=tmp_path / "js")
    srv = ServerProc("pyjetstream", tmp_path, ["-m", "-1"], config=conf, port=port, listen_flags=False)
    srv.start()
    try:
        varz = srv.get_json("/varz")
        assert (varz["port"], varz["server_name"]) == (port, "conf-test")
        assert (varz["max_payload"], varz["max_pending"]) == (64 * 1024, 32 * 1024 * 1024)
        assert (varz["ping_interval"], varz["ping_max"]) == (30_000_000_000, 3)
        assert (varz["write_deadline"], varz["auth_timeout"]) == (5_000_000_000, 1.5)
        info = RawClient(port).info
        assert info["auth_required"] is True and info["max_payload"] == 65536 and info.get("jetstream")
        nc = await nats.connect(srv.url, user="alice", password="s3cret")
        await nc.close()
    finally:
        srv.stop()


@pytest.mark.skipif(not have_nats_server(), reason="nats-server binary not installed")
def test_nats_server_accepts_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "full.conf"
    path.write_text(FULL_CONF.format(port=4999, store=tmp_path / "js"))
    r = subprocess.run([NATS_SERVER, "-t", "-c", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_command_line_overrides_config(tmp_path: Path) -> None:
    conf = 'server_name: "from-config"\nmax_payload: 1KB\n'
    with start_server("pyjetstream", tmp_path, "-n", "from-flags", "--max_payload=2048", "-m", "-1",
                      config=conf) as srv:
        varz = srv.get_json("/varz")
        assert (varz["server_name"], varz["max_payload"]) == ("from-flags", 2048)


@pytest.mark.parametrize(("args", "text"), [
    (["--cluster", "nats://127.0.0.1:6222"], "does not support"),
    (["--routes=nats://127.0.0.1:6222"], "does not support"),
    (["-bogus"], "flag provided but not defined: -bogus"),
    (["-p"], "flag needs an argument: -p"),
    (["-p", "notaport"], 'invalid value "notaport" for flag -p'),
    (["-c", "/nonexistent/pyjetstream.conf"], "error opening config file"),
    (["stray"], "unexpected argument"),
])
def test_unsupported_or_bad_flags_fail_loudly(args: list[str], text: str) -> None:
    r = run_cli(*args)
    assert r.returncode != 0
    assert text in r.stderr


def test_unsupported_config_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text("cluster { port: 6222 }\n")
    r = run_cli("-c", str(path), "-p", "-1")
    assert r.returncode != 0 and "unsupported key 'cluster'" in r.stderr


def test_help_and_version() -> None:
    assert "Usage: pyjetstream server" in run_cli("-h").stdout
    assert "nats-server v2.12.4 compatible" in run_cli("--version").stdout


def test_python_dash_m_and_console_script_agree() -> None:
    script = Path(sys.executable).parent / "pyjetstream"
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    r = subprocess.run([str(script), "server", "--version"], capture_output=True, text=True, timeout=20)
    assert r.stdout == run_cli("--version").stdout
    assert os.access(script, os.X_OK)
