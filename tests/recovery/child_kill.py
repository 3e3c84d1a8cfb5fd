"""Shared by the store-level kill -9 tests: run a writer child, SIGKILL it at a random moment.

The child prints `R ...` once its store is open, then progress lines; the caller parses those
lines to learn what the child reported durable before it died.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time


def run_until_killed(child_src: str, args: list[str], rnd: random.Random, max_wait: float) -> list[str]:
    """Start `python -c child_src *args`, wait for its `R` line, let it run for a random
    moment up to max_wait seconds, kill -9 it and return every line it printed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", child_src, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("R "):
                ready.set()
        ready.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        assert ready.wait(30), "child did not start"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(rnd.uniform(0.0, max_wait))  # the kill moment is what varies; nothing to poll
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t.join(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    return lines
