"""Differential with a second client: nats.go runs the same stream/KV calls against
nats-server 2.9.10 and against ours, and must print exactly the same transcript."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from servers import NATS_SERVER, start_server

GO = shutil.which("go")
GOPATH = "/usr/share/gocode"
SRC = Path(__file__).resolve().parents[1] / "jetstream" / "nats_go_check"

pytestmark = pytest.mark.skipif(
    GO is None or not os.path.isdir(f"{GOPATH}/src/github.com/nats-io/nats.go") or not os.path.exists(NATS_SERVER),
    reason="needs go, nats.go in GOPATH and nats-server",
)


def _run_against(kind: str, store: Path, binary: Path) -> str:
    store.mkdir(parents=True, exist_ok=True)
    proc = start_server(kind, store, "-js", "-sd", str(store))
    try:
        out = subprocess.run([str(binary), proc.url], capture_output=True, text=True, timeout=30)
        return out.stdout + out.stderr
    finally:
        proc.stop()


def test_nats_go_sees_the_same_as_on_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    binary = tmp_path / "natsgo_check"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH}
    build = subprocess.run([GO, "build", "-o", str(binary), "."], cwd=SRC, env=env, capture_output=True, text=True,
                           timeout=120)
    assert build.returncode == 0, build.stderr
    ref = _run_against("nats-server", tmp_path / "ref", binary)
    ours = _run_against("pyjetstream", tmp_path / "ours", binary)
    assert ref.rstrip().endswith("OK"), ref
    assert ours == ref
