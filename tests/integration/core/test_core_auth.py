"""Authentication and authorization through `pyjetstream server` with nats-py: user/password,
token, per-user permissions with nats-server's error texts, accounts that isolate subjects,
no_auth_user, and the authentication timeout (raw socket)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import NoServersError
from servers import RawClient, ServerProc, flushed, start_server

USERS_CONF = """
authorization {
  timeout: 0.3
  users = [
    { user: limited, password: p1, permissions: {
        publish: { allow: ["orders.>", "_INBOX.>"], deny: ["orders.secret"] },
        subscribe: { allow: ["updates.*", "_INBOX.>"], deny: ["updates.private"] } } }
    { user: admin, password: p3 }
  ]
}
"""

ACCOUNTS_CONF = """
accounts {
  TEAM_A: { users: [ { user: a, password: pa } ] }
  TEAM_B: { users: [ { user: b, password: pb }, { user: guest, password: pg } ] }
}
no_auth_user: guest
"""


@pytest.fixture(scope="module")
def users_srv(tmp_path_factory) -> ServerProc:
    s = start_server("pyjetstream", tmp_path_factory.mktemp("users"), config=USERS_CONF)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def accounts_srv(tmp_path_factory) -> ServerProc:
    s = start_server("pyjetstream", tmp_path_factory.mktemp("accounts"), config=ACCOUNTS_CONF)
    yield s
    s.stop()


async def refused(url: str, **kw) -> bool:
    try:
        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **kw)
    except (nats.errors.Error, NoServersError, OSError):
        return True
    await nc.close()
    return False


async def test_user_password(tmp_path) -> None:
    with start_server("pyjetstream", tmp_path, "--user", "alice", "--pass", "s3cret") as srv:
        nc = await nats.connect(srv.url, user="alice", password="s3cret")
        sub = await nc.subscribe("x")
        await nc.publish("x", b"ok")
        assert (await sub.next_msg(timeout=5)).data == b"ok"
        await nc.close()
        assert await refused(srv.url, user="alice", password="wrong")
        assert await refused(srv.url)
        raw = RawClient(srv.port)
        assert raw.info.get("auth_required") is True
        raw.send(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"nope\"}\r\n")
        assert raw.read_until_closed() == b"-ERR 'Authorization Violation'\r\n"
        raw.close()


async def test_token(tmp_path) -> None:
    with start_server("pyjetstream", tmp_path, "--auth", "t0ken") as srv:
        nc = await nats.connect(srv.url, token="t0ken")
        assert nc.is_connected
        await nc.close()
        assert await refused(srv.url, token="other")


async def test_permissions_allow_deny_with_nats_server_texts(users_srv: ServerProc) -> None:
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    admin = await nats.connect(users_srv.url, user="admin", password="p3")
    nc = await nats.connect(users_srv.url, user="limited", password="p1", error_cb=on_error)
    try:
        seen = await admin.subscribe(">")
        await flushed(admin)
        await nc.publish("orders.new", b"1")
        await nc.publish("orders.secret", b"2")
        await nc.publish("billing", b"3")
        await flushed(nc)
        await nc.subscribe("updates.private")
        await nc.subscribe("elsewhere", queue="q")
        ok = await nc.subscribe("updates.*")
        await flushed(nc)
        assert (await seen.next_msg(timeout=5)).data == b"1"  # only the allowed one got through
        await admin.publish("updates.private", b"hidden")
        await admin.publish("updates.public", b"shown")
        await flushed(admin)
        assert (await ok.next_msg(timeout=5)).data == b"shown"  # deny filters a wildcard sub
        deadline = asyncio.get_running_loop().time() + 5
        while len(errors) < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        # nats-py lowercases the server's text; the exact bytes are in tests/differential
        assert errors == [t.lower() for t in [
            'nats: Permissions Violation for Publish to "orders.secret"',
            'nats: Permissions Violation for Publish to "billing"',
            'nats: Permissions Violation for Subscription to "updates.private"',
            'nats: Permissions Violation for Subscription to "elsewhere" using queue "q"',
        ]]
        assert nc.is_connected  # violations do not close the connection
    finally:
        await nc.close()
        await admin.close()


async def test_auth_timeout_closes_silent_client(users_srv: ServerProc) -> None:
    raw = RawClient(users_srv.port)
    try:
        assert raw.read_until_closed() == b"-ERR 'Authentication Timeout'\r\n"
    finally:
        raw.close()


async def test_accounts_isolate_subjects_and_no_auth_user(accounts_srv: ServerProc) -> None:
    a = await nats.connect(accounts_srv.url, user="a", password="pa")
    b = await nats.connect(accounts_srv.url, user="b", password="pb")
    anon = await nats.connect(accounts_srv.url)  # lands in TEAM_B as guest
    try:
        sa = await a.subscribe("shared")
        sb = await b.subscribe("shared")
        await flushed(a)
        await flushed(b)
        await a.publish("shared", b"from-a")
        await anon.publish("shared", b"from-anon")
        await flushed(a)
        await flushed(anon)
        assert (await sb.next_msg(timeout=5)).data == b"from-anon"
        assert (await sa.next_msg(timeout=5)).data == b"from-a"
        with pytest.raises(nats.errors.TimeoutError):
            await sa.next_msg(timeout=0.2)
        with pytest.raises(nats.errors.TimeoutError):
            await sb.next_msg(timeout=0.2)
        assert await refused(accounts_srv.url, user="a", password="pb")
    finally:
        for nc in (a, b, anon):
            await nc.close()
