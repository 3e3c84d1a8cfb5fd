"""Authentication and per-user permissions.

Owns: checking CONNECT credentials against the options (token, single user, users lists
across accounts, no_auth_user) and answering "may this user publish/subscribe here". Knows
nothing of sockets; the connection asks and sends the errors.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from pyjetstream.server.options import Permissions, ServerOptions, User
from pyjetstream.subjects import is_subset, subject_matches


@dataclass
class AuthResult:
    ok: bool
    account: str = "$G"
    user: str = ""
    permissions: Permissions | None = None


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Authenticator:
    def __init__(self, opts: ServerOptions) -> None:
        self.opts = opts
        self.users: dict[str, User] = {u.user: u for u in opts.users}
        self.required = bool(opts.token or opts.username or self.users)

    def check(self, connect: dict[str, Any]) -> AuthResult:
        if not self.required:
            return AuthResult(True)
        o = self.opts
        user = connect.get("user")
        password = connect.get("pass")
        token = connect.get("auth_token")
        if o.token:
            return AuthResult(isinstance(token, str) and _eq(token, o.token))
        if o.username and user == o.username:
            return AuthResult(isinstance(password, str) and _eq(password, o.password), user=o.username)
        if not user and not token and o.no_auth_user and o.no_auth_user in self.users:
            u = self.users[o.no_auth_user]
            return AuthResult(True, u.account, u.user, u.permissions)
        if isinstance(user, str) and user in self.users:
            u = self.users[user]
            if isinstance(password, str) and _eq(password, u.password):
                return AuthResult(True, u.account, u.user, u.permissions)
        return AuthResult(False)


class PermissionChecker:
    """Publish results are cached per subject: publishers reuse a few subjects, and this check
    sits on the hot path of every PUB from a restricted user."""

    __slots__ = ("perms", "_pub_cache")

    def __init__(self, perms: Permissions) -> None:
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
        p = self.perms
        if p.sub_allow is not None and not any(is_subset(subject, f) for f in p.sub_allow):
            return False
        return not any(is_subset(subject, f) for f in p.sub_deny)

    def delivery_denied(self, subject: str) -> bool:
        """A wildcard subscription may overlap a deny filter; such messages are not delivered."""
        deny = self.perms.sub_deny
        return bool(deny) and any(subject_matches(f, subject) for f in deny)
