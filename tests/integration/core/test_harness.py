"""The shared server harness (tests/servers.py) does what the suites now lean on: a killed
server starts again on its port with its store, the log keeps every run, an unknown or
unconfigured kind is refused before anything starts, and a handshake_first server is ready
only for a TLS client."""

from __future__ import annotations

import os
import signal
import ssl
from pathlib import Path

import nats
import pytest
from servers import ServerProc, have_openssl, self_signed_cert, start_server


async def test_kill_and_start_again_keeps_port_store_and_log(tmp_path: Path) -> None:
    store = tmp_path / "js"
    srv = start_server("pyjetstream", tmp_path, "-js", "-sd", str(store))
    try:
        port = srv.port
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="H", subjects=["h.>"])
        await js.publish("h.1", b"kept")
        await nc.close()
        assert srv.kill() == -signal.SIGKILL
        srv.start()
        assert srv.port == port
        nc = await nats.connect(srv.url)
        msg = await nc.jetstream().get_last_msg("H", "h.1")
        assert msg.data == b"kept"
        await nc.close()
        assert srv.log().count("Listening for client connections") == 2
    finally:
        srv.stop()


def test_unknown_and_unconfigured_kinds_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import servers

    with pytest.raises(ValueError, match="unknown server kind"):
        ServerProc("gnatsd", tmp_path).start()
    monkeypatch.setattr(servers, "NATS_SERVER_NEW", "")
    with pytest.raises(ValueError, match="unknown server kind 'nats-server-new'"):
        ServerProc("nats-server-new", tmp_path).start()
    assert not servers.have_newer_nats_server()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".out")]


@pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")
def test_handshake_first_server_is_ready_only_through_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    conf = f'tls {{ cert_file: "{cert}", key_file: "{key}", handshake_first: true }}\n'
    ctx = ssl.create_default_context(cafile=cert)
    with start_server("pyjetstream", tmp_path, config=conf, tls_first=ctx) as srv:
        assert srv.proc is not None and srv.proc.poll() is None
    # without the TLS client the plain INFO never comes: readiness times out, the process is killed
    plain = ServerProc("pyjetstream", tmp_path / "plain", config=conf)
    with pytest.raises(TimeoutError):
        plain.start(timeout=3)
    assert plain.proc is not None and plain.proc.poll() is not None
