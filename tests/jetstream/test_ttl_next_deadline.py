"""Per-message TTL: after one TTL expires, the stream's timer aims at the next TTL the store
holds, not at a one-second poll (found by nats.py's test_publish_msg_ttl, which looks 0.5 s
after a 3 s TTL and saw the message still there)."""

from __future__ import annotations

from typing import Any

from .conftest import FakeClock, FakeServer, hdrs

SEC = 1_000_000_000


async def _pub(server: FakeServer, ttl: str | None) -> int:
    r = (await server.request("S", b"x", hdr=hdrs(Nats_TTL=ttl) if ttl else None)).json()
    assert "error" not in r, r
    return int(r["seq"])


async def test_next_expiry_is_the_next_stored_ttl(server: FakeServer, js: Any, clock: FakeClock) -> None:
    r = await server.api("STREAM.CREATE.S", {"name": "S", "allow_msg_ttl": True})
    assert "error" not in r, r
    t0 = clock()
    await _pub(server, "2s")
    clock.advance(0.3)
    await _pub(server, "3s")
    await _pub(server, None)
    clock.advance(0.4)
    await _pub(server, "10s")
    stream = js.accounts["$G"].streams["S"]
    assert stream.next_expiry() == t0 + 2 * SEC
    clock.advance(1.4)  # t0 + 2.1 s
    assert stream.expire(clock()) == 1
    # the 3 s message published at t0 + 0.3 s, exactly; a poll would say t0 + 3.1 s
    assert stream.next_expiry() == t0 + 3 * SEC + 300_000_000
    clock.now = t0 + 3 * SEC + 300_000_000 - 1
    assert stream.expire(clock()) == 0
    clock.now += 1
    assert stream.expire(clock()) == 1
    assert stream.next_expiry() == t0 + 10 * SEC + 700_000_000
    clock.now = stream.next_expiry()
    assert stream.expire(clock()) == 1
    st = (await server.api("STREAM.INFO.S"))["state"]
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (1, 3, 4)
    assert stream.store.next_ttl_deadline() == 0
