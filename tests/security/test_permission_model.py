"""The whole permission model against nats-server 2.9.10: every spelling of a `permissions`
block, queue-group entries, `allow_responses` (true, false, `{max, expires}`), default
permissions, and blocks that must refuse to start. Raw clients over real sockets; where
both servers run, their bytes must be equal, and where we are deliberately stricter the test
shows what nats-server does instead."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import nats
import pytest
from servers import KINDS, RawClient, flushed, have_nats_server, start_server

from pyjetstream.server.auth import PermissionChecker
from pyjetstream.server.conf import parse_config
from pyjetstream.server.options import (
    OptionsError,
    Permissions,
    ResponsePermission,
    _permissions,
    parse_server_args,
)
from pyjetstream.subjects import subject_matches


def _kinds() -> list[str]:
    return [k for k in KINDS if k == "pyjetstream" or have_nats_server()]


@pytest.fixture(params=_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


needs_nats_server = pytest.mark.skipif(not have_nats_server(), reason="nats-server 2.9.10 not installed")


def _login(port: int, user: str) -> RawClient:
    c = RawClient(port)
    c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"p"}\r\n' % user.encode())
    assert c.sync() == b"", f"{user} could not log in"
    return c


def _err(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


def _pub_violation(subject: str) -> bytes:
    return _err(f'Permissions Violation for Publish to "{subject}"')


def _sub_violation(subject: str, queue: str | None = None) -> bytes:
    if queue is None:
        return _err(f'Permissions Violation for Subscription to "{subject}"')
    return _err(f'Permissions Violation for Subscription to "{subject}" using queue "{queue}"')


# ------------------------------------------------------------------ spellings
# Each block means: publish a.> except a.no, subscribe s.> only.
_SAME_MEANING = [
    'users: [{user: u, pass: p, permissions: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}}]',
    'USERS: [{USER: u, PASS: p, PERMISSIONS: {PUB: {ALLOW: ["a.>"], DENY: ["a.no"]}, SUB: ["s.>"]}}]',
    'users: [{user: u, pass: p, Permission: {Publish: {Allow: "a.>", Deny: "a.no"}, Subscribe: {allow: "s.>"}}}]',
    'users: [{user: u, pass: p, authorization: {import: {allow: "a.>", deny: ["a.no"]}, export: {allow: ["s.>"]}}}]',
    # an empty list is no list; `{}` is no restriction
    'users: [{user: u, pass: p, permissions: {publish: {allow: "a.>", deny: "a.no"}, '
    'subscribe: {allow: "s.>", deny: []}}}]',
    'default_permissions: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}\nusers: [{user: u, pass: p}]',
    'Default_Permission: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}\nusers: [{user: u, pass: p}]',
    'permissions: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}\nusers: [{user: u, pass: p}]',
    # a user's own block replaces the defaults whole
    'default_permissions: {publish: "nothing"}\n'
    'users: [{user: u, pass: p, permissions: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}}]',
]


@pytest.mark.parametrize("block", _SAME_MEANING)
def test_every_spelling_of_a_permissions_block(kind: str, tmp_path: Path, block: str) -> None:
    with start_server(kind, tmp_path, config=f"authorization {{\n{block}\n}}\n") as srv:
        c = _login(srv.port, "u")
        c.send(b"SUB s.x 1\r\nSUB t.x 2\r\nPUB a.1 0\r\n\r\nPUB a.no 0\r\n\r\nPUB b.1 0\r\n\r\nPUB s.x 0\r\n\r\n")
        out = c.sync()
        c.close()
    assert out == _sub_violation("t.x") + _pub_violation("a.no") + _pub_violation("b.1") + _pub_violation("s.x")


@pytest.mark.parametrize("account", [
    'A: { default_permissions: {publish: {allow: "a.>", deny: "a.no"}, subscribe: "s.>"}, users: [{user: u, pass: p}] }',
    'A: { users: [{user: u, pass: p, permissions: {pub: {allow: "a.>", deny: "a.no"}, sub: "s.>"}}] }',
])
def test_account_users_and_account_default_permissions(kind: str, tmp_path: Path, account: str) -> None:
    with start_server(kind, tmp_path, config=f"accounts {{\n{account}\n}}\n") as srv:
        c = _login(srv.port, "u")
        c.send(b"SUB s.x 1\r\nSUB t.x 2\r\nPUB a.1 0\r\n\r\nPUB a.no 0\r\n\r\n")
        out = c.sync()
        c.close()
    assert out == _sub_violation("t.x") + _pub_violation("a.no")


# ------------------------------------------------------------------ queue groups
QUEUE_ALLOW = """authorization { users: [
  {user: u, pass: p, permissions: {subscribe: {allow: ["plain", "grp.* workers", "mixed", "mixed v1", "wq grp.*"]}}}
] }
"""


def test_queue_group_allow_entries(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, config=QUEUE_ALLOW) as srv:
        c = _login(srv.port, "u")
        c.send(b"SUB grp.a 1\r\n"            # a queue-only entry admits no plain subscription
               b"SUB grp.a workers 2\r\n"    # subject and queue match
               b"SUB grp.a other 3\r\n"      # wrong queue
               b"SUB plain 4\r\n"
               b"SUB plain anyq 5\r\n"       # a plain entry admits any queue
               b"SUB mixed 6\r\n"
               b"SUB mixed v1 7\r\n"
               b"SUB mixed v2 8\r\n"         # both kinds match: the queue entries decide
               b"SUB wq grp.x 9\r\n"         # a queue name with a wildcard covers grp.x
               b"SUB wq grp.x.y 10\r\n"      # ... but not two tokens
               b"SUB wq grp.* 11\r\n"        # the same name literally
               b"SUB grp.a.b workers 12\r\n"
               b"PUB grp.a 2\r\nhi\r\n")
        out = c.sync()
        c.close()
    assert out == (_sub_violation("grp.a") + _sub_violation("grp.a", "other") + _sub_violation("mixed", "v2")
                   + _sub_violation("wq", "grp.x.y") + _sub_violation("grp.a.b", "workers")
                   + b"MSG grp.a 2 2\r\nhi\r\n")


QUEUE_DENY = """authorization { users: [
  {user: u, pass: p, permissions: {subscribe: {deny: ["secret", "jobs bad", "logs.> q.*"]}}}
] }
"""


def test_queue_group_deny_entries(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, config=QUEUE_DENY) as srv:
        c = _login(srv.port, "u")
        c.send(b"SUB jobs 1\r\nSUB jobs good 2\r\nSUB jobs bad 3\r\nSUB secret 4\r\nSUB secret q 5\r\n"
               b"SUB logs.a 6\r\nSUB logs.a q.x 7\r\nSUB logs.a q 8\r\n")
        out = c.sync()
        c.close()
    assert out == (_sub_violation("jobs", "bad") + _sub_violation("secret") + _sub_violation("secret", "q")
                   + _sub_violation("logs.a", "q.x"))


def test_queue_deny_cannot_reopen_a_plain_deny(kind: str, tmp_path: Path) -> None:
    """deny ["x", "x q1"]: nats-server lets `SUB x q2` through (the queue entry, matching the
    subject but not the queue, overrides the plain deny) and then delivers every message on
    x. The plain deny holds here."""
    conf = 'authorization { users: [ {user: u, pass: p, permissions: {subscribe: {deny: ["x", "x q1"]}}} ] }\n'
    with start_server(kind, tmp_path, config=conf) as srv:
        c = _login(srv.port, "u")
        c.send(b"SUB x q2 1\r\nSUB x q1 2\r\nSUB x 3\r\nPUB x 2\r\nhi\r\n")
        out = c.sync()
        c.close()
    refused = _sub_violation("x", "q1") + _sub_violation("x")
    if kind == "pyjetstream":
        assert out == _sub_violation("x", "q2") + refused
    else:
        assert out == refused + b"MSG x 1 2\r\nhi\r\n"


def test_the_sys_queue_group_is_reserved(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path) as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false}\r\nSUB foo _sys_ 1\r\nSUB foo sys 2\r\n')
        out = c.sync()
        c.close()
    assert out == _sub_violation("foo", "_sys_")


# ------------------------------------------------------------------ allow_responses
def _responses_conf(resp_perms: str) -> str:
    return f"""authorization {{ users: [
  {{user: req, pass: p, permissions: {{publish: "svc.>", subscribe: "_INBOX.>"}}}},
  {{user: free, pass: p}},
  {{user: resp, pass: p, permissions: {{subscribe: "svc.>", {resp_perms}}}}}
] }}
"""


def _request(requester: RawClient, responder: RawClient, reply: str, sid: int = 1) -> None:
    """`requester` sends svc.a with `reply`; returns once `responder` has it."""
    requester.send(f"PUB svc.a {reply} 2\r\nhi\r\n".encode())
    assert requester.sync() == b""
    got = responder.sync()
    assert got == f"MSG svc.a {sid} {reply} 2\r\nhi\r\n".encode()


@pytest.mark.parametrize("spelling", ["allow_responses: true", "Publish_Allow_Responses: true",
                                      "allow_responses: {}", "allow_responses: {max: 0, expires: \"0s\"}"])
def test_allow_responses_defaults_to_one_reply(kind: str, tmp_path: Path, spelling: str) -> None:
    with start_server(kind, tmp_path, config=_responses_conf(spelling)) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        req = _login(srv.port, "req")
        req.send(b"SUB _INBOX.> 1\r\n")
        _request(req, resp, "_INBOX.r1")
        resp.send(b"PUB _INBOX.r1 2\r\nok\r\nPUB _INBOX.r1 4\r\nmore\r\nPUB _INBOX.never 0\r\n\r\nPUB other 0\r\n\r\n")
        assert resp.sync() == _pub_violation("_INBOX.r1") + _pub_violation("_INBOX.never") + _pub_violation("other")
        assert req.sync() == b"MSG _INBOX.r1 1 2\r\nok\r\n"
        resp.close()
        req.close()


@pytest.mark.parametrize(("spelling", "allowed"), [
    ("allow_responses: {max: 2}", 2),
    ("allow_responses: {MAX_MSGS: 3}", 3),
    ("allow_responses: {max_messages: 2, ttl: \"1m\"}", 2),
    ("allow_responses: {max_responses: -1}", 5),  # negative: no limit (5 tried)
])
def test_allow_responses_max(kind: str, tmp_path: Path, spelling: str, allowed: int) -> None:
    with start_server(kind, tmp_path, config=_responses_conf(spelling)) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        req = _login(srv.port, "req")
        req.send(b"SUB _INBOX.> 1\r\n")
        _request(req, resp, "_INBOX.r1")
        resp.send(b"PUB _INBOX.r1 1\r\nx\r\n" * 5)
        extra = 5 - allowed
        assert resp.sync() == _pub_violation("_INBOX.r1") * extra
        assert req.sync() == b"MSG _INBOX.r1 1 1\r\nx\r\n" * allowed
        # a new request opens the subject again
        _request(req, resp, "_INBOX.r1")
        resp.send(b"PUB _INBOX.r1 1\r\nx\r\n")
        assert resp.sync() == b""
        resp.close()
        req.close()


@pytest.mark.parametrize("spelling", ['allow_responses: {expires: "300ms"}', 'allow_responses: {Expiration: "0.3s"}'])
def test_allow_responses_expire(kind: str, tmp_path: Path, spelling: str) -> None:
    with start_server(kind, tmp_path, config=_responses_conf(spelling)) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        req = _login(srv.port, "req")
        req.send(b"SUB _INBOX.> 1\r\n")
        _request(req, resp, "_INBOX.late")
        time.sleep(0.8)  # a real subprocess: its clock cannot be faked from here
        resp.send(b"PUB _INBOX.late 0\r\n\r\n")
        assert resp.sync() == _pub_violation("_INBOX.late")
        assert req.sync() == b""
        resp.close()
        req.close()


def test_allow_responses_with_a_publish_allow_list(kind: str, tmp_path: Path) -> None:
    conf = _responses_conf('publish: "status.>", allow_responses: true')
    with start_server(kind, tmp_path, config=conf) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        req = _login(srv.port, "req")
        req.send(b"SUB _INBOX.> 1\r\n")
        _request(req, resp, "_INBOX.r")
        resp.send(b"PUB status.up 0\r\n\r\nPUB _INBOX.r 0\r\n\r\nPUB _INBOX.r 0\r\n\r\nPUB svc.a 0\r\n\r\n")
        assert resp.sync() == _pub_violation("_INBOX.r") + _pub_violation("svc.a")
        resp.close()
        req.close()


def test_allow_responses_false_restricts_nothing(kind: str, tmp_path: Path) -> None:
    with start_server(kind, tmp_path, config=_responses_conf("allow_responses: false")) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"PUB anything 0\r\n\r\nPUB _INBOX.x 0\r\n\r\n")
        assert resp.sync() == b""
        resp.close()


def test_a_reply_goes_only_where_the_requester_can_listen(kind: str, tmp_path: Path) -> None:
    """req may subscribe to _INBOX.> only. With reply `payroll.x` it would make the responder
    write where req may not publish (into a stream on payroll.>, say). nats-server lets the
    responder answer there; here the reply gives no right."""
    with start_server(kind, tmp_path, config=_responses_conf("allow_responses: true")) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        free = _login(srv.port, "free")
        free.send(b"SUB payroll.> 1\r\n")
        assert free.sync() == b""
        req = _login(srv.port, "req")
        _request(req, resp, "payroll.x")
        resp.send(b"PUB payroll.x 5\r\nforge\r\n")
        out = resp.sync()
        got = free.sync()
        # an unrestricted requester may aim its reply anywhere
        _request(free, resp, "payroll.y")
        resp.send(b"PUB payroll.y 2\r\nok\r\n")
        assert resp.sync() == b""
        assert free.sync() == b"MSG payroll.y 1 2\r\nok\r\n"
        for c in (resp, free, req):
            c.close()
    if kind == "pyjetstream":
        assert (out, got) == (_pub_violation("payroll.x"), b"")
    else:
        assert (out, got) == (b"", b"MSG payroll.x 1 5\r\nforge\r\n")


def test_a_publish_deny_holds_for_responses(tmp_path: Path) -> None:
    """nats-server checks the reply table for any refused publish, so a reply aimed at a
    denied subject would pass; its parse order also makes the blanket allow come and go with
    map order. Here the deny holds and the allow is always replaced."""
    conf = _responses_conf('publish: {deny: "secret.>"}, allow_responses: true')
    with start_server("pyjetstream", tmp_path, config=conf) as srv:
        resp = _login(srv.port, "resp")
        resp.send(b"SUB svc.> 1\r\n")
        free = _login(srv.port, "free")
        _request(free, resp, "secret.x")
        _request(free, resp, "_INBOX.ok")
        resp.send(b"PUB secret.x 0\r\n\r\nPUB _INBOX.ok 0\r\n\r\nPUB open 0\r\n\r\n")
        assert resp.sync() == _pub_violation("secret.x") + _pub_violation("open")
        resp.close()
        free.close()


# ------------------------------------------------------------------ what refuses to start
_REFUSED = [
    'permissions: {publish: "a", colour: blue}',
    "permissions: {publish: 5}",
    'permissions: {publish: ["a", 5]}',
    'permissions: {publish: {allow: "a", except: "b"}}',
    'permissions: {subscribe: "a b c"}',
    'permissions: {subscribe: "a..b"}',
    'permissions: {subscribe: "a..b q"}',
    'permissions: {publish: "a.>.b"}',
    'permissions: {allow_responses: "maybe"}',
    "permissions: {allow_responses: [1]}",
    'permissions: {allow_responses: {max: 1, window: "1s"}}',
    "permissions: {allow_responses: {expires: 5}}",
    'permissions: {allow_responses: {expires: "5"}}',
    'permissions: {allow_responses: {expires: "soon"}}',
    'permissions: {allow_responses: {max: "two"}}',
    "permissions: [a, b]",
    'permissions: "a"',
]


@pytest.mark.parametrize("block", _REFUSED)
def test_blocks_we_do_not_understand_refuse_to_start(kind: str, tmp_path: Path, block: str) -> None:
    conf = f"authorization {{ users: [ {{user: u, pass: p, {block}}} ] }}\n"
    with pytest.raises(RuntimeError, match="exited"):
        start_server(kind, tmp_path, config=conf).stop()
    if kind == "pyjetstream":
        (tmp_path / "c.conf").write_text(conf)
        with pytest.raises(OptionsError, match="config: "):
            parse_server_args(["-c", str(tmp_path / "c.conf")])


@pytest.mark.parametrize("conf", [
    'authorization { user: a, password: b, permissions: {publish: "x"} }',
    'authorization { token: secret, default_permissions: {publish: "x"} }',
    'authorization { default_permissions: {publish: "x"} }\naccounts { A: { users: [ {user: a, password: b} ] } }',
])
def test_default_permissions_that_would_restrict_nobody_refuse_to_start(kind: str, tmp_path: Path,
                                                                         conf: str) -> None:
    """nats-server applies an authorization block's default permissions to its users list only
    and starts without a word otherwise: user `a` may then publish anywhere. We refuse."""
    if kind == "pyjetstream":
        (tmp_path / "c.conf").write_text(conf + "\n")
        with pytest.raises(OptionsError, match="restrict nobody"):
            parse_server_args(["-c", str(tmp_path / "c.conf")])
        return
    with start_server(kind, tmp_path, config=conf + "\n") as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"user":"a","pass":"b","auth_token":"secret"}\r\nPUB y 0\r\n\r\n')
        assert c.sync() == b""
        c.close()


def test_a_queue_entry_in_a_publish_list_refuses_to_start(tmp_path: Path) -> None:
    """nats-server keeps `publish: {deny: "a b"}` as a subject that matches nothing: a deny
    that denies nothing. We refuse it."""
    conf = tmp_path / "c.conf"
    conf.write_text('authorization { users: [ {user: u, pass: p, permissions: {publish: {deny: "a b"}}} ] }\n')
    with pytest.raises(OptionsError, match="queue groups apply to subscribe permissions only"):
        parse_server_args(["-c", str(conf)])


@needs_nats_server
def test_nats_server_takes_a_queue_entry_in_a_publish_list(tmp_path: Path) -> None:
    conf = 'authorization { users: [ {user: u, pass: p, permissions: {publish: {deny: "a b"}}} ] }\n'
    with start_server("nats-server", tmp_path, config=conf) as srv:
        c = _login(srv.port, "u")
        c.send(b"PUB a 0\r\n\r\n")
        assert c.sync() == b""
        c.close()


# ------------------------------------------------------------------ the checker, unit level
def test_parsed_values() -> None:
    p = _permissions({"Allow_Responses": {"MAX": 3, "TTL": "1m30s"}, "sub": {"allow": ["x", "y.* q"]}})
    assert p == Permissions(pub_allow=[], sub_allow=["x", "y.* q"], responses=ResponsePermission(3, 90.0))
    assert _permissions({"allow_responses": True}).responses == ResponsePermission(1, 120.0)
    assert _permissions({"allow_responses": {"max": -1, "expires": "-1s"}}).responses == ResponsePermission(-1, -1.0)
    assert _permissions({"allow_responses": False, "publish": []}) == Permissions()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reply_table_counts_expires_and_stays_bounded() -> None:
    clock = _Clock()
    p = PermissionChecker(Permissions(responses=ResponsePermission(max_msgs=2, expires=10.0)), clock)
    assert not p.can_publish("r.1")
    p.note_reply("r.1", None)
    assert p.can_publish("r.1") and p.can_publish("r.1") and not p.can_publish("r.1")
    p.note_reply("r.2", None)
    clock.now += 10.5
    assert not p.can_publish("r.2")
    # a flood of fresh reply subjects keeps the table at its limit, newest kept
    for i in range(10_000):
        p.note_reply(f"flood.{i}", None)
    assert p.replies is not None and len(p.replies) <= 4097
    assert p.can_publish("flood.9999") and not p.can_publish("flood.0")
    # no limits at all
    unlimited = PermissionChecker(Permissions(responses=ResponsePermission(max_msgs=-1, expires=-1)), clock)
    unlimited.note_reply("r", None)
    clock.now += 1e6
    assert all(unlimited.can_publish("r") for _ in range(100))


def test_requester_must_be_able_to_listen_on_the_reply() -> None:
    responder = PermissionChecker(Permissions(responses=ResponsePermission()))
    requester = PermissionChecker(Permissions(sub_allow=["_INBOX.>"]))
    responder.note_reply("payroll.x", requester)
    responder.note_reply("_INBOX.a", requester)
    assert not responder.can_publish("payroll.x") and responder.can_publish("_INBOX.a")


# ------------------------------------------------------------------ exhaustive, against nats-server
EXHAUSTIVE_USERS = {
    "u1": '{subscribe: {allow: ["foo.*", "foo.* q1", "bar.> w.*", "baz"]}, publish: {allow: ["foo.*", "bar.>"]}}',
    "u2": '{subscribe: {deny: ["foo.>", "foo.x qd", "bar bq", "bar.* b.>"]}, publish: {deny: ["foo.>", "*.x"]}}',
    "u3": '{subscribe: {allow: ["a.>", "a.b qa", "*.c"], deny: ["a.c", "a.* qx"]}, '
          'publish: {allow: "a.>", deny: "a.c"}}',
    "u4": '{subscribe: {allow: ["x y", "x.> y.*"]}, publish: "x"}',
}
SUB_SUBJECTS = ["foo.x", "foo.y", "foo.*", "foo.>", "bar", "bar.x", "bar.x.y", "baz", "a.b", "a.c", "a.d",
                "b.c", "x", "x.a", ">", "*"]
QUEUES = [None, "q1", "q2", "qd", "bq", "w.a", "w.*", "w.a.b", "b.x", "b.x.y", "qa", "qx", "y", "y.a", "*", ">"]


def _refusals(port: int, user: str) -> tuple[set[tuple[str, str | None]], set[str]]:
    c = _login(port, user)
    lines = []
    sid = 0
    for subject in SUB_SUBJECTS:
        for queue in QUEUES:
            sid += 1
            lines.append(f"SUB {subject} {queue} {sid}\r\n" if queue else f"SUB {subject} {sid}\r\n")
    for subject in SUB_SUBJECTS:
        if "*" not in subject and ">" not in subject:
            lines.append(f"PUB {subject} 0\r\n\r\n")
    c.send("".join(lines).encode())
    out = c.sync().decode()
    c.close()
    subs: set[tuple[str, str | None]] = set()
    pubs: set[str] = set()
    for line in out.splitlines():
        if not line.startswith("-ERR"):
            continue  # a permitted publish delivered to a permitted subscription
        m = re.fullmatch(r"-ERR 'Permissions Violation for Subscription to \"(\S+)\"(?: using queue \"(\S+)\")?'",
                         line)
        if m:
            subs.add((m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"-ERR 'Permissions Violation for Publish to \"(\S+)\"'", line)
        assert m, f"unexpected line {line!r}"
        pubs.add(m.group(1))
    return subs, pubs


def _stricter_here(user: str, subject: str, queue: str | None) -> bool:
    """The one case where we refuse a SUB nats-server takes: a plain deny entry matches and a
    queue deny entry for the subject names other queues (test_queue_deny_cannot_reopen...)."""
    if queue is None:
        return False
    perms = _permissions(parse_config(f"p: {EXHAUSTIVE_USERS[user]}")["p"])
    plain = [e for e in perms.sub_deny if len(e.split()) == 1]
    queued = [e.split()[0] for e in perms.sub_deny if len(e.split()) == 2]
    return any(subject_matches(f, subject) for f in plain) and any(subject_matches(f, subject) for f in queued)


@needs_nats_server
def test_every_subscription_and_publish_decided_as_nats_server(tmp_path: Path) -> None:
    """16 subjects x 16 queues (and 10 publishes) for four users with plain and queue entries in
    allow and deny lists: the refusals are nats-server's, except where we are stricter."""
    users = ",\n".join(f"  {{user: {u}, pass: p, permissions: {p}}}" for u, p in EXHAUSTIVE_USERS.items())
    conf = f"authorization {{ users: [\n{users}\n] }}\n"
    got: dict[str, dict[str, tuple[set[tuple[str, str | None]], set[str]]]] = {}
    for kind in KINDS:
        with start_server(kind, tmp_path / kind, config=conf) as srv:
            got[kind] = {u: _refusals(srv.port, u) for u in EXHAUSTIVE_USERS}
    for user in EXHAUSTIVE_USERS:
        ours_subs, ours_pubs = got["pyjetstream"][user]
        theirs_subs, theirs_pubs = got["nats-server"][user]
        assert ours_pubs == theirs_pubs, user
        assert theirs_subs <= ours_subs, (user, theirs_subs - ours_subs)
        assert all(_stricter_here(user, s, q) for s, q in ours_subs - theirs_subs), (user, ours_subs - theirs_subs)
    # deny foo.> with a queue entry foo.x qd: nats-server takes `SUB foo.x q1`, we do not
    assert ("foo.x", "q1") in got["pyjetstream"]["u2"][0] - got["nats-server"]["u2"][0]
    # the comparison is not empty-handed: every user has refusals of both kinds somewhere
    assert all(got["nats-server"][u][0] for u in EXHAUSTIVE_USERS)
    assert any(got["nats-server"][u][1] for u in EXHAUSTIVE_USERS)


def test_allow_responses_lets_a_worker_ack_its_jetstream_deliveries(kind: str, tmp_path: Path) -> None:
    """A push consumer's delivery carries its ack subject as the reply: a worker with
    allow_responses and no publish rights acks it, once."""
    conf = """authorization { users: [
  {user: admin, pass: p},
  {user: worker, pass: p, permissions: {subscribe: "deliver.>", allow_responses: true}}
] }
"""

    async def setup(url: str) -> None:
        nc = await nats.connect(url, user="admin", password="p")
        js = nc.jetstream()
        await js.add_stream(name="W", subjects=["w.>"])
        await js.add_consumer("W", durable_name="C", deliver_subject="deliver.w", ack_policy="explicit",
                              ack_wait=30)
        await nc.close()

    async def publish_and_state(url: str, publish: bool) -> int:
        nc = await nats.connect(url, user="admin", password="p")
        js = nc.jetstream()
        if publish:
            await js.publish("w.1", b"job")
        info = await js.consumer_info("W", "C")
        await nc.close()
        return info.num_ack_pending

    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js"), config=conf) as srv:
        asyncio.run(setup(srv.url))
        worker = _login(srv.port, "worker")
        worker.send(b"SUB deliver.w 1\r\n")
        assert worker.sync() == b""
        assert asyncio.run(publish_and_state(srv.url, True)) in (0, 1)
        msg = worker.read_until(b"job\r\n")
        m = re.match(rb"MSG w\.1 1 (\$JS\.ACK\.W\.C\.\S+) 3\r\n", msg)
        assert m, msg
        ack = m.group(1)
        worker.send(b"PUB %s 4\r\n+ACK\r\nPUB %s 4\r\n+ACK\r\n" % (ack, ack))
        assert worker.sync() == _pub_violation(ack.decode())
        worker.close()
        assert asyncio.run(publish_and_state(srv.url, False)) == 0


def test_request_reply_with_nats_py_clients(kind: str, tmp_path: Path) -> None:
    """nats-py's request/respond through an allow_responses responder: the first answer
    arrives, a second answer to the same request and a publish elsewhere are violations
    reported to the responder's error callback, and its connection stays up."""
    conf = _responses_conf('publish: "status.>", allow_responses: {max: 1}')

    async def run(url: str) -> None:
        errors: list[str] = []

        async def on_error(e: Exception) -> None:
            errors.append(str(e))

        resp = await nats.connect(url, user="resp", password="p", error_cb=on_error)
        req = await nats.connect(url, user="req", password="p")

        async def answer(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"first")
            await msg.respond(b"second")
            await resp.publish("elsewhere", b"x")
            await resp.publish("status.ok", b"x")

        await resp.subscribe("svc.a", cb=answer)
        await flushed(resp)
        got = await req.request("svc.a", b"q", timeout=5)
        assert got.data == b"first"
        for _ in range(100):
            if len(errors) >= 2:
                break
            await asyncio.sleep(0.02)
        # nats-py lowercases the server's text
        assert errors == [f'nats: permissions violation for publish to "{got.subject.lower()}"',
                          'nats: permissions violation for publish to "elsewhere"'], errors
        assert resp.is_connected
        await resp.close()
        await req.close()

    with start_server(kind, tmp_path, config=conf) as srv:
        asyncio.run(run(srv.url))
