"""Go's time formats, the one place they are parsed and written: durations as Go's
time.ParseDuration reads them and Duration.String writes them, and RFC 3339 timestamps as
nats-server puts them in JSON (RFC3339Nano, UTC).

Times are integers of nanoseconds since the Unix epoch, durations integers of nanoseconds; 0
stands for Go's zero time (0001-01-01T00:00:00Z). Pure functions; imports nothing of the package,
so the server, JetStream and the CLI can all use it. Errors are ValueError.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

NS = 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"
_MAX_INT64 = 2**63 - 1

_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": NS,
          "m": 60 * NS, "h": 3600 * NS}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration: `1h30m`, `1.5s`, `-250ms`, `0`; ns. Every unit needs a number
    and every number a unit (a bare `5` is refused, `0` alone is not); the sum must fit an int64."""
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {text!r}")
    total = 0
    i, n = 0, len(s)
    while i < n:
        start = i
        while i < n and s[i].isascii() and s[i].isdigit():
            i += 1
        whole = s[start:i]
        frac = ""
        if i < n and s[i] == ".":
            i += 1
            fstart = i
            while i < n and s[i].isascii() and s[i].isdigit():
                i += 1
            frac = s[fstart:i]
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {text!r}")
        ustart = i
        while i < n and s[i] != "." and not (s[i].isascii() and s[i].isdigit()):
            i += 1
        unit = _UNITS.get(s[ustart:i])
        if unit is None:
            which = "missing unit" if ustart == i else f"unknown unit {s[ustart:i]!r}"
            raise ValueError(f"time: {which} in duration {text!r}")
        v = int(whole or "0") * unit
        if frac:
            # as Go: the fraction's digits (at most 19 kept) scaled by the unit, truncated
            digits = frac[:19]
            v += int(float(int(digits)) * (float(unit) / 10 ** len(digits)))
        total += v
        if total > 2**63:
            raise ValueError(f"time: invalid duration {text!r}")
    if neg:
        return -total
    if total > _MAX_INT64:
        raise ValueError(f"time: invalid duration {text!r}")
    return total


def _frac(v: int, prec: int) -> tuple[str, int]:
    """The fraction of v / 10**prec without trailing zeros (no point when it is zero), and the
    integer part: Go's fmtFrac."""
    scale = 10**prec
    digits = v % scale
    if not digits:
        return "", v // scale
    return "." + str(digits).rjust(prec, "0").rstrip("0"), v // scale


def format_duration(ns: int) -> str:
    """Go's Duration.String: `0s`, `1.5ms`, `2µs`, `1m30.5s`, `1h0m0s`, `-5s`."""
    u = -ns if ns < 0 else ns
    if u < NS:
        if u == 0:
            out = "0s"
        elif u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            f, whole = _frac(u, 3)
            out = f"{whole}{f}\u00b5s"
        else:
            f, whole = _frac(u, 6)
            out = f"{whole}{f}ms"
    else:
        f, secs = _frac(u, 9)
        out = f"{secs % 60}{f}s"
        mins = secs // 60
        if mins:
            out = f"{mins % 60}m{out}"
            hours = mins // 60
            if hours:
                out = f"{hours}h{out}"
    return "-" + out if ns < 0 else out


def format_rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC (what nats-server's JSON holds): the fraction without its
    trailing zeros; 0 or less is Go's zero time."""
    if ns <= 0:
        return ZERO_TIME
    secs, frac = divmod(ns, NS)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)")


def parse_rfc3339(text: str) -> int:
    """An RFC 3339 time (any number of fraction digits, nanoseconds kept; Z or an offset) to
    Unix ns. Go's zero time (year 1 or before) gives 0."""
    m = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"bad time {text!r}")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    if year <= 1:
        return 0
    nanos = int((m.group(7) or "0")[:9].ljust(9, "0"))
    tz = m.group(8)
    offset = 0
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    base = datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    return (int(base.timestamp()) - offset) * NS + nanos
