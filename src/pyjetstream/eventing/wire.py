"""What one publish may put on the NATS wire: the last check before nats-py writes an HPUB.

Owns the limits a NATS server enforces on a client's publish by closing the connection
(`-ERR 'Maximum Payload Violation'`, `-ERR 'Maximum Control Line Exceeded'`, a subject or
header block that breaks the framing) and the encoding of the stored event, so that the
publisher proxy refuses such a request with a 4xx instead of costing every client its
connection: nats-py answers any of those -ERRs by closing the connection for good.

Pure functions over the subject, header dict and payload the publisher built; no IO. It
does not decide Kyma's type rules (`types`) or CloudEvents validity (`cloudevents`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from . import cloudevents as ce

# nats-server's default `max_control_line`; the server does not announce it in INFO, so a
# server configured lower needs the publisher's `max_control_line` set to match.
MAX_CONTROL_LINE = 4096
# Room on the control line for the reply subject nats-py's request() adds after its inbox
# prefix: two dots, a 22-character connection token and a request token (22 characters plus
# 4 hex digits in nats-py 2.16); the slack covers versions that make it longer.
REPLY_TOKENS = 64
# RFC 9110 token: what nats-py accepts as a header name (it raises BadHeaderError otherwise).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_GOOD_NAMES: set[str] = set()   # header names seen valid
# Control characters (Unicode category Cc) and surrogates, which have no UTF-8 form; a subject
# also ends at any whitespace (\s is str.isspace()), a header value only at CR or LF, but tabs
# are its only control character nats-py writes unchanged.
_NOT_IN_SUBJECT = re.compile("[\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_HEADER_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
# JetStream keeps a message's header length in 16 bits: a larger block is refused (10097).
MAX_HEADER_BLOCK = 65535


class Refused(ValueError):
    """The request cannot be published as it is; `status` is the HTTP code to answer with
    (400 for a malformed subject or header, 413 for a message over the server's limits)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def encode_event(event: ce.CloudEvent) -> bytes:
    """The stored (structured JSON) form of `event`, or Refused.

    Data nested deeper than the JSON codec recurses, and lone surrogates (a `\\ud800` escape
    in JSON, a header byte that is not UTF-8), have no UTF-8 encoding to store.
    """
    try:
        return event.to_json()
    except UnicodeEncodeError as exc:
        raise Refused(400, f"the event holds text that is not valid Unicode ({exc.reason})") from None
    except RecursionError:
        raise Refused(400, "the event's data is nested too deeply to encode") from None
    except ValueError as exc:  # out-of-range numbers and the like: nothing a retry can fix
        raise Refused(400, f"the event cannot be encoded as JSON: {exc}") from None


def subject_problem(subject: str) -> str | None:
    """Why `subject` is not a literal NATS subject a client may publish to, or None."""
    if not subject:
        return "the NATS subject is empty"
    found = _NOT_IN_SUBJECT.search(subject)
    if found is not None:
        return (f"the NATS subject {subject[:80]!r} holds {found.group()!r} (whitespace and control "
                "characters end a subject)")
    tokens = subject.split(".")
    if any(not token for token in tokens):
        return f"the NATS subject {subject[:80]!r} has an empty token"
    if any(token in ("*", ">") for token in tokens):
        return f"the NATS subject {subject[:80]!r} has a wildcard token"
    return None


def header_block(headers: Mapping[str, str]) -> bytes:
    """The header block as nats-py writes it (names and values trimmed), or Refused for a
    name nats-py would reject or a value that could end its line early."""
    lines = ["NATS/1.0\r\n"]
    for name, value in headers.items():
        key = name.strip()
        if key not in _GOOD_NAMES:
            if not _HEADER_NAME.fullmatch(key):
                raise Refused(400, f"{name!r} cannot be a NATS header name")
            if len(_GOOD_NAMES) < 1024:  # the publisher's names are a handful, always the same
                _GOOD_NAMES.add(key)
        found = _NOT_IN_HEADER_VALUE.search(value)
        if found is not None:
            raise Refused(400, f"the value of {key} holds {found.group()!r}, which a NATS header cannot carry")
        lines.append(f"{key}: {value.strip()}\r\n")
    lines.append("\r\n")
    # Nothing but surrogates fails to encode, and those were refused above.
    return "".join(lines).encode()


def check_publish(subject: str, headers: Mapping[str, str], payload: bytes, *, max_payload: int,
                  max_control_line: int = MAX_CONTROL_LINE, reply_prefix_len: int = len("_INBOX"),
                  reserve: int = 0) -> bytes:
    """Refused unless the server takes this HPUB without closing the connection; returns
    the header block (as `header_block`), which the publisher writes as it is.

    `reserve`: header bytes a later copy of the same payload may carry (a dead letter); the
    payload must fit beside them as well as beside these headers.

    The control line is counted as ours counts it (`HPUB` and the reply included), which is
    stricter than nats-server (arguments only); the size is headers plus payload, as both
    servers count it (nats-py checks the payload alone).
    """
    problem = subject_problem(subject)
    if problem is not None:
        raise Refused(400, problem)
    block = header_block(headers)
    if len(block) > MAX_HEADER_BLOCK:
        raise Refused(413, f"the event's NATS headers take {len(block)} bytes; JetStream stores at most "
                           f"{MAX_HEADER_BLOCK} (the id, type and source are copied into them)")
    total = len(block) + len(payload)
    if max_payload > 0 and max(len(block), reserve) + len(payload) > max_payload:
        kept = f", {reserve} of them kept for the headers of a dead-letter copy" if reserve > len(block) else ""
        raise Refused(413, f"the event takes {total} bytes as a NATS message (headers {len(block)}, "
                           f"stored event {len(payload)}); the NATS server takes at most {max_payload}{kept}")
    reply = reply_prefix_len + REPLY_TOKENS
    line = len(b"HPUB ") + len(subject.encode()) + 1 + reply + 1 + len(str(len(block))) + 1 + len(str(total))
    if line > max_control_line:
        raise Refused(400, f"the event's type and source make a NATS subject of {len(subject.encode())} bytes; "
                           f"with the reply and sizes it needs a control line of {line} bytes, and the "
                           f"NATS server takes at most {max_control_line}")
    return block
