"""The NATS/1.0 header block: parse it into (status, description, headers), build one back.

Owns the byte format only (ADR-4): an optional inline status on the first line, then
`Key: Value` lines, then a blank line. Keys keep their case and may repeat; lookups by the
callers are case-sensitive, as in nats-server. No IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

HDR_LINE = b"NATS/1.0"
CRLF = b"\r\n"


class HeaderError(ValueError):
    pass


def parse_headers(block: bytes) -> tuple[int | None, str, dict[str, list[str]]]:
    """Split a header block. Returns (status code or None, description, {key: [values]})."""
    if not block.startswith(HDR_LINE):
        raise HeaderError("header block does not start with NATS/1.0")
    lines = block.split(CRLF)
    first = lines[0][len(HDR_LINE):].strip()
    status: int | None = None
    description = ""
    if first:
        code, _, rest = first.partition(b" ")
        if not code.isdigit() or len(code) != 3:
            raise HeaderError("bad inline status")
        status = int(code)
        description = rest.strip().decode("utf-8", "replace")
    headers: dict[str, list[str]] = {}
    for raw in lines[1:]:
        if not raw:
            continue
        key, sep, value = raw.partition(b":")
        if not sep:
            raise HeaderError("header line without ':'")
        k = key.decode("utf-8", "replace").strip()
        headers.setdefault(k, []).append(value.strip().decode("utf-8", "replace"))
    return status, description, headers


def get_header(block: bytes | None, key: str) -> str | None:
    """First value of `key` (case-sensitive), without building the whole dict: the publish path
    asks for a handful of Nats-* keys on every message."""
    if not block:
        return None
    needle = b"\r\n" + key.encode() + b":"
    i = block.find(needle)
    if i < 0:
        return None
    start = i + len(needle)
    end = block.find(b"\r\n", start)
    return block[start:end if end >= 0 else len(block)].strip().decode("utf-8", "replace")


def build_headers(headers: Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]] = (),
                  status: int | None = None, description: str = "") -> bytes:
    """Header block bytes, ending with the blank line."""
    first = HDR_LINE
    if status is not None:
        first += b" %d" % status
        if description:
            first += b" " + description.encode()
    parts = [first]
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        values = [value] if isinstance(value, str) else list(value)
        for v in values:
            parts.append(key.encode() + b": " + v.encode())
    return CRLF.join(parts) + CRLF + CRLF
