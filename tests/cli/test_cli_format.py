"""Pure rendering and parsing of the CLI: units, ages, templates, and the `stream ls` snapshot."""

from __future__ import annotations

import argparse
import random

import pytest

from pyjetstream.cli import common as c
from pyjetstream.cli import msg, stream

STREAMS = [
    {"config": {"name": "ORDERS", "description": "Order events"}, "created": "2026-11-26T06:00:00.123456789Z",
     "state": {"messages": 3, "bytes": 318, "last_ts": "2026-11-26T06:10:00.000000000Z"}},
    {"config": {"name": "EMPTY"}, "created": "2026-11-25T23:59:59Z",
     "state": {"messages": 0, "bytes": 0, "last_ts": "0001-01-01T00:00:00Z"}},
    {"config": {"name": "BIG", "description": "a rather long description that will need to be shortened"},
     "created": "2026-11-20T08:00:00Z",
     "state": {"messages": 1234567, "bytes": 1288490189, "last_ts": "2026-11-26T06:07:08Z"}},
]

SNAPSHOT_100 = """\
╭──────────────────────────────────────────────────────────────────────────────────────────────────╮
│                                             Streams                                              │
├────────┬──────────────────────────────┬─────────────────────┬───────────┬─────────┬──────────────┤
│ Name   │ Description                  │ Created             │ Messages  │ Size    │ Last Message │
├────────┼──────────────────────────────┼─────────────────────┼───────────┼─────────┼──────────────┤
│ EMPTY  │                              │ 2026-11-25 23:59:59 │ 0         │ 0 B     │ never        │
│ ORDERS │ Order events                 │ 2026-11-26 06:00:00 │ 3         │ 318 B   │ 5.80s        │
│ BIG    │ a rather long description t… │ 2026-11-20 08:00:00 │ 1,234,567 │ 1.2 GiB │ 2m57s        │
╰────────┴──────────────────────────────┴─────────────────────┴───────────┴─────────┴──────────────╯
"""


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_stream_ls_snapshot_fixed_clock_and_width(utc: None) -> None:
    now = c.Clock.from_env({c.NOW_ENV: "2026-11-26T06:10:05.8Z"}).now_ns()
    assert stream.render_stream_list(STREAMS, now, 100) == SNAPSHOT_100


def test_stream_ls_unlimited_width_keeps_description(utc: None) -> None:
    now = c.parse_time_ns("2026-11-26T06:10:05.8Z")
    text = stream.render_stream_list(STREAMS, now, 0)
    assert "a rather long description that will need to be shortened" in text
    widths = {len(line) for line in text.splitlines()}
    assert len(widths) == 1  # every line of the box has the same width


def test_stream_ls_empty() -> None:
    assert stream.render_stream_list([], 0) == "No Streams defined\n"


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (9, "9 B"), (318, "318 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1234, "1.2 KiB"),
    (12345, "12 KiB"), (10 * 1024 * 1024, "10 MiB"), (1288490189, "1.2 GiB"),
])
def test_human_bytes(n: int, text: str) -> None:
    assert c.human_bytes(n) == text


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (512_000, "512µs"), (5_000_000, "5ms"), (5_800_000_000, "5.80s"), (59_990_000_000, "59.99s"),
    (182_000_000_000, "3m2s"), (3_600_000_000_000, "1h0m0s"), (90_061_000_000_000, "1d1h1m1s"),
    (366 * 86_400_000_000_000, "1y1d0h0m0s"), (None, "never"),
])
def test_human_duration(ns: int | None, text: str) -> None:
    assert c.human_duration(ns) == text


def test_age_of_zero_time_is_never() -> None:
    assert c.age(10**18, c.parse_time_ns("0001-01-01T00:00:00Z")) == "never"


def test_parse_time_keeps_nanoseconds_and_offsets() -> None:
    base = c.parse_time_ns("2026-11-26T06:00:00Z")
    assert c.parse_time_ns("2026-11-26T06:00:00.000000123Z") == base + 123
    assert c.parse_time_ns("2026-11-26T08:00:00+02:00") == base
    assert c.parse_time_ns(c.format_rfc3339(base + 5)) == base + 5
    with pytest.raises(ValueError):
        c.parse_time_ns("yesterday")


def test_parse_size_and_duration() -> None:
    assert c.parse_size("10KB") == 10240
    assert c.parse_size("1.5MiB") == 1572864
    assert c.parse_size("2g") == 2 * 1024**3
    assert c.parse_size("-1") == -1
    assert c.parse_duration_ns("1h30m") == 5_400_000_000_000
    assert c.parse_duration_ns("500ms") == 500_000_000
    assert c.parse_duration_ns("2") == 2_000_000_000
    with pytest.raises(ValueError):
        c.parse_duration_ns("2 weeks")


def test_templates_number_each_message() -> None:
    assert [msg.expand("order {{Count}} of {{ .Count }}", n) for n in (1, 2)] == ["order 1 of 1", "order 2 of 2"]
    assert msg.expand("{{Unix}}/{{UnixNano}}", 1, now_ns=1_700_000_000_123) == "1700/1700000000123"
    assert msg.expand("{{Request}}!", 1, request="ping") == "ping!"
    assert len(msg.expand("{{Random 5 5}}", 1, rng=random.Random(1))) == 5
    assert msg.expand("{{Nope}}", 3) == "{{Nope}}"


def test_stream_info_layout(utc: None) -> None:
    info = {
        "created": "2026-11-26T06:00:00Z",
        "config": {"name": "ORDERS", "subjects": ["orders.>", "returns.>"], "retention": "limits",
                   "max_consumers": -1, "max_msgs": 1000, "max_bytes": -1, "max_age": 3_600_000_000_000,
                   "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "memory",
                   "num_replicas": 1, "duplicate_window": 120_000_000_000},
        "state": {"messages": 2, "bytes": 318, "first_seq": 1, "first_ts": "2026-11-26T06:00:01Z",
                  "last_seq": 2, "last_ts": "2026-11-26T06:00:02Z", "consumer_count": 1, "num_subjects": 2},
    }
    text = stream.render_stream_info(info)
    lines = text.splitlines()
    assert lines[0] == "Information for Stream ORDERS created 2026-11-26 06:00:00"
    for title in ("Configuration:", "Options:", "Limits:", "State:"):
        i = lines.index(title)
        assert lines[i - 1] == "" and lines[i + 1] == ""
    assert "              Subjects: orders.>, returns.>" in lines
    assert "               Storage: Memory" in lines
    assert "      Maximum Messages: 1,000" in lines
    assert "           Maximum Age: 1h0m0s" in lines
    assert "      Duplicate Window: 2m0s" in lines
    assert "                 Bytes: 318 B" in lines
    assert "        First Sequence: 1 @ 2026-11-26 06:00:01" in lines
    # every label ends in the same column
    rows = [ln for ln in lines if ": " in ln and not ln.startswith("Information")]
    assert len({ln.index(": ") for ln in rows}) == 1
    state_only = stream.render_stream_info(info, state_only=True)
    assert state_only.startswith("State for Stream ORDERS") and "Options:" not in state_only


def test_option_parent_keeps_options_given_before_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyjetstream.cli.main import build_parser

    monkeypatch.delenv("NATS_URL", raising=False)
    parser = build_parser()
    before = parser.parse_args(["-s", "nats://a:1", "stream", "ls"])
    after = parser.parse_args(["stream", "ls", "-s", "nats://b:2", "--timeout", "3"])
    assert before.server == "nats://a:1"
    assert (after.server, after.timeout) == ("nats://b:2", 3.0)
    assert isinstance(before, argparse.Namespace) and before.func is stream.cmd_ls


CONSUMERS = [
    {"name": "PROC", "stream_name": "ORDERS", "created": "2026-11-26T06:00:00Z",
     "config": {"description": "worker", "ack_policy": "explicit", "ack_wait": 30_000_000_000,
                "max_ack_pending": 1000},
     "delivered": {"consumer_seq": 3, "stream_seq": 3, "last_active": "2026-11-26T06:09:00Z"},
     "ack_floor": {"consumer_seq": 2, "stream_seq": 2}, "num_ack_pending": 1, "num_pending": 1500,
     "num_redelivered": 0, "num_waiting": 0},
    {"name": "IDLE", "stream_name": "ORDERS", "created": "2026-11-26T06:01:00Z",
     "config": {"deliver_subject": "push.x", "ack_policy": "none"},
     "delivered": {"consumer_seq": 0, "stream_seq": 0}, "ack_floor": {}, "num_ack_pending": 0,
     "num_pending": 1503},
]

CONSUMERS_SNAPSHOT = """\
╭──────────────────────────────────────────────────────────────────────────────────────╮
│                                      Consumers                                       │
├──────┬─────────────┬─────────────────────┬─────────────┬─────────────┬───────────────┤
│ Name │ Description │ Created             │ Ack Pending │ Unprocessed │ Last Delivery │
├──────┼─────────────┼─────────────────────┼─────────────┼─────────────┼───────────────┤
│ IDLE │             │ 2026-11-26 06:01:00 │ 0           │ 1,503       │ never         │
│ PROC │ worker      │ 2026-11-26 06:00:00 │ 1           │ 1,500       │ 1m5s          │
╰──────┴─────────────┴─────────────────────┴─────────────┴─────────────┴───────────────╯
"""


def test_consumer_ls_snapshot(utc: None) -> None:
    from pyjetstream.cli import consumer

    now = c.parse_time_ns("2026-11-26T06:10:05Z")
    assert consumer.render_consumer_list(CONSUMERS, now) == CONSUMERS_SNAPSHOT


def test_consumer_info_state_lines(utc: None) -> None:
    from pyjetstream.cli import consumer

    now = c.parse_time_ns("2026-11-26T06:10:05Z")
    lines = [ln.strip() for ln in consumer.render_consumer_info(CONSUMERS[0], now).splitlines()]
    assert lines[0] == "Information for Consumer ORDERS > PROC created 2026-11-26 06:00:00"
    assert "Last Delivered Message: Consumer sequence: 3 Stream sequence: 3 Last delivery: 1m5s ago" in lines
    assert "Outstanding Acks: 1 out of maximum 1,000" in lines
    assert "Waiting Pulls: 0 of unlimited" in lines
    push = [ln.strip() for ln in consumer.render_consumer_info(CONSUMERS[1], now).splitlines()]
    assert "Delivery Subject: push.x" in push and "Ack Wait: 30.00s" not in push
    assert not any(ln.startswith("Outstanding Acks") for ln in push)
