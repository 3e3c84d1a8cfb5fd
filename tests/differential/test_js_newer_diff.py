"""Differential against a newer nats-server (>= 2.11) for the features 2.9.10 lacks: batched
and multi-subject DIRECT.GET, per-message TTLs, first_seq. Runs only when NATS_SERVER_NEW
names such a binary (../shared/bench/get_newer_server.sh fetches one); skipped otherwise.
"""

from __future__ import annotations

import json
import os
from typing import Any

import nats
import pytest
from transcripts import run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out: list[Any] = []
    try:
        await js.add_stream(name="KV", subjects=["kv.>"], allow_direct=True, allow_msg_ttl=True)
        for subj, data in (("kv.a", b"a1"), ("kv.b", b"b1"), ("kv.a", b"a2"), ("kv.c.x", b"c1"), ("kv.b", b"b2")):
            await js.publish(subj, data)
        ttl = await nc.request("kv.t", b"t", headers={"Nats-TTL": "1h"}, timeout=2)
        out.append(json.loads(ttl.data))
        bad = await nc.request("kv.t", b"t", headers={"Nats-TTL": "10ms"}, timeout=2)
        out.append(json.loads(bad.data))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        for req in ({"multi_last": ["kv.a", "kv.b"]}, {"multi_last": ["kv.>"], "up_to_seq": 3},
                    {"multi_last": ["kv.>"], "batch": 1}, {"multi_last": ["zz.>"]}, {"seq": 2, "batch": 2},
                    {"next_by_subj": "kv.a", "batch": 5}, {"seq": 99}):
            await nc.publish("$JS.API.DIRECT.GET.KV", json.dumps(req).encode(), reply=inbox)
            got = []
            # a reply set ends with EOB (batches) or is a single message or status
            while True:
                m = await sub.next_msg(timeout=2)
                h = dict(m.headers or {})
                h.pop("Nats-Time-Stamp", None)
                got.append((m.data, sorted((str(k), v) for k, v in h.items())))
                status = h.get("Status")
                if status in ("204", "404", "408", "413") or ("batch" not in req and "multi_last" not in req):
                    break
            out.append((req, got))
        r = await nc.request("$JS.API.STREAM.CREATE.FS", json.dumps({"name": "FS", "first_seq": 50}).encode())
        out.append(json.loads(r.data)["state"]["first_seq"])
    finally:
        await nc.close()
    return out


async def test_newer_features_match_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert results["ours"] == results["newer"]
