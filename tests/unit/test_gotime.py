"""pyjetstream.gotime against the values Go's own time package tests use: durations parsed as
time.ParseDuration, written as Duration.String, and RFC 3339 times as nats-server's JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyjetstream.gotime import ZERO_TIME, format_duration, format_rfc3339, parse_duration, parse_rfc3339

NS, US, MS, S, M, H = 1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000
MAX, MIN = 2**63 - 1, -(2**63)


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("5s", 5 * S), ("30s", 30 * S), ("1478s", 1478 * S), ("-5s", -5 * S), ("+5s", 5 * S),
    ("-0", 0), ("+0", 0), ("5.0s", 5 * S), ("5.6s", 5 * S + 600 * MS), ("5.s", 5 * S), (".5s", 500 * MS),
    ("1.004s", 1 * S + 4 * MS), ("100.00100s", 100 * S + 1 * MS), ("10ns", 10), ("11us", 11 * US),
    ("12\u00b5s", 12 * US), ("12\u03bcs", 12 * US), ("13ms", 13 * MS), ("15m", 15 * M), ("16h", 16 * H),
    ("3h30m", 3 * H + 30 * M), ("10.5s4m", 4 * M + 10 * S + 500 * MS), ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
    ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6), ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
    ("0.3333333333333333333h", 20 * M), ("9007199254740993ns", (1 << 53) + 1), ("9223372036854775807ns", MAX),
    ("9223372036854775.807us", MAX), ("9223372036s854ms775us807ns", MAX), ("-9223372036854775808ns", MIN),
    ("0.100000000000000000000h", 6 * M),
])
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "5 s", " 5s",
                                  "9223372036854775808ns", "9223372036854775.808us", "-9223372036854775809ns",
                                  "1.5", "5 parsecs", "\u0665s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1100, "1.1\u00b5s"), (2200 * US, "2.2ms"), (3300 * MS, "3.3s"), (4 * M + 5 * S, "4m5s"),
    (4 * M + 5001 * MS, "4m5.001s"), (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"), (8 * M + 1, "8m0.000000001s"),
    (H, "1h0m0s"), (MAX, "2562047h47m16.854775807s"), (MIN, "-2562047h47m16.854775808s"), (-5 * S, "-5s"),
])
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@given(st.integers(min_value=MIN + 1, max_value=MAX))
def test_duration_round_trip(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


def test_rfc3339() -> None:
    base = parse_rfc3339("2026-11-26T06:00:00Z")
    assert format_rfc3339(base) == "2026-11-26T06:00:00Z"
    assert parse_rfc3339("2026-11-26T06:00:00.000000123Z") == base + 123
    assert format_rfc3339(base + 120_000_000) == "2026-11-26T06:00:00.12Z"
    assert parse_rfc3339("2026-11-26T08:00:00+02:00") == base
    assert parse_rfc3339("2026-11-26T06:00:00.1234567891234Z") == base + 123_456_789  # Go keeps 9 digits
    assert parse_rfc3339(ZERO_TIME) == 0 and format_rfc3339(0) == ZERO_TIME
    for bad in ("yesterday", "2026-11-26", "2026-11-26T06:00:00", "2026-11-26T06:00:00+0200"):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)


@given(st.integers(min_value=1, max_value=4_102_444_800 * S))
def test_rfc3339_round_trip(ns: int) -> None:
    assert parse_rfc3339(format_rfc3339(ns)) == ns
