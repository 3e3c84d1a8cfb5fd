"""The account JetStream limits of issue 12 as pure checks: StreamByteLimits in
check_stream_config / check_update (10113, 10122) and the account max_ack_pending in
apply_defaults / check_config (10121). The wire behaviour against nats-server is in
tests/differential/test_js_domain_limits_diff.py."""

from __future__ import annotations

from typing import Any

import pytest

from pyjetstream.jetstream.consumer_config import ConsumerConfig, StreamView, apply_defaults, check_config
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.schemas import StreamByteLimits, StreamConfig, check_stream_config, check_update

REQUIRED = StreamByteLimits(required=True, memory=1000, store=2000)


def stream(**kw: Any) -> StreamConfig:
    return StreamConfig.from_dict({"name": "S", "subjects": ["s"], **kw})


def err_code(fn: Any, *args: Any) -> int:
    with pytest.raises(ApiError) as e:
        fn(*args)
    return e.value.err_code


@pytest.mark.parametrize("max_bytes", [None, 0, -1, -5])
def test_max_bytes_required_refuses_every_unset_spelling(max_bytes: int | None) -> None:
    cfg = stream() if max_bytes is None else stream(max_bytes=max_bytes)
    assert err_code(check_stream_config, cfg, REQUIRED) == 10113


@pytest.mark.parametrize(("storage", "max_bytes", "ok"), [
    ("memory", 1000, True), ("memory", 1001, False), ("file", 2000, True), ("file", 2001, False),
    ("memory", 1, True),
])
def test_ceiling_follows_the_storage_type(storage: str, max_bytes: int, ok: bool) -> None:
    cfg = stream(storage=storage, max_bytes=max_bytes)
    if ok:
        assert check_stream_config(cfg, REQUIRED).max_bytes == max_bytes
    else:
        assert err_code(check_stream_config, cfg, REQUIRED) == 10122


def test_no_limits_and_zero_ceilings_mean_none() -> None:
    big = stream(max_bytes=1 << 40)
    assert check_stream_config(big).max_bytes == 1 << 40
    assert check_stream_config(big, StreamByteLimits()).max_bytes == 1 << 40
    assert check_stream_config(big, StreamByteLimits(memory=0, store=0)).max_bytes == 1 << 40
    assert check_stream_config(stream(), StreamByteLimits(required=False, store=5)).max_bytes == -1


def test_the_limits_come_after_the_subject_checks_as_in_nats_server() -> None:
    bad_subject = stream(subjects=["a..b"])
    with pytest.raises(ApiError) as e:
        check_stream_config(bad_subject, REQUIRED)
    assert e.value.err_code == 10052 and "invalid subject" in e.value.description


def test_update_is_checked_against_the_limits() -> None:
    old = check_stream_config(stream(storage="memory", max_bytes=500), REQUIRED)
    assert check_update(old, stream(storage="memory", max_bytes=900), REQUIRED).max_bytes == 900
    assert err_code(check_update, old, stream(storage="memory", max_bytes=1001), REQUIRED) == 10122
    assert err_code(check_update, old, stream(storage="memory"), REQUIRED) == 10113


def consumer(**kw: Any) -> ConsumerConfig:
    return ConsumerConfig.from_json({"durable_name": "d", "ack_policy": "explicit", **kw})


VIEW = StreamView("S", ["s"])


def test_account_max_ack_pending_caps_the_default_and_refuses_more() -> None:
    c = consumer()
    apply_defaults(c, 5)
    check_config(c, VIEW, 5)
    assert c.max_ack_pending == 5
    big = consumer(max_ack_pending=6)
    apply_defaults(big, 5)
    with pytest.raises(ApiError) as e:
        check_config(big, VIEW, 5)
    assert (e.value.err_code, e.value.description) == (10121, "consumer max ack pending exceeds system limit of 5")


@pytest.mark.parametrize(("kw", "limit", "expect"), [
    ({"max_ack_pending": -1}, 5, -1),  # "no limit" stays allowed, as in nats-server
    ({"max_ack_pending": 5}, 5, 5),
    ({}, 0, 1000),  # no account limit: the server default
    ({"max_ack_pending": 50000}, 0, 50000),
    ({"ack_policy": "none"}, 5, 0),  # no acks, nothing to cap
])
def test_account_max_ack_pending_edges(kw: dict[str, Any], limit: int, expect: int) -> None:
    c = consumer(**kw)
    apply_defaults(c, limit)
    check_config(c, VIEW, limit)
    assert c.max_ack_pending == expect
