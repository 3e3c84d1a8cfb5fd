"""Differential: consumer API-level metadata (nats-server 2.12) against a newer nats-server
(NATS_SERVER_NEW): the `_nats.req.level` a consumer's features need (pause deadlines, priority
groups), the server's `_nats.ver`/`_nats.level` in create and info answers but not in list
answers, a create with the answered config being the same consumer, the pause API and updates
recomputing the level, and an update leaving the pause deadline alone. The server's own version
and level differ on purpose (we advertise our release and API level 2), so only their presence
is compared; the same for the stream list, which carries the stored metadata only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")


def _md(body: dict[str, Any]) -> Any:
    if "error" in body:
        return body["error"]["err_code"]
    md = body["config"].get("metadata")
    return None if md is None else {k: ("<set>" if k in ("_nats.ver", "_nats.level") else v) for k, v in md.items()}


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def api(subject: str, body: Any = b"") -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return json.loads((await nc.request("$JS.API." + subject, data, timeout=3)).data)

    try:
        await api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
        out.append([_md(s) for s in (await api("STREAM.LIST"))["streams"]])
        cases = ({}, {"pause_until": "2099-01-01T00:00:00Z"}, {"pause_until": "2000-01-01T00:00:00Z"},
                 {"pause_until": "0001-01-01T00:00:00Z"},
                 {"priority_groups": ["g"], "priority_policy": "overflow"},
                 {"priority_groups": ["g"], "priority_policy": "pinned_client"},
                 {"priority_groups": ["g"], "priority_policy": "prioritized"},
                 {"metadata": {"team": "a", "_nats.ver": "x", "_nats.level": "9", "_nats.req.level": "7"}})
        for i, extra in enumerate(cases):
            name = f"C{i}"
            r = await api(f"CONSUMER.CREATE.S.{name}", {"stream_name": "S", "config": {
                "name": name, "ack_policy": "explicit", **extra}})
            out.append(_md(r))
            again = await api(f"CONSUMER.CREATE.S.{name}", {"stream_name": "S", "config": r["config"],
                                                            "action": "create"})
            out.append(_md(again))
            out.append(_md(await api(f"CONSUMER.INFO.S.{name}")))
        out.append([_md(c) for c in (await api("CONSUMER.LIST.S"))["consumers"]])
        out.append(await api("CONSUMER.NAMES.S"))
        await api("CONSUMER.PAUSE.S.C0", {"pause_until": "2099-01-01T00:00:00Z"})
        out.append(_md(await api("CONSUMER.INFO.S.C0")))
        await api("CONSUMER.PAUSE.S.C0", {})
        out.append(_md(await api("CONSUMER.INFO.S.C0")))
        cfg = (await api("CONSUMER.INFO.S.C0"))["config"]
        r = await api("CONSUMER.CREATE.S.C0", {"stream_name": "S", "config": {**cfg, "metadata": {"x": "y"}},
                                               "action": "update"})
        out.append(_md(r))
        for extra in ({"pause_until": "2098-01-01T00:00:00Z"}, {}):
            r = await api("CONSUMER.CREATE.S.C1", {"stream_name": "S", "config": {
                "name": "C1", "ack_policy": "explicit", **extra}, "action": "update"})
            out.append([_md(r), r["config"].get("pause_until")])
        # a different user key is another consumer
        r = await api("CONSUMER.CREATE.S.C7", {"stream_name": "S", "config": {
            "name": "C7", "ack_policy": "explicit", "metadata": {"team": "b"}}, "action": "create"})
        out.append(_md(r))
    finally:
        await nc.close()
    return out


async def test_consumer_metadata_matches_a_newer_nats_server(tmp_path: Path) -> None:
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert_same_steps(results["ours"], results["newer"])
    # the check itself: answers carry the dynamic keys, the list only the stored level
    assert results["ours"][1] == {"_nats.req.level": "0", "_nats.ver": "<set>", "_nats.level": "<set>"}
    assert results["ours"][0] == [{"_nats.req.level": "0"}]
