"""KV from the Node.js client (@nats-io/kv) against our server: a second, independent client.

The npm packages are installed once into a directory under /tmp (PYJETSTREAM_NODE_DIR to
override); the test is skipped, with the reason, when node/npm are missing or the install fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess

import pytest

NODE_DIR = os.environ.get("PYJETSTREAM_NODE_DIR", "/tmp/pyjetstream-node-kv")
PACKAGES = ["@nats-io/transport-node", "@nats-io/jetstream", "@nats-io/kv"]
SCRIPT = os.path.join(os.path.dirname(__file__), "node", "kv_check.mjs")


def _node_env() -> str:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm not available")
    if not all(os.path.isdir(os.path.join(NODE_DIR, "node_modules", p)) for p in PACKAGES):
        os.makedirs(NODE_DIR, exist_ok=True)
        if not os.path.exists(os.path.join(NODE_DIR, "package.json")):
            with open(os.path.join(NODE_DIR, "package.json"), "w") as f:
                f.write('{"name": "pyjetstream-node-kv", "private": true}\n')
        try:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", *PACKAGES], cwd=NODE_DIR,
                               capture_output=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install timed out")
        if r.returncode != 0:
            pytest.skip(f"npm install failed: {r.stderr.decode(errors='replace')[-300:]}")
    # ESM resolves packages next to the script, so the script runs from the install directory
    dst = os.path.join(NODE_DIR, "kv_check.mjs")
    shutil.copyfile(SCRIPT, dst)
    return dst


async def test_node_kv_operations(ours):
    script = _node_env()
    proc = await asyncio.create_subprocess_exec(
        "node", script, f"nats://127.0.0.1:{ours.port}", cwd=NODE_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    res = json.loads(out.decode().strip().splitlines()[-1])
    assert "error" not in res, res["error"]
    assert res["revisions"] == [1, 2]
    assert res["get"] == "2" and res["getRev"] == "1"
    assert res["createAgain"] == "error" and res["updateStale"] == "error" and res["updated"]
    assert res["history"] == ["1", "2"]
    assert res["afterDelete"] == "DEL" and res["keys"] == ["b"] and res["afterPurge"] == "PURGE"
    assert res["watched"] == ["c", "watched", "PUT"]
    assert res["status"]["bucket"] == "nodebkt" and res["status"]["history"] == 5
    assert res["destroyed"] is True
