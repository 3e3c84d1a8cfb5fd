"""Differential: the `_nats.req.level` a stream's config is given for the 2.11/2.12 features, the
metadata keys every stream answer carries, and how an echoed config is taken back, against a
newer nats-server (NATS_SERVER_NEW). The server's own version and level differ on purpose
(we claim API level 2 and the release we advertise), so only their presence is compared.
"""

from __future__ import annotations

import json
import os
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")


def _shape(md: dict[str, str]) -> dict[str, str]:
    return {k: ("<set>" if k in ("_nats.ver", "_nats.level") else v) for k, v in md.items()}


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def api(subject: str, body: dict[str, Any]) -> Any:
        m = await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=2)
        return json.loads(m.data)

    try:
        cases = ({}, {"allow_msg_ttl": True}, {"subject_delete_marker_ttl": 2_000_000_000}, {"allow_atomic": True},
                 {"allow_msg_schedules": True}, {"allow_msg_counter": True}, {"persist_mode": "async"},
                 {"metadata": {"team": "a", "_nats.level": "77"}})
        for i, extra in enumerate(cases):
            r = await api(f"STREAM.CREATE.S{i}", {"name": f"S{i}", "subjects": [f"s{i}"], **extra})
            out.append(_shape(r["config"]["metadata"]))
            again = await api(f"STREAM.CREATE.S{i}", r["config"])
            out.append(again.get("error"))
            info = await api(f"STREAM.INFO.S{i}", {})
            out.append(_shape(info["config"]["metadata"]))
        r = await api("STREAM.UPDATE.S0", {"name": "S0", "subjects": ["s0"], "allow_atomic": True})
        out.append(_shape(r["config"]["metadata"]))
        listed = await api("STREAM.LIST", {})
        out.append(sorted(_shape(s["config"]["metadata"])["_nats.req.level"] for s in listed["streams"]))
        acct = await api("INFO", {})
        out.append(isinstance(acct["api"]["level"], int) and acct["api"]["level"] >= 2)
    finally:
        await nc.close()
    return out


async def test_api_level_metadata_matches_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert_same_steps(results["ours"], results["newer"])
