"""The NATS/1.0 header block: parsing (inline status, repeated keys, case kept), building,
the single-key lookup used on the publish path, and a round-trip property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyjetstream.protocol.headers import HeaderError, build_headers, get_header, parse_headers


def test_parse_plain_block() -> None:
    block = b"NATS/1.0\r\nNats-Msg-Id: 1\r\nX: a\r\nX: b\r\n\r\n"
    assert parse_headers(block) == (None, "", {"Nats-Msg-Id": ["1"], "X": ["a", "b"]})


def test_parse_inline_status() -> None:
    assert parse_headers(b"NATS/1.0 503\r\n\r\n") == (503, "", {})
    status, desc, hdrs = parse_headers(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n\r\n")
    assert (status, desc, hdrs) == (408, "Request Timeout", {"Nats-Pending-Messages": ["3"]})


@pytest.mark.parametrize("block", [b"HTTP/1.1\r\n\r\n", b"NATS/1.0 50\r\n\r\n", b"NATS/1.0 abc\r\n\r\n",
                                   b"NATS/1.0\r\nno colon here\r\n\r\n"])
def test_bad_blocks(block: bytes) -> None:
    with pytest.raises(HeaderError):
        parse_headers(block)


def test_get_header_is_case_sensitive_and_first_value() -> None:
    block = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nNats-Msg-Id: def\r\n\r\n"
    assert get_header(block, "Nats-Msg-Id") == "abc"
    assert get_header(block, "nats-msg-id") is None
    assert get_header(None, "Nats-Msg-Id") is None
    assert get_header(block, "Missing") is None


def test_build_matches_wire_format() -> None:
    assert build_headers({"A": "1", "B": ["2", "3"]}) == b"NATS/1.0\r\nA: 1\r\nB: 2\r\nB: 3\r\n\r\n"
    assert build_headers(status=503) == b"NATS/1.0 503\r\n\r\n"
    assert build_headers([("K", "v")], status=100, description="Idle Heartbeat") == \
        b"NATS/1.0 100 Idle Heartbeat\r\nK: v\r\n\r\n"


_key = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=10)
_val = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=10)


@given(st.dictionaries(_key, st.lists(_val, min_size=1, max_size=3), max_size=5),
       st.one_of(st.none(), st.integers(100, 599)))
def test_round_trip(headers: dict[str, list[str]], status: int | None) -> None:
    got_status, _, got = parse_headers(build_headers(headers, status=status))
    assert got_status == status
    assert got == headers
