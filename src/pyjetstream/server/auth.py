"""Authentication and per-user permissions.

Owns: checking CONNECT credentials against the options (token, single user, users lists
across accounts, no_auth_user; plain or bcrypt passwords) and answering "may this user
publish/subscribe here". Knows nothing of sockets or the event loop; the connection asks,
runs a bcrypt comparison off the loop (one costs ~0.1 s of CPU) and sends the errors.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

import bcrypt

from pyjetstream.server.options import Permissions, ServerOptions, User
from pyjetstream.subjects import subject_matches


@dataclass
class AuthResult:
    ok: bool
    account: str = "$G"
    user: str = ""
    permissions: Permissions | None = None


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# nats-server's test for a configured password that is a bcrypt hash rather than the secret
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$")


def is_bcrypt(password: str) -> bool:
    return password.startswith("$") and _BCRYPT.match(password) is not None


def bcrypt_matches(given: str, hashed: str) -> bool:
    """Slow by design: call it off the event loop."""
    try:
        return bcrypt.checkpw(given.encode(), hashed.encode())
    except ValueError:  # a malformed hash in the config matches nothing
        return False


@dataclass
class SlowCheck:
    """A CONNECT whose password must be compared with a bcrypt hash: `result` holds if
    bcrypt_matches(given, hashed)."""

    given: str
    hashed: str
    result: AuthResult


class Authenticator:
    def __init__(self, opts: ServerOptions) -> None:
        self.opts = opts
        self.users: dict[str, User] = {u.user: u for u in opts.users}
        self.required = bool(opts.token or opts.username or self.users)
        # With a no_auth_user, nats-server does not announce auth_required and lets a client
        # talk before CONNECT; the authentication timer still runs.
        self.expect_connect = self.required and not (opts.no_auth_user and opts.no_auth_user in self.users)

    def no_auth(self) -> AuthResult | None:
        """Who a client is when it sends no credentials: the no_auth_user, if configured."""
        u = self.users.get(self.opts.no_auth_user) if self.opts.no_auth_user else None
        return None if u is None else AuthResult(True, u.account, u.user, u.permissions)

    def check(self, connect: dict[str, Any]) -> AuthResult | SlowCheck:
        if not self.required:
            return AuthResult(True)
        o = self.opts
        user = connect.get("user")
        password = connect.get("pass")
        token = connect.get("auth_token")
        if o.token:
            return self._password(token, o.token, AuthResult(True))
        if o.username and user == o.username:
            return self._password(password, o.password, AuthResult(True, user=o.username))
        if not user and not token:
            nobody = self.no_auth()
            if nobody is not None:
                return nobody
        if isinstance(user, str) and user in self.users:
            u = self.users[user]
            return self._password(password, u.password, AuthResult(True, u.account, u.user, u.permissions))
        return AuthResult(False)

    @staticmethod
    def _password(given: Any, configured: str, ok: AuthResult) -> AuthResult | SlowCheck:
        if not isinstance(given, str):
            return AuthResult(False)
        if is_bcrypt(configured):
            return SlowCheck(given, configured, ok)
        return ok if _eq(given, configured) else AuthResult(False)


class PermissionChecker:
    """Publish results are cached per subject: publishers reuse a few subjects, and this check
    sits on the hot path of every PUB from a restricted user."""

    __slots__ = ("perms", "_pub_cache")

    def __init__(self, perms: Permissions) -> None:
        # An empty allow list restricts nothing, as in nats-server (`subscribe: []`).
        if not perms.pub_allow or not perms.sub_allow:
            perms = Permissions(perms.pub_allow or None, list(perms.pub_deny), perms.sub_allow or None,
                                list(perms.sub_deny))
        self.perms = perms
        self._pub_cache: dict[str, bool] = {}

    def can_publish(self, subject: str) -> bool:
        r = self._pub_cache.get(subject)
        if r is None:
            p = self.perms
            r = (p.pub_allow is None or any(subject_matches(f, subject) for f in p.pub_allow)) and not any(
                subject_matches(f, subject) for f in p.pub_deny)
            if len(self._pub_cache) > 4096:
                self._pub_cache.clear()
            self._pub_cache[subject] = r
        return r

    def can_subscribe(self, subject: str) -> bool:
        # nats-server matches the subscription subject against the filters with its wildcard
        # tokens taken literally: allow `bar.*` admits `SUB bar.>` (`*` matches the token `>`),
        # deny `bar.x` does not refuse `SUB bar.*` (delivery_denied filters those messages).
        p = self.perms
        if p.sub_allow is not None and not any(subject_matches(f, subject) for f in p.sub_allow):
            return False
        return not any(subject_matches(f, subject) for f in p.sub_deny)

    def delivery_denied(self, subject: str) -> bool:
        """A wildcard subscription may overlap a deny filter; such messages are not delivered."""
        deny = self.perms.sub_deny
        return bool(deny) and any(subject_matches(f, subject) for f in deny)
