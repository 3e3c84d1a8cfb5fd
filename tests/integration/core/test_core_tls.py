"""TLS through `pyjetstream server` with nats-py: server-only TLS, and --tlsverify with a
client certificate. The certificate is self-signed and made per test run with `openssl`."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import nats
import pytest
from servers import RawClient, ServerProc, have_openssl, self_signed_cert, start_server

pytestmark = pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[Path, Path]:
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    return Path(cert), Path(key)


def client_context(cert: Path, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    if key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory, certs) -> ServerProc:
    cert, key = certs
    s = start_server("pyjetstream", tmp_path_factory.mktemp("tls-srv"), "--tls", "--tlscert", str(cert),
                     "--tlskey", str(key), "-m", "-1")
    yield s
    s.stop()


async def test_tls_pub_sub(tls_srv: ServerProc, certs) -> None:
    raw = RawClient(tls_srv.port)
    assert raw.info.get("tls_required") is True  # the plain-text INFO announces TLS
    raw.close()
    nc = await nats.connect(f"tls://127.0.0.1:{tls_srv.port}", tls=client_context(certs[0]))
    try:
        sub = await nc.subscribe("secure")
        await nc.publish("secure", b"sealed")
        assert (await sub.next_msg(timeout=5)).data == b"sealed"
    finally:
        await nc.close()


async def test_tls_verify_requires_client_certificate(tmp_path, certs) -> None:
    cert, key = certs
    conf = f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{cert}", verify: true }}\n'
    with start_server("pyjetstream", tmp_path, config=conf) as srv:
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_context(cert, key))
        sub = await nc.subscribe("mtls")
        await nc.publish("mtls", b"ok")
        assert (await sub.next_msg(timeout=5)).data == b"ok"
        await nc.close()
        try:
            nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_context(cert),
                                    allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3)
        except (nats.errors.Error, OSError, ssl.SSLError):
            pass
        else:
            # With TLS 1.3 the server refuses the missing certificate after the client thinks the
            # handshake is done, and nats-py may return before it notices: the link must be dead.
            with pytest.raises(nats.errors.Error):
                await nc.flush(timeout=2)
            await nc.close()


def test_plain_text_client_is_refused(tls_srv: ServerProc) -> None:
    before = tls_srv.get_json("/connz?state=closed")["total"]
    raw = RawClient(tls_srv.port)
    raw.send(b"CONNECT {\"verbose\":true}\r\nPING\r\n")
    assert raw.read_until_closed() == b""  # no +OK, no PONG: nothing before the handshake
    raw.close()
    deadline = time.monotonic() + 5
    while (doc := tls_srv.get_json("/connz?state=closed"))["total"] <= before:
        assert time.monotonic() < deadline, "the refused connection was never recorded"
        time.sleep(0.02)
    newest = max(doc["connections"], key=lambda c: c["cid"])
    assert newest["reason"] == "TLS Handshake Failure"  # as nats-server words it
