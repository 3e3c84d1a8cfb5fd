"""Differential test of /jsz and /healthz against nats-server 2.9.10: the same streams,
consumers and messages are created with nats-py on both servers, then every /jsz variant
(streams, consumers, config, accounts, acc) must have the same field names at every level and
the same counts (streams, consumers, messages, bytes per stream, consumer positions). /healthz
with js-enabled / js-enabled-only must answer as nats-server does, with and without -js."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from servers import have_nats_server, start_server

pytestmark = [pytest.mark.nats_server,
              pytest.mark.skipif(not have_nats_server(), reason="nats-server binary not installed")]

JSZ_QUERIES = ("", "?accounts=true", "?streams=true", "?consumers=true", "?consumers=true&config=true",
               "?config=true", "?acc=A", "?acc=C&consumers=true", "?acc=nope", "?acc=nope&streams=true",
               "?acc=B&accounts=true", "?accounts=1&streams=1&consumers=1&config=1")

# Field names only we have: config.sync_always says how the store syncs (nats-server 2.10 has
# the same field; 2.9.10 has none); a stream's metadata holds the API level its features need
# (`_nats.req.level`), as nats-server 2.11+ stores it.
_DETAIL = "account_details.[].stream_detail.[].config."
# The JetStream API level of the release we advertise (2.12.4) is in the stats, as nats-server
# 2.11+ reports it (tests/differential/test_advertised_release.py).
# config.strict: 2.12's strict API decoding, on by default (`jetstream { strict: false }`).
# Consumers store the level their features need the same way (2.12).
_CDETAIL = "account_details.[].stream_detail.[].consumer_detail.[].config."
OUR_EXTRAS = {"config.sync_always", _DETAIL + "metadata", _DETAIL + "metadata._nats.req.level", "api.level",
              "config.strict", _CDETAIL + "metadata", _CDETAIL + "metadata._nats.req.level"}

CONFIG = """
accounts {
  A { jetstream: enabled, users: [{user: a, password: a}] }
  C { jetstream: enabled, users: [{user: c, password: c}] }
  B { users: [{user: b, password: b}] }
}
"""


def field_names(doc, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(prefix + k)
            out |= field_names(v, prefix + k + ".")
    elif isinstance(doc, list):
        for item in doc:
            out |= field_names(item, prefix + "[].")
    return out


async def populate(url: str) -> None:
    """The same JetStream state on either server: two accounts, file and memory streams,
    a pull consumer with one ack pending and a push consumer without interest."""
    nc = await nats.connect(url, user="a", password="a")
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
        await js.add_stream(StreamConfig(name="MEM", subjects=["mem.*"], storage="memory"))
        for i in range(5):
            await js.publish(f"orders.{i}", b"x" * (10 * i))
        await js.publish("mem.a", b"hello")
        await js.add_consumer("ORDERS", ConsumerConfig(durable_name="pull", ack_policy=AckPolicy.EXPLICIT))
        await js.add_consumer("ORDERS", ConsumerConfig(durable_name="push", deliver_subject="dl.x",
                                                       ack_policy=AckPolicy.EXPLICIT))
        sub = await js.pull_subscribe("orders.>", durable="pull", stream="ORDERS")
        msgs = await sub.fetch(2)
        await msgs[0].ack_sync()
    finally:
        await nc.close()
    nc = await nats.connect(url, user="c", password="c")
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="EVENTS", subjects=["ev.>"], max_msgs_per_subject=1))
        for i in range(4):
            await js.publish(f"ev.{i % 2}", b"e" * i)
        await js.add_consumer("EVENTS", ConsumerConfig(durable_name="d", ack_policy=AckPolicy.NONE))
    finally:
        await nc.close()


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def jsz_docs(tmp_path_factory) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for kind in ("nats-server", "pyjetstream"):
        d = tmp_path_factory.mktemp(kind.replace("-", ""))
        srv = start_server(kind, d, "-js", "-sd", str(d / "js"), "-m", "-1", config=CONFIG)
        try:
            asyncio.run(populate(srv.url))
            out[kind] = {q: srv.get_json("/jsz" + q) for q in JSZ_QUERIES}
        finally:
            srv.stop()
    return out


@pytest.mark.parametrize("query", JSZ_QUERIES)
def test_jsz_field_names_match(jsz_docs, query: str) -> None:
    ref = field_names(jsz_docs["nats-server"][query])
    ours = field_names(jsz_docs["pyjetstream"][query])
    assert ref - ours == set(), f"/jsz{query}: fields of nats-server missing in ours"
    assert ours - ref - OUR_EXTRAS == set(), f"/jsz{query}: fields nats-server does not have"


def _counts(doc: dict) -> dict:
    top = {k: doc[k] for k in ("streams", "consumers", "messages", "bytes", "memory", "storage", "accounts")}
    details = {}
    for acct in doc.get("account_details", ()):
        for sd in acct.get("stream_detail", ()):
            st = sd["state"]
            details[(acct["name"], sd["name"])] = {
                "state": {k: st[k] for k in ("messages", "bytes", "first_seq", "last_seq", "num_subjects",
                                             "consumer_count")},
                "consumers": {cd["name"]: (cd["delivered"]["stream_seq"], cd["ack_floor"]["stream_seq"],
                                           cd["num_pending"], cd["num_ack_pending"], cd["num_redelivered"],
                                           cd["num_waiting"]) for cd in sd.get("consumer_detail", ())},
                "has_config": "config" in sd,
            }
    return {"top": top, "accounts": sorted(a["name"] for a in doc.get("account_details", ())),
            "details": details}


@pytest.mark.parametrize("query", JSZ_QUERIES)
def test_jsz_counts_match(jsz_docs, query: str) -> None:
    ref = _counts(jsz_docs["nats-server"][query])
    ours = _counts(jsz_docs["pyjetstream"][query])
    assert ours == ref


def test_jsz_sees_the_populated_state(jsz_docs) -> None:
    # guards the differential against both sides being empty in the same way
    doc = jsz_docs["pyjetstream"]["?consumers=true"]
    assert (doc["streams"], doc["consumers"], doc["messages"]) == (3, 3, 8)
    assert _counts(doc)["details"][("A", "ORDERS")]["consumers"]["pull"] == (2, 1, 3, 1, 0, 0)


HEALTHZ_QUERIES = ("", "?js-enabled-only=true", "?js-enabled=true", "?js-enabled=1&js-enabled-only=1",
                   "?js-enabled=false", "?js-enabled-only=x", "?js-enabled=yes")


@pytest.mark.parametrize("with_js", [False, True], ids=["no-js", "js"])
def test_healthz_options_like_nats_server(tmp_path, with_js: bool) -> None:
    answers = {}
    for kind in ("nats-server", "pyjetstream"):
        args = ("-js", "-sd", str(tmp_path / kind / "js")) if with_js else ()
        with start_server(kind, tmp_path / kind, "-m", "-1", *args) as srv:
            got = {}
            for q in HEALTHZ_QUERIES:
                status, body = http_get(srv.http_port, "/healthz" + q)
                got[q] = (status, json.loads(body) if status == 200 else body.decode())
            answers[kind] = got
    assert answers["pyjetstream"] == answers["nats-server"]


def test_jsz_without_jetstream_like_nats_server(tmp_path) -> None:
    docs = {}
    for kind in ("nats-server", "pyjetstream"):
        with start_server(kind, tmp_path / kind, "-m", "-1") as srv:
            docs[kind] = {q: http_get(srv.http_port, "/jsz" + q) for q in ("", "?streams=true", "?streams=x")}
    for q, (status, body) in docs["nats-server"].items():
        our_status, our_body = docs["pyjetstream"][q]
        assert our_status == status, q
        if status == 200:
            ref, ours = json.loads(body), json.loads(our_body)
            assert field_names(ours) == field_names(ref)
            assert {k: v for k, v in ours.items() if k not in ("server_id", "now")} == \
                {k: v for k, v in ref.items() if k not in ("server_id", "now")}
        else:
            assert our_body == body
