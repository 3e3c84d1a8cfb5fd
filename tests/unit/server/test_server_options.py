"""Server options: nats-server's Go-style flags, the config file syntax and keys, the command
line winning over the file, zero-means-default, and loud refusal of what we do not support."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyjetstream.server.conf import ConfigError, parse_config
from pyjetstream.server.options import OptionsError, parse_duration, parse_server_args, split_go_flags


@pytest.mark.parametrize("argv", [["-sd", "/d"], ["-sd=/d"], ["--sd=/d"], ["--sd", "/d"], ["--store_dir", "/d"],
                                  ["-store_dir=/d"]])
def test_go_flag_styles(argv: list[str]) -> None:
    opts, _ = parse_server_args(argv)
    assert opts.jetstream.store_dir == "/d"


def test_every_issue_flag() -> None:
    opts, extras = parse_server_args([
        "-a", "127.0.0.2", "-p", "5222", "-n", "srv", "-js", "-sd", "/s", "-m", "8223", "--user", "u",
        "--pass", "p", "-l", "/l.log", "-P", "/p.pid", "-DV", "--max_payload", "2MB", "--tls",
        "--tlscert", "c.pem", "--tlskey", "k.pem", "--tlscacert", "ca.pem", "--tlsverify"])
    assert (opts.host, opts.port, opts.server_name) == ("127.0.0.2", 5222, "srv")
    assert opts.jetstream.enabled and opts.jetstream.store_dir == "/s" and opts.http_port == 8223
    assert (opts.username, opts.password, opts.log_file, opts.pid_file) == ("u", "p", "/l.log", "/p.pid")
    assert opts.debug and opts.trace and opts.max_payload == 2 * 1024 * 1024
    assert (opts.tls, opts.tls_cert, opts.tls_key, opts.tls_ca, opts.tls_verify) == (
        True, "c.pem", "k.pem", "ca.pem", True)
    assert extras == {}
    for argv, attr in ((["--addr", "h"], "host"), (["--net", "h"], "host"), (["--name", "h"], "server_name")):
        assert getattr(parse_server_args(argv)[0], attr) == "h"
    assert parse_server_args(["--auth", "tok"])[0].token == "tok"
    d, v = parse_server_args(["-D"])[0], parse_server_args(["-V"])[0]
    assert (d.debug, d.trace, v.debug, v.trace) == (True, False, False, True)


def test_booleans_and_port_minus_one() -> None:
    assert not parse_server_args(["-js=false"])[0].jetstream.enabled
    assert parse_server_args(["--jetstream=true"])[0].jetstream.enabled
    assert parse_server_args(["-p", "-1"])[0].port == 0
    with pytest.raises(OptionsError, match='invalid boolean value "maybe"'):
        parse_server_args(["-js=maybe"])


def test_tls_verify_alone_turns_tls_on() -> None:
    opts, _ = parse_server_args(["--tlsverify", "--tlscert", "c", "--tlskey", "k"])
    assert opts.tls and opts.tls_verify
    with pytest.raises(OptionsError, match="TLS requires"):
        parse_server_args(["--tlsverify"])


@pytest.mark.parametrize(("argv", "msg"), [
    (["--cluster", "x"], "flag -cluster is a nats-server flag that pyjetstream does not support yet"),
    (["--routes", "x"], "does not support"), (["-sl", "stop"], "does not support"),
    (["-nope"], "flag provided but not defined: -nope"), (["-p"], "flag needs an argument: -p"),
    (["-p", "x"], 'invalid value "x" for flag -p'), (["--max_payload", "lots"], "invalid value"),
    (["pos"], "unexpected argument 'pos'"),
    (["--max_payload", "128MB"], "max_payload (134217728) cannot be higher than max_pending (67108864)"), (["--user", "u"], "--user requires --pass"),
])
def test_bad_flags(argv: list[str], msg: str) -> None:
    with pytest.raises(OptionsError, match=re.escape(msg)):
        parse_server_args(argv)


def test_extra_flags_for_other_commands() -> None:
    assert split_go_flags(["--publish-port", "9"], {"publish-port": "int"}) == {"publish_port": 9}


FULL = """
listen: 10.0.0.1:4333
server_name: "from-file"   # a comment
max_payload = 64KB
max_pending 32MB
ping_interval: "30s"
ping_max: 3
write_deadline: "5s"
// another comment
jetstream {
  store_dir: "/js"
  max_mem: 256MB
  max_file: 1GB
  sync_interval: "2m"
}
authorization {
  user: alice
  password: "s3cret"
  timeout: 1.5
}
tls { cert_file: "c.pem", key_file: "k.pem", ca_file: "ca.pem", verify: true }
"""

ACCOUNTS = """
accounts {
  A: {
    users: [
      { user: a, password: pa, permissions: {
          publish: { allow: ["a.>"], deny: ["a.secret"] }
          subscribe: ["a.*", "_INBOX.>"] } }
    ]
    jetstream: { max_mem: 10MB, max_file: 100MB, max_streams: 5, max_consumers: 10 }
  }
  B: { users = [ { user: b, password: pb, permissions: { publish: "b.only" } } ] }
}
no_auth_user: b
authorization { users: [ { user: g, password: pg } ] }
"""


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "s.conf"
    p.write_text(text)
    return str(p)


def test_config_every_key(tmp_path: Path) -> None:
    opts, _ = parse_server_args(["-c", write(tmp_path, FULL)])
    assert (opts.host, opts.port, opts.server_name) == ("10.0.0.1", 4333, "from-file")
    assert (opts.max_payload, opts.max_pending) == (65536, 32 * 1024 * 1024)
    assert (opts.ping_interval, opts.ping_max, opts.write_deadline) == (30.0, 3, 5.0)
    js = opts.jetstream
    assert (js.enabled, js.store_dir, js.max_mem, js.max_file, js.sync_interval) == (
        True, "/js", 256 * 1024**2, 1024**3, 120.0)
    assert (opts.username, opts.password, opts.auth_timeout) == ("alice", "s3cret", 1.5)
    assert (opts.tls, opts.tls_cert, opts.tls_key, opts.tls_ca, opts.tls_verify) == (
        True, "c.pem", "k.pem", "ca.pem", True)


def test_config_accounts_users_permissions(tmp_path: Path) -> None:
    opts, _ = parse_server_args(["-c", write(tmp_path, ACCOUNTS)])
    users = {u.user: u for u in opts.users}
    assert {n: u.account for n, u in users.items()} == {"a": "A", "b": "B", "g": "$G"}
    pa = users["a"].permissions
    assert pa is not None
    assert (pa.pub_allow, pa.pub_deny, pa.sub_allow, pa.sub_deny) == (["a.>"], ["a.secret"], ["a.*", "_INBOX.>"], [])
    assert users["b"].permissions.pub_allow == ["b.only"]  # type: ignore[union-attr]
    a = opts.accounts["A"]
    assert (a.jetstream, a.max_mem, a.max_file, a.max_streams, a.max_consumers) == (
        True, 10 * 1024**2, 100 * 1024**2, 5, 10)
    assert not opts.accounts["B"].jetstream and opts.no_auth_user == "b"


@pytest.mark.parametrize(("text", "argv", "msg"), [
    ("authorization { users: [ { user: g, password: p } ], token: t }", [], "Can not have a token and a users array"),
    ("authorization { user: a, password: b, users: [ { user: g, password: p } ] }", [],
     "Can not have a single user/pass and a users array"),
    ("authorization { token: t }", ["--user", "a", "--pass", "b"], "Cannot have a user/pass and token"),
    ("accounts { A: { users: [ { user: a, password: b } ] } }\nno_auth_user: zz", [],
     'no_auth_user: "zz" not present'),
])
def test_conflicting_auth_is_refused(tmp_path: Path, text: str, argv: list[str], msg: str) -> None:
    with pytest.raises(OptionsError, match=msg):
        parse_server_args(["-c", write(tmp_path, text), *argv])


def test_command_line_wins(tmp_path: Path) -> None:
    opts, _ = parse_server_args(["-p", "7000", "-c", write(tmp_path, FULL), "-n", "flag", "--max_payload=1KB"])
    assert (opts.port, opts.server_name, opts.max_payload, opts.host) == (7000, "flag", 1024, "10.0.0.1")


def test_zero_means_default(tmp_path: Path) -> None:
    opts, _ = parse_server_args(["-c", write(tmp_path, "ping_max: 0\nping_interval: 0\nmax_payload: 0\n")])
    assert (opts.ping_max, opts.ping_interval, opts.max_payload) == (2, 120.0, 1024 * 1024)


@pytest.mark.parametrize(("text", "msg"), [
    ("cluster { port: 6222 }", "unsupported key 'cluster'"),
    ("jetstream { cipher: aes }", "unsupported jetstream key 'cipher'"),
    ("authorization { nkeys: [] }", "unsupported authorization key 'nkeys'"),
    ("accounts { A: { exports: [] } }", "unsupported account key 'exports'"),
    ("ping_interval: soon", "invalid duration"),
])
def test_config_refuses_what_it_does_not_support(tmp_path: Path, text: str, msg: str) -> None:
    with pytest.raises(OptionsError, match=msg):
        parse_server_args(["-c", write(tmp_path, text)])


def test_config_syntax() -> None:
    conf = parse_config("""
        a = 1; b: "two" , c three
        size: 2k
        big: 1.5GB
        list: [1, 2
               3]
        nested { x { y: true, z: off } }
        ref: $a
        'quoted key': 'v'
        empty {}
    """)
    assert conf == {"a": 1, "b": "two", "c": "three", "size": 2000, "big": int(1.5 * 1024**3), "list": [1, 2, 3],
                    "nested": {"x": {"y": True, "z": False}}, "ref": 1, "quoted key": "v", "empty": {}}


def test_config_include_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "auth.conf").write_text("authorization { token: $TOK }\n")
    monkeypatch.setenv("TOK", "from-env")
    opts, _ = parse_server_args(["-c", write(tmp_path, "port: 5000\ninclude auth.conf\n")])
    assert (opts.port, opts.token) == (5000, "from-env")


@pytest.mark.parametrize("text", ["a { b: 1", "a [1, 2", "a: \"open", "x: $UNDEFINED_PYJETSTREAM_VAR"])
def test_config_syntax_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(text)


@pytest.mark.parametrize(("text", "seconds"), [("2m", 120.0), ("1.5s", 1.5), ("100ms", 0.1), ("1h30m", 5400.0),
                                               ("250us", 0.00025), (3, 3.0), ("7", 7.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
