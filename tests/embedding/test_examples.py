"""The runnable examples of docs/embedding.md pass, as a user would run them: a separate pytest
process over examples/embedding, on the embedded server and against nats-server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "embedding"
NATS_SERVER = "/usr/sbin/nats-server"


def _run(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _passed(out: str) -> int:
    last = out.strip().splitlines()[-1]
    return int(last.split(" passed")[0].split()[-1]) if " passed" in last else 0


def test_examples_pass_on_the_embedded_server() -> None:
    r = _run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert _passed(r.stdout) == 5  # orders 1, feature flags 2, Kyma Subscription 2


@pytest.mark.skipif(not os.access(NATS_SERVER, os.X_OK), reason="needs the reference nats-server")
def test_examples_pass_against_nats_server() -> None:
    r = _run(f"--nats-server={NATS_SERVER}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _passed(r.stdout) == 5
