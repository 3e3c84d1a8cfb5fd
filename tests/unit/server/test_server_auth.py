"""Authentication decisions and permission checks, without sockets: token, single user, user
lists across accounts, no_auth_user, and nats-server's literal matching of SUB subjects
against allow/deny filters."""

from __future__ import annotations

import pytest

from pyjetstream.server.auth import Authenticator, PermissionChecker
from pyjetstream.server.options import Permissions, ServerOptions, User


def test_no_auth_accepts_anything() -> None:
    a = Authenticator(ServerOptions())
    assert not a.required and not a.expect_connect
    assert a.check({"user": "x", "pass": "y"}).ok


def test_token() -> None:
    a = Authenticator(ServerOptions(token="t"))
    assert a.required and a.expect_connect
    assert a.check({"auth_token": "t"}).ok
    assert not a.check({"auth_token": "u"}).ok
    assert not a.check({"user": "t"}).ok
    assert not a.check({"auth_token": 5}).ok


def test_single_user() -> None:
    a = Authenticator(ServerOptions(username="u", password="p"))
    r = a.check({"user": "u", "pass": "p"})
    assert r.ok and r.user == "u" and r.account == "$G"
    assert not a.check({"user": "u", "pass": "x"}).ok
    assert not a.check({"user": "v", "pass": "p"}).ok
    assert not a.check({}).ok


def test_users_accounts_and_no_auth_user() -> None:
    perms = Permissions(pub_allow=["a.>"])
    opts = ServerOptions(users=[User("a", "pa", "A", perms), User("b", "pb", "B")], no_auth_user="b")
    a = Authenticator(opts)
    assert a.required and not a.expect_connect  # no auth_required in INFO with a no_auth_user
    r = a.check({"user": "a", "pass": "pa"})
    assert (r.ok, r.account, r.user, r.permissions) == (True, "A", "a", perms)
    r = a.check({})
    assert (r.ok, r.account, r.user) == (True, "B", "b")
    assert a.check({"user": ""}).ok  # an empty user name is no user
    assert not a.check({"user": "a", "pass": "pb"}).ok
    assert not a.check({"user": "zz"}).ok
    assert not a.check({"auth_token": "zz"}).ok


@pytest.mark.parametrize(("allow", "deny", "subject", "ok"), [
    (["bar.*"], [], "bar.x", True),
    (["bar.*"], [], "bar.>", True),   # `*` in the filter matches the literal token `>`
    (["bar.*"], [], "bar.x.y", False),
    (["bar.>"], [], "bar.*", True),
    (["bar.x"], [], "bar.*", False),  # a literal filter does not admit a wildcard subscription
    (None, ["bar.x"], "bar.*", True),  # deny checked literally too; delivery filters bar.x later
    (None, ["bar.*"], "bar.x", False),
    (None, [">"], "anything", False),
    ([], [], "anything", True),       # an empty allow list restricts nothing
])
def test_subscribe_permissions(allow, deny, subject: str, ok: bool) -> None:
    assert PermissionChecker(Permissions(sub_allow=allow, sub_deny=deny)).can_subscribe(subject) is ok


def test_publish_permissions_and_delivery_filter() -> None:
    p = PermissionChecker(Permissions(pub_allow=["orders.>"], pub_deny=["orders.secret"], sub_deny=["bar.x"]))
    assert p.can_publish("orders.new") and not p.can_publish("orders.secret") and not p.can_publish("x")
    assert p.can_publish("orders.new")  # cached answer stays the same
    assert p.delivery_denied("bar.x") and not p.delivery_denied("bar.y")
    assert PermissionChecker(Permissions(pub_allow=[])).can_publish("any")
