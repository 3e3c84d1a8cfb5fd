"""Who may make the server publish where: an API request that sets a subject the server will
publish to (a push consumer's deliver subject, a stream's republish destination) needs the
requester's own permission to publish there.

Without this, a user allowed the JetStream API but denied a subject (the eventing's
Subscriptions bucket `$KV.eventing-subscriptions.>`, say) could have the server write there for
it: deliveries and republished copies are published like any message, and a stream capturing
the subject stores them. nats-server 2.9 has no such rule; we are stricter.

Owns that rule and its errors. Must not: decide anything for a request without a client (the
server's own, in-process) or from an unrestricted client; judge reserved subjects (schemas and
consumer_config refuse those for everyone); touch configurations. Replies the server sends to
a requester's reply subject (API responses, PubAcks, pull deliveries) are not checked here:
they reach client subscriptions only (Server.respond, consumer_runner).
"""

from __future__ import annotations

from typing import Any

from pyjetstream.jetstream import errors
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.schemas import republish_pattern
from pyjetstream.jetstream.seams import ApiClient
from pyjetstream.subjects import is_valid_subject


def _violation(subject: str) -> str:
    # nats-server's wording for a refused PUB, so the reason reads as the permission it is
    return f'Permissions Violation for Publish to "{subject}"'


def requester_may_publish(client: ApiClient | None, pattern: str) -> bool:
    """May the client behind a request publish to every subject of `pattern` itself? True for
    the server's own requests (no client) and unrestricted clients. For anything that
    re-publishes a client's message as the server under another subject, too."""
    perms = client.perms if client is not None else None
    return perms is None or perms.may_publish_all(pattern)


def check_deliver_subject(client: ApiClient | None, subject: str, current: str | None) -> None:
    """Refuse (10112 with the reason) a push consumer's deliver subject the requester may not
    publish to. `current` is the consumer's deliver subject before this request (None for a
    new consumer): keeping an existing one unchanged needs no permission, so a narrow user may
    still update a consumer an administrator aimed elsewhere."""
    if not subject or subject == current or requester_may_publish(client, subject):
        return
    base = errors.consumer_invalid_deliver_subject()
    raise ApiError(base.code, base.err_code, f"{base.description}: {_violation(subject)}", base.constant)


def check_republish(client: ApiClient | None, republish: dict[str, Any] | None,
                    current: dict[str, Any] | None) -> None:
    """Refuse (10052 with the reason) a republish destination that could produce a subject the
    requester may not publish to: every wildcard reference counts as `*` (the stored subject
    picks it). `republish` is the request's raw `republish` object, `current` the stream's
    before this request (None for a new stream); an unchanged destination needs no permission.
    A malformed destination is left to the configuration check."""
    dest = (republish or {}).get("dest")
    if not isinstance(dest, str) or not is_valid_subject(dest):
        return
    if (current or {}).get("dest") == dest:
        return
    if requester_may_publish(client, republish_pattern(dest)):
        return
    raise errors.stream_invalid_config(err=f"stream configuration for republish destination: {_violation(dest)}")
