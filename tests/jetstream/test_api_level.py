"""API level and asset metadata (nats-server 2.11+): `_nats.req.level` stored with a stream's
config (the level its features need), `_nats.ver` and `_nats.level` added to every answer and
never stored, and the level in account info and Nats-Required-Api-Level checks."""

from __future__ import annotations

from typing import Any

from pyjetstream.jetstream.schemas import JS_API_LEVEL
from pyjetstream.version import VERSION

from .conftest import FakeServer, hdrs


async def create(server: FakeServer, name: str, **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, **cfg})
    assert "error" not in r, r
    return r


def test_level_claimed() -> None:
    assert JS_API_LEVEL == 2


async def test_required_level_per_feature(server: FakeServer, js: Any) -> None:
    cases = (({}, "0"), ({"allow_msg_ttl": True}, "1"), ({"subject_delete_marker_ttl": 2_000_000_000}, "1"),
             ({"allow_atomic": True}, "2"), ({"allow_msg_schedules": True}, "2"),
             ({"allow_msg_counter": True}, "2"), ({"persist_mode": "async"}, "2"),
             ({"allow_atomic": True, "allow_msg_ttl": True}, "2"))
    for i, (extra, level) in enumerate(cases):
        r = await create(server, f"S{i}", subjects=[f"s{i}"], **extra)
        assert r["config"]["metadata"] == {"_nats.req.level": level, "_nats.ver": VERSION,
                                           "_nats.level": str(JS_API_LEVEL)}, extra
        # only the required level is stored
        assert js.accounts["$G"].streams[f"S{i}"].config.metadata == {"_nats.req.level": level}


async def test_user_metadata_kept_and_echo_is_idempotent(server: FakeServer, js: Any) -> None:
    r = await create(server, "S", metadata={"team": "a", "_nats.ver": "9.9.9", "_nats.level": "99"})
    cfg = r["config"]
    assert cfg["metadata"] == {"team": "a", "_nats.req.level": "0", "_nats.ver": VERSION,
                               "_nats.level": str(JS_API_LEVEL)}
    # a client creating again with the config it was given gets the same stream, not 10058
    again = await server.api("STREAM.CREATE.S", cfg)
    assert "error" not in again, again
    info = await server.api("STREAM.INFO.S")
    assert info["config"]["metadata"] == cfg["metadata"]


async def test_update_recomputes_the_required_level(server: FakeServer, js: Any) -> None:
    cfg = (await create(server, "S"))["config"]
    r = await server.api("STREAM.UPDATE.S", {**cfg, "allow_atomic": True})
    assert r["config"]["metadata"]["_nats.req.level"] == "2"
    r = await server.api("STREAM.UPDATE.S", {**r["config"], "allow_atomic": False})
    assert r["config"]["metadata"]["_nats.req.level"] == "0"


async def test_account_info_level_and_required_level_header(server: FakeServer, js: Any) -> None:
    info = await server.api("INFO")
    assert info["api"]["level"] == 2
    ok = await server.request("$JS.API.INFO", b"", hdr=hdrs(Nats_Required_Api_Level="2"))
    assert "error" not in ok.json()
    refused = await server.request("$JS.API.INFO", b"", hdr=hdrs(Nats_Required_Api_Level="3"))
    assert refused.json()["error"]["err_code"] == 10185
