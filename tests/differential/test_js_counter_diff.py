"""Differential: message counters (`allow_msg_counter`, `Nats-Incr`) against a newer nats-server
(NATS_SERVER_NEW): PubAcks with "val", the stored `{"val":...}` payloads (arbitrary precision),
every refusal, dedupe, counters inside an atomic batch, and the config rules. Counter streams
with sources (summed through Nats-Counter-Sources) are left out: we refuse them on purpose.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def req(subject: str, headers: dict[str, str] | None, data: bytes = b"") -> Any:
        m = await nc.request(subject, data, headers=headers, timeout=2)
        return json.loads(m.data) if m.data else ""

    async def api(subject: str, body: dict[str, Any]) -> Any:
        m = await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=2)
        return json.loads(m.data)

    async def last(stream: str, subject: str) -> Any:
        m = (await api(f"STREAM.MSG.GET.{stream}", {"last_by_subj": subject}))["message"]
        hdrs = base64.b64decode(m.get("hdrs") or "").decode()
        return base64.b64decode(m.get("data") or ""), sorted(ln for ln in hdrs.split("\r\n")[1:] if ln)

    try:
        await api("STREAM.CREATE.OFF", {"name": "OFF", "subjects": ["off.>"]})
        out.append(await req("off.a", {"Nats-Incr": "1"}))
        out.append(await req("off.a", {"Nats-Incr": "abc"}))
        out.append(await req("off.a", {"Nats-Incr": ""}, b"plain"))
        base = {"subjects": ["x"], "allow_msg_counter": True}
        for name, extra in (("DN", {"discard": "new"}), ("TT", {"allow_msg_ttl": True}),
                            ("SC", {"allow_msg_schedules": True}), ("WQ", {"retention": "workqueue"}),
                            ("MI", {"mirror": {"name": "OFF"}, "subjects": []})):
            out.append((await api(f"STREAM.CREATE.{name}", {"name": name, **base, **extra})).get("error"))
        cfg = {"name": "C", "subjects": ["c.>"], "allow_msg_counter": True, "allow_atomic": True}
        r = await api("STREAM.CREATE.C", cfg)
        out.append((r.get("error"), r["config"].get("allow_msg_counter")))
        out.append((await api("STREAM.UPDATE.C", {**cfg, "allow_msg_counter": False})).get("error"))
        for incr in ("5", "-2", "+10", "0", "123456789012345678901234567890", "-123456789012345678901234567900"):
            out.append(await req("c.a", {"Nats-Incr": incr}))
        out.append(await last("C", "c.a"))
        out.append(await req("c.b", {"Nats-Incr": "7"}))
        # refusals
        out.append(await req("c.a", None))
        out.append(await req("c.a", None, b"data"))
        out.append(await req("c.a", {"X": "1"}))
        out.append(await req("c.a", {"Nats-Incr": "1"}, b"data"))
        out.append(await req("c.a", {"Nats-Incr": "1.5"}))
        out.append(await req("c.a", {"Nats-Incr": "1_000"}))
        for k, v in (("Nats-Rollup", "sub"), ("Nats-Expected-Stream", "C"), ("Nats-Expected-Last-Sequence", "9"),
                     ("Nats-Expected-Last-Subject-Sequence", "1"), ("Nats-Expected-Last-Msg-Id", "z")):
            out.append(await req("c.a", {"Nats-Incr": "1", k: v}))
        # dedupe: the retry gets the first PubAck's duplicate answer and does not count twice
        out.append(await req("c.d", {"Nats-Incr": "3", "Nats-Msg-Id": "once"}))
        out.append(await req("c.d", {"Nats-Incr": "3", "Nats-Msg-Id": "once"}))
        out.append(await last("C", "c.d"))
        # inside an atomic batch the increments of one subject add up
        out.append(await req("c.d", {"Nats-Incr": "1", "Nats-Batch-Id": "b", "Nats-Batch-Sequence": "1"}))
        out.append(await req("c.e", {"Nats-Incr": "2", "Nats-Batch-Id": "b", "Nats-Batch-Sequence": "2"}))
        out.append(await req("c.d", {"Nats-Incr": "4", "Nats-Batch-Id": "b", "Nats-Batch-Sequence": "3",
                                     "Nats-Batch-Commit": "1"}))
        out.append((await last("C", "c.d"))[0])
        out.append(await req("c.d", {"Nats-Batch-Id": "m", "Nats-Batch-Sequence": "1", "Nats-Batch-Commit": "1"}))
        info = await api("STREAM.INFO.C", {})
        out.append((info["state"]["messages"], info["state"]["last_seq"]))
    finally:
        await nc.close()
    return out


async def test_counters_match_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert_same_steps(results["ours"], results["newer"])
