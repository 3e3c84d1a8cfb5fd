"""JetStream advisories: the `$JS.EVENT.ADVISORY.*` events and their JSON bodies.

Owns the advisory subjects, `type` strings and body shapes (nats-server's TypedEvent plus
the per-kind fields). Publishes only when someone listens, as nats-server does. Knows
nothing of why an event happened; the manager, streams and consumers call these.
"""

from __future__ import annotations

import json
import random
import string
import time
from typing import Any, NamedTuple

from pyjetstream.gotime import format_rfc3339
from pyjetstream.jetstream.seams import ApiClient, MessageBus

PREFIX = "$JS.EVENT.ADVISORY"
TYPE_PREFIX = "io.nats.jetstream.advisory.v1."
_ALPHABET = string.ascii_letters + string.digits
_SYSRAND = random.SystemRandom()  # os.urandom, as secrets uses, without its hmac and OpenSSL


def new_id() -> str:
    # nats-server uses a nuid (22 base62 chars); any unique token serves the same purpose
    return "".join(_SYSRAND.choice(_ALPHABET) for _ in range(22))


def body(kind: str, fields: dict[str, Any], now_ns: int | None = None) -> bytes:
    doc: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "id": new_id(),
        "timestamp": format_rfc3339(now_ns if now_ns is not None else time.time_ns()),
    }
    doc.update(fields)
    return json.dumps(doc, separators=(",", ":")).encode()


def publish(server: Any, account: Any, subject: str, kind: str, fields: dict[str, Any], domain: str = "") -> bool:
    """Send one advisory if anyone subscribes to its subject; True when it went out.
    `domain`: the JetStream domain, which every nats-server advisory carries when set."""
    if not server.has_interest(account, subject):
        return False
    if domain:
        fields = {**fields, "domain": domain}
    server.publish(account, subject, "", None, body(kind, fields))
    return True


_STREAM_ACTIONS = {"create": "CREATED", "modify": "UPDATED", "delete": "DELETED"}
_CONSUMER_ACTIONS = {"create": "CREATED", "delete": "DELETED"}


def stream_action(server: Any, account: Any, stream: str, action: str, template: str = "", domain: str = "") -> bool:
    """action is "create", "modify" or "delete"."""
    subject = f"{PREFIX}.STREAM.{_STREAM_ACTIONS[action]}.{stream}"
    fields: dict[str, Any] = {"stream": stream, "action": action}
    if template:
        fields["template"] = template
    return publish(server, account, subject, "stream_action", fields, domain)


def consumer_action(server: Any, account: Any, stream: str, consumer: str, action: str, domain: str = "") -> bool:
    """action is "create" or "delete"."""
    subject = f"{PREFIX}.CONSUMER.{_CONSUMER_ACTIONS[action]}.{stream}.{consumer}"
    return publish(server, account, subject, "consumer_action",
                   {"stream": stream, "consumer": consumer, "action": action}, domain)


API_AUDIT_SUBJECT = f"{PREFIX}.API"


def client_info(account: Any, client: ApiClient | None) -> dict[str, Any]:
    """The `client` object of an audit advisory: the account, and for a client's request its
    id and whichever of name, lang, version and host it gave (nats-server omits empty ones)."""
    info: dict[str, Any] = {"acc": account.name}
    if client is not None:
        info["id"] = client.cid
        for key, v in (("name", client.name), ("lang", client.lang), ("version", client.version),
                       ("host", client.host)):
            if v:
                info[key] = v
    return info


def api_audit(server: Any, account: Any, server_name: str, client: dict[str, Any],
              subject: str, request: str, response: str, domain: str = "") -> bool:
    fields: dict[str, Any] = {"server": server_name, "client": client, "subject": subject}
    if request:
        fields["request"] = request
    fields["response"] = response
    return publish(server, account, API_AUDIT_SUBJECT, "api_audit", fields, domain)


# ------------------------------------------------------------------ consumer events
# The consumer state machine is pure: it queues these and its runner sends them (send()).

METRIC_PREFIX = "$JS.EVENT.METRIC"
METRIC_TYPE_PREFIX = "io.nats.jetstream.metric.v1."


class Advisory(NamedTuple):
    """One event ready to send: its subject, full `type` and fields."""

    subject: str
    type: str
    fields: dict[str, Any]


def max_deliver(stream: str, consumer: str, stream_seq: int, deliveries: int) -> Advisory:
    return Advisory(f"{PREFIX}.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}", TYPE_PREFIX + "max_deliver",
                    {"stream": stream, "consumer": consumer, "stream_seq": stream_seq, "deliveries": deliveries})


def msg_naked(stream: str, consumer: str, consumer_seq: int, stream_seq: int, deliveries: int) -> Advisory:
    return Advisory(f"{PREFIX}.CONSUMER.MSG_NAKED.{stream}.{consumer}", TYPE_PREFIX + "nak",
                    {"stream": stream, "consumer": consumer, "consumer_seq": consumer_seq,
                     "stream_seq": stream_seq, "deliveries": deliveries})


def msg_terminated(stream: str, consumer: str, consumer_seq: int, stream_seq: int, deliveries: int,
                   reason: str = "") -> Advisory:
    fields: dict[str, Any] = {"stream": stream, "consumer": consumer, "consumer_seq": consumer_seq,
                              "stream_seq": stream_seq, "deliveries": deliveries}
    if reason:  # omitempty in nats-server
        fields["reason"] = reason
    return Advisory(f"{PREFIX}.CONSUMER.MSG_TERMINATED.{stream}.{consumer}", TYPE_PREFIX + "terminated", fields)


def consumer_ack_metric(stream: str, consumer: str, consumer_seq: int, stream_seq: int, ack_time: int,
                        deliveries: int) -> Advisory:
    """The sampled ack metric (ConsumerConfig.sample_freq); ack_time in ns."""
    return Advisory(f"{METRIC_PREFIX}.CONSUMER.ACK.{stream}.{consumer}", METRIC_TYPE_PREFIX + "consumer_ack",
                    {"stream": stream, "consumer": consumer, "consumer_seq": consumer_seq,
                     "stream_seq": stream_seq, "ack_time": ack_time, "deliveries": deliveries})


def consumer_pause(stream: str, consumer: str, paused: bool, pause_until: str) -> Advisory:
    """A consumer was paused or resumed (nats-server 2.11+); `pause_until` is Go's zero time
    when the pause was lifted, since nats-server never omits that field."""
    return Advisory(f"{PREFIX}.CONSUMER.PAUSE.{stream}.{consumer}", TYPE_PREFIX + "consumer_pause",
                    {"stream": stream, "consumer": consumer, "paused": paused, "pause_until": pause_until})


def consumer_group_pinned(account: str, stream: str, consumer: str, group: str, pin_id: str) -> Advisory:
    fields: dict[str, Any] = {"account": account} if account else {}
    fields.update(stream=stream, consumer=consumer, group=group, pinned_id=pin_id)
    return Advisory(f"{PREFIX}.CONSUMER.PINNED.{stream}.{consumer}", TYPE_PREFIX + "consumer_group_pinned", fields)


def consumer_group_unpinned(account: str, stream: str, consumer: str, group: str, reason: str) -> Advisory:
    """`reason`: "admin" (the UNPIN API) or "timeout" (the holder stopped asking)."""
    fields: dict[str, Any] = {"account": account} if account else {}
    fields.update(stream=stream, consumer=consumer, group=group, reason=reason)
    return Advisory(f"{PREFIX}.CONSUMER.UNPINNED.{stream}.{consumer}", TYPE_PREFIX + "consumer_group_unpinned",
                    fields)


def send(server: MessageBus, account: Any, adv: Advisory, now_ns: int, domain: str = "") -> bool:
    """Publish a queued event if anyone subscribes to its subject; True when it went out."""
    if not server.has_interest(account, adv.subject):
        return False
    doc: dict[str, Any] = {"type": adv.type, "id": new_id(), "timestamp": format_rfc3339(now_ns)}
    doc.update(adv.fields)
    if domain:
        doc["domain"] = domain
    server.publish(account, adv.subject, "", None, json.dumps(doc, separators=(",", ":")).encode())
    return True
