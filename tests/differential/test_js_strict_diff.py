"""Differential: strict API decoding (nats-server 2.12+) against a newer nats-server
(NATS_SERVER_NEW). Each kind of request gets an unknown field, top level and nested; both
servers' whole answers are compared (error code, err_code and description included), as are
the answers to fields nats-server knows (case-insensitive keys, `pedantic: false`, MSG.GET's
batch/no_hdr/start_time, a body on CONSUMER.INFO). Pull, unpin and direct get requests are not
strict on either. A second run with `jetstream { strict: false }` compares what happens when
unknown fields are dropped instead; a third, the refusals of `pedantic` mode.

Left out on purpose (docs/compat.md): fields of releases after 2.12 (`allow_batched`, a
source's `consumer`), which 2.15 honours and we refuse by name; a body holding an unknown field
and a field of the wrong type, where Go names the first in document order and we name the
unknown field; several JSON values in one body.
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

# the parts of an answer that differ by server or by time, not by behaviour
_VOLATILE = {"created", "ts", "time", "first_ts", "last_ts", "_nats.ver", "_nats.level", "cluster", "leader",
             "pause_remaining"}


def _scrub(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: ("<x>" if k in _VOLATILE else _scrub(x)) for k, x in sorted(v.items()) if k != "type"}
    if isinstance(v, list):
        return [_scrub(x) for x in v]
    return v


def _strict_false_config(store: Path) -> str:
    return f'jetstream {{ strict: false, store_dir: "{store}" }}\n'


def _sections(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a stream or consumer answer the comparison keeps (their configs and errors)."""
    if "error" in body:
        return body
    out = {k: body[k] for k in ("config", "error", "message", "success", "purged", "total", "paused", "pause_until",
                                "streams", "consumers") if k in body}
    if isinstance(out.get("streams"), list):
        out["streams"] = [s if isinstance(s, str) else s["config"]["name"] for s in out["streams"]]
    if isinstance(out.get("consumers"), list):
        out["consumers"] = [c if isinstance(c, str) else c["name"] for c in out["consumers"]]
    return out


async def _transcript(url: str, strict: bool) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def api(subject: str, body: Any) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        m = await nc.request("$JS.API." + subject, data, timeout=3)
        return _scrub(_sections(json.loads(m.data)))

    async def pull(subject: str, body: bytes) -> Any:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API." + subject, body, reply=inbox)
        try:
            m = await sub.next_msg(timeout=3)
            return [m.data.decode(), (m.headers or {}).get("Status")]
        finally:
            await sub.unsubscribe()

    try:
        out.append(await api("STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "allow_direct": True}))
        await nc.request("s.a", b"one", headers={"X": "1"}, timeout=3)
        await nc.request("s.b", b"two", timeout=3)
        # each case its own stream, so that with strict off (unknown fields dropped) every
        # one is a create of its own
        streams: list[dict[str, Any]] = [
            {"bogus": 1},
            {"placement": {"zone": "a"}},
            {"consumer_limits": {"max_ack_pending": 5, "max_waiting": 1}},
            {"republish": {"dest": "r{i}.>", "headers": True}},
            {"subject_transform": {"src": "t{i}.>", "dest": "u{i}.>", "x": 1}},
            {"state": {}},
            {"window_size": 1},
            {"zz": 1, "placement": {"aa": 1}},
            # known fields in Go's spellings, and the request-scoped pedantic flag
            {"Subjects": ["k{i}.>"], "MAX_MSGS": 5, "consumer_limits": {"Max_Ack_Pending": 7}},
            {"pedantic": False},
        ]
        if strict:
            # With strict off these are made, and their answers differ for reasons of their own
            # (docs/compat.md): we refuse another domain as a source; a stream with sources
            # only has a duplicate window here and none in nats-server 2.14+; a mirror does
            # not take its origin's allow_direct as mirror_direct here.
            streams += [{"sources": [{"name": "S", "external": {"api": "$JS.x.API", "domain": "y"}}]},
                        {"sources": [{"name": "S", "subject_transform_dest": "x.>"}]},
                        {"mirror": {"name": "S", "subject_transforms": [{"src": ">", "dest": ">", "z": 0}]}}]
        for i, case in enumerate(streams):
            body = json.loads(json.dumps({"name": f"T{i}", "subjects": [f"t{i}.>"], **case}).replace("{i}", str(i)))
            if "mirror" in body or "sources" in body or "Subjects" in body:
                body.pop("subjects")
            out.append(await api(f"STREAM.CREATE.T{i}", body))
        out.append(await api("STREAM.UPDATE.S", {"name": "S", "subjects": ["s.>"], "allow_direct": True, "bogus": 1}))
        out.append(await api("CONSUMER.CREATE.S.C", {"stream_name": "S", "config": {
            "name": "C", "ack_policy": "explicit", "priority_groups": ["g"], "priority_policy": "pinned_client"}}))
        out.append(await api("CONSUMER.CREATE.S.P", {"stream_name": "S", "config": {"name": "P",
                                                                                   "ack_policy": "explicit"}}))
        requests = [
            ("STREAM.INFO.S", {"deleted_details": True, "bogus": 1}),
            ("STREAM.INFO.NOPE", {"bogus": 1}),
            ("STREAM.INFO.S", {"Deleted_Details": True}),
            ("STREAM.NAMES", {"subject": ">", "bogus": 1}),
            ("STREAM.NAMES", b'"not an object"'),
            ("STREAM.NAMES", b"[1]"),
            ("STREAM.LIST", {"bogus": 1}),
            ("STREAM.PURGE.S", {"filter": "s.none", "bogus": 1}),
            ("STREAM.PURGE.NOPE", {"bogus": 1}),
            ("STREAM.MSG.GET.S", {"seq": 1, "bogus": 1}),
            ("STREAM.MSG.GET.NOPE", {"seq": 1, "bogus": 1}),
            ("STREAM.MSG.GET.S", {"seq": 1, "batch": 2}),
            ("STREAM.MSG.GET.S", {"seq": 1, "max_bytes": 2}),
            ("STREAM.MSG.GET.S", {"seq": 1, "no_hdr": True}),
            ("STREAM.MSG.GET.S", {"seq": 1}),
            ("STREAM.MSG.GET.S", {"start_time": "2000-01-01T00:00:00Z"}),
            ("STREAM.MSG.GET.S", {"start_time": "2000-01-01T00:00:00Z", "next_by_subj": "s.b"}),
            ("STREAM.MSG.GET.S", {"seq": 1, "start_time": "2000-01-01T00:00:00Z"}),
            ("STREAM.MSG.GET.S", {"seq": 2, "multi_last": ["s.a"], "up_to_seq": 1}),
            ("STREAM.MSG.DELETE.S", {"seq": 99, "bogus": 1}),
            ("STREAM.DELETE.NOPE", {"bogus": 1}),
            ("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": {"name": "D"}, "bogus": 1}),
            ("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": {"name": "D", "bogus": 1}}),
            ("CONSUMER.CREATE.NOPE.D", {"stream_name": "NOPE", "config": {"name": "D", "bogus": 1}}),
            ("CONSUMER.CREATE.S.F", {"stream_name": "S", "config": {"name": "F", "Ack_Policy": "explicit"},
                                     "pedantic": False}),
            ("CONSUMER.NAMES.S", {"bogus": 1}),
            ("CONSUMER.LIST.S", {"bogus": 1}),
            ("CONSUMER.INFO.S.P", {"bogus": 1}),
            ("CONSUMER.INFO.NOPE.P", {"bogus": 1}),
            ("CONSUMER.DELETE.S.NOPE", {"bogus": 1}),
            ("CONSUMER.PAUSE.S.P", {"bogus": 1}),
            ("CONSUMER.PAUSE.S.NOPE", {"bogus": 1}),
            ("CONSUMER.UNPIN.S.C", {"group": "g", "bogus": 1}),
            ("CONSUMER.UNPIN.NOPE.C", {"group": "g", "bogus": 1}),
        ]
        if strict:
            # with strict off it is made, and nats-server 2.10+ echoes the durable as its name
            requests.append(("CONSUMER.DURABLE.CREATE.S.E", {"stream_name": "S",
                                                             "config": {"durable_name": "E", "bogus": 1}}))
        for subject, body in requests:
            out.append([subject, await api(subject, body)])
        # never strict: pull requests and direct gets
        out.append(await pull("CONSUMER.MSG.NEXT.S.P", b'{"batch":1,"no_wait":true,"bogus":1}'))
        m = await nc.request("$JS.API.DIRECT.GET.S", b'{"seq":2,"bogus":1}', timeout=3)
        out.append([m.data.decode(), (m.headers or {}).get("Nats-Sequence")])
        names = await api("STREAM.NAMES", {})
        out.append(names)
    finally:
        await nc.close()
    return out


async def _run(tmp_path: Path, strict: bool) -> dict[str, list[Any]]:
    return await run_on_newer_and_ours(tmp_path, lambda url: _transcript(url, strict), store_suffix=f"-{strict}",
                                       js_flags=strict, config=None if strict else _strict_false_config)


async def test_unknown_fields_answered_as_a_newer_nats_server(tmp_path: Path) -> None:
    results = await _run(tmp_path, True)
    assert len(results["ours"]) == len(results["newer"])
    assert_same_steps(results["ours"], results["newer"])
    # the check itself: strict answers name the unknown field
    assert results["ours"][1]["error"]["description"] == 'invalid JSON: json: unknown field "bogus"'


async def test_strict_false_drops_unknown_fields_as_a_newer_nats_server(tmp_path: Path) -> None:
    results = await _run(tmp_path, False)
    assert_same_steps(results["ours"], results["newer"])
    # the check itself: the first unknown field was dropped and the stream made
    assert results["ours"][1]["config"]["name"] == "T0"


def test_scrub_keeps_what_is_compared() -> None:
    body = {"type": "t", "config": {"name": "S", "metadata": {"_nats.ver": "1", "k": "v"}}, "created": "now"}
    assert _scrub(body) == {"config": {"metadata": {"_nats.ver": "<x>", "k": "v"}, "name": "S"}, "created": "<x>"}


async def _pedantic_transcript(url: str) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def api(subject: str, body: dict[str, Any]) -> Any:
        r = json.loads((await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=3)).data)
        return r.get("error") or "ok"

    try:
        streams = ({}, {"max_msgs": -5}, {"max_bytes": -2}, {"max_consumers": -9}, {"max_msg_size": -3},
                   {"max_msgs_per_subject": -2}, {"max_age": 60_000_000_000},
                   {"max_age": 60_000_000_000, "duplicate_window": 10_000_000_000},
                   {"subject_delete_marker_ttl": 2_000_000_000},
                   {"subject_delete_marker_ttl": 2_000_000_000, "allow_msg_ttl": True},
                   {"subject_delete_marker_ttl": 2_000_000_000, "allow_msg_ttl": True, "allow_rollup_hdrs": True},
                   {"allow_msg_schedules": True}, {"allow_msg_schedules": True, "allow_rollup_hdrs": True},
                   {"republish": {"dest": "rp.>"}}, {"republish": {"src": ">", "dest": "rp.>"}})
        for i, extra in enumerate(streams):
            out.append(await api(f"STREAM.CREATE.P{i}", {"name": f"P{i}", "subjects": [f"p{i}.>"], **extra,
                                                        "pedantic": True}))
        out.append(await api("STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"], "allow_direct": True}))
        out.append(await api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}, "pedantic": True}))
        out.append(await api("STREAM.CREATE.M2", {"name": "M2", "mirror": {"name": "O"}, "mirror_direct": True,
                                                  "pedantic": True}))
        out.append(await api("STREAM.UPDATE.P0", {"name": "P0", "subjects": ["p0.>"], "max_msgs": -5, "pedantic": True}))
        out.append(await api("STREAM.UPDATE.P0", {"name": "P0", "subjects": ["p0.>"], "sealed": True, "pedantic": True}))
        out.append(await api("STREAM.CREATE.L", {"name": "L", "subjects": ["l.>"], "consumer_limits": {
            "max_ack_pending": 50, "inactive_threshold": 9_000_000_000}}))
        consumers = [("O", {}), ("O", {"max_deliver": -3}), ("O", {"max_waiting": -1}), ("O", {"max_ack_pending": -2}),
                     ("O", {"max_batch": -1}), ("O", {"max_expires": -1}), ("O", {"max_bytes": -1}),
                     ("O", {"inactive_threshold": -1}), ("O", {"priority_timeout": -1}),
                     ("O", {"backoff": [1_000_000_000, 2_000_000_000], "max_deliver": 5}),
                     ("O", {"backoff": [1_000_000_000, 2_000_000_000], "max_deliver": 5, "ack_wait": 1_000_000_000}),
                     ("L", {}), ("L", {"max_ack_pending": 5}),
                     ("L", {"max_ack_pending": 5, "inactive_threshold": 1_000_000_000}),
                     ("O", {"deliver_subject": "dd", "ack_policy": "none", "idle_heartbeat": -1})]
        for i, (stream, extra) in enumerate(consumers):
            cfg = {"name": f"C{i}", "ack_policy": "explicit", **extra}
            out.append(await api(f"CONSUMER.CREATE.{stream}.C{i}", {"stream_name": stream, "config": cfg,
                                                                   "pedantic": True}))
    finally:
        await nc.close()
    return out


async def test_pedantic_mode_answered_as_a_newer_nats_server(tmp_path: Path) -> None:
    results = await run_on_newer_and_ours(tmp_path, _pedantic_transcript, store_suffix="-pedantic")
    assert_same_steps(results["ours"], results["newer"])
    # the check itself: pedantic mode refused something and let the rest through
    assert results["ours"][0] == "ok" and results["ours"][1]["err_code"] == 10157
