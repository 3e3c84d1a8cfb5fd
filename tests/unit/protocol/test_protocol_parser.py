"""The sans-IO client-protocol parser: every op whole, one byte at a time and at random split
points; the exact errors; and a fuzz property (any bytes give events or one protocol error,
which comes last, and nothing else)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyjetstream.protocol.parser import (
    ERR_MAX_CONTROL,
    ERR_MAX_PAYLOAD,
    ERR_UNKNOWN_OP,
    OP_CONNECT,
    OP_ERR,
    OP_HPUB,
    OP_OK,
    OP_PING,
    OP_PONG,
    OP_PUB,
    OP_SUB,
    OP_UNSUB,
    Parser,
)

# (wire bytes, expected events)
GOOD: list[tuple[bytes, list[tuple]]] = [
    (b"PING\r\n", [(OP_PING,)]),
    (b"ping\r\n", [(OP_PING,)]),
    (b"PONG\r\n", [(OP_PONG,)]),
    (b"PINGX\r\n", [(OP_PING,)]),
    (b"+OK\r\n", [(OP_OK,)]),
    (b"CONNECT {\"verbose\":false}\r\n", [(OP_CONNECT, b"{\"verbose\":false}")]),
    (b"connect\t{}\r\n", [(OP_CONNECT, b"{}")]),
    (b"CONNECT\r\n", [(OP_CONNECT, b"")]),
    (b"PUB foo 5\r\nhello\r\n", [(OP_PUB, b"foo", b"", b"5", b"hello\r\n")]),
    (b"PUB foo bar 0\r\n\r\n", [(OP_PUB, b"foo", b"bar", b"0", b"\r\n")]),
    (b"pub\tfoo \t bar\t 3\r\na\r\n\r\n", [(OP_PUB, b"foo", b"bar", b"3", b"a\r\n\r\n")]),
    (b"PUB foo 2\nhi\r\n", [(OP_PUB, b"foo", b"", b"2", b"hi\r\n")]),
    (b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", [(OP_HPUB, b"foo", b"", 12, b"14", b"NATS/1.0\r\n\r\nhi\r\n")]),
    (b"HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n", [(OP_HPUB, b"foo", b"r", 12, b"12", b"NATS/1.0\r\n\r\n\r\n")]),
    (b"SUB foo 1\r\n", [(OP_SUB, b"foo", b"", b"1")]),
    # nats-server: PUB splits at spaces/tabs only, SUB/UNSUB also at CR; VT and FF stay inside
    (b"PUB a\x0cb 1\r\nx\r\n", [(OP_PUB, b"a\x0cb", b"", b"1", b"x\r\n")]),
    (b"PUB a\rr 1\r\nx\r\n", [(OP_PUB, b"a\rr", b"", b"1", b"x\r\n")]),
    (b"SUB a\rq 2\r\n", [(OP_SUB, b"a", b"q", b"2")]),
    (b"SUB a\x0bb\tq 2\r\n", [(OP_SUB, b"a\x0bb", b"q", b"2")]),
    (b"UNSUB\t7\r5\r\n", [(OP_UNSUB, b"7", 5)]),
    (b"SUB foo.* q 22\r\n", [(OP_SUB, b"foo.*", b"q", b"22")]),
    (b"sub  > \t q  x\r\n", [(OP_SUB, b">", b"q", b"x")]),
    (b"UNSUB 1\r\n", [(OP_UNSUB, b"1", 0)]),
    (b"UNSUB 1 10\r\n", [(OP_UNSUB, b"1", 10)]),
    (b"UNSUB 1 x\r\n", [(OP_UNSUB, b"1", 0)]),
]

# (wire bytes, events before the error, error text or None for a silent close)
BAD: list[tuple[bytes, list[tuple], str | None]] = [
    (b"FOO\r\n", [], ERR_UNKNOWN_OP),
    (b"\r\n", [], ERR_UNKNOWN_OP),
    (b" PING\r\n", [], ERR_UNKNOWN_OP),
    (b"PIN\r\n", [], ERR_UNKNOWN_OP),
    (b"SUBX foo 1\r\n", [], ERR_UNKNOWN_OP),
    (b"SUB\r\n", [], ERR_UNKNOWN_OP),
    (b"UNSUB\r\n", [], ERR_UNKNOWN_OP),
    (b"HPU foo\r\n", [], ERR_UNKNOWN_OP),
    (b"PING\r\nXX\r\n", [(OP_PING,)], ERR_UNKNOWN_OP),
    (b"PUB foo\r\n", [], None),
    (b"PUB a b c 1\r\n", [], None),
    (b"PUB foo -1\r\n", [], None),
    (b"PUB foo 1x\r\n", [], None),
    (b"SUB foo\r\n", [], None),
    (b"SUB a b c d\r\n", [], None),
    (b"UNSUB a b c\r\n", [], None),
    (b"HPUB foo 5\r\n", [], None),
    (b"HPUB foo 20 10\r\n", [], None),
    (b"-ERR 'x'\r\n", [], None),
    (b"PUB foo 2\r\nhello\r\n", [], ERR_UNKNOWN_OP),
    (b"PUB foo 1048577\r\n", [], ERR_MAX_PAYLOAD),
    (b"HPUB foo 1 1048577\r\n", [], ERR_MAX_PAYLOAD),
    (b"SUB " + b"x" * 5000 + b" 1\r\n", [], ERR_MAX_CONTROL),
    (b"x" * 5000, [], ERR_MAX_CONTROL),
]


def feed_all(chunks: list[bytes], parser: Parser | None = None) -> list[tuple]:
    p = parser or Parser()
    events: list[tuple] = []
    for c in chunks:
        events.extend(p.feed(c))
    return events


def comparable(events: list[tuple]) -> list[tuple]:
    # ProtocolError instances differ by identity; compare their wire text
    return [("ERR", e[1].err) if e[0] == OP_ERR else e for e in events]


def splits(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6)))) if len(data) > 1 else []
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.parametrize(("wire", "expected"), GOOD, ids=[repr(w[:24]) for w, _ in GOOD])
def test_good_op_whole_bytewise_and_split(wire: bytes, expected: list[tuple]) -> None:
    assert feed_all([wire]) == expected
    assert feed_all([wire[i:i + 1] for i in range(len(wire))]) == expected
    rng = random.Random(len(wire))
    for _ in range(20):
        assert feed_all(splits(wire, rng)) == expected


def test_all_ops_in_one_stream() -> None:
    wire = b"".join(w for w, _ in GOOD)
    expected = [e for _, evs in GOOD for e in evs]
    assert feed_all([wire]) == expected
    assert feed_all([wire[i:i + 1] for i in range(len(wire))]) == expected
    rng = random.Random(7)
    for _ in range(50):
        assert feed_all(splits(wire, rng)) == expected


@pytest.mark.parametrize(("wire", "before", "err"), BAD, ids=[repr(w[:24]) for w, _, _ in BAD])
def test_bad_input_ends_with_one_error(wire: bytes, before: list[tuple], err: str | None) -> None:
    for chunks in ([wire], [wire[i:i + 1] for i in range(len(wire))]):
        p = Parser()
        events = comparable(feed_all(chunks, p))
        assert events == [*before, ("ERR", err)]
        assert p.dead
        assert p.feed(b"PING\r\n") == []  # dead after the error


def test_partial_input_waits() -> None:
    p = Parser()
    assert p.feed(b"PUB foo 5\r\nhel") == []
    assert p.feed(b"lo") == []
    assert p.feed(b"\r") == []
    assert p.feed(b"\n") == [(OP_PUB, b"foo", b"", b"5", b"hello\r\n")]


def test_big_payload_in_many_reads() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    wire = b"PING\r\nPUB big 1048576\r\n" + body + b"\r\nPONG\r\n"
    p = Parser()
    events: list[tuple] = []
    for i in range(0, len(wire), 4000):
        events.extend(p.feed(wire[i:i + 4000]))
    assert events == [(OP_PING,), (OP_PUB, b"big", b"", b"1048576", body + b"\r\n"), (OP_PONG,)]
    q = Parser()
    assert q.feed(wire[:30]) == [(OP_PING,)]
    assert q.feed(wire[30:-8]) == []  # payload complete but its CRLF not yet seen
    assert q.feed(wire[-8:]) == [(OP_PUB, b"big", b"", b"1048576", body + b"\r\n"), (OP_PONG,)]


def test_limits_are_per_parser() -> None:
    p = Parser(max_payload=4, max_control_line=16)
    assert p.feed(b"PUB a 4\r\nabcd\r\n") == [(OP_PUB, b"a", b"", b"4", b"abcd\r\n")]
    assert comparable(p.feed(b"PUB a 5\r\n")) == [("ERR", ERR_MAX_PAYLOAD)]
    q = Parser(max_control_line=16)
    assert q.feed(b"SUB abcdefghij 1\r\n") == [(OP_SUB, b"abcdefghij", b"", b"1")]  # exactly 16
    assert comparable(q.feed(b"SUB abcdefghijk 1\r\n")) == [("ERR", ERR_MAX_CONTROL)]


def test_control_line_limit_does_not_depend_on_split() -> None:
    line = b"SUB " + b"a" * 10 + b" 1"  # 16 bytes
    for cut in range(1, len(line) + 2):
        p = Parser(max_control_line=16)
        wire = line + b"\r\n"
        assert p.feed(wire[:cut]) + p.feed(wire[cut:]) == [(OP_SUB, b"a" * 10, b"", b"1")]


# ------------------------------------------------------------------------------ fuzz
_TOKENS = [w for w, _ in GOOD] + [w for w, _, _ in BAD if len(w) < 100] + [
    b"\r\n", b"\n", b" ", b"\t", b"PUB ", b"HPUB ", b"SUB ", b"UNSUB ", b"1", b"99", b"foo", b"\x00", b"\xff"]
protocolish = st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=12)), max_size=30).map(b"".join)


def check_event_shapes(events: list[tuple]) -> None:
    for i, ev in enumerate(events):
        op = ev[0]
        assert op in (OP_PUB, OP_HPUB, OP_SUB, OP_UNSUB, OP_CONNECT, OP_PING, OP_PONG, OP_OK, OP_ERR)
        if op == OP_ERR:
            assert i == len(events) - 1, "the error must be the last event"
        elif op == OP_PUB:
            assert ev[4].endswith(b"\r\n") and len(ev[4]) == int(ev[3]) + 2
        elif op == OP_HPUB:
            assert ev[5].endswith(b"\r\n") and len(ev[5]) == int(ev[4]) + 2 and ev[3] <= int(ev[4])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), protocolish), seed=st.integers(0, 2**32))
def test_fuzz_any_bytes_give_events_or_one_error(data: bytes, seed: int) -> None:
    whole = Parser(max_payload=64, max_control_line=64).feed(data)
    check_event_shapes(whole)
    p = Parser(max_payload=64, max_control_line=64)
    split = feed_all(splits(data, random.Random(seed)), p)
    check_event_shapes(split)
    # where the bytes were cut never changes what they mean
    assert comparable(split) == comparable(whole)
