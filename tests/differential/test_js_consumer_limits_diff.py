"""A stream's `consumer_limits` (2.10) applied to the consumers created on it: max_ack_pending
and inactive_threshold as defaults (durables too) and as caps (10121, 10153), over real sockets
with nats-py. The transcript runs on ours (always) and, when NATS_SERVER_NEW names a 2.10+
binary, on it too; the two must agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours, start_kind

NEWER = os.environ.get("NATS_SERVER_NEW", "")
S = 1_000_000_000


def _shape(r: dict[str, Any]) -> Any:
    if "error" in r:
        return ("error", r["error"]["code"], r["error"]["err_code"], r["error"]["description"])
    c = r["config"]
    return ("ok", c.get("max_ack_pending"), c.get("inactive_threshold"), c.get("ack_policy"))


async def _create(nc: nats.NATS, stream: str, cfg: dict[str, Any], name: str = "") -> Any:
    subj = f"$JS.API.CONSUMER.CREATE.{stream}" + (f".{name}" if name else "")
    body = {"stream_name": stream, "config": cfg}
    return _shape(json.loads((await nc.request(subj, json.dumps(body).encode(), timeout=3)).data))


async def transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []
    try:
        for name, limits in (("L", {"inactive_threshold": 10 * S, "max_ack_pending": 50}),
                             ("H", {"max_ack_pending": 2000}), ("I", {"inactive_threshold": 90 * S})):
            r = await nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(
                {"name": name, "subjects": [f"{name.lower()}.>"], "consumer_limits": limits}).encode(), timeout=3)
            out.append(("stream", name, json.loads(r.data)["config"]["consumer_limits"]))
        for stream, label, cfg, cname in (
                ("L", "durable pull defaults", {"durable_name": "D", "ack_policy": "explicit"}, "D"),
                ("L", "ephemeral pull defaults", {"ack_policy": "explicit"}, ""),
                ("L", "ack none pull", {"durable_name": "N", "ack_policy": "none"}, "N"),
                ("L", "push ack none", {"durable_name": "PN", "ack_policy": "none", "deliver_subject": "d.pn"}, "PN"),
                ("L", "push explicit", {"durable_name": "PE", "ack_policy": "explicit", "deliver_subject": "d.pe"},
                 "PE"),
                ("L", "below caps", {"durable_name": "B", "ack_policy": "all", "max_ack_pending": 20,
                                     "inactive_threshold": 5 * S}, "B"),
                ("L", "at caps", {"durable_name": "AT", "ack_policy": "explicit", "max_ack_pending": 50,
                                  "inactive_threshold": 10 * S}, "AT"),
                ("L", "max_ack_pending above", {"durable_name": "X1", "ack_policy": "explicit",
                                                "max_ack_pending": 51}, "X1"),
                ("L", "inactive above", {"durable_name": "X2", "ack_policy": "explicit",
                                         "inactive_threshold": 11 * S}, "X2"),
                ("L", "max_ack_pending -1", {"durable_name": "M1", "ack_policy": "explicit",
                                             "max_ack_pending": -1}, "M1"),
                ("H", "default above 1000", {"durable_name": "D", "ack_policy": "explicit"}, "D"),
                ("H", "explicit 1500", {"durable_name": "E", "ack_policy": "explicit", "max_ack_pending": 1500}, "E"),
                ("I", "ephemeral 90s", {"ack_policy": "explicit"}, ""),
                ("I", "inactive 91s", {"ack_policy": "explicit", "inactive_threshold": 91 * S}, ""),
        ):
            out.append((label, await _create(nc, stream, cfg, cname)))
        # an update is held to the caps too
        out.append(("update above", await _create(nc, "L", {"durable_name": "D", "ack_policy": "explicit",
                                                             "max_ack_pending": 60}, "D")))
        # a stream update may not lower the limits below what its consumers have (10069)
        for limits in ({"max_ack_pending": 1800}, {"max_ack_pending": 3000}, {"inactive_threshold": S}):
            r = json.loads((await nc.request("$JS.API.STREAM.UPDATE.H", json.dumps(
                {"name": "H", "subjects": ["h.>"], "consumer_limits": limits}).encode(), timeout=3)).data)
            out.append(("stream update", limits, r.get("error"), r.get("config", {}).get("consumer_limits")))
    finally:
        await nc.close()
    return out


async def test_consumer_limits_transcript_on_ours(tmp_path: Path) -> None:
    proc = start_kind("ours", tmp_path / "ours")
    try:
        t = dict(e if len(e) == 2 else (f"{e[0]} {e[1]}", e[2:] if len(e) > 3 else e[2])
                 for e in await transcript(proc.url))
    finally:
        proc.stop()
    assert t["durable pull defaults"] == ("ok", 50, 10 * S, "explicit")
    assert t["ephemeral pull defaults"] == ("ok", 50, 10 * S, "explicit")
    assert t["max_ack_pending above"] == ("error", 400, 10121, "consumer max ack pending exceeds system limit of 50")
    assert t["inactive above"] == ("error", 400, 10153, "consumer inactive threshold exceeds system limit of 10s")
    assert t["inactive 91s"] == ("error", 400, 10153, "consumer inactive threshold exceeds system limit of 1m30s")
    assert t["default above 1000"] == ("ok", 2000, None, "explicit")
    assert t["update above"][2] == 10121
    updates = [e for e in t.items() if e[0].startswith("stream update")]
    assert [u[1] for u in updates] == [
        ({"code": 500, "err_code": 10069, "description": "change to limits violates consumers: D"}, None),
        (None, {"max_ack_pending": 3000}), (None, {"inactive_threshold": S})]


@pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")
async def test_consumer_limits_transcript_matches_a_newer_nats_server(tmp_path: Path) -> None:
    results = await run_on_newer_and_ours(tmp_path, transcript)
    assert_same_steps(results["ours"], results["newer"])
