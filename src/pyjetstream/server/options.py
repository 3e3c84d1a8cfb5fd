"""Server options: nats-server's command-line flags and config file, merged into one value.

Owns the flag grammar (Go style: `-sd DIR`, `-sd=DIR`, `--sd=DIR`, bare booleans), the
mapping of config keys to ServerOptions fields, and the rule that the command line wins over
the config file. Flags nats-server has but we do not support fail loudly. Knows nothing of
sockets or of how the options are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pyjetstream import gotime
from pyjetstream.server.conf import ConfigError, load_config
from pyjetstream.subjects import is_valid_subject

DEFAULT_PORT = 4222
# Our default listen address is loopback: an embedded broker should not be reachable from the
# network until someone asks for it (nats-server itself defaults to 0.0.0.0).
DEFAULT_HOST = "127.0.0.1"


class OptionsError(ValueError):
    pass


@dataclass
class ResponsePermission:
    """`allow_responses`: a user may publish to the reply subject of a message delivered to it,
    `max_msgs` times (<= 0: no limit) within `expires` seconds (<= 0: no expiry)."""

    max_msgs: int = 1
    expires: float = 120.0


@dataclass
class Permissions:
    """Subject lists as configured. `None` for an allow list restricts nothing; a subscribe
    entry may be `"subject queue"` (a queue-group permission)."""

    pub_allow: list[str] | None = None
    pub_deny: list[str] = field(default_factory=list)
    sub_allow: list[str] | None = None
    sub_deny: list[str] = field(default_factory=list)
    responses: ResponsePermission | None = None


@dataclass
class User:
    user: str
    password: str
    account: str = "$G"
    permissions: Permissions | None = None


@dataclass
class AccountConfig:
    name: str
    jetstream: bool = False
    max_mem: int = -1
    max_file: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    # nats-server's per-account stream and consumer caps (-1: none)
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    store_max_stream_bytes: int = -1
    max_bytes_required: bool = False


@dataclass
class JetStreamOptions:
    enabled: bool = False
    store_dir: str = ""
    # the JetStream domain: in PubAcks and account info; `$JS.<domain>.API.>` reaches the API
    domain: str = ""
    max_mem: int = -1
    max_file: int = -1
    # None: fsync every group commit before the PubAck (our default). A number of seconds:
    # nats-server's periodic background sync, acking once data reached the OS.
    sync_interval: float | None = None
    # nats-server 2.12's strict API decoding: a request field its request structs do not know
    # is refused (10025); `jetstream { strict: false }` drops such fields instead
    strict: bool = True


@dataclass
class ServerOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    server_name: str = ""
    http_host: str = ""
    http_port: int = 0
    max_payload: int = 1024 * 1024
    max_pending: int = 64 * 1024 * 1024
    max_control_line: int = 4096
    ping_interval: float = 120.0
    ping_max: int = 2
    write_deadline: float = 10.0
    auth_timeout: float = 2.0
    username: str = ""
    password: str = ""
    token: str = ""
    users: list[User] = field(default_factory=list)
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    no_auth_user: str = ""
    # nats-server's defaults: 64K connections, no subscription limit (0)
    max_connections: int = 65536
    max_subs: int = 0
    lame_duck_duration: float = 120.0
    lame_duck_grace: float = 10.0
    log_file: str = ""
    pid_file: str = ""
    debug: bool = False
    trace: bool = False
    tls: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_verify: bool = False
    # the rest of nats-server's `tls {}` block (see _apply_tls and server/tls.py)
    tls_map: bool = False  # verify_and_map: the client certificate names the user
    tls_timeout: float = 2.0  # seconds for the handshake
    tls_pinned_certs: frozenset[str] | None = None  # SHA-256 (hex) of allowed client keys
    tls_handshake_first: bool = False  # TLS before INFO
    tls_first_fallback: float = 0.0  # handshake_first "auto"/duration: INFO first after this silence
    tls_ciphers: list[str] | None = None  # Go names
    tls_allow_insecure_ciphers: bool = False
    tls_curves: list[str] | None = None  # Go names
    tls_min_version: str = ""  # "1.2" or "1.3"
    tls_rate_limit: int = 0  # connection_rate_limit: TLS handshakes a second
    tls_certs: list[tuple[str, str]] = field(default_factory=list)  # certs: [{cert_file, key_file}]
    jetstream: JetStreamOptions = field(default_factory=JetStreamOptions)
    config_file: str = ""


# flag name -> (attribute, kind). kind: bool, int, str, size.
_FLAGS: dict[str, tuple[str, str]] = {
    "a": ("host", "str"), "addr": ("host", "str"), "net": ("host", "str"),
    "p": ("port", "int"), "port": ("port", "int"),
    "n": ("server_name", "str"), "name": ("server_name", "str"), "server_name": ("server_name", "str"),
    "js": ("js", "bool"), "jetstream": ("js", "bool"),
    "sd": ("store_dir", "str"), "store_dir": ("store_dir", "str"),
    "m": ("http_port", "int"), "http_port": ("http_port", "int"),
    "user": ("username", "str"), "pass": ("password", "str"), "auth": ("token", "str"),
    "c": ("config_file", "str"), "config": ("config_file", "str"),
    "l": ("log_file", "str"), "log": ("log_file", "str"),
    "P": ("pid_file", "str"), "pid": ("pid_file", "str"),
    "D": ("debug", "bool"), "debug": ("debug", "bool"),
    "V": ("trace", "bool"), "trace": ("trace", "bool"),
    "DV": ("debug_trace", "bool"),
    "max_payload": ("max_payload", "size"),
    "tls": ("tls", "bool"), "tlscert": ("tls_cert", "str"), "tlskey": ("tls_key", "str"),
    "tlscacert": ("tls_ca", "str"), "tlsverify": ("tls_verify", "bool"),
    "h": ("help", "bool"), "help": ("help", "bool"),
    "v": ("version", "bool"), "version": ("version", "bool"),
}

# nats-server flags we know but do not implement: refuse them by name rather than ignore them.
_UNSUPPORTED = {
    "ms", "https_port", "cluster", "cluster_name", "cluster_listen", "routes", "r", "no_advertise",
    "cluster_advertise", "connect_retries", "client_advertise", "T", "logtime", "s", "syslog",
    "remote_syslog", "ports_file_dir", "signal", "sl", "t", "DVV", "VV", "max_traced_msg_len",
    "tls_first", "lame_duck_duration", "log_size_limit", "profile", "help_tls",
}


def parse_duration(value: Any) -> float:
    """Seconds from a Go duration string (`2m`, `1.5s`, `100ms`, `1h30m`) or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise OptionsError(f"invalid duration {value!r}")
    return sum(float(n) * units[u] for n, u in parts)


def _size(value: Any) -> int:
    if isinstance(value, int):
        return value
    from pyjetstream.server.conf import parse_config

    parsed = parse_config(f"v: {value}")["v"]
    if not isinstance(parsed, int):
        raise OptionsError(f"invalid size {value!r}")
    return parsed


def split_go_flags(argv: list[str], extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse Go-style flags into {canonical name: value}. `extra` adds caller-specific flags
    (name -> kind) such as `up`'s --publish-port."""
    table = dict(_FLAGS)
    for name, kind in (extra or {}).items():
        table[name] = (name.replace("-", "_"), kind)
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise OptionsError(f"unexpected argument {arg!r}")
        name, eq, value = arg.lstrip("-").partition("=")
        if name in _UNSUPPORTED:
            raise OptionsError(f"flag -{name} is a nats-server flag that pyjetstream does not support yet")
        if name not in table:
            raise OptionsError(f"flag provided but not defined: -{name}")
        attr, kind = table[name]
        if kind == "bool":
            if eq:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise OptionsError(f'invalid boolean value "{value}" for flag -{name}')
                out[attr] = value.lower() in ("true", "1")
            else:
                out[attr] = True
            continue
        if not eq:
            if i >= len(argv):
                raise OptionsError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        try:
            out[attr] = int(value) if kind == "int" else _size(value) if kind == "size" else value
        except (ValueError, ConfigError) as e:
            raise OptionsError(f'invalid value "{value}" for flag -{name}: {e}') from e
    return out


def _keys(block: Any, what: str, aliases: dict[str, str]) -> list[tuple[str, Any]]:
    """The block's entries with nats-server's key spellings folded to one canonical name each.

    nats-server compares config keys case-insensitively and accepts several names for many of
    them (`pass`/`password`, `max_conn`/`max_connections`); a migrating user's file must mean
    the same here. A key it accepts that we do not implement, or one nobody knows, is refused:
    silently ignoring `allow_responses` or `nkey` would grant or deny other than the file says."""
    if not isinstance(block, dict):
        raise OptionsError(f"config: {what or 'the configuration'} must be a map, got {block!r}")
    out = []
    for k, v in block.items():
        canon = aliases.get(str(k).lower())
        if canon is None:
            raise OptionsError(" ".join(filter(None, ("config: unsupported", what, f"key '{k}'"))))
        out.append((canon, v))
    return out


def _aliases(*groups: str) -> dict[str, str]:
    """`"a b c"` -> {a: a, b: a, c: a}: the first spelling is the canonical one."""
    table: dict[str, str] = {}
    for g in groups:
        names = g.split()
        for n in names:
            table[n] = names[0]
    return table


def _str(value: Any, key: str) -> str:
    if isinstance(value, (dict, list)):
        raise OptionsError(f"config: '{key}' must be a string, got {value!r}")
    return str(value)


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(str(value))
        except ValueError:
            raise OptionsError(f"config: '{key}' must be an integer, got {value!r}") from None
    return value


_PERMISSION_KEYS = _aliases("publish pub import", "subscribe sub export",
                            "allow_responses publish_allow_responses")
_SUBJECT_PERMISSION_KEYS = _aliases("allow", "deny")
_RESPONSE_KEYS = _aliases("max max_msgs max_messages max_responses", "expires expiration ttl")


def _go_duration(text: str) -> float:
    """Seconds from Go's time.ParseDuration syntax (`-1s`, `1h30m`, `0`): the only form
    nats-server takes for `allow_responses.expires`."""
    try:
        return gotime.parse_duration(text) / 1e9
    except ValueError:
        raise OptionsError(f"config: error parsing expires: time: invalid duration {text!r}") from None


def _perm_subjects(v: Any, publish: bool) -> list[str] | None:
    """A permission's subjects: one string or a list of strings, each a valid subject, or
    (subscribe only) `"subject queue"`. An empty list is no list, as in nats-server."""
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list):
        raise OptionsError("config: Expected subject permissions to be a subject, or array of subjects, "
                           f"got {v!r}")
    for s in items:
        if not isinstance(s, str):
            raise OptionsError(f"config: Subject in permissions array cannot be cast to string: {s!r}")
        if is_valid_subject(s):
            continue
        parts = s.split()
        if len(parts) != 2:
            raise OptionsError(f'config: subject "{s}" is not a valid subject')
        if not is_valid_subject(parts[0]):
            raise OptionsError(f'config: subject "{parts[0]}" is not a valid subject')
        if publish:
            # nats-server keeps such an entry and it matches nothing; a deny that denies
            # nothing is not what its author meant, so it is refused here.
            raise OptionsError(f'config: publish permission "{s}" names a queue group; queue groups '
                               "apply to subscribe permissions only")
    return list(items) or None


def _allow_deny(v: Any, publish: bool) -> tuple[list[str] | None, list[str]]:
    if not isinstance(v, dict):
        return _perm_subjects(v, publish), []
    allow: list[str] | None = None
    deny: list[str] = []
    for k, sv in _keys(v, "subject permissions (only 'allow' or 'deny')", _SUBJECT_PERMISSION_KEYS):
        if k == "allow":
            allow = _perm_subjects(sv, publish)
        else:
            deny = _perm_subjects(sv, publish) or []
    return allow, deny


def _allow_responses(v: Any) -> ResponsePermission | None:
    """`true`, `false` or `{max, expires}` (nats-server: 0 means the default, a negative
    value no limit; `expires` only as a duration string)."""
    if isinstance(v, bool):
        return ResponsePermission() if v else None
    if not isinstance(v, dict):
        raise OptionsError(f"config: error parsing response permissions, expected a boolean or a map, got {v!r}")
    rp = ResponsePermission()
    for k, sv in _keys(v, "allow_responses", _RESPONSE_KEYS):
        if k == "max":
            if isinstance(sv, bool) or not isinstance(sv, int):
                raise OptionsError(f"config: allow_responses max must be an integer, got {sv!r}")
            if sv:
                rp.max_msgs = sv
        else:
            if not isinstance(sv, str):
                raise OptionsError(f"config: error parsing expires, not a duration string: {sv!r}")
            if (seconds := _go_duration(sv)) != 0:
                rp.expires = seconds
    return rp


def _permissions(raw: Any) -> Permissions:
    """A `permissions` block, key by key as nats-server's parseUserPermissions reads it.
    Whatever it does not understand refuses to start: a misread block grants more."""
    if not isinstance(raw, dict):
        raise OptionsError(f"config: Expected permissions to be a map/struct, got {raw!r}")
    perms = Permissions()
    for k, v in _keys(raw, "permissions", _PERMISSION_KEYS):
        if k == "publish":
            perms.pub_allow, perms.pub_deny = _allow_deny(v, True)
        elif k == "subscribe":
            perms.sub_allow, perms.sub_deny = _allow_deny(v, False)
        else:
            perms.responses = _allow_responses(v)
    if perms.responses is not None and perms.pub_allow is None:
        # As nats-server: responses replace the blanket publish allow, so such a user may
        # publish its replies and nothing else it was not given. (nats-server reads the keys
        # in map order, so there `publish: {deny: x}` before allow_responses keeps the blanket
        # allow on some starts and not on others; here it never does.)
        perms.pub_allow = []
    return perms


_USER_KEYS = _aliases("user username", "password pass", "permissions permission authorization")


def _users(raw: Any, account: str, default_perms: Permissions | None = None) -> list[User]:
    if not isinstance(raw, list):
        raise OptionsError(f"config: Expected users field to be an array, got {raw!r}")
    users = []
    for u in raw:
        name = password = ""
        perms = default_perms
        for k, v in _keys(u, "user", _USER_KEYS):
            if k == "user":
                name = _str(v, k)
            elif k == "password":
                password = _str(v, k)
            else:
                perms = _permissions(v)
        if not name:
            raise OptionsError("config: User entry requires a user")
        users.append(User(name, password, account, perms))
    return users


def _add_users(opts: ServerOptions, users: list[User]) -> None:
    """nats-server refuses a name defined twice (in one block or across accounts) instead of
    letting one definition silently win."""
    seen = {u.user for u in opts.users}
    for u in users:
        if u.user in seen:
            raise OptionsError(f'Duplicate user "{u.user}" detected')
        seen.add(u.user)
        opts.users.append(u)


_TOP_KEYS = _aliases(
    "port", "listen", "host net", "server_name", "http_port monitor_port", "http", "max_payload",
    "max_pending", "max_control_line", "ping_interval", "ping_max", "write_deadline", "lame_duck_duration",
    "lame_duck_grace_period", "jetstream", "authorization", "accounts", "no_auth_user", "tls", "debug",
    "trace", "log_file logfile", "pid_file pidfile", "store_dir storedir", "max_connections max_conn",
    "max_subscriptions max_subs")


def apply_config(opts: ServerOptions, conf: dict[str, Any]) -> None:
    # Accounts first: the authorization block's users are checked for duplicates against them
    # whichever order the file has them in.
    items = _keys(conf, "", _TOP_KEYS)
    items.sort(key=lambda kv: kv[0] != "accounts")
    for key, value in items:
        if key == "port":
            opts.port = _int(value, key)
        elif key in ("listen", "host"):
            text = _str(value, key)
            if key == "listen" and ":" in text:
                host, _, port = text.rpartition(":")
                opts.host, opts.port = host or opts.host, _int(port, key)
            else:
                opts.host = text
        elif key == "server_name":
            opts.server_name = _str(value, key)
        elif key == "http_port":
            opts.http_port = _int(value, key)
        elif key == "http":
            host, _, port = _str(value, key).rpartition(":")
            opts.http_host, opts.http_port = host, _int(port, key)
        elif key == "max_payload":
            opts.max_payload = _size(value)
        elif key == "max_pending":
            opts.max_pending = _size(value)
        elif key == "max_control_line":
            opts.max_control_line = _size(value)
        elif key == "ping_interval":
            opts.ping_interval = parse_duration(value)
        elif key == "ping_max":
            opts.ping_max = _int(value, key)
        elif key == "write_deadline":
            opts.write_deadline = parse_duration(value)
        elif key in ("lame_duck_duration", "lame_duck_grace_period"):
            setattr(opts, "lame_duck_duration" if key == "lame_duck_duration" else "lame_duck_grace",
                    parse_duration(value))
        elif key == "jetstream":
            _apply_jetstream(opts, value)
        elif key == "store_dir":
            opts.jetstream.store_dir = _str(value, key)
        elif key == "authorization":
            _apply_authorization(opts, value)
        elif key == "accounts":
            _apply_accounts(opts, value)
        elif key == "no_auth_user":
            opts.no_auth_user = _str(value, key)
        elif key == "max_connections":
            # as nats-server: 0 means "no limit"
            n = _int(value, key)
            opts.max_connections = -1 if n == 0 else n
        elif key == "max_subscriptions":
            opts.max_subs = _int(value, key)
        elif key == "tls":
            _apply_tls(opts, value)
        elif key in ("debug", "trace"):
            setattr(opts, key, bool(value))
        else:  # log_file, pid_file
            setattr(opts, key, _str(value, key))


# Every key of nats-server's tls block. Those it has only on Windows (certificate stores) and
# OCSP checks of client certificates are refused by name below, never ignored.
_TLS_KEYS = _aliases(
    "cert_file", "key_file", "ca_file", "verify", "verify_and_map", "verify_cert_and_check_known_urls",
    "insecure", "cipher_suites", "allow_insecure_cipher_suites", "curve_preferences", "timeout",
    "connection_rate_limit", "pinned_certs", "handshake_first first immediate", "min_version",
    "certs certificates", "ocsp_peer", "cert_store", "cert_match_by", "cert_match", "ca_certs_match",
    "cert_match_skip_invalid")
_TLS_WINDOWS_ONLY = ("cert_store", "cert_match_by", "cert_match", "ca_certs_match", "cert_match_skip_invalid")

# nats-server's cipher suite names (Go's, both the 2.9 spellings and Go's current ones) ->
# (OpenSSL name, insecure), for server/tls.py. None: a TLS 1.3 suite, which Go (and so nats-server) always enables
# whatever the list says, as OpenSSL does here.
TLS_CIPHERS: dict[str, tuple[str | None, bool]] = {
    "TLS_RSA_WITH_RC4_128_SHA": ("RC4-SHA", True),
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": ("DES-CBC3-SHA", True),
    "TLS_RSA_WITH_AES_128_CBC_SHA": ("AES128-SHA", False),
    "TLS_RSA_WITH_AES_128_CBC_SHA256": ("AES128-SHA256", True),
    "TLS_RSA_WITH_AES_256_CBC_SHA": ("AES256-SHA", False),
    "TLS_RSA_WITH_AES_128_GCM_SHA256": ("AES128-GCM-SHA256", False),
    "TLS_RSA_WITH_AES_256_GCM_SHA384": ("AES256-GCM-SHA384", False),
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": ("ECDHE-ECDSA-RC4-SHA", True),
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": ("ECDHE-ECDSA-AES128-SHA", False),
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": ("ECDHE-ECDSA-AES256-SHA", False),
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": ("ECDHE-RSA-RC4-SHA", True),
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": ("ECDHE-RSA-DES-CBC3-SHA", True),
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": ("ECDHE-RSA-AES128-SHA", False),
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": ("ECDHE-RSA-AES256-SHA", False),
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": ("ECDHE-RSA-AES128-SHA256", True),
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": ("ECDHE-ECDSA-AES128-SHA256", True),
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": ("ECDHE-RSA-AES128-GCM-SHA256", False),
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": ("ECDHE-ECDSA-AES128-GCM-SHA256", False),
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": ("ECDHE-RSA-AES256-GCM-SHA384", False),
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": ("ECDHE-ECDSA-AES256-GCM-SHA384", False),
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": ("ECDHE-RSA-CHACHA20-POLY1305", False),
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": ("ECDHE-RSA-CHACHA20-POLY1305", False),
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": ("ECDHE-ECDSA-CHACHA20-POLY1305", False),
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": ("ECDHE-ECDSA-CHACHA20-POLY1305", False),
    "TLS_AES_128_GCM_SHA256": (None, False),
    "TLS_AES_256_GCM_SHA384": (None, False),
    "TLS_CHACHA20_POLY1305_SHA256": (None, False),
}
# nats-server 2.9's default (TLS 1.2) suites, in its order
TLS_DEFAULT_CIPHERS = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                   "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                   "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
# nats-server's curve names -> OpenSSL group names (None: known to newer nats-server builds,
# not to the OpenSSL this runs on)
TLS_CURVES: dict[str, str | None] = {"X25519": "X25519", "CurveP256": "P-256", "CurveP384": "P-384",
                                    "CurveP521": "P-521", "X25519MLKEM768": None}
TLS_DEFAULT_CURVES = ("X25519", "CurveP256", "CurveP384", "CurveP521")


def check_tls(opts: ServerOptions) -> None:
    """The TLS options that can be checked without reading a file: names nats-server does not
    know (its words), insecure suites it refuses, combinations. server/tls.py reads the files."""
    insecure = []
    for name in opts.tls_ciphers or ():
        if name not in TLS_CIPHERS:
            raise OptionsError(f"unrecognized cipher {name}")
        if TLS_CIPHERS[name][1]:
            insecure.append(name)
    if insecure and not opts.tls_allow_insecure_ciphers:
        raise OptionsError("insecure cipher suites configured without 'allow_insecure_cipher_suites' option "
                           f"set: {', '.join(insecure)}")
    for name in opts.tls_curves or ():
        if name not in TLS_CURVES:
            raise OptionsError(f"unrecognized curve preference {name}")
    if opts.tls_certs and opts.tls_cert:
        raise OptionsError("error parsing tls config, cannot combine 'cert_file' option with 'certs' option")
    if not opts.tls_certs and not (opts.tls_cert and opts.tls_key):
        raise OptionsError("TLS requires --tlscert and --tlskey")


def _tls_bool(v: Any, k: str) -> bool:
    if not isinstance(v, bool):
        raise OptionsError(f"error parsing tls config, expected '{k}' to be a boolean")
    return v


def _tls_names(v: Any, k: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise OptionsError(f"error parsing tls config, expected '{k}' to be a list of names")
    if not v:
        raise OptionsError(f"error parsing tls config, '{k}' cannot be empty")
    return list(v)


def _apply_tls(opts: ServerOptions, value: Any) -> None:
    """nats-server's parseTLS: the same keys, types and words."""
    opts.tls = True
    for k, v in _keys(value, "tls", _TLS_KEYS):
        if k in ("cert_file", "key_file", "ca_file"):
            if not isinstance(v, str):
                raise OptionsError(f"error parsing tls config, expected '{k}' to be filename")
            setattr(opts, {"cert_file": "tls_cert", "key_file": "tls_key", "ca_file": "tls_ca"}[k], v)
        elif k == "verify":
            opts.tls_verify = _tls_bool(v, k)
        elif k == "verify_and_map":
            opts.tls_map = _tls_bool(v, k)
            opts.tls_verify = opts.tls_verify or opts.tls_map
        elif k == "verify_cert_and_check_known_urls":
            # a check of cluster/gateway peers' URLs: nats-server refuses it on the client port too
            if _tls_bool(v, k):
                raise OptionsError("verify_cert_and_check_known_urls not supported in this context")
        elif k == "insecure":
            # skips verifying a server's certificate when nats-server dials out; it has no effect
            # on a listener verifying its clients, here as there
            _tls_bool(v, k)
        elif k == "cipher_suites":
            opts.tls_ciphers = _tls_names(v, k)
        elif k == "allow_insecure_cipher_suites":
            opts.tls_allow_insecure_ciphers = _tls_bool(v, k)
        elif k == "curve_preferences":
            opts.tls_curves = _tls_names(v, k)
        elif k == "timeout":
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise OptionsError("error parsing tls config, 'timeout' wrong type")
            opts.tls_timeout = parse_duration(v) if isinstance(v, str) else float(v)
        elif k == "connection_rate_limit":
            if isinstance(v, bool) or not isinstance(v, int):
                raise OptionsError("error parsing tls config, 'connection_rate_limit' wrong type")
            opts.tls_rate_limit = v
        elif k == "pinned_certs":
            opts.tls_pinned_certs = _pinned_certs(v)
        elif k == "handshake_first":
            opts.tls_handshake_first, opts.tls_first_fallback = _handshake_first(v, k)
        elif k == "min_version":
            if not isinstance(v, str) or v not in ("1.0", "1.1", "1.2", "1.3"):
                raise OptionsError(f"error parsing tls config: unknown version: {v}")
            if v in ("1.0", "1.1"):
                raise OptionsError(f"error parsing tls config: unsupported TLS version: TLS {v}")
            opts.tls_min_version = v
        elif k == "certs":
            opts.tls_certs = _cert_pairs(v)
        elif k == "ocsp_peer":
            # `false` is nats-server's default; checking client certificates over OCSP is not done here
            if v is not False:
                raise OptionsError("config: unsupported tls key 'ocsp_peer' (OCSP checks of client certificates)")
        else:  # _TLS_WINDOWS_ONLY
            raise OptionsError(f"config: unsupported tls key '{k}' (Windows certificate stores only)")
    if opts.tls_certs and opts.tls_cert:
        raise OptionsError("error parsing tls config, cannot combine 'cert_file' option with 'certs' option")


def _pinned_certs(v: Any) -> frozenset[str] | None:
    if not isinstance(v, list):
        raise OptionsError("error parsing tls config, expected 'pinned_certs' to be a list of hex-encoded sha256 "
                           "of DER encoded SubjectPublicKeyInfo")
    pins = []
    for entry in v:
        e = str(entry).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", e):
            raise OptionsError(f"error parsing tls config, 'pinned_certs' key {e} does not look like hex-encoded "
                               "sha256 of DER encoded SubjectPublicKeyInfo")
        pins.append(e)
    return frozenset(pins) if pins else None  # an empty list pins nothing, as in nats-server


def _handshake_first(v: Any, k: str) -> tuple[bool, float]:
    """true/false/on/off; "auto" (50 ms) or a duration: TLS first, but a client silent that
    long gets INFO and the usual upgrade."""
    if isinstance(v, bool):
        return v, 0.0
    if not isinstance(v, str):
        raise OptionsError(f'field "{k}" should be a boolean or a string, got {type(v).__name__}')
    word = v.lower()
    if word in ("true", "on"):
        return True, 0.0
    if word in ("false", "off"):
        return False, 0.0
    if word in ("auto", "auto_fallback"):
        return True, 0.05
    try:
        return True, parse_duration(v)
    except OptionsError:
        raise OptionsError(f'field "{k}"\'s value "{v}" is invalid') from None


def _cert_pairs(v: Any) -> list[tuple[str, str]]:
    if not isinstance(v, list):
        raise OptionsError(f"error parsing certificates config: unsupported type {type(v).__name__}")
    pairs = []
    for item in v:
        if not isinstance(item, dict):
            raise OptionsError(f"error parsing certificates config: unsupported type {type(item).__name__}")
        pair = {"cert_file": "", "key_file": ""}
        for pk, pv in item.items():
            if pk not in pair:
                raise OptionsError(f'error parsing tls certs config, unknown field "{pk}"')
            if not isinstance(pv, str):
                raise OptionsError(f"error parsing certificates config: unsupported type {type(pv).__name__}")
            pair[pk] = pv
        if not (pair["cert_file"] and pair["key_file"]):
            raise OptionsError("error parsing certificates config: both 'cert_file' and 'cert_key' options are "
                               "required")
        pairs.append((pair["cert_file"], pair["key_file"]))
    return pairs


_JS_KEYS = _aliases("store_dir store storedir", "max_mem max_memory_store max_mem_store",
                    "max_file max_file_store", "sync_interval sync", "enabled enable", "disabled disable",
                    "domain", "strict")


def _enabled_word(value: Any) -> bool:
    return value is True or str(value).lower() in ("enabled", "enable", "true", "on", "yes")


def _apply_jetstream(opts: ServerOptions, value: Any) -> None:
    js = opts.jetstream
    if not isinstance(value, dict):
        js.enabled = _enabled_word(value)
        return
    js.enabled = True
    for k, v in _keys(value, "jetstream", _JS_KEYS):
        if k == "store_dir":
            js.store_dir = _str(v, k)
        elif k == "max_mem":
            js.max_mem = _size(v)
        elif k == "max_file":
            js.max_file = _size(v)
        elif k == "sync_interval":
            js.sync_interval = None if str(v).lower() == "always" else parse_duration(v)
        elif k == "domain":
            js.domain = _js_domain(v)
        elif k == "strict":
            if not isinstance(v, bool):
                # nats-server's words for a value that is not a bool
                raise OptionsError(f"Expected 'true' or 'false' for bool value, got '{v}'")
            js.strict = v
        elif k == "enabled":
            js.enabled = bool(v)
        else:
            js.enabled = not bool(v)


def _js_domain(value: Any) -> str:
    """nats-server's domain checks and words (it crashes on a non-string; we say why)."""
    if not isinstance(value, str):
        raise OptionsError(f"config: jetstream domain must be a string, got {value!r}")
    if value:
        derived = f"$JS.{value}.API.>"
        if not is_valid_subject(derived):
            raise OptionsError(f'invalid domain name: derived "{derived}" is not a valid subject')
        if any(ch in value for ch in ".*>"):
            raise OptionsError("invalid domain name: may not contain ., * or >")
    return value


_AUTH_KEYS = _aliases("user username", "password pass", "token", "timeout", "users",
                      "default_permissions default_permission permissions")


def _apply_authorization(opts: ServerOptions, value: Any) -> None:
    items = _keys(value, "authorization", _AUTH_KEYS)
    defaults = next((_permissions(v) for k, v in items if k == "default_permissions"), None)
    if defaults is not None and not any(k == "users" for k, _ in items):
        # nats-server gives them to the users list only and ignores them otherwise, so a single
        # user or token (or account users) would get every right the block was meant to limit
        raise OptionsError("config: authorization default_permissions apply to its users list only; "
                           "without one they would restrict nobody")
    for k, v in items:
        if k == "user":
            opts.username = _str(v, k)
        elif k == "password":
            opts.password = _str(v, k)
        elif k == "token":
            opts.token = _str(v, k)
        elif k == "timeout":
            opts.auth_timeout = parse_duration(v)
        elif k == "users":
            _add_users(opts, _users(v, "$G", defaults))


_ACCOUNT_KEYS = _aliases("users", "jetstream", "default_permissions")
_ACCOUNT_JS_KEYS = _aliases("max_mem max_memory mem memory", "max_file max_store max_disk store disk",
                            "max_streams streams", "max_consumers consumers", "enabled enable",
                            "disabled disable", "max_ack_pending",
                            "memory_max_stream_bytes mem_max_stream_bytes",
                            "store_max_stream_bytes disk_max_stream_bytes",
                            "max_bytes_required max_stream_bytes max_bytes")


def _apply_accounts(opts: ServerOptions, value: Any) -> None:
    if not isinstance(value, dict):
        raise OptionsError(f"config: accounts must be a map, got {value!r}")
    for name, body in value.items():
        acc = AccountConfig(name)
        items = _keys(body or {}, "account", _ACCOUNT_KEYS)
        defaults = next((_permissions(v) for k, v in items if k == "default_permissions"), None)
        for k, v in items:
            if k == "users":
                _add_users(opts, _users(v, name, defaults))
            elif k == "jetstream":
                if isinstance(v, dict):
                    acc.jetstream = True
                    for jk, jv in _keys(v, "account jetstream", _ACCOUNT_JS_KEYS):
                        if jk == "max_mem":
                            acc.max_mem = _size(jv)
                        elif jk == "max_file":
                            acc.max_file = _size(jv)
                        elif jk == "max_streams":
                            acc.max_streams = _int(jv, jk)
                        elif jk == "max_consumers":
                            acc.max_consumers = _int(jv, jk)
                        elif jk == "max_ack_pending":
                            acc.max_ack_pending = _int(jv, jk)
                        elif jk == "memory_max_stream_bytes":
                            acc.memory_max_stream_bytes = _size(jv)
                        elif jk == "store_max_stream_bytes":
                            acc.store_max_stream_bytes = _size(jv)
                        elif jk == "max_bytes_required":
                            if not isinstance(jv, bool):
                                raise OptionsError(f'Expected a parseable bool for "{jk}", got {jv}')
                            acc.max_bytes_required = jv
                        elif jk == "enabled":
                            acc.jetstream = bool(jv)
                        else:
                            acc.jetstream = not bool(jv)
                else:
                    acc.jetstream = _enabled_word(v)
        opts.accounts[name] = acc


def _baseline(opts: ServerOptions) -> None:
    """A zero means "the default" for these settings, as in nats-server (`ping_max: 0` is 2)."""
    defaults = ServerOptions()
    for attr in ("max_payload", "max_pending", "max_control_line", "ping_interval", "ping_max",
                 "write_deadline", "auth_timeout", "lame_duck_duration", "lame_duck_grace"):
        if not getattr(opts, attr):
            setattr(opts, attr, getattr(defaults, attr))


def _check_auth(opts: ServerOptions) -> None:
    """Combinations nats-server refuses at start-up (same words), rather than guessing which wins."""
    if opts.token and opts.users:
        raise OptionsError("Can not have a token and a users array")
    if opts.username and opts.users:
        raise OptionsError("Can not have a single user/pass and a users array")
    if opts.username and opts.token:
        raise OptionsError("Cannot have a user/pass and token")
    if opts.no_auth_user and opts.no_auth_user not in {u.user for u in opts.users}:
        raise OptionsError(f'no_auth_user: "{opts.no_auth_user}" not present as user or nkey in authorization '
                           "block or account configuration")


def parse_server_args(argv: list[str], extra_flags: dict[str, str] | None = None) -> tuple[ServerOptions, dict[str, Any]]:
    """Options from the command line (and the config file it names). Returns the options and
    the values of `extra_flags` plus `help`/`version` requests."""
    flags = split_go_flags(list(argv), extra_flags)
    opts = ServerOptions()
    opts.auth_timeout = 0.0  # unset: its default depends on TLS (below)
    if flags.get("config_file"):
        opts.config_file = flags["config_file"]
        try:
            apply_config(opts, load_config(opts.config_file))
        except ConfigError as e:
            raise OptionsError(str(e)) from e
    extras: dict[str, Any] = {}
    for attr, value in flags.items():
        if attr == "js":
            opts.jetstream.enabled = bool(value)
        elif attr == "store_dir":
            opts.jetstream.store_dir = value
        elif attr == "debug_trace":
            opts.debug = opts.trace = bool(value)
        elif attr in ("help", "version"):
            extras[attr] = value
        elif attr == "config_file":
            continue
        elif hasattr(opts, attr) and not (extra_flags and attr.replace("_", "-") in extra_flags):
            setattr(opts, attr, value)
        else:
            extras[attr] = value
    # As with nats-server, any TLS flag turns TLS on (`--tlsverify` alone means verify clients).
    if any(k in flags for k in ("tls_verify", "tls_cert", "tls_key", "tls_ca")) and flags.get("tls", True):
        opts.tls = True
    return finalize_options(opts), extras


def finalize_options(opts: ServerOptions) -> ServerOptions:
    """Defaults for unset settings and the start-up checks nats-server makes, for options from
    any source: flags and config file (`parse_server_args`) or the library (`pyjetstream.serve`,
    which also starts from `auth_timeout = 0.0`, "unset")."""
    if not opts.auth_timeout:
        # nats-server's default: the handshake's timeout and a second more when TLS is on
        opts.auth_timeout = (opts.tls_timeout or 2.0) + 1.0 if opts.tls else ServerOptions.auth_timeout
    if not opts.tls_timeout:
        opts.tls_timeout = ServerOptions.tls_timeout
    _baseline(opts)
    if opts.port == -1:
        opts.port = 0
    if opts.username and not opts.password:
        raise OptionsError("--user requires --pass")
    _check_auth(opts)
    if opts.max_payload > opts.max_pending:
        raise OptionsError(f"max_payload ({opts.max_payload}) cannot be higher than max_pending ({opts.max_pending})")
    if opts.tls:
        # every name and combination now; the certificate files are read by server/tls.py's
        # build_context, which the commands call before they start anything
        check_tls(opts)
    return opts
