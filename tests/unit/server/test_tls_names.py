"""server/tls.py's certificate reading and name matching, case by case: Go's subject string
(pkix order, multi-valued RDNs, escaping), nats-server's ldap DN parser and comparisons, the
user mapping order, and the DER reader on certificates openssl makes. The end-to-end
comparison with nats-server 2.9.10 is tests/security/test_tls.py."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from servers import have_openssl

from pyjetstream.server.options import User
from pyjetstream.server.tls import (
    PeerCert,
    cert_dn,
    dn_equal,
    go_subject_string,
    map_user,
    parse_dn,
    rdns_match,
)

CN, ORG, OU, C, DC, EMAIL = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6", "0.9.2342.19200300.100.1.25", \
    "1.2.840.113549.1.9.1"


def test_go_subject_string_uses_pkix_order_not_the_certificates() -> None:
    subject = [[(CN, "bob")], [(C, "US")], [(OU, "nats.io")], [(ORG, "Synadia")]]
    assert go_subject_string(subject) == "CN=bob,OU=nats.io,O=Synadia,C=US"


def test_go_subject_string_groups_and_drops_as_go() -> None:
    # several OUs form one RDN; a second CN replaces the first; DC and e-mail are not in it
    subject = [[(DC, "org")], [(OU, "a")], [(OU, "b")], [(CN, "x")], [(CN, "y")], [(EMAIL, "y@e")]]
    assert go_subject_string(subject) == "CN=y,OU=a+OU=b"


@pytest.mark.parametrize("value, escaped", [
    ("Smith, John", "Smith\\, John"), ("a+b", "a\\+b"), ('say "hi"', 'say \\"hi\\"'), ("<x>;", "\\<x\\>\\;"),
    (" lead", "\\ lead"), ("trail ", "trail\\ "), ("in side", "in side"), ("#1", "\\#1"), ("a#1", "a#1"),
    ("back\\slash", "back\\\\slash"),
])
def test_go_subject_string_escapes_as_go(value: str, escaped: str) -> None:
    assert go_subject_string([[(CN, value)]]) == f"CN={escaped}"


def test_parse_dn_as_nats_servers_ldap_package() -> None:
    assert parse_dn("CN=bob, OU=nats.io,O=Synadia") == [[("CN", b"bob")], [("OU", b"nats.io")], [("O", b"Synadia")]]
    assert parse_dn("CN=a+OU=b") == [[("CN", b"a"), ("OU", b"b")]]
    assert parse_dn("CN=Smith\\, John") == [[("CN", b"Smith, John")]]
    assert parse_dn("CN=caf\\C3\\A9") == [[("CN", "café".encode())]]
    assert parse_dn("CN=x  ") == [[("CN", b"x")]]  # unescaped trailing spaces go
    assert parse_dn("CN=x\\ ") == [[("CN", b"x ")]]
    for bad in ("alice", "alice@example.com", "CN=#0403", "CN=x\\zz", "CN=x\\4", "=x,"):
        assert parse_dn(bad) is None, bad


def test_dn_comparisons() -> None:
    dn = cert_dn([[(C, "US")], [(ORG, "Synadia")], [(CN, "bob")]])
    assert dn == [[("CN", b"bob")], [("O", b"Synadia")], [("C", b"US")]]
    assert dn_equal(parse_dn("cn=bob,o=Synadia,c=US"), dn)  # attribute types in any case
    assert not dn_equal(parse_dn("CN=Bob,O=Synadia,C=US"), dn)  # values exactly
    assert not dn_equal(parse_dn("O=Synadia,CN=bob,C=US"), dn)
    assert rdns_match(parse_dn("O=Synadia,CN=bob,C=US"), dn)
    # each RDN used once: two of one kind do not stand for one of each
    assert not rdns_match(parse_dn("CN=bob,CN=bob,C=US"), cert_dn([[(C, "US")], [(ORG, "x")], [(CN, "bob")]]))
    assert cert_dn([[(CN, "erin")], [(EMAIL, "erin@example.com")]]) is None  # a type ldap does not name
    assert cert_dn([[(CN, None)]]) is None  # not a string


def _cert(subject: list[list[tuple[str, str | None]]], emails: tuple[str, ...] = (), dns: tuple[str, ...] = (),
          uris: tuple[str, ...] = ()) -> PeerCert:
    c = PeerCert.__new__(PeerCert)
    c.der, c.spki_sha256, c.subject = b"", "", subject
    c.emails, c.dns, c.uris = list(emails), list(dns), list(uris)
    return c


def test_map_user_order() -> None:
    names = ["CN=bob", "bob@example.com", "bob.example.com", "CN=bob,DC=example", "O=x,CN=bob"]
    users = {n: User(n, "") for n in names}
    bob = [[(DC, "example")], [(CN, "bob")]]
    # SAN e-mail first, then DNS, then the DN
    assert map_user(_cert(bob, emails=("bob@example.com",), dns=("bob.example.com",)), users).user == "bob@example.com"
    assert map_user(_cert(bob, emails=("nobody@x",), dns=("bob.example.com",)), users).user == "bob.example.com"
    assert map_user(_cert(bob), users).user == "CN=bob,DC=example"  # the DN (ldap), before Go's string
    assert map_user(_cert([[(ORG, "x")], [(CN, "bob")]]), users).user == "O=x,CN=bob"  # reordered
    assert map_user(_cert([[(CN, "bob")], [(EMAIL, "b@x")]]), users).user == "CN=bob"  # Go's string
    assert map_user(_cert([[(CN, "carol")]]), users) is None
    assert map_user(_cert([]), users) is None  # nothing to map


@pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")
def test_peer_cert_reads_what_openssl_wrote(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-keyout", str(key), "-out", str(cert), "-subj", "/C=US/O=Org/OU=a+OU=b/CN=x y",
                    "-multivalue-rdn", "-addext",
                    "subjectAltName=email:x@example.com,DNS:x.example.com,URI:spiffe://e/x,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    pc = PeerCert(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert (pc.emails, pc.dns, pc.uris) == (["x@example.com"], ["x.example.com"], ["spiffe://e/x"])
    assert pc.subject == [[(C, "US")], [(ORG, "Org")], [(OU, "a"), (OU, "b")], [(CN, "x y")]]
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.stdout, check=True,
                         capture_output=True)
    import hashlib

    assert pc.spki_sha256 == hashlib.sha256(der.stdout).hexdigest()
    with pytest.raises((ValueError, IndexError)):
        PeerCert(b"\x30\x03\x02\x01")
