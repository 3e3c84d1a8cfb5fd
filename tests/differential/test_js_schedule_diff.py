"""Differential: message schedules (`allow_msg_schedules`, `Nats-Schedule: @at ...`) against a
newer nats-server (NATS_SERVER_NEW). Covers what nats-server 2.12 implements (the one-shot `@at`
form, target, TTL, the purge of a fired schedule) and the refusals it shares with the newer
release; cron and `@every` forms (2.14+) are left out on purpose, 2.12 refuses them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")

PAST = "@at 2020-01-01T00:00:00Z"
FUTURE = "@at 2099-01-01T00:00:00Z"


async def _transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def req(subject: str, headers: dict[str, str], data: bytes = b"payload") -> Any:
        m = await nc.request(subject, data, headers=headers, timeout=2)
        return json.loads(m.data) if m.data else ""

    async def api(subject: str, body: dict[str, Any]) -> Any:
        m = await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=2)
        return json.loads(m.data)

    async def last(stream: str, subject: str) -> Any:
        r = await api(f"STREAM.MSG.GET.{stream}", {"last_by_subj": subject})
        if "error" in r:
            return r["error"]["err_code"]
        m = r["message"]
        hdrs = base64.b64decode(m.get("hdrs") or "").decode()
        return m["subject"], base64.b64decode(m.get("data") or ""), sorted(
            ln for ln in hdrs.split("\r\n")[1:] if ln)

    async def wait_for(stream: str, subject: str) -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = await last(stream, subject)
            if not isinstance(got, int):
                return got
            await asyncio.sleep(0.05)
        return "never fired"

    def sched(target: str, when: str = PAST, **extra: str) -> dict[str, str]:
        return {"Nats-Schedule": when, "Nats-Schedule-Target": target,
                **{k.replace("_", "-"): v for k, v in extra.items()}}

    try:
        await api("STREAM.CREATE.OFF", {"name": "OFF", "subjects": ["off.>"]})
        out.append(await req("off.s", sched("off.t")))
        for bad in ({"name": "DN", "subjects": ["dn"], "allow_msg_schedules": True, "discard": "new"},
                    {"name": "MI", "allow_msg_schedules": True, "mirror": {"name": "OFF"}},
                    {"name": "SO", "allow_msg_schedules": True, "sources": [{"name": "OFF"}]}):
            out.append((await api(f"STREAM.CREATE.{bad['name']}", bad)).get("error"))
        cfg = {"name": "S", "subjects": ["s.>"], "allow_msg_schedules": True, "allow_msg_ttl": True}
        r = await api("STREAM.CREATE.S", cfg)
        c = r["config"]
        out.append((c.get("allow_msg_schedules"), c["allow_rollup_hdrs"], c["deny_purge"]))
        r = await api("STREAM.UPDATE.S", {**cfg, "allow_msg_schedules": False})
        out.append(r.get("error"))
        # refusals
        out.append(await req("s.sched.x", sched("s.t", when="bogus")))
        out.append(await req("s.sched.x", sched("s.t", when="@at yesterday")))
        out.append(await req("s.sched.x", sched("s.t", Nats_Schedule_TTL="abc")))
        out.append(await req("s.sched.x", {"Nats-Schedule": PAST}))
        out.append(await req("s.sched.x", sched("s.sched.x")))
        out.append(await req("s.sched.x", sched("other.t")))
        out.append(await req("s.sched.x", sched("s.*")))
        out.append(await req("s.sched.x", sched("s.t", Nats_Rollup="all")))
        # a schedule due in the future is stored (with a roll-up header) and waits
        out.append(await req("s.sched.f", sched("s.target.f", when=FUTURE)))
        out.append(await req("s.sched.f", sched("s.target.f", when=FUTURE), b"second"))
        out.append(await last("S", "s.sched.f"))
        # a schedule already due fires: the target gets the payload, the schedule is purged
        out.append(await req("s.sched.a", sched("s.target.a", Nats_Schedule_TTL="5m", Custom="kept",
                                                Nats_Msg_Id="m1")))
        out.append(await wait_for("S", "s.target.a"))
        out.append(await last("S", "s.sched.a"))
        info = await api("STREAM.INFO.S", {})
        out.append((info["state"]["messages"], info["state"]["last_seq"]))
        # a due time with an offset
        out.append(await req("s.sched.g", sched("s.target.g", when="@at 2020-01-01T00:00:00+01:00")))
        out.append(await wait_for("S", "s.target.g"))
        await api("STREAM.CREATE.NT", {"name": "NT", "subjects": ["nt.>"], "allow_msg_schedules": True})
        out.append(await req("nt.s", sched("nt.t", Nats_Schedule_TTL="1m")))
    finally:
        await nc.close()
    return out


async def test_message_schedules_match_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, _transcript)
    assert_same_steps(results["ours"], results["newer"])
