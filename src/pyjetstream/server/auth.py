"""Authentication and per-user permissions.

Owns: checking CONNECT credentials against the options (token, single user, users lists
across accounts, no_auth_user; plain or bcrypt passwords) and answering "may this user
publish/subscribe here". Knows nothing of sockets or the event loop; the connection asks,
runs a bcrypt comparison off the loop (one costs ~0.1 s of CPU) and sends the errors.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyjetstream.server.options import Permissions, ServerOptions, User
from pyjetstream.server.tls import PeerCert, map_user
from pyjetstream.subjects import has_wildcard, is_subset, subject_matches, subjects_overlap


@dataclass
class AuthResult:
    ok: bool
    account: str = "$G"
    user: str = ""
    permissions: Permissions | None = None


def _eq(a: str, b: str) -> bool:
    # imported here: hmac loads OpenSSL's hashing (~1 MiB of RSS), which a server without
    # passwords or tokens never needs
    from hmac import compare_digest

    return compare_digest(a.encode(), b.encode())


# nats-server's test for a configured password that is a bcrypt hash rather than the secret
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$")


def is_bcrypt(password: str) -> bool:
    return password.startswith("$") and _BCRYPT.match(password) is not None


def bcrypt_matches(given: str, hashed: str) -> bool:
    """Slow by design: call it off the event loop."""
    import bcrypt  # only configs with bcrypt hashes pay for loading it (start-up, issue 14)

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
        # verify_and_map: with users configured, the client certificate says who the client is
        # (nats-server then never applies the no_auth_user)
        self.tls_map = opts.tls and opts.tls_map and bool(self.users)
        # With a no_auth_user, nats-server does not announce auth_required and lets a client
        # talk before CONNECT; the authentication timer still runs.
        self.expect_connect = self.required and (self.tls_map or not (opts.no_auth_user and
                                                                      opts.no_auth_user in self.users))

    def no_auth(self) -> AuthResult | None:
        """Who a client is when it sends no credentials: the no_auth_user, if configured."""
        u = self.users.get(self.opts.no_auth_user) if self.opts.no_auth_user and not self.tls_map else None
        return None if u is None else AuthResult(True, u.account, u.user, u.permissions)

    def check(self, connect: dict[str, Any], cert: PeerCert | None = None) -> AuthResult | SlowCheck:
        """`cert`: the client's TLS certificate, when it sent one."""
        if not self.required:
            return AuthResult(True)
        o = self.opts
        if self.tls_map:
            u = map_user(cert, self.users) if cert is not None else None
            if u is None:
                return AuthResult(False)
            # as nats-server: the mapped user's password, if it has one, must still be given
            given = connect.get("pass")
            return self._password("" if given is None else given, u.password,
                                  AuthResult(True, u.account, u.user, u.permissions))
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
    """One connection's permissions, as nats-server applies them.

    Publish answers are cached per subject: publishers reuse a few subjects, and this check
    sits on the hot path of every PUB from a restricted user. Subscribe entries of the form
    `"subject queue"` are queue-group permissions. With `allow_responses`, the reply subjects of
    messages delivered to this connection become publishable for a while (`note_reply`)."""

    __slots__ = ("perms", "_pub_cache", "_sub_allow", "_qsub_allow", "_sub_deny", "_qsub_deny", "replies",
                 "_clock")

    def __init__(self, perms: Permissions, clock: Callable[[], float] = time.monotonic) -> None:
        # An empty allow list restricts nothing, as in nats-server (`subscribe: []`) - except
        # with allow_responses, which replaces a missing publish allow by "replies only".
        pub_allow: list[str] | None
        if perms.responses is not None:
            pub_allow = perms.pub_allow or []
        else:
            pub_allow = perms.pub_allow or None
        perms = Permissions(pub_allow, list(perms.pub_deny), perms.sub_allow or None, list(perms.sub_deny),
                            perms.responses)
        self.perms = perms
        self._pub_cache: dict[str, bool] = {}
        self._sub_allow, self._qsub_allow = _split_queue_entries(perms.sub_allow or ())
        self._sub_deny, self._qsub_deny = _split_queue_entries(perms.sub_deny)
        # reply subject -> [when it was delivered, responses sent]; None without allow_responses
        self.replies: dict[str, list[float]] | None = {} if perms.responses is not None else None
        self._clock = clock

    def _static_publish(self, subject: str) -> bool:
        r = self._pub_cache.get(subject)
        if r is None:
            p = self.perms
            r = (p.pub_allow is None or any(subject_matches(f, subject) for f in p.pub_allow)) and not any(
                subject_matches(f, subject) for f in p.pub_deny)
            if len(self._pub_cache) > 4096:
                self._pub_cache.clear()
            self._pub_cache[subject] = r
        return r

    def can_publish(self, subject: str) -> bool:
        """Counts a response when only allow_responses admits it: call once per PUB."""
        if self._static_publish(subject):
            return True
        replies = self.replies
        if not replies:
            return False
        # Stricter than nats-server, where a reply also passes an explicit publish deny: a
        # deny in the file holds for responses too.
        if any(subject_matches(f, subject) for f in self.perms.pub_deny):
            return False
        entry = replies.get(subject)
        if entry is None:
            return False
        rp = self.perms.responses
        assert rp is not None
        entry[1] += 1
        if (rp.max_msgs > 0 and entry[1] > rp.max_msgs) or (
                rp.expires > 0 and self._clock() - entry[0] > rp.expires):
            del replies[subject]
            return False
        return True

    def may_publish_all(self, pattern: str) -> bool:
        """May this connection publish to every subject the filter `pattern` matches, by its
        allow and deny lists alone? Replies admitted by allow_responses do not count: they are
        one answer to one requester, not a standing right. Conservative: a single allow entry
        must cover the whole pattern, and no deny entry may overlap it. Asked when a request
        configures a subject the server will publish to (jetstream/publish_targets.py)."""
        p = self.perms
        if p.pub_allow is not None and not any(is_subset(pattern, f) for f in p.pub_allow):
            return False
        return not any(subjects_overlap(pattern, f) for f in p.pub_deny)

    def note_reply(self, reply: str, requester: PermissionChecker | None) -> None:
        """A message with reply subject `reply` was delivered to this connection; `requester`
        is the publishing client's permissions (None: unrestricted, or the server itself).

        Stricter than nats-server: the reply counts only if the requester may subscribe to
        it. A reply is for its requester; one aimed where the requester cannot listen would
        let it make this responder write where the requester may not publish."""
        replies = self.replies
        if replies is None or (requester is not None and not requester.can_subscribe(reply)):
            return
        replies.pop(reply, None)  # re-inserted as the newest
        replies[reply] = [self._clock(), 0]
        if len(replies) > _REPLY_LIMIT:
            self._prune_replies()

    def _prune_replies(self) -> None:
        replies = self.replies
        rp = self.perms.responses
        assert replies is not None and rp is not None
        now = self._clock()
        for k in [k for k, (t, n) in replies.items()
                  if (rp.max_msgs > 0 and n >= rp.max_msgs) or (rp.expires > 0 and now - t > rp.expires)]:
            del replies[k]
        # nats-server lets the table grow for as long as entries live; a flood of requests with
        # fresh reply subjects would then hold memory for minutes, so the oldest go first.
        excess = len(replies) - _REPLY_LIMIT
        if excess > 0:
            for k in list(itertools.islice(replies, excess)):
                del replies[k]

    def can_subscribe(self, subject: str, queue: str | None = None) -> bool:
        """nats-server's canSubscribe. The subscription subject is matched against the entries
        with its wildcard tokens taken literally: allow `bar.*` admits `SUB bar.>` (`*` matches
        the token `>`), deny `bar.x` does not refuse `SUB bar.*` (delivery_denied filters those
        messages). A plain entry admits any queue; a queue entry admits only its queue (its
        name may hold wildcards) and no plain subscription; where both kinds match a queue
        subscription, the queue entries decide (so allow `foo` and `foo v1` means plain or `v1`)."""
        if self.perms.sub_allow is not None:
            allowed = any(subject_matches(f, subject) for f in self._sub_allow)
            if queue:
                queues = [q for f, q in self._qsub_allow if subject_matches(f, subject)]
                if queues:
                    allowed = _queue_matches(queue, queues)
            if not allowed:
                return False
        if any(subject_matches(f, subject) for f in self._sub_deny):
            # Stricter than nats-server, where a matching queue deny entry for another queue
            # would re-admit a queue subscription that a plain deny entry refuses.
            return False
        if queue:
            queues = [q for f, q in self._qsub_deny if subject_matches(f, subject)]
            if queues and _queue_matches(queue, queues):
                return False
        return True

    def delivery_denied(self, subject: str) -> bool:
        """A wildcard subscription may overlap a deny filter; such messages are not delivered.
        Queue deny entries take no part (as in nats-server)."""
        deny = self._sub_deny
        return bool(deny) and any(subject_matches(f, subject) for f in deny)


_REPLY_LIMIT = 4096  # nats-server's replyPermLimit: the size at which the reply table is pruned


def _split_queue_entries(entries: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Plain subjects, and (subject, queue) pairs from `"subject queue"` entries."""
    plain: list[str] = []
    queues: list[tuple[str, str]] = []
    for e in entries:
        parts = e.split()
        if len(parts) == 2:
            queues.append((parts[0], parts[1]))
        else:
            plain.append(e)
    return plain, queues


def _queue_matches(queue: str, names: list[str]) -> bool:
    """nats-server's queueMatches: the same name, or a name with wildcard tokens that covers
    the queue (queue names may hold dots and wildcards)."""
    return any(queue == n or (has_wildcard(n) and is_subset(queue, n)) for n in names)
