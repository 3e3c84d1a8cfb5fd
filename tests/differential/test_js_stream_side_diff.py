"""Differential against a newer nats-server (NATS_SERVER_NEW, >= 2.12) for the stream-side
features of issue 12: subject transforms on sources and mirrors, removing a mirror by update,
persist_mode. Skipped when NATS_SERVER_NEW is unset."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import nats
import pytest
from transcripts import assert_same_steps, run_on_newer_and_ours

NEWER = os.environ.get("NATS_SERVER_NEW", "")

pytestmark = pytest.mark.skipif(not NEWER or not os.path.exists(NEWER), reason="NATS_SERVER_NEW not set")


def _err_or(r: dict[str, Any], *keys: str) -> Any:
    if "error" in r:
        return r["error"]
    cfg = r.get("config", {})
    return {k: cfg.get(k) for k in keys}


async def _run(url: str, script: Any) -> list[Any]:
    nc = await nats.connect(url)
    out: list[Any] = []

    async def api(subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await nc.request("$JS.API." + subject, json.dumps(body or {}).encode(), timeout=3)
        return json.loads(r.data)

    async def wait_msgs(name: str, n: int) -> None:
        for _ in range(200):
            if (await api("STREAM.INFO." + name))["state"]["messages"] >= n:
                return
            await asyncio.sleep(0.02)

    async def dump(name: str) -> list[Any]:
        st = (await api("STREAM.INFO." + name))["state"]
        got = []
        for seq in range(st["first_seq"], st["last_seq"] + 1):
            m = (await api("STREAM.MSG.GET." + name, {"seq": seq})).get("message")
            if m is None:
                continue
            hdr = base64.b64decode(m.get("hdrs") or b"").decode()
            # nats-server appends its own server identity as a sixth field; we do not
            lines = [" ".join(ln.split(" ")[:6]) if ln.startswith("Nats-Stream-Source:") else ln
                     for ln in hdr.split("\r\n")]
            got.append((seq, m["subject"], "\r\n".join(lines)))
        return [st["messages"], st["first_seq"], st["last_seq"], got]

    try:
        await script(nc, api, wait_msgs, dump, out)
    finally:
        await nc.close()
    return out


async def _origin_transforms(nc: Any, api: Any, wait_msgs: Any, dump: Any, out: list[Any]) -> None:
    await api("STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"]})
    for i in range(4):
        await nc.request(f"o.{i % 2}.x{i}", b"m%d" % i, timeout=2)
    cases = [
        {"name": "S1", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "s.$1.>"}]}]},
        {"name": "S2", "sources": [{"name": "O", "filter_subject": "o.>",
                                    "subject_transforms": [{"src": "o.>", "dest": "s.>"}]}]},
        {"name": "S3", "sources": [{"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"},
                                                                        {"src": "o.1.>", "dest": "t.>"}]}]},
        {"name": "S4", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "s.$2.>"}]}]},
        {"name": "S5", "sources": [{"name": "O", "subject_transforms": [{"src": "o..x", "dest": "s.>"}]}]},
        {"name": "S6", "sources": [{"name": "O", "subject_transforms": [{"src": "o.1.>", "dest": ""}]}]},
        {"name": "S7", "sources": [{"name": "O", "subject_transforms": [{"src": "o.0.>", "dest": "a.>"},
                                                                        {"src": "o.1.>", "dest": "b.>"}]}]},
        {"name": "S8", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*.*", "dest": "a.$2"}]}]},
        {"name": "S9", "sources": [{"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"}]},
                                   {"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"}]}]},
        {"name": "S10", "sources": [{"name": "O", "subject_transforms": [{"src": "o.>", "dest": "u.>"}]},
                                    {"name": "O", "subject_transforms": [{"src": "o.>", "dest": "v.>"}]}]},
        {"name": "M1", "mirror": {"name": "O", "subject_transforms": [{"src": "o.1.>", "dest": "m.>"}]}},
        {"name": "M2", "mirror": {"name": "O", "filter_subject": "o.0.>"}},
        {"name": "M3", "mirror": {"name": "O", "filter_subject": "o.0.>",
                                  "subject_transforms": [{"src": "o.1.>", "dest": "m.>"}]}},
        {"name": "M4", "mirror": {"name": "O", "subject_transforms": [{"src": "o.>", "dest": "m.>"},
                                                                      {"src": "o.1.>", "dest": "n.>"}]}},
        {"name": "M5", "mirror": {"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "m.*.>"}]}},
    ]
    for c in cases:
        out.append((c["name"], _err_or(await api("STREAM.CREATE." + c["name"], c), "mirror", "sources")))
    await nc.request("o.1.live", b"live", timeout=2)
    for name, n in (("S1", 5), ("S6", 3), ("S7", 5), ("S8", 5), ("S10", 10), ("M1", 3), ("M2", 2)):
        await wait_msgs(name, n)
        info = await api("STREAM.INFO." + name)
        links = [info["mirror"]] if "mirror" in info else info.get("sources", [])
        d = await dump(name)
        if len(links) > 1:
            d[3] = sorted(x[1:] for x in d[3])  # two sources interleave in either order
        out.append((name, d, sorted(
            (x["name"], x["lag"], x.get("filter_subject"), json.dumps(x.get("subject_transforms"))) for x in links)))


async def test_origin_transforms_match_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, lambda url: _run(url, _origin_transforms))
    assert_same_steps(results["ours"], results["newer"])


async def _mirror_promotion(nc: Any, api: Any, wait_msgs: Any, dump: Any, out: list[Any]) -> None:
    # no allow_direct: nats-server copies it into mirror_direct, which we do not (see the report)
    await api("STREAM.CREATE.P", {"name": "P", "subjects": ["p.>"]})
    for i in range(3):
        await nc.request(f"p.{i}", b"x", timeout=2)
    r = await api("STREAM.CREATE.PM", {"name": "PM", "mirror": {"name": "P"}})
    out.append(_err_or(r, "mirror", "mirror_direct", "duplicate_window"))
    await wait_msgs("PM", 3)
    cfg = (await api("STREAM.INFO.PM"))["config"]
    out.append((await api("STREAM.UPDATE.PM", {**cfg, "mirror": {"name": "P", "filter_subject": "p.1"}})).get("error"))
    pcfg = (await api("STREAM.INFO.P"))["config"]
    out.append((await api("STREAM.UPDATE.P", {**pcfg, "mirror": {"name": "PM"}})).get("error"))
    out.append((await api("STREAM.UPDATE.P", {**pcfg, "subjects": [], "mirror": {"name": "NONE"}})).get("error"))
    out.append((await api("STREAM.UPDATE.PM", {**cfg, "subjects": ["q.>"]})).get("error"))
    promoted = {k: v for k, v in cfg.items() if k != "mirror"}
    r = await api("STREAM.UPDATE.PM", {**promoted, "subjects": ["q.>"], "mirror_direct": False})
    out.append((_err_or(r, "subjects", "mirror", "mirror_direct", "duplicate_window", "sources"), "mirror" in r,
                r.get("state", {}).get("messages")))
    await nc.request("p.9", b"after", timeout=2)
    out.append(json.loads((await nc.request("q.1", b"own", timeout=2)).data))
    await asyncio.sleep(0.2)  # a copy of p.9 would have arrived by now
    out.append(await dump("PM"))
    await api("STREAM.CREATE.PM2", {"name": "PM2", "mirror": {"name": "P"}})
    await wait_msgs("PM2", 4)
    cfg = (await api("STREAM.INFO.PM2"))["config"]
    cfg.pop("mirror")
    r = await api("STREAM.UPDATE.PM2", {**cfg, "sources": [{"name": "P", "filter_subject": "p.9"}]})
    out.append(_err_or(r, "sources", "subjects"))
    await wait_msgs("PM2", 5)
    out.append((await dump("PM2"))[:3])


async def test_mirror_promotion_matches_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, lambda url: _run(url, _mirror_promotion))
    assert_same_steps(results["ours"], results["newer"])


async def _persist_mode(nc: Any, api: Any, wait_msgs: Any, dump: Any, out: list[Any]) -> None:
    for i, cfg in enumerate([{"persist_mode": "async", "storage": "memory"}, {"persist_mode": "async", "num_replicas": 3},
                             {"persist_mode": "later"}, {"persist_mode": "default"}, {"persist_mode": ""},
                             {"persist_mode": "async"}, {"persist_mode": 1}]):
        r = await api(f"STREAM.CREATE.X{i}", {"name": f"X{i}", **cfg})
        out.append(r.get("error") or r["config"].get("persist_mode", "<absent>"))
    for name, mode in (("X5", "default"), ("X5", ""), ("X3", "async"), ("X3", "default")):
        r = await api("STREAM.UPDATE." + name, {"name": name, "persist_mode": mode})
        out.append(r.get("error") or r["config"].get("persist_mode", "<absent>"))
    out.append([json.loads((await nc.request("X5", b"m", timeout=2)).data) for _ in range(3)])


async def test_persist_mode_matches_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, lambda url: _run(url, _persist_mode))
    assert results["ours"] == results["newer"]


async def _compression(nc: Any, api: Any, wait_msgs: Any, dump: Any, out: list[Any]) -> None:
    for name, cfg in (("Z", {"compression": "s2"}), ("ZM", {"compression": "s2", "storage": "memory"}),
                      ("ZB", {"compression": "lz4"}), ("ZC", {"compression": "S2"}), ("ZD", {"compression": ""}),
                      ("ZE", {"compression": 2}), ("ZN", {"compression": "none"})):
        r = await api("STREAM.CREATE." + name, {"name": name, "subjects": [name.lower() + ".>"], **cfg})
        out.append(r.get("error") or r["config"]["compression"])
    for i in range(5):
        hdrs = {"Order": str(i)} if i % 2 else None
        await nc.request(f"z.{i % 2}", b"payload %d " % i * 30, headers=hdrs, timeout=2)
        await nc.request(f"zn.{i % 2}", b"payload %d " % i * 30, headers=hdrs, timeout=2)
    for name in ("Z", "ZN"):
        info = await api("STREAM.INFO." + name)
        st = info["state"]
        out.append((info["config"]["compression"], st["messages"], st["bytes"], st["num_subjects"]))
    out.append((await dump("Z"))[3] == [(s, subj.replace("zn", "z"), h) for s, subj, h in (await dump("ZN"))[3]])
    cfg = (await api("STREAM.INFO.Z"))["config"]
    r = await api("STREAM.UPDATE.Z", {**cfg, "compression": "none"})
    out.append(r.get("error") or r["config"]["compression"])
    await nc.request("z.9", b"x" * 500, timeout=2)
    out.append((await api("STREAM.INFO.Z"))["state"]["bytes"])


async def test_compression_matches_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, lambda url: _run(url, _compression))
    assert results["ours"] == results["newer"]


async def _origin_echo(nc: Any, api: Any, wait_msgs: Any, dump: Any, out: list[Any]) -> None:
    await api("STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"]})
    for name, cfg in (
        # unknown keys (the retired subject_transform_dest among them) are left out: 2.11+
        # refuses every unknown field with 10025, we ignore them as 2.9.10 does
        ("E1", {"sources": [{"name": "O", "filter_subject": "o.>", "opt_start_seq": 0, "subject_transforms": []}]}),
        ("E2", {"sources": [{"name": "O", "subject_transforms": [{"dest": "t.>"}], "filter_subject": ""}]}),
        ("E3", {"mirror": {"name": "O", "opt_start_seq": 0, "filter_subject": ""}}),
    ):
        r = await api("STREAM.CREATE." + name, {"name": name, **cfg})
        out.append(_err_or(r, "sources", "mirror"))
    cfg = (await api("STREAM.INFO.E3"))["config"]
    out.append((await api("STREAM.UPDATE.E3", {**cfg, "mirror": {"name": "O", "opt_start_seq": 0}})).get("error"))


async def test_origin_echo_matches_a_newer_nats_server(tmp_path: Any) -> None:
    pytest.importorskip("pyjetstream.server.server")
    results = await run_on_newer_and_ours(tmp_path, lambda url: _run(url, _origin_echo))
    assert results["ours"] == results["newer"]
