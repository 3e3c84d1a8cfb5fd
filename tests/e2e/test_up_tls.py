"""`pyjetstream up` with a TLS listener that also verifies client certificates: the embedded
eventing reaches its own server (pinning that server's certificate, presenting it as its
client certificate), a nats-py client with a certificate applies a Subscription, and events
flow to the sink."""

from __future__ import annotations

import ssl

import pytest
from servers import free_port, have_openssl, self_signed_cert

from .conftest import subscribe_ready
from .test_readme_scenario import CLI, Proc, wait_http
from .test_reliability import all_arrive, publish_many

pytestmark = [pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")]


async def test_up_with_tls_verify_delivers_events(tmp_path, sink):
    import nats

    cert, key = self_signed_cert(tmp_path, "DNS:localhost")  # no IP: the embedded link must not need one
    conf = tmp_path / "tls.conf"
    conf.write_text(f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{cert}", verify: true }}\n')
    port, mon, proxy = free_port(), free_port(), free_port()
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "-c", str(conf), "--publish-port", str(proxy)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        ctx.load_cert_chain(cert, key)
        nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=ctx)
        await subscribe_ready(nc, sink.url)
        await nc.close()
        accepted = await publish_many(lambda: proxy, [f"tls-{i}" for i in range(20)], 4)
        assert len(accepted) == 20
        await all_arrive(sink, accepted, timeout=30)
    finally:
        await up.stop()
    assert up.proc is not None and up.proc.returncode == 0, up.output()


async def test_up_with_handshake_first_connects_its_eventing(tmp_path, sink):
    """With `handshake_first` the embedded eventing must do TLS first too, or it never gets
    INFO: the proxy turns ready and an event reaches the sink."""
    import nats

    cert, key = self_signed_cert(tmp_path, "DNS:localhost")
    conf = tmp_path / "tls.conf"
    conf.write_text(f'tls {{ cert_file: "{cert}", key_file: "{key}", handshake_first: true }}\n')
    port, mon, proxy = free_port(), free_port(), free_port()
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "-c", str(conf), "--publish-port", str(proxy)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=ctx, tls_handshake_first=True)
        await subscribe_ready(nc, sink.url)
        await nc.close()
        accepted = await publish_many(lambda: proxy, ["first-1", "first-2"], 2)
        assert len(accepted) == 2
        await all_arrive(sink, accepted, timeout=30)
    finally:
        await up.stop()
    assert up.proc is not None and up.proc.returncode == 0, up.output()
