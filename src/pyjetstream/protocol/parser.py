"""Sans-IO parser for the client side of the NATS protocol: bytes in, events out.

Owns framing only: control lines, payload lengths, the control-line and payload limits and
the exact protocol errors nats-server answers with. It has no sockets, no clock and no
knowledge of subscriptions; the connection that feeds it decides what an event means.

Events are plain tuples (cheap on the hot path), first element an OP_* code:
  (OP_PUB, subject, reply, size_token, body)             body keeps its trailing CRLF
  (OP_HPUB, subject, reply, hdr_len, size_token, body)   body = headers + payload + CRLF
  (OP_SUB, subject, queue, sid)
  (OP_UNSUB, sid, max_msgs)                              max_msgs is 0 when absent or not a number
  (OP_CONNECT, json_bytes), (OP_PING,), (OP_PONG,), (OP_OK,)
  (OP_ERR, ProtocolError)                                always last; the parser is dead after it
Subjects, replies, queues and sids are bytes exactly as sent, so they can be echoed back
into MSG lines without re-encoding. `size_token` is the decimal length as sent.
"""

from __future__ import annotations

from typing import Any

OP_PUB = 1
OP_HPUB = 2
OP_SUB = 3
OP_UNSUB = 4
OP_CONNECT = 5
OP_PING = 6
OP_PONG = 7
OP_OK = 8
OP_ERR = 9

MAX_CONTROL_LINE = 4096
MAX_PAYLOAD = 1024 * 1024

Event = tuple[Any, ...]


class ProtocolError(Exception):
    """The peer broke the protocol. `err` is the text for `-ERR '...'`, or None when nats-server
    closes the connection without saying anything (it does so for malformed arguments)."""

    def __init__(self, err: str | None, detail: str = "") -> None:
        super().__init__(detail or err or "protocol violation")
        self.err = err


ERR_UNKNOWN_OP = "Unknown Protocol Operation"
ERR_MAX_PAYLOAD = "Maximum Payload Violation"
ERR_MAX_CONTROL = "maximum control line exceeded"

_CR = 13


def _split_args(line: bytes) -> list[bytes]:
    """PUB/HPUB arguments: nats-server separates them by spaces and tabs only, while
    bytes.split() also splits at VT, FF and CR. (Int membership: `12 in line` is a memchr, ten
    times cheaper than `b"\x0c" in line`.)"""
    if 11 in line or 12 in line or 13 in line:
        return [a for a in line.replace(b"\t", b" ").split(b" ") if a]
    return line.split()


def _split_sub_args(line: bytes) -> list[bytes]:
    """SUB/UNSUB arguments: nats-server also splits these at CR, but not at VT or FF."""
    if 11 in line or 12 in line:
        return [a for a in line.replace(b"\t", b" ").replace(b"\r", b" ").split(b" ") if a]
    return line.split()


def _parse_size(tok: bytes) -> int:
    # Only plain decimal digits are a size (no sign, no spaces), as in nats-server.
    if not tok.isdigit():
        raise ProtocolError(None, f"bad size {tok!r}")
    return int(tok)


class Parser:
    """Incremental parser. `feed(data)` returns the complete events in data (plus whatever was
    left over from earlier calls) and keeps any incomplete tail for the next call.

    After a ProtocolError the parser is dead; the connection must close (nats-server does)."""

    __slots__ = ("_rest", "_pending", "_chunks", "_have", "max_payload", "max_control_line", "dead")

    def __init__(self, max_payload: int = MAX_PAYLOAD, max_control_line: int = MAX_CONTROL_LINE) -> None:
        self._rest = b""
        # pieces of a payload that is still arriving, joined once when complete: re-joining the
        # tail on every read would cost O(size^2) for a big message in many small reads
        self._chunks: list[bytes] = []
        self._have = 0
        # (event head, total bytes of body incl. CRLF) while waiting for a payload
        self._pending: tuple[tuple[Any, ...], int] | None = None
        self.max_payload = max_payload
        self.max_control_line = max_control_line
        self.dead = False

    def feed(self, data: bytes) -> list[Event]:
        """Events in order; a protocol error ends the list as (OP_ERR, error) after the events
        that preceded it, since nats-server acts on those before it closes the connection."""
        if self.dead:
            return []
        events: list[Event] = []
        try:
            self._feed(data, events)
        except ProtocolError as e:
            self.dead = True
            self._rest = b""
            self._chunks = []
            events.append((OP_ERR, e))
        return events

    def _feed(self, data: bytes, events: list[Event]) -> None:
        if self._rest:
            pending = self._pending
            if pending is not None:
                self._chunks.append(data)
                self._have += len(data)
                if self._have < pending[1]:
                    return
                data = b"".join(self._chunks)
                self._chunks = []
            else:
                data = self._rest + data  # a partial control line: bounded by max_control_line
            self._rest = b""
        append = events.append
        find = data.find
        max_payload = self.max_payload
        max_control = self.max_control_line
        pos = 0
        n = len(data)
        while pos < n:
            # Fast path for the op that dominates traffic: an upper-case `PUB ` whose payload is
            # already here. It avoids a call per message and the pending-state round trip; any
            # unusual byte falls through to the general path below, which decides errors.
            if self._pending is None and data.startswith(b"PUB ", pos):
                nl = find(b"\n", pos)
                if 0 < nl - pos <= max_control:
                    end = nl - 1 if data[nl - 1] == _CR else nl
                    args_b = data[pos + 4:end]
                    if not (11 in args_b or 12 in args_b or 13 in args_b):
                        args = args_b.split()
                        na = len(args)
                        if na == 2 or na == 3:
                            size_tok = args[-1]
                            if size_tok.isdigit():
                                size = int(size_tok)
                                start = nl + 1
                                stop = start + size + 2
                                if size <= max_payload and stop <= n and data[stop - 2:stop] == b"\r\n":
                                    append((OP_PUB, args[0], args[1] if na == 3 else b"", size_tok,
                                            data[start:stop]))
                                    pos = stop
                                    continue
            pending = self._pending
            if pending is not None:
                head, need = pending
                end = pos + need
                if end > n:
                    break
                if data[end - 2:end] != b"\r\n":
                    raise ProtocolError(ERR_UNKNOWN_OP, "payload not followed by CRLF")
                append(head + (data[pos:end],))
                self._pending = None
                pos = end
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                # +1: the tail may end in the CR of a line of exactly the maximum length, and
                # the verdict must not depend on where the bytes were split.
                if n - pos > self.max_control_line + 1:
                    raise ProtocolError(ERR_MAX_CONTROL)
                break
            end = nl - 1 if nl > pos and data[nl - 1] == _CR else nl
            if end - pos > self.max_control_line:
                raise ProtocolError(ERR_MAX_CONTROL)
            line = data[pos:end]
            pos = nl + 1
            self._control(line, append)
        if pos < n:
            self._rest = data[pos:]
            if self._pending is not None:
                self._chunks = [self._rest]
                self._have = n - pos

    def _control(self, line: bytes, append: Any) -> None:
        # first byte as an int: comparing ints is far cheaper than slicing and `in b"Pp"`
        c = line[0] if line else 0
        if c == 80 or c == 112:  # P p
            op = line[:4].upper()
            if op == b"PUB " or op == b"PUB\t":
                args = _split_args(line[4:])
                if len(args) == 2:
                    subject, size_tok = args
                    reply = b""
                elif len(args) == 3:
                    subject, reply, size_tok = args
                else:
                    raise ProtocolError(None, "processPub parse error")
                size = _parse_size(size_tok)
                if size > self.max_payload:
                    raise ProtocolError(ERR_MAX_PAYLOAD)
                self._pending = ((OP_PUB, subject, reply, size_tok), size + 2)
                return
            # nats-server stops looking once it has seen the four letters: `PINGX` is a PING.
            if op == b"PING":
                append((OP_PING,))
                return
            if op == b"PONG":
                append((OP_PONG,))
                return
            raise ProtocolError(ERR_UNKNOWN_OP)
        if c == 72 or c == 104:  # H h
            if line[:5].upper() not in (b"HPUB ", b"HPUB\t"):
                raise ProtocolError(ERR_UNKNOWN_OP)
            args = _split_args(line[5:])
            if len(args) == 3:
                subject, hdr_tok, size_tok = args
                reply = b""
            elif len(args) == 4:
                subject, reply, hdr_tok, size_tok = args
            else:
                raise ProtocolError(None, "processHeaderPub parse error")
            hdr_len = _parse_size(hdr_tok)
            size = _parse_size(size_tok)
            if hdr_len > size:
                raise ProtocolError(None, "header length exceeds total")
            if size > self.max_payload:
                raise ProtocolError(ERR_MAX_PAYLOAD)
            self._pending = ((OP_HPUB, subject, reply, hdr_len, size_tok), size + 2)
            return
        if c == 83 or c == 115:  # S s
            if line[:4].upper() not in (b"SUB ", b"SUB\t"):
                raise ProtocolError(ERR_UNKNOWN_OP)
            args = _split_sub_args(line[4:])
            if len(args) == 2:
                append((OP_SUB, args[0], b"", args[1]))
            elif len(args) == 3:
                append((OP_SUB, args[0], args[1], args[2]))
            elif not args:
                raise ProtocolError(ERR_UNKNOWN_OP)
            else:
                raise ProtocolError(None, "processSub parse error")
            return
        if c == 85 or c == 117:  # U u
            if line[:6].upper() not in (b"UNSUB ", b"UNSUB\t"):
                raise ProtocolError(ERR_UNKNOWN_OP)
            args = _split_sub_args(line[6:])
            if len(args) == 1:
                append((OP_UNSUB, args[0], 0))
            elif len(args) == 2:
                # a max that is not a number counts as no max (nats-server unsubscribes at once)
                mx = args[1]
                append((OP_UNSUB, args[0], int(mx) if mx.isdigit() else 0))
            elif not args:
                raise ProtocolError(ERR_UNKNOWN_OP)
            else:
                raise ProtocolError(None, "processUnsub parse error")
            return
        if c == 67 or c == 99:  # C c
            # Whatever follows the seven letters is the argument, even without a separator:
            # `CONNECTX {}` is a CONNECT whose JSON does not parse (nats-server does the same).
            if line[:7].upper() != b"CONNECT":
                raise ProtocolError(ERR_UNKNOWN_OP)
            append((OP_CONNECT, line[7:].strip()))
            return
        if line[:3] == b"+OK" or line[:3].upper() == b"+OK":
            append((OP_OK,))
            return
        if line[:4].upper() == b"-ERR":
            # A client has no business sending -ERR; nats-server drops it silently.
            raise ProtocolError(None, "client sent -ERR")
        raise ProtocolError(ERR_UNKNOWN_OP)
