"""Delivery outcome and retry schedule: PURE functions, no clock, no IO.

`classify` turns an HTTP result into ack / retry / dead-letter; `next_delay` gives the NAK
delay for the n-th failed delivery (exponential or constant backoff with a cap, honouring a
capped Retry-After). Jitter takes an injected random source so tests stay deterministic.

Two delivery profiles exist: `default` (the richer policy above, with dead letters) and
`kyma` (`kyma_policy`: Kyma's dispatcher exactly, a fixed NAK delay, 100 deliveries, no
delivery timeout, nothing dead-lettered or terminated).
"""

from __future__ import annotations

import enum
import random as _random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

PROFILE_DEFAULT = "default"
PROFILE_KYMA = "kyma"
PROFILES = (PROFILE_DEFAULT, PROFILE_KYMA)
# Kyma's dispatcher constants (eventing-manager pkg/backend/jetstream/jetstream.go):
# jsConsumerNakDelay, jsConsumerAckWait and jsConsumerMaxRedeliver.
KYMA_NAK_DELAY = 30.0
KYMA_ACK_WAIT = 30.0
KYMA_MAX_DELIVER = 100


class Outcome(enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class RetryPolicy:
    """Per-subscription delivery limits; `from_config` reads the Subscription's `config` map."""

    max_deliveries: int = 100          # Kyma's MaxDeliver
    backoff: str = "exponential"       # exponential | constant | linear
    initial_delay: float = 1.0         # seconds before the first redelivery
    max_delay: float = 30.0            # Kyma's fixed NAK delay becomes our cap
    delivery_timeout: float = 20.0     # must stay below the consumer's ack_wait
    retry_after_max: float = 300.0     # 0 ignores Retry-After
    no_retry_codes: frozenset[int] = field(default_factory=frozenset)  # dead-letter at once
    dead_letter: bool = True
    jitter: float = 0.0                # fraction of the delay, e.g. 0.1 = +/-10%
    profile: str = PROFILE_DEFAULT     # kyma: never dead-letter or TERM, see kyma_policy

    @classmethod
    def from_config(cls, config: dict[str, str], defaults: RetryPolicy | None = None) -> RetryPolicy:
        base = defaults or cls()
        values: dict[str, object] = {}
        if "maxDeliveryAttempts" in config:
            values["max_deliveries"] = max(1, int(config["maxDeliveryAttempts"]))
        if "backoffPolicy" in config:
            values["backoff"] = config["backoffPolicy"]
        if "backoffDelay" in config:
            values["initial_delay"] = parse_duration(config["backoffDelay"])
        if "backoffMax" in config:
            values["max_delay"] = parse_duration(config["backoffMax"])
        if "deliveryTimeout" in config:
            values["delivery_timeout"] = parse_duration(config["deliveryTimeout"])
        if "retryAfterMax" in config:
            values["retry_after_max"] = parse_duration(config["retryAfterMax"])
        if "noRetryStatusCodes" in config:
            codes = [c.strip() for c in config["noRetryStatusCodes"].split(",") if c.strip()]
            values["no_retry_codes"] = frozenset(int(c) for c in codes)
        if "deadLetter" in config:
            values["dead_letter"] = config["deadLetter"].strip().lower() in ("true", "1", "yes", "on")
        merged = {**base.__dict__, **values}
        return cls(**merged)


def kyma_policy(nak_delay: float = KYMA_NAK_DELAY, max_deliveries: int = KYMA_MAX_DELIVER) -> RetryPolicy:
    """Kyma's dispatcher as a policy: every failure is a NAK with the same delay (Kyma's
    `NakWithDelay(30s)`), whatever the status or Retry-After; `delivery_timeout` 0 means no
    HTTP timeout (Kyma's client has none); after the last delivery the event stays in the
    stream (no dead letter, no TERM). Tests pass a short `nak_delay` instead of sleeping."""
    return RetryPolicy(max_deliveries=max_deliveries, backoff="constant", initial_delay=nak_delay,
                       max_delay=nak_delay, delivery_timeout=0.0, retry_after_max=0.0,
                       no_retry_codes=frozenset(), dead_letter=False, jitter=0.0, profile=PROFILE_KYMA)


CONFIG_KEYS = ("maxDeliveryAttempts", "backoffPolicy", "backoffDelay", "backoffMax", "deliveryTimeout",
               "retryAfterMax", "noRetryStatusCodes", "deadLetter")
BACKOFF_POLICIES = ("exponential", "constant", "linear")

_ISO = re.compile(r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
                  r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")
_GO = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds from `PT0.5S` (ISO-8601, as Knative writes it), `500ms`/`1m30s` (Go) or `2.5`."""
    text = text.strip()
    m = _ISO.match(text.upper())
    if m and text.upper() not in ("P", "PT"):
        parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
        return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    pos, total = 0, 0.0
    for g in _GO.finditer(text):
        if g.start() != pos:
            break
        total += float(g.group(1)) * units[g.group(2)]
        pos = g.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}: use ISO-8601 (PT5S), Go style (5s, 500ms) or seconds")
    return total


def classify(status: int | None, policy: RetryPolicy, num_delivered: int) -> Outcome:
    """`status` None means no HTTP answer (connection refused, reset, timeout)."""
    if status is not None and 200 <= status < 300:
        return Outcome.ACK
    dead = Outcome.DEAD_LETTER if policy.dead_letter else Outcome.RETRY
    if status is not None and status in policy.no_retry_codes:
        return dead
    if num_delivered >= policy.max_deliveries:
        return dead
    return Outcome.RETRY


def next_delay(num_delivered: int, policy: RetryPolicy, retry_after: float | None = None,
               rng: _random.Random | None = None) -> float:
    """Seconds to wait before delivery number `num_delivered + 1`."""
    n = max(1, num_delivered)
    if policy.backoff == "constant":
        delay = policy.initial_delay
    elif policy.backoff == "linear":
        delay = policy.initial_delay * n
    else:
        delay = policy.initial_delay * (2.0 ** min(n - 1, 62))
    delay = min(delay, policy.max_delay)
    if policy.jitter and rng is not None:
        delay *= 1.0 + rng.uniform(-policy.jitter, policy.jitter)
    if retry_after is not None and policy.retry_after_max > 0:
        delay = max(delay, min(retry_after, policy.retry_after_max))
    return max(0.0, delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())
