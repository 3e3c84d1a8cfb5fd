"""A stream's consumer_limits (2.10) as consumer defaults and caps, and the stream update check
against the consumers already there: the pure config functions."""

from __future__ import annotations

import pytest

from pyjetstream.jetstream.consumer_config import (
    ConsumerConfig,
    StreamView,
    apply_defaults,
    check_config,
    check_limits_update,
)
from pyjetstream.jetstream.errors import ApiError

S = 1_000_000_000
LIMITED = StreamView("S", ["s.>"], limit_inactive_threshold=10 * S, limit_max_ack_pending=50)


def configured(d: dict, view: StreamView = LIMITED, acct_map: int = 0) -> ConsumerConfig:
    c = ConsumerConfig.from_json(d)
    apply_defaults(c, acct_map, view)
    check_config(c, view, acct_map)
    return c


def refused(d: dict, view: StreamView = LIMITED) -> tuple[int, str]:
    with pytest.raises(ApiError) as e:
        configured(d, view)
    return e.value.err_code, e.value.description


def test_limits_are_the_defaults_for_durables_and_ephemerals() -> None:
    for d in ({"durable_name": "D", "ack_policy": "explicit"}, {"ack_policy": "explicit"}):
        c = configured(d)
        assert (c.max_ack_pending, c.inactive_threshold) == (50, 10 * S)
    # max_ack_pending is given whatever the ack policy, as nats-server does ...
    assert configured({"durable_name": "N", "ack_policy": "none"}).max_ack_pending == 50
    # ... which a push consumer without acks then refuses
    assert refused({"durable_name": "P", "ack_policy": "none", "deliver_subject": "d"})[0] == 10082
    # a limit above the built-in default of 1000 is the default
    high = StreamView("S", ["s.>"], limit_max_ack_pending=2000)
    assert configured({"durable_name": "D", "ack_policy": "explicit"}, high).max_ack_pending == 2000
    # without limits: the old defaults
    c = configured({"ack_policy": "explicit"}, StreamView("S", ["s.>"]))
    assert (c.max_ack_pending, c.inactive_threshold) == (1000, 5 * S)


def test_limits_cap_what_a_consumer_asks_for() -> None:
    assert configured({"durable_name": "A", "ack_policy": "explicit", "max_ack_pending": 50,
                       "inactive_threshold": 10 * S}).max_ack_pending == 50
    assert refused({"durable_name": "X", "ack_policy": "explicit", "max_ack_pending": 51}) == (
        10121, "consumer max ack pending exceeds system limit of 50")
    assert refused({"durable_name": "X", "ack_policy": "explicit", "inactive_threshold": 10 * S + 1}) == (
        10153, "consumer inactive threshold exceeds system limit of 10s")
    assert configured({"durable_name": "M", "ack_policy": "explicit", "max_ack_pending": -1}).max_ack_pending == -1
    # the account's cap is looked at first
    with pytest.raises(ApiError) as e:
        configured({"durable_name": "X", "ack_policy": "explicit", "max_ack_pending": 60}, LIMITED, acct_map=40)
    assert e.value.description.endswith("limit of 40")


def test_stream_update_checks_new_limits_against_its_consumers() -> None:
    cs = [("b", configured({"durable_name": "b", "ack_policy": "explicit", "max_ack_pending": 20})),
          ("a", configured({"durable_name": "a", "ack_policy": "explicit"}))]  # 50 and 10 s
    with pytest.raises(ApiError) as e:
        check_limits_update({"max_ack_pending": 50}, {"max_ack_pending": 10}, cs)
    assert (e.value.code, e.value.err_code, e.value.description) == (
        500, 10069, "change to limits violates consumers: a, b")
    with pytest.raises(ApiError) as e:
        check_limits_update({}, {"inactive_threshold": 5 * S}, cs)
    assert e.value.description == "change to limits violates consumers: a, b"
    check_limits_update({}, {"max_ack_pending": 60}, cs)
    # unchanged or lifted limits are not checked again
    check_limits_update({"max_ack_pending": 10}, {"max_ack_pending": 10}, cs)
    check_limits_update({"max_ack_pending": 10}, {}, cs)
