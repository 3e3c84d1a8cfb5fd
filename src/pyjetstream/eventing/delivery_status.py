"""The last delivery failure per Subscription, as the dispatcher saw it, and when to write it.

Owns the in-memory record (time, reason, HTTP status, attempt, consumer; the success that
cleared it) and the rate limit on publishing it: a Subscription's record is due for writing
when it changed and its last write is at least `interval` seconds old, so a sink that fails
every delivery costs one status write per interval, not one per delivery. Writing is the
manager's job (it owns the status); this module only decides what and when, with the clocks
passed in, so the rate limit is tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# One status write per Subscription per this many seconds at most.
WRITE_INTERVAL = 2.0
REASON_LIMIT = 256   # characters of a reason kept (a sink's answer is its text, not ours)


@dataclass
class DeliveryState:
    failed_at: float                # wall clock of the last failure
    reason: str
    status_code: int | None         # None: no HTTP answer
    attempt: int                    # the event's delivery attempt that failed (1 = first)
    consumer: str
    recovered_at: float | None = None   # wall clock of the first success after it
    dirty: bool = True
    written_at: float = float("-inf")   # monotonic time of the last write

    def fields(self) -> dict[str, Any]:
        """What goes into `status.backend.deliveryStatus` (Kyma's EventMesh field names)."""
        out: dict[str, Any] = {"lastFailedDelivery": rfc3339(self.failed_at),
                               "lastFailedDeliveryReason": self.reason,
                               "lastFailedDeliveryAttempt": self.attempt,
                               "lastFailedDeliveryConsumer": self.consumer}
        if self.status_code is not None:
            out["lastFailedDeliveryStatusCode"] = self.status_code
        if self.recovered_at is not None:
            out["lastSuccessfulDelivery"] = rfc3339(self.recovered_at)
        return out


def rfc3339(at: float) -> str:
    """Second precision would hide a recovery within the second of its failure."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class DeliveryStatusBook:
    """Per Subscription key (`ns/name`): the last failure, and which records are due for writing."""

    def __init__(self, interval: float = WRITE_INTERVAL, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.wall = wall
        self.monotonic = monotonic
        self.states: dict[str, DeliveryState] = {}
        # Keys with a failure not yet followed by a success: the success path of a delivery
        # looks only at this (empty while every sink answers 2xx).
        self.failing: set[str] = set()
        # Called when a record became dirty (the manager wakes its writer).
        self.on_change: Callable[[], None] | None = None

    def failed(self, key: str, reason: str, status_code: int | None, attempt: int, consumer: str) -> None:
        state = self.states.get(key)
        now = self.wall()
        reason = one_line(reason)
        if state is None:
            self.states[key] = DeliveryState(now, reason, status_code, attempt, consumer)
        else:
            state.failed_at, state.reason, state.status_code = now, reason, status_code
            state.attempt, state.consumer, state.recovered_at, state.dirty = attempt, consumer, None, True
        self.failing.add(key)
        if self.on_change is not None:
            self.on_change()

    def succeeded(self, key: str) -> None:
        if key not in self.failing:
            return
        self.failing.discard(key)
        state = self.states[key]
        state.recovered_at = self.wall()
        state.dirty = True
        if self.on_change is not None:
            self.on_change()

    def forget(self, key: str) -> None:
        self.states.pop(key, None)
        self.failing.discard(key)

    def due(self) -> tuple[list[tuple[str, dict[str, Any]]], float | None]:
        """(records to write now as (key, fields)), seconds until the next one is due or None)."""
        now = self.monotonic()
        out: list[tuple[str, dict[str, Any]]] = []
        wait: float | None = None
        for key, state in self.states.items():
            if not state.dirty:
                continue
            left = state.written_at + self.interval - now
            if left <= 0:
                out.append((key, state.fields()))
            elif wait is None or left < wait:
                wait = left
        return out, wait

    def written(self, key: str, fields: dict[str, Any] | None) -> None:
        """A write for `key` was made: of `fields`, or None when it failed (tried again after
        the interval). A change since `fields` were taken stays dirty."""
        state = self.states.get(key)
        if state is None:
            return
        state.written_at = self.monotonic()
        state.dirty = fields is None or state.fields() != fields
