"""Expiry that must not hold the event loop: a stream update that lowers max_age, and the
expiry timer after a burst of messages aged out together, remove EXPIRE_BATCH messages a step
(fair.py's slices for the update, one loop pass a step for the timer). Driven through the fake
server with a fake clock; the slice clock is set to nothing so that every step is a slice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pyjetstream.jetstream import fair
from pyjetstream.jetstream.stream import EXPIRE_BATCH

from .conftest import FakeClient, FakeClock, FakeServer, settle

N_OLD = 3 * EXPIRE_BATCH + 5


async def _stream(server: FakeServer, js: Any, **cfg: object) -> Any:
    r = await server.api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": "memory", **cfg})
    assert "error" not in r, r
    return js.accounts["$G"].streams["S"]


def _fill(server: FakeServer, n: int) -> None:
    for i in range(n):
        server.publish(server.global_account, f"s.{i % 7}", "", None, b"x")


async def test_update_lowering_max_age_expires_in_slices_before_it_answers(
        server: FakeServer, js: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = await _stream(server, js)
    _fill(server, N_OLD)
    clock.advance(10)
    _fill(server, 2)
    monkeypatch.setattr(fair, "SLICE_S", 0.0)
    client = FakeClient()
    inbox = server.new_inbox()
    cfg = {"name": "S", "subjects": ["s.>"], "storage": "memory", "max_age": 5_000_000_000}
    server.publish(server.global_account, "$JS.API.STREAM.UPDATE.S", inbox, None,
                   json.dumps(cfg).encode(), client=client)
    # the first slice ran inline and left work: the requester waits, nothing answered yet
    assert len(client.held) == 1 and not client.held[0].done()
    assert server.replies(inbox) == [] and stream.store.num_msgs > 2
    await client.held[0]
    await settle()
    (reply,) = server.replies(inbox)
    st = reply.json()["state"]
    assert (st["messages"], st["first_seq"]) == (2, N_OLD + 1)
    assert stream.next_expiry() == clock() + 5_000_000_000  # the timer armed for the rest


async def test_expiry_timer_removes_a_burst_a_batch_per_loop_pass(
        server: FakeServer, js: Any, clock: FakeClock) -> None:
    stream = await _stream(server, js, max_age=1_000_000_000)
    _fill(server, N_OLD)
    clock.advance(2)
    stream._on_expiry_timer()  # as the loop would call it once the burst is due
    assert stream.store.num_msgs == N_OLD - EXPIRE_BATCH
    # the rest is left to later loop passes, at most a batch each
    steps = []
    while stream.store.num_msgs and len(steps) < 20:
        before = stream.store.num_msgs
        await asyncio.sleep(0)  # one loop pass
        steps.append(before - stream.store.num_msgs)
    assert stream.store.num_msgs == 0
    assert max(steps) <= EXPIRE_BATCH and sum(steps) == N_OLD - EXPIRE_BATCH
