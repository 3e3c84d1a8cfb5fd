"""Priority groups (nats-server 2.11+) over real sockets with nats-py: `overflow` (min_pending,
min_ack_pending) and `pinned_client` (the pin, `Nats-Pin-Id`, 423s, `CONSUMER.UNPIN`, the pin
advisories and their timeout), and the config and request errors. The same transcript runs on
ours (always) and, when NATS_SERVER_NEW names a 2.11+ binary, on it too; the two must agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from servers import flushed
from transcripts import assert_same_steps, run_on_newer_and_ours, start_kind

NEWER = os.environ.get("NATS_SERVER_NEW", "")
ZERO = "0001-01-01T00:00:00Z"


class Pins:
    """Names pin ids by order of appearance, so two servers' random ids compare."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def name(self, pin: str) -> str:
        if not pin:
            return pin
        return self.names.setdefault(pin, f"pin{len(self.names) + 1}")

    def clean(self, doc: Any) -> Any:
        if isinstance(doc, dict):
            out = {}
            for k, v in doc.items():
                if k in ("id", "timestamp", "ts", "created", "last_active", "metadata"):
                    continue
                if k in ("pinned_client_id", "pinned_id"):
                    out[k] = self.name(v)
                elif k == "pinned_ts":
                    out[k] = "zero" if v == ZERO else "set"
                else:
                    out[k] = self.clean(v)
            return out
        if isinstance(doc, list):
            return [self.clean(v) for v in doc]
        return doc


async def _api(nc: nats.NATS, pins: Pins, subject: str, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return pins.clean(json.loads((await nc.request(subject, raw, timeout=3)).data))


async def _pull(nc: nats.NATS, pins: Pins, consumer: str, body: Any, wait: float = 3) -> list[Any]:
    """Every message a pull request gets until its end (a status, or `batch` messages)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S.{consumer}", raw, reply=inbox)
    want = body.get("batch", 1) if isinstance(body, dict) else 1
    got: list[Any] = []
    try:
        while True:
            m = await sub.next_msg(timeout=wait)
            h = dict(m.headers or {})
            if "Status" in h:
                got.append(("status", h["Status"], h.get("Description", ""),
                            h.get("Nats-Pending-Messages"), h.get("Nats-Pending-Bytes")))
                break
            got.append(("msg", m.data, pins.name(h.get("Nats-Pin-Id", ""))))
            if m.reply:
                # acked and confirmed before the next step, so min_ack_pending sees it
                await nc.request(m.reply, b"+ACK", timeout=3)
            if len([g for g in got if g[0] == "msg"]) >= want:
                break
    finally:
        await sub.unsubscribe()
    return got


async def _pin_event(sub: Any, pins: Pins) -> Any:
    """The next pinned/unpinned advisory (consumer create advisories share the wildcard)."""
    while True:
        doc = json.loads((await sub.next_msg(timeout=5)).data)
        if "pinned" in doc["type"]:
            return pins.clean(doc)


async def _create(nc: nats.NATS, pins: Pins, name: str, **cfg: Any) -> Any:
    body = {"stream_name": "S", "config": {"durable_name": name, "ack_policy": "explicit", **cfg}}
    return await _api(nc, pins, f"$JS.API.CONSUMER.CREATE.S.{name}", body)


async def transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    pins = Pins()
    out: list[Any] = []
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        for i in range(10):
            await js.publish(f"s.{i}", b"m%d" % i)
        # config errors and defaults
        for name, cfg in (
                ("E1", {"priority_policy": "overflow", "priority_groups": ["A"], "deliver_subject": "d.x"}),
                ("E2", {"priority_policy": "overflow"}),
                ("E3", {"priority_policy": "overflow", "priority_groups": [""]}),
                ("E4", {"priority_policy": "overflow", "priority_groups": ["bad name"]}),
                ("E5", {"priority_policy": "overflow", "priority_groups": ["abcdefghijklmnopq"]}),
                ("E6", {"priority_groups": ["A"]}),
                ("E7", {"priority_timeout": 1000000000}),
                ("E8", {"priority_policy": "whatever", "priority_groups": ["A"]}),
                ("E9", {"priority_policy": "none", "priority_groups": ["A"]})):
            r = await _create(nc, pins, name, **cfg)
            out.append(("create error", name, r["error"]["code"], r["error"]["err_code"],
                        r["error"]["description"] if r["error"]["err_code"] != 10025 else ""))
        r = await _create(nc, pins, "N", priority_policy="none")
        out.append(("policy none", r["config"].get("priority_policy"), "priority_groups" in r))

        # overflow
        r = await _create(nc, pins, "O", priority_policy="overflow", priority_groups=["A", "B/c=d-e_f"])
        out.append(("overflow info", r["config"], r.get("priority_groups")))
        out.append(("below min_pending", await _pull(nc, pins, "O", {"batch": 1, "expires": 300_000_000,
                                                                    "group": "A", "min_pending": 20})))
        out.append(("min_pending reached", await _pull(nc, pins, "O", {"batch": 2, "expires": 2_000_000_000,
                                                                      "group": "A", "min_pending": 9})))
        out.append(("min_ack_pending not reached", await _pull(nc, pins, "O", {
            "batch": 1, "expires": 300_000_000, "group": "B/c=d-e_f", "min_ack_pending": 1})))
        out.append(("plain number", await _pull(nc, pins, "O", b"1")))
        for body in ({"batch": 1, "expires": 300_000_000},
                     {"batch": 1, "group": "C"}, {"batch": 1, "group": "A", "id": "x"},
                     {"batch": 1, "group": "A", "priority": 10}, {"batch": 1, "group": "A", "min_pending": "x"}):
            out.append(("bad request", body, await _pull(nc, pins, "O", body)))
        out.append(("unpin overflow", await _api(nc, pins, "$JS.API.CONSUMER.UNPIN.S.O", {"group": "A"})))
        for subj, body in (("$JS.API.CONSUMER.UNPIN.S.O", b""), ("$JS.API.CONSUMER.UNPIN.S.O", b"{}"),
                           ("$JS.API.CONSUMER.UNPIN.S.O", {"group": "no way"}),
                           ("$JS.API.CONSUMER.UNPIN.S.O", {"group": "Z"}),
                           ("$JS.API.CONSUMER.UNPIN.S.O", {"group": 5}),
                           ("$JS.API.CONSUMER.UNPIN.S.NOPE", {"group": "A"}),
                           ("$JS.API.CONSUMER.UNPIN.NOPE.O", {"group": "A"}),
                           ("$JS.API.CONSUMER.UNPIN.S.N", {"group": "A"})):
            r = await _api(nc, pins, subj, body)
            e = r["error"]
            out.append(("unpin error", subj, body, r["type"], e["code"], e["err_code"],
                        e["description"] if e["err_code"] != 10025 else ""))
        # a request on a consumer without a policy: min_pending and id refused, group ignored
        out.append(("no policy", await _pull(nc, pins, "N", {"batch": 1, "group": "A", "min_pending": 1}),
                    await _pull(nc, pins, "N", {"batch": 1, "group": "A", "id": "x"}),
                    await _pull(nc, pins, "N", {"batch": 1, "group": "A", "no_wait": True})))

        # pinned_client
        adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.S.*")
        r = await _create(nc, pins, "P", priority_policy="pinned_client", priority_groups=["G"])
        out.append(("pinned info", r["config"], r.get("priority_groups")))
        first = await _pull(nc, pins, "P", {"batch": 2, "expires": 2_000_000_000, "group": "G"})
        out.append(("first request pins", first))
        out.append(("advisory", await _pin_event(adv, pins)))
        info = await _api(nc, pins, "$JS.API.CONSUMER.INFO.S.P", b"")
        out.append(("info pinned", info["priority_groups"]))
        pin = next(k for k, v in pins.names.items() if v == "pin1")
        out.append(("no id waits", await _pull(nc, pins, "P", {"batch": 1, "expires": 300_000_000, "group": "G"})))
        out.append(("wrong id", await _pull(nc, pins, "P", {"batch": 1, "expires": 1_000_000_000, "group": "G",
                                                           "id": "nope"})))
        out.append(("right id", await _pull(nc, pins, "P", {"batch": 1, "expires": 2_000_000_000, "group": "G",
                                                           "id": pin})))
        out.append(("unpin", await _api(nc, pins, "$JS.API.CONSUMER.UNPIN.S.P", {"group": "G"})))
        out.append(("advisory", await _pin_event(adv, pins)))
        info = await _api(nc, pins, "$JS.API.CONSUMER.INFO.S.P", b"")
        out.append(("info unpinned", info["priority_groups"]))
        out.append(("old id after unpin", await _pull(nc, pins, "P", {"batch": 1, "expires": 1_000_000_000,
                                                                     "group": "G", "id": pin})))
        out.append(("new pin", await _pull(nc, pins, "P", {"batch": 1, "expires": 2_000_000_000, "group": "G"})))
        out.append(("advisory", await _pin_event(adv, pins)))
        # the pin lapses when its holder stops asking
        r = await _create(nc, pins, "T", priority_policy="pinned_client", priority_groups=["G"],
                          priority_timeout=500_000_000)
        out.append(("ttl config", r["config"]["priority_timeout"]))
        out.append(("ttl pin", await _pull(nc, pins, "T", {"batch": 1, "expires": 2_000_000_000, "group": "G"})))
        out.append(("advisory", await _pin_event(adv, pins)))
        out.append(("advisory timeout", await _pin_event(adv, pins)))
        out.append(("after timeout", await _pull(nc, pins, "T", {"batch": 1, "expires": 2_000_000_000,
                                                                "group": "G"})))
        out.append(("advisory", await _pin_event(adv, pins)))
        # prioritized (2.12): requests waiting on a caught-up consumer, then messages arrive
        r = await _create(nc, pins, "R", priority_policy="prioritized", priority_groups=["A"],
                          deliver_policy="new")
        out.append(("prioritized info", r["config"], r.get("priority_groups")))
        subs = {}
        for label, body in (("p5", {"batch": 2, "expires": 3_000_000_000, "group": "A", "priority": 5}),
                            ("p1", {"batch": 1, "expires": 3_000_000_000, "group": "A", "priority": 1}),
                            ("p5b", {"batch": 1, "expires": 3_000_000_000, "group": "A", "priority": 5})):
            inbox = nc.new_inbox()
            subs[label] = await nc.subscribe(inbox)
            await nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.R", json.dumps(body).encode(), reply=inbox)
        await flushed(nc)
        for i in range(4):
            await js.publish(f"s.r{i}", b"r%d" % i)
        got = {}
        for label, n in (("p1", 1), ("p5", 2), ("p5b", 1)):
            got[label] = [(await subs[label].next_msg(timeout=3)).data for _ in range(n)]
        out.append(("prioritized order", got))
    finally:
        await nc.close()
    return out


def _by_label(t: list[Any]) -> dict[str, list[Any]]:
    d: dict[str, list[Any]] = {}
    for e in t:
        d.setdefault(e[0], []).append(e[1:])
    return d


async def test_priority_groups_transcript_on_ours(tmp_path: Path) -> None:
    proc = start_kind("ours", tmp_path / "ours")
    try:
        t = _by_label(await transcript(proc.url))
    finally:
        proc.stop()
    assert [e[2] for e in t["create error"]] == [10178, 10159, 10161, 10162, 10162, 10196, 10197, 10025, 10196]
    info = t["overflow info"][0]
    assert info[0]["priority_policy"] == "overflow" and info[1] == [{"group": "A", "pinned_ts": "zero"}]
    assert [g[0] for g in t["below min_pending"][0][0]] == ["status"] and t["below min_pending"][0][0][0][1] == "408"
    assert [g[1] for g in t["min_pending reached"][0][0]] == [b"m0", b"m1"]
    assert t["min_ack_pending not reached"][0][0][0][1] == "408"
    assert t["plain number"][0][0] == [("msg", b"m2", "")]
    assert [r[1][0][2] for r in t["bad request"]] == [
        "Bad Request - Priority Group missing", "Bad Request - Invalid Priority Group",
        "Bad Request - Not a Pinned Client Priority consumer", "Bad Request - Priority must be between 0 and 9",
        t["bad request"][4][1][0][2]]
    assert t["bad request"][4][1][0][1] == "400"
    assert [(e[3], e[4]) for e in t["unpin error"]] == [
        (400, 10025), (400, 10025), (400, 10162), (400, 10160), (400, 10025), (404, 10014), (404, 10059),
        (400, 10160)]
    pinned = t["pinned info"][0]
    assert pinned[0]["priority_timeout"] == 120_000_000_000 and pinned[1] == [{"group": "G", "pinned_ts": "zero"}]
    assert t["first request pins"][0][0] == [("msg", b"m0", "pin1"), ("msg", b"m1", "pin1")]
    assert t["info pinned"][0][0] == [{"group": "G", "pinned_client_id": "pin1", "pinned_ts": "set"}]
    assert t["no id waits"][0][0][0][1] == "408"
    assert t["wrong id"][0][0] == [("status", "423", "Nats-Pin-Id mismatch", None, None)]
    assert t["right id"][0][0] == [("msg", b"m2", "pin1")]
    assert t["old id after unpin"][0][0] == [("status", "423", "Nats-Wrong-Pin-Id", "1", "0")]
    assert t["new pin"][0][0] == [("msg", b"m3", "pin2")]
    assert [a[0]["type"].rsplit(".", 1)[1] for a in t["advisory"]] == [
        "consumer_group_pinned", "consumer_group_unpinned", "consumer_group_pinned", "consumer_group_pinned",
        "consumer_group_pinned"]
    assert t["advisory timeout"][0][0]["reason"] == "timeout"
    assert t["after timeout"][0][0] == [("msg", b"m1", "pin4")]
    assert t["prioritized order"][0][0] == {"p1": [b"r0"], "p5": [b"r1", b"r3"], "p5b": [b"r2"]}


@pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")
async def test_priority_groups_transcript_matches_a_newer_nats_server(tmp_path: Path) -> None:
    results = await run_on_newer_and_ours(tmp_path, transcript)
    assert_same_steps(results["ours"], results["newer"])
