"""The subscription, event and eventing CLI commands as users run them (subprocesses)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from servers import ServerProc, free_port, have_openssl, self_signed_cert, start_server

from pyjetstream.eventing.testing import wait_until

from .conftest import VENV_BIN

CLI = str(VENV_BIN / "pyjetstream")
GOOD = """apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata:
  name: {name}
spec:
  sink: http://127.0.0.1:1
  source: myapp
  types: [order.received.v1]
"""
BAD = """apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata:
  name: broken
spec:
  sink: ftp://x
  source: ""
  types: [order]
"""


async def cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(CLI, *args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_apply_get_ls_delete(nats_server, tmp_path: Path):
    s = nats_server.url
    both = tmp_path / "two.yaml"
    both.write_text(GOOD.format(name="one") + "---\n" + GOOD.format(name="two"))
    code, out, err = await cli("-s", s, "subscription", "apply", "-f", str(both))
    assert code == 0, err
    assert out.splitlines() == ["subscription.eventing.kyma-project.io/one created",
                                "subscription.eventing.kyma-project.io/two created"]
    code, out, _ = await cli("-s", s, "subscription", "apply", "-f", str(both))
    assert "one unchanged" in out
    code, out, _ = await cli("-s", s, "subscription", "ls")
    assert code == 0 and "one" in out and "two" in out and "order.received.v1" in out
    code, out, _ = await cli("-s", s, "subscription", "get", "one", "-o", "json")
    doc = json.loads(out)
    assert doc["spec"]["types"] == ["order.received.v1"] and doc["metadata"]["generation"] == 1
    assert doc["status"]["types"] == [{"originalType": "order.received.v1", "cleanType": "order.received.v1"}]
    code, out, err = await cli("-s", s, "subscription", "delete", "one", "two")
    assert code == 0 and out.count("deleted") == 2
    code, _, err = await cli("-s", s, "subscription", "get", "one")
    assert code == 1 and 'not found' in err


async def test_invalid_manifest_is_refused_with_kyma_messages(nats_server, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, out, err = await cli("-s", nats_server.url, "subscription", "apply", "-f", str(bad))
    assert code == 1 and out == ""
    assert 'subscription.eventing.kyma-project.io "broken" is invalid: Subscription validation failed:' in err
    for text in ("spec.source: Invalid value", "must have minimum 2 segments", "must have URL scheme"):
        assert text in err
    code, _, err = await cli("-s", nats_server.url, "subscription", "apply", "-f", "-", stdin=b"kind: Pod\n")
    assert code == 1 and "kind must be 'Subscription'" in err


async def test_strict_sinks_flag(nats_server, tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.format(name="local"))
    code, _, err = await cli("-s", nats_server.url, "subscription", "apply", "--kyma-strict-sinks", "-f", str(path))
    assert code == 1 and "svc.cluster.local" in err


async def sent_ok(port: int) -> bool:
    """`event send` of one event to the proxy on port got a 204."""
    code, out, _ = await cli("event", "send", "--type", "order.received.v1", "--data", '{"a":1}',
                             "--url", f"http://127.0.0.1:{port}")
    return code == 0 and out.startswith("published 204")


async def test_event_send_through_eventing_command(nats_server):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(CLI, "eventing", "--nats", nats_server.url, "--publish-port",
                                                str(port), "--stream-retention", "limits",
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_until(lambda: sent_ok(port), timeout=20, interval=0.3, what="event send to succeed")
        code, _, err = await cli("event", "send", "--type", "bad..type", "--url", f"http://127.0.0.1:{port}")
        assert code == 1 and "rejected 400" in err and "empty segments" in err
        code, out, _ = await cli("event", "send", "--legacy", "myapp", "--type", "order.received.v1",
                                 "--url", f"http://127.0.0.1:{port}")
        assert code == 0 and "published 200" in out and '"event-id"' in out
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_eventing_waits_for_nats_to_come_up(tmp_path):
    nats_port, proxy_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(CLI, "eventing", "--nats", f"nats://127.0.0.1:{nats_port}",
                                                "--publish-port", str(proxy_port),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    server = ServerProc("nats-server", tmp_path, ("-js", "-sd", str(tmp_path)), port=nats_port)
    try:
        # Start NATS only once the eventing process has reported a refused connection.
        line = b""
        while b"cannot connect" not in line:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "eventing exited before trying to connect"
        server.start()

        async def sent():
            code, out, _ = await cli("event", "send", "--type", "order.received.v1", "--url",
                                     f"http://127.0.0.1:{proxy_port}")
            return code == 0
        await wait_until(sent, timeout=30, interval=0.3, what="eventing to connect once NATS is up")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
        server.stop()


async def test_eventing_reaches_a_tls_server(tmp_path):
    """`pyjetstream eventing --tlsca` against nats-server requiring TLS; a bad option is one line."""
    if not have_openssl():
        pytest.skip("openssl CLI not installed")
    cert, key = self_signed_cert(tmp_path)
    proc = await asyncio.create_subprocess_exec(CLI, "eventing", "--tlsca", str(tmp_path / "missing.pem"),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert err.decode().strip() == f"pyjetstream eventing: TLS: cannot read --tlsca {tmp_path / 'missing.pem'}: no such file"

    server = start_server("nats-server", tmp_path, "-js", "-sd", str(tmp_path),
                          "--tls", "--tlscert", cert, "--tlskey", key)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(CLI, "eventing", "--nats", server.url, "--tlsca", cert,
                                                "--publish-port", str(port), "--stream-retention", "limits",
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_until(lambda: sent_ok(port), timeout=30, interval=0.3, what="event send through eventing over TLS")
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        server.stop()
