"""Consumer API-level metadata (nats-server 2.12): `_nats.req.level` stored with a consumer's
config (1 for a pause deadline or priority groups, else 0), `_nats.ver` and `_nats.level` added
to create and info answers and never stored, list answers with the stored metadata only, the
pause API recomputing the level, and a create with the returned config being the same
consumer. Streams: the list answer too has the stored metadata only."""

from __future__ import annotations

from typing import Any

import pytest

from pyjetstream.jetstream.consumer_config import ConsumerConfig, consumer_required_level
from pyjetstream.jetstream.schemas import JS_API_LEVEL
from pyjetstream.version import VERSION

from .conftest import FakeServer

DYNAMIC = {"_nats.ver": VERSION, "_nats.level": str(JS_API_LEVEL)}


async def _setup(server: FakeServer) -> None:
    r = await server.api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    assert "error" not in r, r


async def _create(server: FakeServer, name: str, action: str = "", **cfg: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"stream_name": "S", "config": {"name": name, "ack_policy": "explicit", **cfg}}
    if action:
        body["action"] = action
    return await server.api(f"CONSUMER.CREATE.S.{name}", body)


def _stored(js: Any, name: str) -> dict[str, str] | None:
    return js.accounts["$G"].streams["S"].consumers[name].config.metadata


@pytest.mark.parametrize(("extra", "level"), [
    ({}, "0"),
    ({"pause_until": "2099-01-01T00:00:00Z"}, "1"),
    ({"pause_until": "2000-01-01T00:00:00Z"}, "1"),  # a deadline already past still counts
    ({"pause_until": "0001-01-01T00:00:00Z"}, "0"),  # Go's zero time is no deadline
    ({"priority_groups": ["g"], "priority_policy": "overflow"}, "1"),
    ({"priority_groups": ["g"], "priority_policy": "pinned_client"}, "1"),
    ({"priority_groups": ["g"], "priority_policy": "prioritized"}, "1"),
])
async def test_required_level_stored_and_dynamic_keys_answered(server: FakeServer, js: Any,
                                                               extra: dict[str, Any], level: str) -> None:
    await _setup(server)
    r = await _create(server, "C", **extra)
    assert r["config"]["metadata"] == {"_nats.req.level": level, **DYNAMIC}
    assert _stored(js, "C") == {"_nats.req.level": level}
    info = await server.api("CONSUMER.INFO.S.C")
    assert info["config"]["metadata"] == {"_nats.req.level": level, **DYNAMIC}
    listed = await server.api("CONSUMER.LIST.S")
    assert [c["config"]["metadata"] for c in listed["consumers"]] == [{"_nats.req.level": level}]


async def test_client_keys_overwritten_user_keys_kept_and_create_is_idempotent(server: FakeServer, js: Any) -> None:
    await _setup(server)
    r = await _create(server, "C", metadata={"team": "a", "_nats.ver": "x", "_nats.level": "9", "_nats.req.level": "7"})
    assert r["config"]["metadata"] == {"team": "a", "_nats.req.level": "0", **DYNAMIC}
    assert _stored(js, "C") == {"team": "a", "_nats.req.level": "0"}
    # the config as answered, sent back with action create, is the same consumer (not 10148)
    again = await server.api("CONSUMER.CREATE.S.C", {"stream_name": "S", "config": r["config"], "action": "create"})
    assert "error" not in again, again
    # a different user key is a different consumer
    other = await _create(server, "C", action="create", metadata={"team": "b"})
    assert other["error"]["err_code"] == 10148


async def test_consumer_stored_without_level_is_still_the_same(server: FakeServer, js: Any) -> None:
    await _setup(server)
    r = await _create(server, "C")
    runner = js.accounts["$G"].streams["S"].consumers["C"]
    runner.core.cfg.metadata = None  # as a consumer created before levels were stored loads
    again = await server.api("CONSUMER.CREATE.S.C", {"stream_name": "S", "config": r["config"], "action": "create"})
    assert "error" not in again, again


async def test_pause_api_and_update_recompute_the_level(server: FakeServer, js: Any) -> None:
    await _setup(server)
    await _create(server, "C")
    await server.api("CONSUMER.PAUSE.S.C", {"pause_until": "2099-01-01T00:00:00Z"})
    assert _stored(js, "C") == {"_nats.req.level": "1"}
    assert (await server.api("CONSUMER.INFO.S.C"))["config"]["metadata"]["_nats.req.level"] == "1"
    await server.api("CONSUMER.PAUSE.S.C", b"")
    assert _stored(js, "C") == {"_nats.req.level": "0"}
    r = await _create(server, "C", action="update", metadata={"x": "y"})
    assert r["config"]["metadata"] == {"x": "y", "_nats.req.level": "0", **DYNAMIC}


async def test_update_keeps_the_pause_deadline(server: FakeServer, js: Any) -> None:
    """nats-server 2.12 sets an existing consumer's pause_until back to its own on create and
    update: only the pause API moves it."""
    await _setup(server)
    await _create(server, "C", pause_until="2099-01-01T00:00:00Z")
    r = await _create(server, "C", action="update", pause_until="2098-01-01T00:00:00Z")
    assert r["config"]["pause_until"] == "2099-01-01T00:00:00Z"
    r = await _create(server, "C", action="update")
    assert r["config"]["pause_until"] == "2099-01-01T00:00:00Z"
    assert r["config"]["metadata"]["_nats.req.level"] == "1"


def test_required_level_function() -> None:
    assert consumer_required_level(ConsumerConfig()) == 0
    assert consumer_required_level(ConsumerConfig(priority_timeout=5)) == 1
    assert consumer_required_level(ConsumerConfig(priority_groups=["g"])) == 1
    assert consumer_required_level(ConsumerConfig(pause_until="0001-01-01T00:00:00Z")) == 0


async def test_stream_list_carries_the_stored_metadata_only(server: FakeServer, js: Any) -> None:
    """As nats-server 2.12's stream list (its create, update and info answers add the rest)."""
    await server.api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "metadata": {"team": "a"}})
    listed = await server.api("STREAM.LIST")
    assert [s["config"]["metadata"] for s in listed["streams"]] == [{"team": "a", "_nats.req.level": "0"}]
    info = await server.api("STREAM.INFO.S")
    assert info["config"]["metadata"] == {"team": "a", "_nats.req.level": "0", **DYNAMIC}
