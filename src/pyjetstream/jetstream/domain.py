"""The JetStream domain's API prefix: `$JS.<domain>.API.<rest>` answered as `$JS.API.<rest>`.

nats-server maps the domain-prefixed subjects of a JetStream account onto the plain ones
(generateJSMappingTable): INFO and the STREAM, CONSUMER, DIRECT, META, SERVER and ACCOUNT
trees go to the API, `$JS.<domain>.API.$KV.>` and `...$OBJ.>` to `$KV.>` and `$OBJ.>`. Only
those are mapped; anything else under the prefix has no responder there, and none here.

Owns the mapping table and the account's subscriptions on the mapped prefixes. Must not
answer anything itself: API requests go to router.dispatch with the plain subject, KV and
object-store messages are published again under theirs. The client's publish permission is
checked again on the mapped subject, as nats-server does (a deny on `$JS.API.>` also holds
through the domain prefix, with the same -ERR naming the mapped subject).
"""

from __future__ import annotations

from typing import Any

from pyjetstream.jetstream import router
from pyjetstream.jetstream.api import ApiAccount
from pyjetstream.jetstream.seams import Account, MessageBus, Subscription

# the tails after `$JS.<domain>.API.` that nats-server maps, and what they map to
API_TAILS = ("INFO", "STREAM.>", "CONSUMER.>", "DIRECT.>", "META.>", "SERVER.>", "ACCOUNT.>")
PASS_TAILS = ("$KV.>", "$OBJ.>")


def mapped_subject(domain: str, subject: str) -> str | None:
    """The subject a `$JS.<domain>.API.` subject stands for, or None when not mapped."""
    prefix = f"$JS.{domain}.API."
    if not domain or not subject.startswith(prefix):
        return None
    rest = subject[len(prefix) :]
    if rest == "INFO":
        return "$JS.API.INFO"
    head = rest.split(".", 1)[0]
    if "." not in rest:
        return None
    if head + ".>" in API_TAILS:
        return "$JS.API." + rest
    if head + ".>" in PASS_TAILS:
        return rest
    return None


class DomainRoutes:
    """One JetStream account's subscriptions on its domain prefix."""

    def __init__(self, jsa: ApiAccount, domain: str) -> None:
        self.jsa = jsa
        self.domain = domain
        self._subs: list[Subscription] = []

    def start(self, server: MessageBus, account: Account) -> None:
        prefix = f"$JS.{self.domain}.API."
        for tail in API_TAILS + PASS_TAILS:
            # clients_only: a message the server published itself carries no client's rights
            self._subs.append(server.subscribe_internal(account, prefix + tail, self._on_msg, clients_only=True))

    def stop(self, server: MessageBus) -> None:
        for sub in self._subs:
            server.unsubscribe_internal(sub)
        self._subs = []

    def _on_msg(self, sub: Any, client: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None:
        target = mapped_subject(self.domain, subject)
        if target is None:
            return
        # client: the publishing ClientConnection (clients_only guarantees one)
        if client.perms is not None and not client.perms.can_publish(target):
            client.send_err(f'Permissions Violation for Publish to "{target}"')
            return
        if target.startswith("$JS.API."):
            router.dispatch(self.jsa, target, reply, hdr, payload, client)
        else:
            self.jsa.server.publish(self.jsa.account, target, reply, hdr, payload)
