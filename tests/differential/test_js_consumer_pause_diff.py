"""Consumer pause/resume (nats-server 2.11+) over real sockets with nats-py: `pause_until` on
create, `$JS.API.CONSUMER.PAUSE`, the pause advisories, pull requests held while paused and
served once the pause ends. The same transcript runs against ours (always) and, when
NATS_SERVER_NEW names a 2.11+ binary, against it too, and the two must agree."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours, start_kind

from pyjetstream.gotime import format_rfc3339

NEWER = os.environ.get("NATS_SERVER_NEW", "")
ZERO = "0001-01-01T00:00:00Z"


def _clean(doc: Any) -> Any:
    """Drop what differs by run (ids, times) and keep what the test is about: a time that was
    given back as sent is kept, a remaining duration becomes "is there one"."""
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            if k in ("id", "timestamp", "ts", "created", "last_active", "metadata"):
                continue
            if k == "pause_remaining":
                out[k] = v > 0
                continue
            out[k] = _clean(v)
        return out
    if isinstance(doc, list):
        return [_clean(v) for v in doc]
    return doc


async def _api(nc: nats.NATS, subject: str, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(subject, raw, timeout=3)
    return _clean(json.loads(msg.data))


async def _status(sub: Any, timeout: float = 3) -> tuple[str, bytes]:
    m = await sub.next_msg(timeout=timeout)
    return (m.headers or {}).get("Status", ""), m.data


async def transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        for i in range(3):
            await js.publish(f"s.{i}", b"m%d" % i)
        adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.>")
        soon = format_rfc3339(time.time_ns() + 60 * 1_000_000_000)
        r = await nc.request("$JS.API.CONSUMER.CREATE.S.P", json.dumps(
            {"stream_name": "S", "config": {"durable_name": "P", "ack_policy": "explicit",
                                            "pause_until": soon}}).encode(), timeout=3)
        info = json.loads(r.data)
        out.append(("created paused", info["paused"], info["pause_remaining"] > 0,
                     info["config"]["pause_until"] == soon))
        created_adv = _clean(json.loads((await adv.next_msg(timeout=3)).data))
        out.append(("advisory create", created_adv["paused"], created_adv["pause_until"] == soon))
        # held while paused: a request with expires times out, a no_wait one finds nothing
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.P", b'{"batch":1,"expires":300000000}', reply=inbox)
        out.append(("pull while paused", await _status(sub)))
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.P", b'{"batch":1,"no_wait":true}', reply=inbox)
        out.append(("no_wait while paused", await _status(sub)))
        out.append(("pause far", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", {"pause_until": "2099-01-01T00:00:00Z"})))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        out.append(("info", await _api(nc, "$JS.API.CONSUMER.INFO.S.P", b"")))
        out.append(("resume empty", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", b"")))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.P", b'{"batch":3,"expires":2000000000}', reply=inbox)
        got = [(await sub.next_msg(timeout=3)).data for _ in range(3)]
        out.append(("served after resume", got))
        out.append(("past", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", {"pause_until": "2000-01-01T00:00:00Z"})))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        out.append(("info past", await _api(nc, "$JS.API.CONSUMER.INFO.S.P", b"")))
        out.append(("zero", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", {"pause_until": ZERO})))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        out.append(("offset", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", {"pause_until": "2099-01-01T02:00:00+02:00"})))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        out.append(("not json resumes", await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", b"hello")))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        # nats-py's own calls (resume sends the Unix epoch: a time long past, kept as given)
        r = await js.pause_consumer("S", "P", "2099-06-01T00:00:00Z")
        out.append(("nats-py pause", r.paused, r.pause_until, bool(r.pause_remaining)))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        r = await js.resume_consumer("S", "P")
        out.append(("nats-py resume", r.paused, r.pause_until, r.pause_remaining))
        out.append(("advisory", _clean(json.loads((await adv.next_msg(timeout=3)).data))))
        ci = await js.consumer_info("S", "P")
        out.append(("nats-py info", ci.config.pause_until if hasattr(ci.config, "pause_until") else None,
                    getattr(ci, "paused", None)))
        # hostile requests: only the error codes are compared (the decoder texts are Go's)
        for subj, body in (("$JS.API.CONSUMER.PAUSE.S.NOPE", b"{}"), ("$JS.API.CONSUMER.PAUSE.NOPE.P", b"{}"),
                           ("$JS.API.CONSUMER.PAUSE.S.P", b'{"pause_until":"tomorrow"}'),
                           ("$JS.API.CONSUMER.PAUSE.S.P", b'{"pause_until":5}'),
                           ("$JS.API.CONSUMER.PAUSE.S.P", b"{"), ("$JS.API.CONSUMER.PAUSE.S.P", b"[1]")):
            r = await _api(nc, subj, body)
            out.append(("error", subj, body, r["type"], r["error"]["code"], r["error"]["err_code"]))
        # the pause ends by itself: a waiting request is served and the advisory says so
        brief = format_rfc3339(time.time_ns() + 700_000_000)
        await _api(nc, "$JS.API.CONSUMER.PAUSE.S.P", {"pause_until": brief})
        out.append(("advisory brief", _clean(json.loads((await adv.next_msg(timeout=3)).data))["paused"]))
        await js.publish("s.late", b"late")
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.P", b'{"batch":1,"expires":5000000000}', reply=inbox)
        m = await sub.next_msg(timeout=5)
        out.append(("served at the deadline", m.data))
        out.append(("advisory end", _clean(json.loads((await adv.next_msg(timeout=3)).data))["paused"]))
        # push: nothing is delivered while paused, everything after
        dlv = await nc.subscribe("dlv.push")
        r = await nc.request("$JS.API.CONSUMER.CREATE.S.Q", json.dumps(
            {"stream_name": "S", "config": {"durable_name": "Q", "ack_policy": "none", "deliver_subject": "dlv.push",
                                            "pause_until": "2099-01-01T00:00:00Z"}}).encode(), timeout=3)
        out.append(("push paused", json.loads(r.data)["paused"]))
        with pytest.raises(nats.errors.TimeoutError):
            await dlv.next_msg(timeout=0.3)
        await _api(nc, "$JS.API.CONSUMER.PAUSE.S.Q", {})
        # nats-server 2.15 delivers again only at the next signal (here a new message), we at
        # once; after that message both have delivered everything, in order
        await js.publish("s.push", b"push")
        out.append(("push resumed", [(await dlv.next_msg(timeout=3)).data for _ in range(5)]))
    finally:
        await nc.close()
    return out


async def test_pause_transcript_on_ours(tmp_path: Path) -> None:
    proc = start_kind("ours", tmp_path / "ours")
    try:
        t = dict((e[0], e[1:]) for e in await transcript(proc.url))
    finally:
        proc.stop()
    assert t["created paused"] == (True, True, True)
    assert t["advisory create"] == (True, True)
    assert t["pull while paused"][0][0] == "408"
    assert t["no_wait while paused"][0][0] == "404"
    assert t["pause far"][0] == {"type": "io.nats.jetstream.api.v1.consumer_pause_response", "paused": True,
                                 "pause_until": "2099-01-01T00:00:00Z", "pause_remaining": True}
    assert t["resume empty"][0] == {"type": "io.nats.jetstream.api.v1.consumer_pause_response",
                                    "paused": False, "pause_until": ZERO}
    assert t["served after resume"][0] == [b"m0", b"m1", b"m2"]
    assert t["info past"][0]["config"]["pause_until"] == "2000-01-01T00:00:00Z"
    assert "paused" not in t["info past"][0]
    assert t["nats-py pause"] == (True, "2099-06-01T00:00:00Z", True)
    assert t["nats-py resume"] == (False, "1970-01-01T00:00:00Z", None)
    assert t["served at the deadline"] == (b"late",)
    assert t["advisory brief"] == (True,) and t["advisory end"] == (False,)
    assert t["push resumed"][0] == [b"m0", b"m1", b"m2", b"late", b"push"]


@pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")
async def test_pause_transcript_matches_a_newer_nats_server(tmp_path: Path) -> None:
    results = await run_on_newer_and_ours(tmp_path, transcript)
    assert_same_steps(results["ours"], results["newer"])


async def test_push_resume_by_api_delivers_at_once_on_ours(tmp_path: Path) -> None:
    """Where we differ on purpose: nats-server 2.15 leaves a push consumer resumed through the
    API idle until something else wakes it (a new message); ours delivers at once."""
    proc = start_kind("ours", tmp_path / "ours")
    nc = await nats.connect(proc.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.publish("s.1", b"one")
        dlv = await nc.subscribe("dlv.push")
        await _api(nc, "$JS.API.CONSUMER.CREATE.S.Q", {"stream_name": "S", "config": {
            "durable_name": "Q", "ack_policy": "none", "deliver_subject": "dlv.push",
            "pause_until": "2099-01-01T00:00:00Z"}})
        with pytest.raises(nats.errors.TimeoutError):
            await dlv.next_msg(timeout=0.3)
        r = await _api(nc, "$JS.API.CONSUMER.PAUSE.S.Q", {"pause_until": "2000-01-01T00:00:00Z"})
        assert r == {"type": "io.nats.jetstream.api.v1.consumer_pause_response", "paused": False,
                     "pause_until": "2000-01-01T00:00:00Z"}
        assert (await dlv.next_msg(timeout=3)).data == b"one"
    finally:
        await nc.close()
        proc.stop()
