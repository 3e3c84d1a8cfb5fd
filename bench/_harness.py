"""What the benchmarks share for running servers: a free port, waiting for a child to listen,
starting a server command on such a port, and a process's CPU time from /proc.

Owns these helpers, once for all of bench/ (bench/ cannot import tests/; run as scripts, the
benchmarks find this module next to them). The port helpers are pyjetstream.eventing.testing's,
the package's support for what cannot import tests/, re-exported here rather than written again.
Must not measure anything itself: a benchmark whose figure is the start-up time keeps its own
tight polling loop (startup_bench, embed_bench), which a generic wait would blur.
"""

from __future__ import annotations

import compileall
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pyjetstream
from pyjetstream.eventing.testing import free_port, wait_for_port

__all__ = ["cpu_seconds", "ensure_bytecode", "free_port", "start_listening", "stop", "wait_for_port"]


def ensure_bytecode() -> None:
    """Compile our sources where their bytecode is stale, as `make bytecode` does. With
    PYTHONDONTWRITEBYTECODE set, a server started after an edit compiles the edited modules
    again on every start: measured 2026-12-03, an empty `pyjetstream server -js` held 31.7 MiB
    instead of 28.0 after a change to the store, and every RSS figure of those runs with it."""
    compileall.compile_dir(str(Path(pyjetstream.__file__).parent), quiet=1)


# Every benchmark that imports this starts or measures our server: compile before any of it.
ensure_bytecode()

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process so far (fields 14 and 15 of /proc/PID/stat,
    counted after the command name, which may itself hold spaces and parentheses)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def start_listening(cmd: list[str], port: int, timeout: float = 20.0, **popen: Any) -> subprocess.Popen[bytes]:
    """Start `cmd`, which must listen on 127.0.0.1:`port`, and return once it does. Output goes
    nowhere unless `popen` says otherwise. A child that exits first, or does not listen within
    `timeout` seconds, is killed and the error (RuntimeError, TimeoutError) raised."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **popen)
    try:
        wait_for_port(port, timeout, proc)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """End a child as a user would (SIGTERM) and wait for it; one that has not exited within
    `timeout` seconds is killed. A child that has already exited is only reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
