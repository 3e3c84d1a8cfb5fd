"""The nats CLI's TLS options (--tlsca, --tlscert, --tlskey and NATS_CA/NATS_CERT/NATS_KEY)
against servers that require TLS, and against one that also verifies client certificates.
The certificate is self-signed and made per test run with `openssl`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, start_server
from servers import have_openssl, self_signed_cert

pytestmark = pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[str, str]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


async def test_tls_ca_option_and_env(server_name: str, tmp_path: Path, certs) -> None:
    cert, key = certs
    with start_server(server_name, tmp_path, f"--tls --tlscert {cert} --tlskey {key}") as live:
        res = await run_cli(live, "stream", "ls", "--tlsca", cert)
        assert (res.rc, res.out) == (0, "No Streams defined\n"), res.err
        res = await run_cli(live, "--tlsca", cert, "pub", "x", "hi")  # before the command too
        assert (res.rc, res.out) == (0, 'Published 2 bytes to "x"\n'), res.err
        res = await run_cli(live, "stream", "ls", NATS_CA=cert)
        assert res.rc == 0, res.err
        # the system's CAs do not know a self-signed certificate: one line, exit 1
        res = await run_cli(live, "stream", "ls")
        assert res.rc == 1 and res.out == ""
        line = res.err.strip()
        assert line.startswith(f"pyjetstream: error: could not connect to {live.url}: ") and "\n" not in line
        assert line.endswith("tls: certificate verify failed (self-signed certificate)"), line


async def test_client_certificate_when_the_server_verifies(tmp_path: Path, certs) -> None:
    cert, key = certs
    conf = tmp_path / "tls.conf"
    conf.write_text(f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{cert}", verify: true }}\n')
    with start_server("pyjetstream", tmp_path, f"-c {conf}") as live:
        res = await run_cli(live, "stream", "ls", "--tlsca", cert, "--tlscert", cert, "--tlskey", key)
        assert (res.rc, res.out) == (0, "No Streams defined\n"), res.err
        res = await run_cli(live, "stream", "ls", NATS_CA=cert, NATS_CERT=cert, NATS_KEY=key)
        assert res.rc == 0, res.err


async def test_bad_tls_options_are_one_line_errors(certs) -> None:
    cert, _key = certs
    res = await run_cli(None, "stream", "ls", "--tlsca", "/nonexistent/ca.pem")
    assert (res.rc, res.err.strip()) == (1, "pyjetstream: error: TLS: cannot read --tlsca /nonexistent/ca.pem: no such file")
    res = await run_cli(None, "stream", "ls", "--tlscert", cert)
    assert (res.rc, res.err.strip()) == (1, "pyjetstream: error: --tlscert and --tlskey go together")
    res = await run_cli(None, "stream", "ls", "--tlsca", _key)  # a key is no CA certificate
    assert res.rc == 1 and res.err.startswith("pyjetstream: error: TLS: cannot load the certificates: ")
