"""Hostile clients against authentication, permissions and connection limits: each scenario
runs on ours and, where nats-server 2.9.10 is the reference, on it too, over raw sockets and
nats-py. Every test here failed before the fix it guards."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path

import bcrypt
import nats
import nats.js.errors
import pytest
from servers import KINDS, RawClient, flushed, have_nats_server, start_server

from pyjetstream.server.client import redact


def _kinds() -> list[str]:
    return [k for k in KINDS if k == "pyjetstream" or have_nats_server()]


NO_AUTH_CONF = """
authorization {
  users: [
    {user: admin, password: adminpw},
    {user: guest, password: guestpw, permissions: {publish: "public.>", subscribe: "public.>"}}
  ]
}
no_auth_user: guest
"""

NO_AUTH_ACCOUNTS_CONF = """
accounts {
  A: { jetstream: enabled, users: [ {user: admin, password: adminpw} ] }
  G: { users: [ {user: guest, password: guestpw, permissions: {publish: "public.>", subscribe: "public.>"}} ] }
}
no_auth_user: guest
"""


@pytest.fixture(params=_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


# ------------------------------------------------------------------ 1. no_auth_user before CONNECT
def test_no_connect_client_is_the_no_auth_user(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js"), config=NO_AUTH_CONF) as srv:
        spy = RawClient(srv.port)
        spy.send(b"SUB > 1\r\n")
        out = spy.sync()
        assert b"Permissions Violation for Subscription to \">\"" in out
        spy.send(b"SUB public.> 2\r\n")
        spy.sync()

        async def admin() -> None:
            nc = await nats.connect(srv.url, user="admin", password="adminpw")
            js = nc.jetstream()
            await js.add_stream(name="S", subjects=["s.>"])
            await nc.publish("payroll.salaries", b"secret")
            await nc.publish("public.news", b"hello")
            await flushed(nc)
            await nc.close()

        asyncio.run(admin())
        got = spy.sync()
        assert b"secret" not in got and b"payroll" not in got
        assert b"MSG public.news 2 5\r\nhello" in got
        # an API call from the unauthenticated side is a publish like any other
        spy.send(b"PUB $JS.API.STREAM.DELETE.S 0\r\n\r\n")
        out = spy.sync()
        assert b'Permissions Violation for Publish to "$JS.API.STREAM.DELETE.S"' in out
        spy.close()

        async def still_there() -> int:
            nc = await nats.connect(srv.url, user="admin", password="adminpw")
            info = await nc.jetstream().stream_info("S")
            await nc.close()
            return info.state.messages

        assert asyncio.run(still_there()) == 0


def test_no_connect_client_lands_in_the_no_auth_users_account(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, config=NO_AUTH_ACCOUNTS_CONF) as srv:
        spy = RawClient(srv.port)
        spy.send(b"SUB public.> 1\r\n")
        assert b"-ERR" not in spy.sync()

        async def publish() -> None:
            # admin's account A: the spy, bound to guest's account G, must not see it
            a = await nats.connect(srv.url, user="admin", password="adminpw")
            await a.publish("public.a", b"from-A")
            await flushed(a)
            await a.close()
            g = await nats.connect(srv.url, user="guest", password="guestpw")
            await g.publish("public.g", b"from-G")
            await flushed(g)
            await g.close()

        asyncio.run(publish())
        got = spy.sync()
        spy.close()
        assert b"from-A" not in got
        assert b"from-G" in got


# ------------------------------------------------------------------ 2. server messages are not API calls
ROLES_CONF = """
accounts {
  A: {
    jetstream: enabled
    users: [
      {user: admin, password: adminpw},
      {user: inforo, password: p, permissions: {publish: "$JS.API.STREAM.INFO.>", subscribe: "_INBOX.>"}},
      {user: sonly, password: p, permissions: {publish: "s.>", subscribe: "_INBOX.>"}}
    ]
  }
}
"""


async def _setup_streams(url: str) -> None:
    nc = await nats.connect(url, user="admin", password="adminpw")
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s.>"])
    await js.add_stream(name="OTHER", subjects=["o.>"])
    for subj in ("s.a", "o.a", "o.b"):
        await js.publish(subj, b"x")
    await js.add_consumer("S", durable_name="C", ack_policy="explicit")
    await nc.close()


async def _state(url: str) -> tuple[int, int, list[str]]:
    nc = await nats.connect(url, user="admin", password="adminpw")
    js = nc.jetstream()
    s = await js.stream_info("S")
    o = await js.stream_info("OTHER")
    consumers = [c.name for c in await js.consumers_info("S")]
    await nc.close()
    return s.state.messages, o.state.messages, consumers


@pytest.mark.parametrize(("user", "subject", "reply"), [
    ("inforo", b"$JS.API.STREAM.INFO.S", b"$JS.API.STREAM.PURGE.S"),
    ("sonly", b"s.y", b"$JS.API.STREAM.PURGE.OTHER"),
    ("sonly", b"s.y", b"$JS.API.CONSUMER.DELETE.S.C"),
    ("sonly", b"s.y", b"$JS.ACK.S.C.1.1.1.0.0"),
])
def test_reply_subjects_cannot_smuggle_api_calls(kind: str, tmp_path: Path, user: str, subject: bytes,
                                                 reply: bytes) -> None:
    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js"), config=ROLES_CONF) as srv:
        asyncio.run(_setup_streams(srv.url))
        before = asyncio.run(_state(srv.url))
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"p"}\r\n' % user.encode())
        c.send(b"PUB %s %s 0\r\n\r\n" % (subject, reply))
        out = c.sync()
        c.close()
        after = asyncio.run(_state(srv.url))
        if reply.startswith(b"$JS.ACK.") or kind == "pyjetstream":
            assert b'Permissions Violation for Publish with Reply of "%s"' % reply in out
        if kind == "pyjetstream":
            assert after == before  # the publish with that reply was refused whole
        elif not reply.startswith(b"$JS.API.STREAM.PURGE.OTHER"):
            # nats-server stores s.y and lets its PubAck purge OTHER; we go beyond it
            assert after[1:] == before[1:]


def test_server_published_messages_never_reach_the_api(tmp_path: Path) -> None:
    """Below the reply check: a push consumer may not deliver to an API subject (refused with
    10112; nats-server takes it), so an admin cannot aim deliveries there. What the server
    publishes is not executed even when it arrives: tests/security/test_server_publish_targets.py."""
    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js"), config=ROLES_CONF) as srv:
        asyncio.run(_setup_streams(srv.url))

        async def aim() -> None:
            nc = await nats.connect(srv.url, user="admin", password="adminpw")
            js = nc.jetstream()
            await js.add_stream(name="E", subjects=["e.>"])
            await js.publish("e.1", b"")
            with pytest.raises(nats.js.errors.BadRequestError) as e:
                await js.add_consumer("E", durable_name="P", deliver_subject="$JS.API.STREAM.DELETE.S",
                                      ack_policy="none")
            assert e.value.err_code == 10112
            await nc.close()

        asyncio.run(aim())
        assert asyncio.run(_state(srv.url))[0] == 1  # S still exists with its message


# ------------------------------------------------------------------ 3. trace redacts secrets
def test_trace_redacts_connect_secrets(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    with start_server("pyjetstream", tmp_path, "-DV", "-l", str(log), "--user", "u", "--pass",
                      "s3cr3t-pw") as srv:
        c = RawClient(srv.port)
        # split so the password straddles two reads
        c.send(b'CONNECT {"verbose":false,"user":"u","pa')
        c.send(b'ss":"s3cr3t-pw","auth_token":"tok-123","jwt":"jwt-456","sig":"sig-789"}\r\n')
        assert c.sync() == b""
        c.close()
    text = log.read_text()
    assert "CONNECT" in text and "[REDACTED]" in text
    for secret in ("s3cr3t-pw", "tok-123", "jwt-456", "sig-789"):
        assert secret not in text


def test_redact_keeps_other_fields() -> None:
    line = b'CONNECT {"user":"u","pass":"a\\"b","name":"n","auth_token": "t"}\r\n'
    assert redact(line) == b'CONNECT {"user":"u","pass":"[REDACTED]","name":"n","auth_token": "[REDACTED]"}\r\n'


# ------------------------------------------------------------------ 4. bcrypt passwords
def test_bcrypt_passwords(kind: str, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode().replace("$2b$", "$2a$")
    conf = f'authorization {{ users: [ {{user: u, password: "{hashed}"}} ] }}\n'
    with start_server(kind, tmp_path, config=conf) as srv:
        def attempt(password: str) -> bytes:
            c = RawClient(srv.port)
            c.send(json.dumps({"verbose": False, "user": "u", "pass": password}).encode().join(
                (b"CONNECT ", b"\r\nPING\r\n")))
            out = c.read_until(b"\r\n")
            c.close()
            return out

        assert attempt("right") == b"PONG\r\n"
        assert b"Authorization Violation" in attempt(hashed)
        assert b"Authorization Violation" in attempt("wrong")


def test_bcrypt_check_does_not_hold_other_clients(tmp_path: Path) -> None:
    """Operations queued behind a CONNECT wait for its bcrypt answer in order; another
    client is served meanwhile (the comparison runs off the loop)."""
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(12)).decode()
    conf = f'authorization {{ users: [ {{user: slow, password: "{hashed}"}}, {{user: fast, password: f}} ] }}\n'
    with start_server("pyjetstream", tmp_path, config=conf) as srv:
        slow = RawClient(srv.port, timeout=20)
        slow.send(b'CONNECT {"verbose":false,"user":"slow","pass":"pw"}\r\nSUB x 1\r\nPUB x 2\r\nhi\r\nPING\r\n')
        fast = RawClient(srv.port)
        fast.send(b'CONNECT {"verbose":false,"user":"fast","pass":"f"}\r\n')
        assert fast.sync() == b""  # answered while the other check may still run
        assert slow.read_until(b"PONG\r\n") == b"MSG x 1 2\r\nhi\r\nPONG\r\n"
        slow.close()
        fast.close()


# ------------------------------------------------------------------ 6. duplicate users
@pytest.mark.parametrize("conf", [
    "accounts { A: { users: [ {user: x, password: a} ] }, B: { users: [ {user: x, password: b} ] } }",
    "accounts { A: { users: [ {user: x, password: a} ] } }\nauthorization { users: [ {user: x, password: b} ] }",
    "authorization { users: [ {user: x, password: a}, {user: x, password: b} ] }",
])
def test_duplicate_users_refuse_to_start(kind: str, tmp_path: Path, conf: str) -> None:
    if kind == "nats-server" and "authorization" in conf and "accounts" not in conf:
        pytest.skip("nats-server 2.9.10 checks duplicates only against accounts")
    path = tmp_path / "dup.conf"
    path.write_text(conf + "\n")
    cmd = (["/usr/sbin/nats-server"] if kind == "nats-server" else [
        *__import__("servers").server_command("pyjetstream")]) + ["-a", "127.0.0.1", "-p", "-1", "-c", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert 'Duplicate user "x" detected' in r.stdout + r.stderr


# ------------------------------------------------------------------ 7. connection and subscription limits
def test_max_connections(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, "-m", "-1", config="max_connections: 2\n") as srv:
        a, b = RawClient(srv.port), RawClient(srv.port)
        a.send(b"CONNECT {}\r\n")
        b.send(b"CONNECT {}\r\n")
        a.sync()
        b.sync()
        c = RawClient(srv.port)  # INFO came first, then the refusal
        assert c.info.get("server_id")
        assert c.read_until_closed() == b"-ERR 'maximum connections exceeded'\r\n"
        assert srv.get_json("/varz")["max_connections"] == 2
        a.close()
        # the slot is free again once a client leaves
        for _ in range(50):
            if srv.get_json("/varz")["connections"] == 1:
                break
        d = RawClient(srv.port)
        d.send(b"CONNECT {}\r\n")
        assert d.sync() == b"+OK\r\n"
        for x in (b, c, d):
            x.close()


@pytest.mark.parametrize("key", ["max_subscriptions", "max_subs"])
def test_max_subscriptions(kind: str, tmp_path: Path, key: str) -> None:
    with start_server(kind, tmp_path, config=f"{key}: 2\n") as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB a 1\r\n')
        # at the limit even a repeated sid is refused (nats-server checks the count first)
        assert c.sync() == b"-ERR 'maximum subscriptions exceeded'\r\n" * 2
        c.send(b"UNSUB 1\r\nSUB c 3\r\nPUB c 1\r\nx\r\n")
        assert c.sync() == b"MSG c 3 1\r\nx\r\n"  # still connected, the freed slot is usable
        c.close()


def test_default_limits_in_varz(tmp_path: Path) -> None:
    with start_server("pyjetstream", tmp_path, "-m", "-1") as srv:
        assert srv.get_json("/varz")["max_connections"] == 65536


# ------------------------------------------------------------------ 10. config fidelity
@pytest.mark.parametrize("conf", [
    "authorization { users: [ {user: u, pass: pw} ] }",
    "authorization { users: [ {username: u, password: pw} ] }",
    "AUTHORIZATION { USERS: [ {USER: u, PASS: pw} ] }",
    "authorization { user: u, pass: pw }",
    "accounts { A: { users: [ {user: u, pass: pw, permission: {pub: \"x\", sub: {allow: \"x\"}}} ] } }",
])
def test_every_spelling_of_user_and_password(kind: str, tmp_path: Path, conf: str) -> None:
    with start_server(kind, tmp_path, config=conf + "\n") as srv:
        ok = RawClient(srv.port)
        ok.send(b'CONNECT {"verbose":false,"user":"u","pass":"pw"}\r\n')
        assert ok.sync() == b""
        ok.close()
        bad = RawClient(srv.port)
        bad.send(b'CONNECT {"verbose":false,"user":"u","pass":"nope"}\r\n')
        assert b"Authorization Violation" in bad.read_until_closed()


def test_permission_spellings_mean_the_same(kind: str, tmp_path: Path) -> None:
    conf = ('authorization { users: [ {user: u, pass: pw, authorization: '
            '{import: {allow: "in.>", deny: "in.no"}, export: "out.>"}} ] }\n')
    with start_server(kind, tmp_path, config=conf) as srv:
        c = RawClient(srv.port)
        # import is publish, export is subscribe (nats-server's route-era names)
        c.send(b'CONNECT {"verbose":false,"user":"u","pass":"pw"}\r\nSUB in.x 1\r\nSUB out.x 2\r\n'
               b"PUB in.no 0\r\n\r\nPUB out.x 0\r\n\r\nPUB in.x 0\r\n\r\n")
        out = c.sync()
        c.close()
        assert out == (b"-ERR 'Permissions Violation for Subscription to \"in.x\"'\r\n"
                       b"-ERR 'Permissions Violation for Publish to \"in.no\"'\r\n"
                       b"-ERR 'Permissions Violation for Publish to \"out.x\"'\r\n")


@pytest.mark.parametrize("conf", [
    "authorization { users: [ {user: u, pass: pw, permissions: {publish: \"x\", allow_responses: {window: 1}}} ] }",
    "authorization { users: [ {user: u, pass: pw, nkey: UABC} ] }",
    "authorization { users: [ {user: u, pass: pw, permissions: {publish: {allow: \"x\", except: \"y\"}}} ] }",
    "authorization { users: [ {user: u, pass: pw, colour: blue} ] }",
    "accounts { A: { jetstream: { max_mem: 1M, cluster_traffic: owner } } }",
    "tls { cert_file: a, key_file: b, cert_store: WindowsCurrentUser }",
])
def test_what_we_do_not_understand_refuses_to_start(tmp_path: Path, conf: str) -> None:
    from pyjetstream.server.options import OptionsError, parse_server_args

    path = tmp_path / "c.conf"
    path.write_text(conf + "\n")
    with pytest.raises(OptionsError, match="unsupported"):
        parse_server_args(["-c", str(path)])


def test_config_aliases_for_files_and_limits(tmp_path: Path) -> None:
    from pyjetstream.server.options import parse_server_args

    path = tmp_path / "c.conf"
    path.write_text("PidFile: /tmp/x.pid\nlogfile: /tmp/x.log\nstoredir: /tmp/js\nmax_conn: 0\n"
                    "jetstream { enable: true, max_mem_store: 1MB, store: /tmp/js2, sync: always }\n")
    opts, _ = parse_server_args(["-c", str(path)])
    assert (opts.pid_file, opts.log_file, opts.max_connections) == ("/tmp/x.pid", "/tmp/x.log", -1)
    assert (opts.jetstream.enabled, opts.jetstream.max_mem, opts.jetstream.store_dir) == (True, 1024**2, "/tmp/js2")


def test_auth_failure_logs_no_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "s.log"
    with start_server("pyjetstream", tmp_path, "-D", "-l", str(log), "--user", "u", "--pass", "pw") as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"user":"u","pass":"guessed-pw"}\r\n')
        c.read_until_closed()
        c.close()
    assert "guessed-pw" not in log.read_text()
    logging.getLogger(__name__).debug("checked %s", log)


def test_log_file_is_not_world_readable(tmp_path: Path) -> None:
    import os

    log = tmp_path / "s.log"
    old = os.umask(0)
    try:
        with start_server("pyjetstream", tmp_path, "-DV", "-l", str(log)) as srv:
            c = RawClient(srv.port)
            c.send(b"CONNECT {}\r\nPUB x 6\r\nsecret\r\n")
            c.sync()
            c.close()
    finally:
        os.umask(old)
    assert os.stat(log).st_mode & 0o777 == 0o640


def test_server_replies_are_not_stored_by_streams(tmp_path: Path) -> None:
    """A PubAck or API response goes to the reply subject the requester chose; a stream on
    that subject must not store it, or a user could write into a stream it may not publish
    to. nats-server stores it; we do not (found by test_property_clients)."""
    conf = """
accounts { A: { jetstream: enabled, users: [
  {user: admin, password: adminpw},
  {user: guest, password: p, permissions: {publish: "public.>", subscribe: "_INBOX.>"}}
] } }
"""
    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js"), config=conf) as srv:
        async def setup() -> None:
            nc = await nats.connect(srv.url, user="admin", password="adminpw")
            js = nc.jetstream()
            await js.add_stream(name="SECRET", subjects=["payroll.>"])
            await js.add_stream(name="PUB", subjects=["public.>"])
            await nc.close()

        asyncio.run(setup())
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"user":"guest","pass":"p"}\r\n'
               b"PUB public.x payroll.x 2\r\nhi\r\nPUB $JS.API.INFO payroll.y 0\r\n\r\n")
        out = c.sync()
        c.close()
        assert b"Permissions Violation for Publish to \"$JS.API.INFO\"" in out

        async def counts() -> tuple[int, int]:
            nc = await nats.connect(srv.url, user="admin", password="adminpw")
            js = nc.jetstream()
            r = ((await js.stream_info("SECRET")).state.messages, (await js.stream_info("PUB")).state.messages)
            await nc.close()
            return r

        assert asyncio.run(counts()) == (0, 1)
