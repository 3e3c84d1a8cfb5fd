"""TLS on client connections, as nats-server does it.

Owns: the SSL context built from the `tls {}` options (certificates, client verification,
cipher suites and curves by nats-server's Go names, minimum version, several certificates
chosen by SNI), the per-connection TLS engine, and what a client certificate means once the
handshake is done: `pinned_certs` (SHA-256 of its SubjectPublicKeyInfo) and `verify_and_map`
(its SAN e-mails, DNS names, URIs or subject DN name a configured user, in nats-server's order
and with Go's DN formatting). Knows nothing of the NATS protocol.

The engine runs OpenSSL over memory buffers inside the connection's own protocol instead of
asyncio's start_tls: every byte read after INFO (or, with handshake_first, from the start) is
handshake input, so a plaintext `CONNECT`/`PUB` sent early fails the handshake exactly as with
nats-server, and nothing read before the handshake completes can reach the parser. (With
start_tls, bytes that arrive before the upgrade begins land in the plain protocol; uvloop
delivers them even when reading was paused in connection_made.)
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyjetstream.server.options import (
    TLS_CIPHERS,
    TLS_CURVES,
    TLS_DEFAULT_CIPHERS,
    TLS_DEFAULT_CURVES,
    OptionsError,
    check_tls,
)

if TYPE_CHECKING:
    from pyjetstream.server.options import ServerOptions, User


class TLSConfigError(OptionsError):
    pass


# Go's (and so nats-server's) names for the versions it reports in /connz
_VERSIONS = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}
_OPENSSL_TO_GO = {v[0]: k for k, v in TLS_CIPHERS.items() if v[0] and not k.endswith("POLY1305_SHA256")}


def version_name(obj: ssl.SSLObject) -> str:
    v = obj.version() or ""
    return _VERSIONS.get(v, v)


def cipher_name(obj: ssl.SSLObject) -> str:
    c = obj.cipher()
    if not c:
        return ""
    return _OPENSSL_TO_GO.get(c[0], c[0])


# ---------------------------------------------------------------------------------- context

def _set_groups(ctx: ssl.SSLContext, groups: list[str]) -> bool:
    """SSL_CTX_set1_groups_list: Python's ssl offers only set_ecdh_curve (one curve). The
    SSL_CTX pointer is the first field after the object header of an SSLContext, as it has
    been in every CPython; the call is checked, and a caller that cannot have it refuses."""
    if sys.implementation.name != "cpython":  # elsewhere id() is no address
        return False
    import ctypes  # only servers with TLS curve preferences load it (start-up, issue 14)

    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        ctrl = lib.SSL_CTX_ctrl
    except (OSError, AttributeError):
        return False
    ctrl.restype = ctypes.c_long
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        return False
    ssl_ctrl_set_groups_list = 92
    return ctrl(ptr, ssl_ctrl_set_groups_list, 0, ":".join(groups).encode()) == 1


def _base_context(opts: ServerOptions, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Go's TLS server never renegotiates; a client asking to would cost a handshake each time
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if opts.tls_min_version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise TLSConfigError(f"error parsing X509 certificate/key pair: {e}") from e
    names = opts.tls_ciphers or list(TLS_DEFAULT_CIPHERS)
    suites = list(dict.fromkeys(n for n in (TLS_CIPHERS[g][0] for g in names) if n))
    for s in suites:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(s)
        except ssl.SSLError:
            go = [g for g in names if TLS_CIPHERS[g][0] == s][0]
            raise TLSConfigError(f"cipher suite {go} is not available in {ssl.OPENSSL_VERSION}") from None
    if suites:
        ctx.set_ciphers(":".join(suites))
    else:
        # only TLS 1.3 suites named: Go then has no TLS 1.2 suite left, so only 1.3 can work
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    curves = opts.tls_curves or list(TLS_DEFAULT_CURVES)
    groups = []
    for c in curves:
        g = TLS_CURVES[c]
        if g is None:
            raise TLSConfigError(f"curve preference {c} is not available in {ssl.OPENSSL_VERSION}")
        groups.append(g)
    if not _set_groups(ctx, groups):
        if len(groups) == 1:
            ctx.set_ecdh_curve({"P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1"}.get(
                groups[0], groups[0]))
        elif opts.tls_curves:
            raise TLSConfigError("curve_preferences with more than one curve cannot be set with this Python's ssl "
                                 "module; name a single curve")
    if opts.tls_verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
    if opts.tls_ca:
        try:
            ctx.load_verify_locations(opts.tls_ca)
        except (OSError, ssl.SSLError) as e:
            raise TLSConfigError(f"failed to parse root ca certificate {opts.tls_ca}: {e}") from e
    elif opts.tls_verify:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # as Go: no ClientCAs means the system roots
    return ctx


def build_context(opts: ServerOptions) -> ssl.SSLContext:
    """The server's SSL context; TLSConfigError says what is wrong with the options."""
    check_tls(opts)
    if opts.tls_certs:
        contexts = [(_base_context(opts, c, k), _dns_names_of(c)) for c, k in opts.tls_certs]
        first = contexts[0][0]

        def by_name(obj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            # Go's choice among several certificates: the first whose names cover the
            # requested server name, else the first (an IP address sends no name)
            if server_name:
                for ctx, names in contexts:
                    if any(_host_matches(n, server_name) for n in names):
                        obj.context = ctx
                        return

        first.sni_callback = by_name
        return first
    return _base_context(opts, opts.tls_cert, opts.tls_key)


def _host_matches(pattern: str, host: str) -> bool:
    p, h = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if p.startswith("*."):
        return "." in h and h.split(".", 1)[1] == p[2:]
    return p == h


def _dns_names_of(cert_file: str) -> list[str]:
    try:
        with open(cert_file) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        return PeerCert(der).dns
    except (OSError, ValueError) as e:
        raise TLSConfigError(f"error parsing certificate {cert_file}: {e}") from e


# ---------------------------------------------------------------------------------- engine

class TLSEngine:
    """Server side of one TLS connection over memory buffers: ciphertext in with feed(),
    plaintext out; what OpenSSL wants sent comes from take_output()."""

    __slots__ = ("_in", "_out", "obj", "established", "started", "peer_closed")

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self._in, self._out, server_side=True)
        self.established = False
        self.started = False  # any byte received
        self.peer_closed = False  # close_notify received

    def feed(self, data: bytes) -> bytes:
        """Ciphertext in, application plaintext out (what came before a close_notify, which
        sets peer_closed). Raises ssl.SSLError on a failed handshake or a bad record."""
        self.started = True
        self._in.write(data)
        if not self.established:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            self.established = True
        chunks = []
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:  # the peer's close_notify (the ssl module returns no data for it)
                self.peer_closed = True
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def take_output(self) -> bytes:
        return self._out.read()

    def encrypt(self, data: bytes) -> bytes:
        view = memoryview(data)
        while view:
            n = self.obj.write(view)
            view = view[n:]
        return self._out.read()

    def close_notify(self) -> bytes:
        try:
            self.obj.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        return self._out.read()

    def peer_cert(self) -> bytes | None:
        return self.obj.getpeercert(binary_form=True)


# ---------------------------------------------------------------------------------- certificates

def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4:
            raise ValueError("bad DER length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + n


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, content start, content end, element start) of each element in [start, end)."""
    pos = start
    while pos < end:
        tag, s, e = _tlv(data, pos)
        yield tag, s, e, pos
        pos = e


def _oid(raw: bytes) -> str:
    first = raw[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    v = 0
    for b in raw[1:]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


# ASN.1 string types that Go reads as a string value
_STRING_TAGS = {0x0C: "utf-8", 0x12: "latin-1", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1",
                0x1E: "utf-16-be"}
Attr = tuple[str, "str | None"]  # (dotted OID, value; None when not a string)


@dataclass
class PeerCert:
    """What nats-server reads from a client certificate: its key's SHA-256, the SANs and the
    subject as the RDN sequence it was encoded with."""

    der: bytes
    spki_sha256: str = ""
    emails: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    subject: list[list[Attr]] = field(default_factory=list)

    def __post_init__(self) -> None:
        d = self.der
        _, cs, ce = _tlv(d, 0)
        _, ts, te = _tlv(d, cs)  # tbsCertificate
        items = list(_children(d, ts, te))
        if items and items[0][0] == 0xA0:  # [0] version
            items = items[1:]
        # serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
        _tag, ss, se, _ = items[4]
        for _t, rs, re_, _ in _children(d, ss, se):
            rdn: list[Attr] = []
            for _t2, as_, ae, _ in _children(d, rs, re_):
                (_t3, os_, oe, _), (vt, vs, ve, _) = list(_children(d, as_, ae))[:2]
                enc = _STRING_TAGS.get(vt)
                rdn.append((_oid(d[os_:oe]), d[vs:ve].decode(enc, "replace") if enc else None))
            self.subject.append(rdn)
        _t, _s, _e, spki_start = items[5]
        import hashlib  # here: OpenSSL's hashing costs ~1 MiB of RSS, and only TLS reads certificates

        self.spki_sha256 = hashlib.sha256(d[spki_start:_e]).hexdigest()
        for tag, es, _ee, _ in items[6:]:
            if tag != 0xA3:
                continue
            _t, ls, le = _tlv(d, es)
            for _t2, xs, xe, _ in _children(d, ls, le):
                parts = list(_children(d, xs, xe))
                if _oid(d[parts[0][1]:parts[0][2]]) != "2.5.29.17":
                    continue
                _t3, gs, ge = _tlv(d, parts[-1][1])  # the OCTET STRING holds GeneralNames
                for gtag, ns, ne, _ in _children(d, gs, ge):
                    value = d[ns:ne].decode("latin-1")
                    if gtag == 0x81:
                        self.emails.append(value)
                    elif gtag == 0x82:
                        self.dns.append(value)
                    elif gtag == 0x86:
                        self.uris.append(value)


# Go's pkix names, in the order Name.ToRDNSequence emits them
_PKIX = [("2.5.4.6", "C"), ("2.5.4.8", "ST"), ("2.5.4.7", "L"), ("2.5.4.9", "STREET"), ("2.5.4.17", "POSTALCODE"),
         ("2.5.4.10", "O"), ("2.5.4.11", "OU"), ("2.5.4.3", "CN"), ("2.5.4.5", "SERIALNUMBER")]
# nats-server's internal/ldap attribute names (DC besides Go's)
_LDAP_NAMES = dict(_PKIX) | {"0.9.2342.19200300.100.1.25": "DC"}
_DC = "0.9.2342.19200300.100.1.25"


def _go_escape(value: str) -> str:
    out = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == " " and i in (0, last)) or (ch == "#" and i == 0):
            out.append("\\")
        out.append(ch)
    return "".join(out)


def go_subject_string(subject: list[list[Attr]]) -> str:
    """Go's cert.Subject.ToRDNSequence().String(): the standard attributes only, in pkix's
    fixed order (several values of one type form one multi-valued RDN), last RDN first."""
    values: dict[str, list[str]] = {oid: [] for oid, _ in _PKIX}
    for rdn in subject:
        for oid, v in rdn:
            if v is not None and oid in values:
                if oid in ("2.5.4.3", "2.5.4.5"):
                    values[oid] = [v]  # CommonName and SerialNumber keep the last one
                else:
                    values[oid].append(v)
    rdns = [[f"{name}={_go_escape(v)}" for v in values[oid]] for oid, name in _PKIX if values[oid]]
    return ",".join("+".join(r) for r in reversed(rdns))


def _dcs(subject: list[list[Attr]]) -> str:
    return ",".join(f"DC={v}" for rdn in subject for oid, v in rdn if oid == _DC and v is not None)


DN = list[list[tuple[str, bytes]]]


def cert_dn(subject: list[list[Attr]]) -> DN | None:
    """nats-server's ldap.FromRawCertSubject: RDNs (and the attributes in each) in reverse;
    None when an attribute is not one it names or not a string."""
    dn: DN = []
    for rdn in reversed(subject):
        if not rdn:
            continue
        attrs = []
        for oid, v in reversed(rdn):
            name = _LDAP_NAMES.get(oid)
            if name is None or v is None:
                return None
            attrs.append((name, v.encode()))
        dn.append(attrs)
    return dn


def parse_dn(text: str) -> DN | None:
    """nats-server's ldap.ParseDN (RFC 4514), byte for byte; None where it errs."""
    s = text.encode()
    dn: DN = []
    rdn: list[tuple[str, bytes]] = []
    buf = bytearray()
    typ: str | None = None
    escaping = False
    trailing = 0

    def take() -> bytes:
        nonlocal trailing
        out = bytes(buf[:len(buf) - trailing])
        buf.clear()
        trailing = 0
        return out

    i = 0
    while i < len(s):
        ch = s[i]
        if escaping:
            trailing = 0
            escaping = False
            if ch in b' "#+,;<=>\\':
                buf.append(ch)
                i += 1
                continue
            if len(s) == i + 1:
                return None
            try:
                buf += bytes.fromhex(s[i:i + 2].decode("latin-1"))
            except ValueError:
                return None
            i += 2
            continue
        if ch == 0x5C:  # backslash
            trailing = 0
            escaping = True
        elif ch == 0x3D:  # =
            typ = take().decode("utf-8", "surrogateescape")
            if len(s) > i + 1 and s[i + 1] == 0x23:  # '#': BER, which it does not support
                return None
        elif ch in (0x2C, 0x2B):  # , +
            if not typ:
                return None
            rdn.append((typ, take()))
            typ = None
            if ch == 0x2C:
                dn.append(rdn)
                rdn = []
        elif ch == 0x20 and not buf:
            pass
        else:
            trailing = trailing + 1 if ch == 0x20 else 0
            buf.append(ch)
        i += 1
    if buf:
        if not typ:
            return None
        rdn.append((typ, take()))
        dn.append(rdn)
    return dn


def _attr_eq(a: tuple[str, bytes], b: tuple[str, bytes]) -> bool:
    return a[0].casefold() == b[0].casefold() and a[1] == b[1]


def _rdn_eq(a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]) -> bool:
    return (len(a) == len(b) and all(any(_attr_eq(x, y) for y in b) for x in a)
            and all(any(_attr_eq(y, x) for x in a) for y in b))


def dn_equal(a: DN, b: DN) -> bool:
    return len(a) == len(b) and all(_rdn_eq(x, y) for x, y in zip(a, b, strict=True))


def rdns_match(a: DN, b: DN) -> bool:
    """The same RDNs in any order, each used once (nats-server's fixed RDNsMatch)."""
    if len(a) != len(b):
        return False
    used = [False] * len(b)
    for x in a:
        for j, y in enumerate(b):
            if not used[j] and _rdn_eq(x, y):
                used[j] = True
                break
        else:
            return False
    return True


def map_user(cert: PeerCert, users: dict[str, User]) -> User | None:
    """verify_and_map: the user a client certificate names, as nats-server's
    checkClientTLSCertSubject tries them: SAN e-mails, SAN DNS names, SAN URIs, each as a
    user name; then the subject DN against every user name that parses as a DN (exactly,
    then with the RDNs in any order); then Go's subject string with the DCs appended; then
    Go's subject string alone."""
    has_subject = any(cert.subject)
    if not (cert.emails or cert.dns or has_subject or cert.uris):
        return None
    for name in (*cert.emails, *cert.dns, *cert.uris):
        if name in users:
            return users[name]
    dn = cert_dn(cert.subject)
    if dn is not None:
        parsed = [(u, parse_dn(u.user)) for u in users.values()]
        candidates = [(u, p) for u, p in parsed if p is not None]
        for u, p in candidates:
            if dn_equal(p, dn):
                return u
        for u, p in candidates:
            if rdns_match(p, dn):
                return u
    rdn = go_subject_string(cert.subject)
    dcs = _dcs(cert.subject)
    if dcs and f"{rdn},{dcs}" in users:
        return users[f"{rdn},{dcs}"]
    return users.get(rdn) if rdn else None


class RateCounter:
    """nats-server's connection_rate_limit: at most `limit` TLS handshakes begun per second."""

    __slots__ = ("limit", "count", "end", "blocked")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.end = 0.0
        self.blocked = 0

    def allow(self, now: float) -> bool:
        if now > self.end:
            self.count = 0
            self.end = now + 1.0
        else:
            self.count += 1
        ok = self.count < self.limit
        if not ok:
            self.blocked += 1
        return ok
