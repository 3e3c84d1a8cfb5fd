"""Issue 12 "fix first", against nats-server 2.9.10 and ours with the same config file:
`jetstream { domain }` (PubAcks, account and stream info, `$JS.<domain>.API.` answered as
`$JS.API.`, nats-py's `jetstream(domain=...)` for streams, pulls and KV), the account
JetStream limits (`max_ack_pending`, `*_max_stream_bytes`, `max_bytes_required`: 10113,
10122, 10121, and their place in account info) and `mirror_direct` without a mirror (10052
on create; an update may set it, as in nats-server).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, KeyValueConfig
from servers import NATS_SERVER, ServerProc, flushed, start_server
from test_js_api_diff import diff, normalize

pytestmark = pytest.mark.skipif(not os.path.exists(NATS_SERVER), reason="nats-server not installed")

CONFIG = """
jetstream {{ domain: "hub", store_dir: "{store}" }}
accounts {{
  A {{ jetstream {{ max_ack_pending: 5, memory_max_stream_bytes: 1000, store_max_stream_bytes: 2000,
                    max_bytes_required: true, max_mem: 1M, max_file: 1M }},
       users [{{user: a, password: a}}] }}
  B {{ jetstream {{ mem_max_stream_bytes: 1000, disk_max_stream_bytes: 2K, max_stream_bytes: false }},
       users [{{user: b, password: b}}] }}
  C {{ jetstream: enabled, users [{{user: c, password: c}}] }}
}}
"""


def _start(kind: str, tmp: Path) -> ServerProc:
    work = tmp / kind
    work.mkdir(parents=True, exist_ok=True)
    return start_server(kind, work, config=CONFIG.format(store=work / "js"))


def J(d: Any) -> bytes:
    return json.dumps(d).encode()


def S(name: str, storage: str = "memory", **kw: Any) -> dict[str, Any]:
    return {"name": name, "subjects": [name.lower()], "storage": storage, **kw}


def DUR(name: str, **kw: Any) -> dict[str, Any]:
    return {"stream_name": "S1", "config": {"durable_name": name, "ack_policy": "explicit", **kw}}


# (user, subject, body); every reply is compared after normalize()
SCRIPT: list[tuple[str, str, bytes]] = [
    ("a", "$JS.API.INFO", b""),
    ("a", "$JS.hub.API.INFO", b""),
    ("a", "$JS.API.STREAM.CREATE.S1", J(S("S1"))),  # 10113
    ("a", "$JS.API.STREAM.CREATE.S1", J(S("S1", max_bytes=1001))),  # 10122 (memory ceiling)
    ("a", "$JS.API.STREAM.CREATE.F1", J(S("F1", "file", max_bytes=2001))),  # 10122 (file ceiling)
    ("a", "$JS.API.STREAM.CREATE.F1", J(S("F1", "file", max_bytes=2000))),  # a file stream may take 2000
    ("a", "$JS.hub.API.STREAM.CREATE.S1", J(S("S1", max_bytes=1000))),  # through the domain prefix
    ("a", "$JS.API.STREAM.UPDATE.S1", J(S("S1", max_bytes=1001))),  # 10122 on update
    ("a", "$JS.API.STREAM.UPDATE.S1", J(S("S1"))),  # 10113 on update
    ("a", "s1", b"x"),  # PubAck with the domain
    ("a", "$JS.API.STREAM.INFO.S1", b""),
    ("a", "$JS.hub.API.STREAM.INFO.S1", b""),
    ("a", "$JS.API.STREAM.LIST", b""),
    ("a", "$JS.API.CONSUMER.DURABLE.CREATE.S1.d", J(DUR("d", max_ack_pending=6))),  # 10121
    ("a", "$JS.API.CONSUMER.DURABLE.CREATE.S1.d", J(DUR("d"))),  # default capped to 5
    ("a", "$JS.API.CONSUMER.DURABLE.CREATE.S1.d", J(DUR("d", max_ack_pending=6))),  # 10121 on update
    ("a", "$JS.API.CONSUMER.DURABLE.CREATE.S1.e", J(DUR("e", max_ack_pending=-1))),
    ("a", "$JS.hub.API.CONSUMER.INFO.S1.d", b""),
    ("a", "$JS.API.STREAM.CREATE.S2", J(S("S2", max_bytes=10, mirror_direct=True))),  # 10052
    ("a", "$JS.API.STREAM.UPDATE.S1", J(S("S1", max_bytes=1000, mirror_direct=True))),  # taken
    ("a", "$JS.API.INFO", b""),
    ("a", "$JS.other.API.INFO", b""),  # another domain: nobody answers
    ("a", "$JS.hub.API.NOPE", b""),  # not a mapped tail: nobody answers
    ("b", "$JS.API.INFO", b""),
    ("b", "$JS.API.STREAM.CREATE.S1", J(S("S1"))),  # not required in B
    ("b", "$JS.API.STREAM.CREATE.S2", J(S("S2", max_bytes=1001))),  # 10122
    ("b", "$JS.API.STREAM.CREATE.F2", J(S("F2", "file", max_bytes=2048))),  # 2K is 2000 in nats config: 10122
    ("c", "$JS.API.INFO", b""),  # no limits: all -1 and false
    ("c", "$JS.API.STREAM.CREATE.S3", J(S("S3", mirror_direct=True))),  # 10052 without limits too
]


async def _run_script(url: str) -> list[Any]:
    conns = {u: await nats.connect(url, user=u, password=u) for u in ("a", "b", "c")}
    out: list[Any] = []
    try:
        for user, subject, body in SCRIPT:
            try:
                m = await conns[user].request(subject, body, timeout=2)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as e:
                out.append(type(e).__name__)
                continue
            out.append(normalize(json.loads(m.data)))
    finally:
        for c in conns.values():
            await c.close()
    return out


async def test_domain_and_account_limits_api_match_nats_server(tmp_path: Path) -> None:
    results = {}
    for kind in ("nats-server", "pyjetstream"):
        proc = _start(kind, tmp_path)
        try:
            results[kind] = await _run_script(proc.url)
        finally:
            proc.stop()
    problems = []
    for (user, subject, body), ref, ours in zip(SCRIPT, results["nats-server"], results["pyjetstream"], strict=True):
        d = diff(ref, ours)
        if d:
            problems.append(f"{user} {subject} {body[:60]!r}:\n    " + "\n    ".join(d))
    assert not problems, "\n".join(problems)
    ours = results["pyjetstream"]
    # the facts the issue names, spelled out (so a reference that changed cannot hide them)
    assert ours[0]["domain"] == "hub" and ours[0]["limits"] == {
        "max_memory": 1000000, "max_storage": 1000000, "max_streams": -1, "max_consumers": -1,
        "max_ack_pending": 5, "memory_max_stream_bytes": 1000, "storage_max_stream_bytes": 2000,
        "max_bytes_required": True}
    assert ours[2]["error"]["err_code"] == 10113 and ours[3]["error"]["err_code"] == 10122
    assert ours[9] == {"stream": "S1", "domain": "hub", "seq": 1}
    assert ours[13]["error"] == {"code": 400, "err_code": 10121,
                                 "description": "consumer max ack pending exceeds system limit of 5"}
    assert ours[14]["config"]["max_ack_pending"] == 5
    assert ours[18]["error"] == {"code": 500, "err_code": 10052,
                                 "description": "stream has no mirror but does have mirror direct"}
    assert ours[21] == ours[22] == "NoRespondersError"
    assert "domain" not in ours[6]  # the create response leaves it out, as nats-server's


async def _client_flow(url: str) -> dict[str, Any]:
    """nats-py with jetstream(domain="hub"): stream, publish, pull fetch, KV."""
    nc = await nats.connect(url, user="b", password="b")
    try:
        js = nc.jetstream(domain="hub")
        await js.add_stream(name="ORD", subjects=["ord.>"], storage="memory", max_bytes=1000)
        acks = [await js.publish("ord.x", b"o%d" % i) for i in range(3)]
        await js.add_consumer("ORD", ConsumerConfig(durable_name="w", ack_policy="explicit"))
        psub = await js.pull_subscribe_bind("w", "ORD")
        msgs = await psub.fetch(3, timeout=2)
        for m in msgs:
            await m.ack_sync()
        kv = await js.create_key_value(KeyValueConfig(bucket="cfg", storage="memory", max_bytes=1000))
        rev = await kv.put("k", b"v1")
        got = await kv.get("k")
        info = await js.account_info()
        return {"acks": [(a.stream, a.seq, a.domain) for a in acks], "msgs": [m.data for m in msgs],
                "meta": [(m.metadata.sequence.stream, m.metadata.num_delivered) for m in msgs],
                "kv": (rev, got.value, got.revision), "domain": info.domain, "streams": info.streams}
    finally:
        await nc.close()


async def test_nats_py_with_domain_matches_nats_server(tmp_path: Path) -> None:
    flows = {}
    for kind in ("nats-server", "pyjetstream"):
        proc = _start(kind, tmp_path)
        try:
            flows[kind] = await _client_flow(proc.url)
        finally:
            proc.stop()
    assert flows["pyjetstream"] == flows["nats-server"]
    assert flows["pyjetstream"]["acks"] == [("ORD", 1, "hub"), ("ORD", 2, "hub"), ("ORD", 3, "hub")]
    assert flows["pyjetstream"]["kv"] == (1, b"v1", 1) and flows["pyjetstream"]["domain"] == "hub"


PERM_CONFIG = """
jetstream {{ domain: "hub", store_dir: "{store}" }}
authorization {{ users [
  {{ user: d, password: d, permissions: {{ publish: {{ deny: ["$JS.API.>", "$KV.>"] }} }} }}
  {{ user: k, password: k }}
] }}
"""


async def _domain_prefix_flow(url: str) -> tuple[list[Any], list[str]]:
    """A deny on $JS.API.> (and $KV.>) holds through the domain prefix; a KV put through
    `$JS.<domain>.API.$KV.` (how nats.go writes with a domain) reaches the bucket."""
    errs: list[str] = []

    async def on_err(e: Exception) -> None:
        errs.append(str(e))

    denied = await nats.connect(url, user="d", password="d", error_cb=on_err)
    nc = await nats.connect(url, user="k", password="k")
    out: list[Any] = []
    try:
        js = nc.jetstream(domain="hub")
        await js.create_key_value(KeyValueConfig(bucket="cfg", storage="memory"))
        m = await nc.request("$JS.hub.API.$KV.cfg.k", b"v1", timeout=2)
        out.append(json.loads(m.data))
        entry = await (await js.key_value("cfg")).get("k")
        out.append((entry.value, entry.revision))
        for subject in ("$JS.hub.API.INFO", "$JS.hub.API.STREAM.DELETE.KV_cfg", "$JS.hub.API.$KV.cfg.k"):
            try:
                await denied.request(subject, b"", timeout=0.5)
                out.append("answered")
            except nats.errors.TimeoutError:
                out.append("no answer")
        await flushed(denied)
        out.append((await js.stream_info("KV_cfg")).state.messages)  # the bucket kept one value
    finally:
        await denied.close()
        await nc.close()
    return out, errs


async def test_domain_prefix_permissions_and_kv_match_nats_server(tmp_path: Path) -> None:
    flows = {}
    for kind in ("nats-server", "pyjetstream"):
        work = tmp_path / kind
        work.mkdir(parents=True, exist_ok=True)
        proc = start_server(kind, work, config=PERM_CONFIG.format(store=work / "js"))
        try:
            flows[kind] = await _domain_prefix_flow(proc.url)
        finally:
            proc.stop()
    assert flows["pyjetstream"] == flows["nats-server"]
    out, errs = flows["pyjetstream"]
    assert out == [{"stream": "KV_cfg", "domain": "hub", "seq": 1}, (b"v1", 1), "no answer", "no answer",
                   "no answer", 1]
    # the violation names the mapped subject (nats-py lower-cases the error text)
    assert errs == ['nats: permissions violation for publish to "$js.api.info"',
                    'nats: permissions violation for publish to "$js.api.stream.delete.kv_cfg"',
                    'nats: permissions violation for publish to "$kv.cfg.k"']


def test_monitoring_reports_the_domain_like_nats_server(tmp_path: Path) -> None:
    seen = {}
    for kind in ("nats-server", "pyjetstream"):
        work = tmp_path / kind
        work.mkdir(parents=True, exist_ok=True)
        with start_server(kind, work, "-m", "-1", config=CONFIG.format(store=work / "js")) as srv:
            seen[kind] = (srv.get_json("/varz")["jetstream"]["config"].get("domain"),
                          srv.get_json("/jsz")["config"].get("domain"))
    assert seen["pyjetstream"] == seen["nats-server"] == ("hub", "hub")


async def _advisory_domains(url: str) -> dict[str, set[Any]]:
    """Every advisory type seen while a stream and a consumer live and die, with the set of
    `domain` values it carried."""
    nc = await nats.connect(url, user="c", password="c")
    seen: dict[str, set[Any]] = {}

    async def on_event(m: nats.aio.msg.Msg) -> None:
        doc = json.loads(m.data)
        seen.setdefault(doc["type"], set()).add(doc.get("domain"))

    try:
        await nc.subscribe("$JS.EVENT.>", cb=on_event)
        await flushed(nc)
        js = nc.jetstream(domain="hub")
        await js.add_stream(name="ADV", subjects=["adv"], storage="memory")
        await js.update_stream(name="ADV", subjects=["adv"], storage="memory", max_msgs=10)
        await js.publish("adv", b"x")
        await js.add_consumer("ADV", ConsumerConfig(durable_name="n", ack_policy="explicit", max_deliver=2,
                                                    sample_freq="100%"))
        psub = await js.pull_subscribe_bind("n", "ADV")
        for _ in range(2):
            (m,) = await psub.fetch(1, timeout=2)
            await m.nak()
        await js.delete_consumer("ADV", "n")
        await js.delete_stream("ADV")
        await flushed(nc)
        await nc.request("$JS.API.INFO", b"", timeout=2)  # a round trip: every advisory is in
    finally:
        await nc.close()
    return seen


async def test_advisories_carry_the_domain_like_nats_server(tmp_path: Path) -> None:
    seen = {}
    for kind in ("nats-server", "pyjetstream"):
        proc = _start(kind, tmp_path)
        try:
            seen[kind] = await _advisory_domains(proc.url)
        finally:
            proc.stop()
    ref, ours = seen["nats-server"], seen["pyjetstream"]
    assert {k.rsplit(".", 1)[1] for k in ref} >= {"stream_action", "consumer_action", "api_audit", "nak"}
    for kind, domains in ref.items():
        assert ours.get(kind) == domains == {"hub"}, kind
