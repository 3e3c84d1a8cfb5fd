"""Differential: atomic batch publish (nats-server 2.12 `allow_atomic`, `Nats-Batch-*` headers)
against a newer nats-server (NATS_SERVER_NEW). nats-py has no batch helper, so the batch is
published with raw headers over nats-py's request; every reply (empty staging acks, the
commit's PubAck with batch and count, each refusal) and what the stream holds afterwards
must match.
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


def _h(bid: str, seq: int | str, commit: str = "", **extra: str) -> dict[str, str]:
    h = {"Nats-Batch-Id": bid, "Nats-Batch-Sequence": str(seq)}
    if commit:
        h["Nats-Batch-Commit"] = commit
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def req(subject: str, data: bytes, headers: dict[str, str]) -> Any:
        m = await nc.request(subject, data, headers=headers, timeout=2)
        return json.loads(m.data) if m.data else ""

    async def api(subject: str, body: dict[str, Any]) -> Any:
        m = await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=2)
        return json.loads(m.data)

    async def count(stream: str) -> int:
        return int((await api(f"STREAM.INFO.{stream}", {}))["state"]["messages"])

    try:
        await api("STREAM.CREATE.OFF", {"name": "OFF", "subjects": ["off.>"]})
        out.append(await req("off.a", b"x", _h("x", 1, "1")))
        for bad in ({"name": "AS", "allow_atomic": True, "persist_mode": "async"},
                    {"name": "AM", "allow_atomic": True, "mirror": {"name": "OFF"}}):
            r = await api(f"STREAM.CREATE.{bad['name']}", bad)
            out.append(r.get("error"))
        r = await api("STREAM.CREATE.B", {"name": "B", "subjects": ["b.>"], "allow_atomic": True,
                                          "allow_rollup_hdrs": True})
        out.append((r.get("error"), r["config"].get("allow_atomic")))
        # staged messages are acknowledged with an empty reply and are not in the stream yet
        out.append(await req("b.1", b"one", _h("ok", 1)))
        out.append(await req("b.2", b"two", _h("ok", 2)))
        out.append(await count("B"))
        out.append(await req("b.3", b"three", _h("ok", 3, "1")))
        out.append(await count("B"))
        got = await api("STREAM.MSG.GET.B", {"seq": 3})
        out.append(got["message"]["subject"])
        # "eob": the marker is not stored, the last message gets the commit header
        out.append(await req("b.e", b"e1", _h("eob", 1)))
        out.append(await req("b.e", b"e2", _h("eob", 2)))
        out.append(await req("b.e", b"", _h("eob", 3, "eob")))
        got = await api("STREAM.MSG.GET.B", {"last_by_subj": "b.e"})
        out.append((got["message"]["seq"], "Nats-Batch-Commit: 1" in
                    __import__("base64").b64decode(got["message"]["hdrs"]).decode()))
        out.append(await req("b.x", b"", _h("eob1", 1, "eob")))
        # refusals
        out.append(await req("b.x", b"", {"Nats-Batch-Id": "m"}))
        out.append(await req("b.x", b"", _h("m2", "abc")))
        out.append(await req("b.x", b"", _h("late", 2)))
        out.append(await req("b.x", b"", _h("big", 1001)))
        out.append(await req("b.x", b"", _h("i" * 65, 1)))
        out.append(await req("b.x", b"", _h("gap", 1)))
        out.append(await req("b.x", b"", _h("gap", 3, "1")))
        out.append(await req("b.x", b"", _h("gap", 2, "1")))  # the batch is gone after the gap
        out.append(await req("b.x", b"", _h("badc", 1)))
        out.append(await req("b.x", b"", _h("badc", 2, "yes")))
        out.append(await req("b.x", b"", _h("lmid", 1)))
        out.append(await req("b.x", b"", _h("lmid", 2, "1", Nats_Expected_Last_Msg_Id="z")))
        out.append(await req("b.x", b"", _h("dup", 1, Nats_Msg_Id="d1")))
        out.append(await req("b.x", b"", _h("dup", 2, "1", Nats_Msg_Id="d1")))
        out.append(await req("b.x", b"", _h("els", 1, Nats_Expected_Last_Sequence="6")))
        out.append(await req("b.x", b"", _h("els", 2, "1", Nats_Expected_Last_Sequence="7")))
        out.append(await req("b.x", b"", _h("els2", 1, Nats_Expected_Last_Sequence="3")))
        out.append(await req("b.x", b"", _h("els2", 2, "1")))
        out.append(await req("b.q", b"", _h("ess", 1, Nats_Expected_Last_Subject_Sequence="0")))
        out.append(await req("b.q", b"", _h("ess", 2, "1", Nats_Expected_Last_Subject_Sequence="0")))
        out.append(await req("b.r", b"", _h("roll", 1)))
        out.append(await req("b.r", b"", _h("roll", 2, "1", Nats_Rollup="all")))
        out.append(await req("b.r", b"", _h("api", 1, Nats_Required_Api_Level="99")))
        out.append(await count("B"))
        # a good batch after all that, with a msg id and a per-subject expectation
        out.append(await req("b.y", b"", _h("good", 1, Nats_Msg_Id="g1",
                                            Nats_Expected_Last_Subject_Sequence="0")))
        out.append(await req("b.z", b"", _h("good", 2, "1")))
        out.append(await req("b.z", b"", {"Nats-Msg-Id": "g1"}))  # the batch's ids dedupe later publishes
        # staged without a reply, committed with one
        await nc.publish("b.n", b"1", headers=_h("noreply", 1))
        out.append(await req("b.n", b"2", _h("noreply", 2, "1")))
        out.append(await count("B"))
        # switching atomic publish off drops in-flight batches
        out.append(await req("b.o", b"", _h("off", 1)))
        await api("STREAM.UPDATE.B", {"name": "B", "subjects": ["b.>"], "allow_rollup_hdrs": True})
        await api("STREAM.UPDATE.B", {"name": "B", "subjects": ["b.>"], "allow_rollup_hdrs": True,
                                      "allow_atomic": True})
        out.append(await req("b.o", b"", _h("off", 2, "1")))
    finally:
        await nc.close()
    return out


async def test_atomic_batches_match_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert_same_steps(results["ours"], results["newer"])
