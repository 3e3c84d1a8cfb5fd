"""The Nats-* publish headers a stream reads, their parsing, and a refused publish's reply.

Shared by the publish path (stream.py), atomic batches (batch.py) and schedules (schedule.py),
so that none of those needs another; knows nothing of streams or stores.
"""

from __future__ import annotations

import json

from pyjetstream.gotime import parse_duration
from pyjetstream.jetstream import errors
from pyjetstream.jetstream.errors import ApiError

HDR_MSG_ID = "Nats-Msg-Id"
HDR_EXPECTED_STREAM = "Nats-Expected-Stream"
HDR_EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
HDR_EXPECTED_LAST_SUBJ_SEQ = "Nats-Expected-Last-Subject-Sequence"
HDR_EXPECTED_LAST_SUBJ_SEQ_SUBJ = "Nats-Expected-Last-Subject-Sequence-Subject"
HDR_EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
HDR_ROLLUP = "Nats-Rollup"
HDR_TTL = "Nats-TTL"
MAX_HDR_SIZE = 65535

_MAX_TTL_S = (2**63 - 1) // 1_000_000_000


def parse_msg_ttl(value: str) -> int:
    """Nats-TTL value to seconds: -1 never, 0 none; raises the 10165 error when invalid."""
    if value.lower() == "never":
        return -1
    try:
        ns: int | None = parse_duration(value)
    except ValueError:
        ns = None
    if ns is not None:
        if ns < 1_000_000_000:
            raise errors.message_ttl_invalid()
        return ns // 1_000_000_000
    if value.isascii() and value.isdigit():
        secs = int(value)
        # the store keeps the TTL in nanoseconds in a signed 64-bit field
        if secs > _MAX_TTL_S:
            raise errors.message_ttl_invalid()
        return secs
    raise errors.message_ttl_invalid()


def parse_headers(hdr: bytes) -> dict[str, str]:
    """First value of each header key (case-sensitive, as nats-server looks them up)."""
    out: dict[str, str] = {}
    for line in hdr.split(b"\r\n")[1:]:
        if not line:
            continue
        k, sep, v = line.partition(b":")
        if sep:
            key = k.decode("utf-8", "replace").strip()
            if key not in out:
                out[key] = v.decode("utf-8", "replace").strip()
    return out


def pub_ack_error(stream: str, err: ApiError) -> bytes:
    """A refused publish's reply: the error plus the stream name and seq 0, as nats-server sends."""
    return json.dumps({"error": err.to_dict(), "stream": stream, "seq": 0}, separators=(",", ":")).encode()


def add_header(hdr: bytes, key: bytes, value: bytes) -> bytes:
    # a header block ends with an empty line; the new one goes before it
    body = hdr[:-4] if hdr.endswith(b"\r\n\r\n") else hdr.rstrip(b"\r\n")
    return body + b"\r\n" + key + b": " + value + b"\r\n\r\n"
