"""Pure retry decisions: classification, backoff schedule, Retry-After, config keys."""

import random
from datetime import UTC, datetime

import pytest

from pyjetstream.eventing import retry as r


def test_classify():
    p = r.RetryPolicy(max_deliveries=3, no_retry_codes=frozenset({400}))
    assert r.classify(204, p, 1) is r.Outcome.ACK
    assert r.classify(500, p, 1) is r.Outcome.RETRY
    assert r.classify(None, p, 2) is r.Outcome.RETRY
    assert r.classify(503, p, 3) is r.Outcome.DEAD_LETTER
    assert r.classify(400, p, 1) is r.Outcome.DEAD_LETTER
    no_dlq = r.RetryPolicy(max_deliveries=3, dead_letter=False)
    assert r.classify(500, no_dlq, 3) is r.Outcome.RETRY


def test_exponential_backoff_is_capped():
    p = r.RetryPolicy(initial_delay=1.0, max_delay=10.0)
    assert [r.next_delay(n, p) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert r.next_delay(10_000, p) == 10


def test_constant_and_linear():
    assert r.next_delay(5, r.RetryPolicy(backoff="constant", initial_delay=30, max_delay=30)) == 30
    assert r.next_delay(3, r.RetryPolicy(backoff="linear", initial_delay=2, max_delay=100)) == 6


def test_retry_after_raises_delay_up_to_cap():
    p = r.RetryPolicy(initial_delay=1.0, max_delay=10.0, retry_after_max=60)
    assert r.next_delay(1, p, retry_after=30) == 30
    assert r.next_delay(1, p, retry_after=600) == 60
    assert r.next_delay(5, p, retry_after=0.5) == 10
    off = r.RetryPolicy(initial_delay=1.0, retry_after_max=0)
    assert r.next_delay(1, off, retry_after=30) == 1


def test_jitter_is_bounded_and_deterministic():
    p = r.RetryPolicy(initial_delay=10, max_delay=10, jitter=0.1)
    a = [r.next_delay(1, p, rng=random.Random(7)) for _ in range(3)]
    b = [r.next_delay(1, p, rng=random.Random(7)) for _ in range(3)]
    assert a == b
    assert all(9 <= d <= 11 for d in a)


def test_parse_retry_after():
    now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert r.parse_retry_after("120") == 120
    assert r.parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now) == 30
    assert r.parse_retry_after("garbage") is None
    assert r.parse_retry_after(None) is None


@pytest.mark.parametrize("text,seconds", [("PT0.2S", 0.2), ("PT1M30S", 90), ("P1D", 86400),
                                          ("500ms", 0.5), ("1m30s", 90), ("2.5", 2.5)])
def test_parse_duration(text, seconds):
    assert r.parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_rejects_garbage():
    with pytest.raises(ValueError):
        r.parse_duration("soon")


def test_policy_from_config():
    p = r.RetryPolicy.from_config({"maxDeliveryAttempts": "5", "backoffPolicy": "constant",
                                   "backoffDelay": "PT2S", "backoffMax": "1m", "deliveryTimeout": "3s",
                                   "noRetryStatusCodes": "400, 410", "deadLetter": "false"})
    assert (p.max_deliveries, p.backoff, p.initial_delay, p.max_delay, p.delivery_timeout) == (5, "constant", 2, 60, 3)
    assert p.no_retry_codes == {400, 410} and p.dead_letter is False
    assert r.RetryPolicy.from_config({}) == r.RetryPolicy()
