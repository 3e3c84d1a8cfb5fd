"""Message counters (nats-server 2.12 `allow_msg_counter`, `Nats-Incr`): the publish-time checks
and the arithmetic.

On a counter stream every publish carries `Nats-Incr: <signed decimal>` and no payload; the
stored message's payload becomes `{"val":"<total>"}`, the subject's previous total plus the
increment (arbitrary precision, as nats-server's big.Int), and the PubAck carries `"val"`.
It owns only these rules; it must not store anything or know about PubAcks' framing.
Aggregating counters from sourced streams (`Nats-Counter-Sources`) is not implemented: a
counter stream with sources is refused at create (schemas.py).
"""

from __future__ import annotations

import json
import re

from pyjetstream.jetstream import errors
from pyjetstream.jetstream.store.base import StreamStore

HDR_INCR = "Nats-Incr"

# Go's big.Int SetString(s, 10): an optional sign and decimal digits, nothing else
_DECIMAL = re.compile(r"[+-]?[0-9]+")

# headers a counter increment may not be combined with (nats-server refuses them as invalid)
_INCOMPATIBLE = ("Nats-Rollup", "Nats-Expected-Stream", "Nats-Expected-Last-Msg-Id",
                 "Nats-Expected-Last-Subject-Sequence-Subject", "Nats-Expected-Last-Sequence",
                 "Nats-Expected-Last-Subject-Sequence")


def check_publish(allowed: bool, h: dict[str, str], payload: bytes) -> int | None:
    """The increment a publish asks for (None when it has no `Nats-Incr`); raises the 2.12
    errors for an invalid increment, a stream without counters, a payload or an incompatible
    header. A counter stream's "increment is missing" is the caller's (it comes later)."""
    if HDR_INCR not in h:
        return None
    text = h[HDR_INCR]
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise errors.by_constant("JSMessageIncrInvalidErr")
    if not allowed:
        raise errors.by_constant("JSMessageIncrDisabledErr")
    if payload:
        raise errors.by_constant("JSMessageIncrPayloadErr")
    if any(h.get(k) for k in _INCOMPATIBLE):
        raise errors.by_constant("JSMessageIncrInvalidErr")
    return int(text)


def current(store: StreamStore, subject: str) -> int:
    """The subject's total so far (0 for a new counter); raises 10172 when the last message
    is not a counter value."""
    last = store.load_last_msg(subject)
    if last is None:
        return 0
    try:
        doc = json.loads(last.data)
    except ValueError:
        raise errors.by_constant("JSMessageCounterBrokenErr") from None
    if not isinstance(doc, dict):
        raise errors.by_constant("JSMessageCounterBrokenErr")
    # Go's decoder matches the field name case-insensitively
    val = next((v for k, v in doc.items() if k.lower() == "val"), "")
    if not isinstance(val, str):
        raise errors.by_constant("JSMessageCounterBrokenErr")
    # a value that is no number counts as zero, as nats-server's SetString failure leaves it
    return int(val) if _DECIMAL.fullmatch(val) else 0


def payload(total: int) -> bytes:
    return b'{"val":"%d"}' % total
