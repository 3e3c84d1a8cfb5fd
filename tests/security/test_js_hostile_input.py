"""Hostile JetStream input: numbers that do not fit their field, bad pull requests, asset names
that are awkward on disk, and a CONSUMER.DELETE that carries a body.

Where nats-server 2.9.10 has an answer, every case runs against it and against ours and both must
give the same answer (the table holds nats-server's answer, checked on both). What 2.9.10 lacks
(first_seq, sequences near the top of the range) is checked on ours only: a clear error, never a
500 "internal error", a traceback in the log, or a server that stops answering.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
from servers import KINDS, ServerProc, have_nats_server, start_server

pytestmark = pytest.mark.timeout(240)

CREATE = "$JS.API.STREAM.CREATE."


def kinds() -> list[Any]:
    return [pytest.param(k, marks=pytest.mark.skipif(k == "nats-server" and not have_nats_server(),
                                                     reason="nats-server not installed")) for k in KINDS]


def start(kind: str, tmp: Path) -> ServerProc:
    store = tmp / "store"
    store.mkdir(parents=True, exist_ok=True)
    return start_server(kind, tmp, "-js", "-sd", str(store))


def assert_healthy(srv: ServerProc) -> None:
    log = srv.log()
    assert "Traceback" not in log and "handler failed" not in log, log[-4000:]


async def req(nc: Any, subject: str, body: Any = b"", timeout: float = 5.0) -> Any:
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return await nc.request(subject, body, timeout=timeout)


async def jreq(nc: Any, subject: str, body: Any = b"") -> dict[str, Any]:
    return json.loads((await req(nc, subject, body)).data)


async def pull(nc: Any, subject: str, body: bytes, timeout: float = 5.0) -> Any:
    """A pull request on its own inbox: delivered messages carry the stream's subject, which
    nats-py's request() cannot match to its request."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(subject, body, reply=inbox)
        return await sub.next_msg(timeout)
    finally:
        await sub.unsubscribe()


def err(reply: dict[str, Any]) -> tuple[int, int] | None:
    e = reply.get("error")
    return None if e is None else (e["code"], e["err_code"])


# (config fields, nats-server's (code, err_code)) -- each a fresh stream; 2.9.10's Go types:
# max_consumers int, max_msgs/max_bytes/max_msgs_per_subject int64, max_age/duplicate_window
# Duration (int64), max_msg_size int32, num_replicas int.
STREAM_NUMBERS: list[tuple[dict[str, Any], tuple[int, int] | None]] = [
    ({"max_bytes": 2**64}, (400, 10025)),
    ({"max_bytes": 2**63}, (400, 10025)),
    ({"max_bytes": -(2**63) - 1}, (400, 10025)),
    ({"max_msgs": 2**63}, (400, 10025)),
    ({"max_msgs": 1.5}, (400, 10025)),
    ({"max_msgs": 1.0}, (400, 10025)),
    ({"max_msgs": True}, (400, 10025)),
    ({"max_msgs": "5"}, (400, 10025)),
    ({"max_msgs_per_subject": 2**63}, (400, 10025)),
    ({"max_age": 2**63}, (400, 10025)),
    ({"duplicate_window": 2**63}, (400, 10025)),
    ({"duplicate_window": 1e300}, (400, 10025)),
    ({"max_msg_size": 2**31}, (400, 10025)),
    ({"max_msg_size": -(2**31) - 1}, (400, 10025)),
    ({"max_msg_size": 2**31 - 1}, None),
    ({"max_consumers": 2**63}, (400, 10025)),
    ({"max_consumers": 2**40}, None),
    ({"num_replicas": 2**63}, (400, 10025)),
    ({"max_msgs": 2**63 - 1, "max_msgs_per_subject": -(2**63)}, None),
    ({"mirror": {"name": "ORIGIN", "opt_start_seq": -1}}, (400, 10025)),
    ({"mirror": {"name": "ORIGIN", "opt_start_seq": 2**64}}, (400, 10025)),
    ({"sources": [{"name": "ORIGIN", "opt_start_seq": 1.5}]}, (400, 10025)),
    ({"sources": [7]}, (400, 10025)),
    ({"placement": {"tags": [1]}}, (400, 10025)),
    ({"republish": {"src": 5, "dest": "x"}}, (400, 10025)),
]
RAW_STREAM_BODIES: list[tuple[str, tuple[int, int] | None]] = [
    ('{"name":"%s","max_msgs":1e400}', (400, 10025)),
    ('{"name":"%s","max_msgs":1e3}', (400, 10025)),
    ('{"name":"%s","max_msgs":NaN}', (400, 10025)),
    ('{"name":"%s","max_msgs":-Infinity}', (400, 10025)),
    ('{"name":"%s","description":NaN}', (400, 10025)),
    ('{"name":"%s","max_msgs":99999999999999999999999999999999999999}', (400, 10025)),
]


@pytest.mark.parametrize("kind", kinds())
async def test_numbers_that_do_not_fit_their_field(kind: str, tmp_path: Path) -> None:
    srv = start(kind, tmp_path)
    try:
        nc = await nats.connect(srv.url)
        got, want = [], []
        for i, (fields, expected) in enumerate(STREAM_NUMBERS):
            name = f"N{i}"
            reply = await jreq(nc, CREATE + name, {"name": name, "subjects": [f"n.{i}"], **fields})
            got.append((fields, err(reply)))
            want.append((fields, expected))
        for i, (raw, expected) in enumerate(RAW_STREAM_BODIES):
            name = f"R{i}"
            reply = await jreq(nc, CREATE + name, raw % name)
            got.append((raw, err(reply)))
            want.append((raw, expected))
        assert got == want
        # request bodies of the other handlers: uint64 sequences, int offsets
        await jreq(nc, CREATE + "S", {"name": "S", "subjects": ["s"]})
        await req(nc, "s", b"x")
        for subject, body in [
            ("$JS.API.STREAM.MSG.GET.S", {"seq": 2**64}),
            ("$JS.API.STREAM.MSG.GET.S", {"seq": -1}),
            ("$JS.API.STREAM.MSG.GET.S", {"seq": 1.0}),
            ("$JS.API.STREAM.MSG.DELETE.S", {"seq": -5}),
            ("$JS.API.STREAM.MSG.DELETE.S", {"seq": 2**64}),
            ("$JS.API.STREAM.PURGE.S", {"keep": -1}),
            ("$JS.API.STREAM.PURGE.S", {"seq": 2**64}),
            ("$JS.API.STREAM.INFO.S", {"offset": 2**63}),
            ("$JS.API.STREAM.NAMES", {"offset": 2**63}),
            ("$JS.API.STREAM.LIST", {"offset": 1.5}),
            ("$JS.API.CONSUMER.NAMES.S", {"offset": 2**63}),
        ]:
            reply = await jreq(nc, subject, body)
            assert err(reply) == (400, 10025), (subject, body, reply)
        # ... and the largest values that do fit are accepted
        reply = await jreq(nc, "$JS.API.STREAM.MSG.GET.S", {"seq": 2**64 - 1})
        assert err(reply) == (404, 10037)
        # Go decodes a JSON null body as "no fields": the name check answers
        reply = await jreq(nc, CREATE + "NUL", "null")
        assert err(reply) == (400, 10056)
        await nc.close()
    finally:
        srv.stop()
    assert_healthy(srv)


CONSUMER_NUMBERS: list[tuple[dict[str, Any], tuple[int, int] | None]] = [
    ({"max_deliver": 2**63}, (400, 10025)),
    ({"ack_wait": 2**63}, (400, 10025)),
    ({"ack_wait": 1.5}, (400, 10025)),
    ({"max_ack_pending": 2**63}, (400, 10025)),
    ({"max_waiting": 2**63}, (400, 10025)),
    ({"max_waiting": "1"}, (400, 10025)),
    ({"backoff": [2**63]}, (400, 10025)),
    ({"backoff": [1.5]}, (400, 10025)),
    ({"backoff": ["1s"]}, (400, 10025)),
    ({"backoff": 5}, (400, 10025)),
    ({"deliver_policy": "by_start_sequence", "opt_start_seq": 2**64}, (400, 10025)),
    ({"deliver_policy": "by_start_sequence", "opt_start_seq": -1}, (400, 10025)),
    ({"deliver_policy": "by_start_sequence", "opt_start_seq": 2**64 - 1}, None),
    ({"rate_limit_bps": -1}, (400, 10025)),
    ({"max_batch": 2**63}, (400, 10025)),
    ({"max_expires": 1e400}, (400, 10025)),
    ({"max_bytes": [1]}, (400, 10025)),
    ({"inactive_threshold": {"a": 1}}, (400, 10025)),
    ({"num_replicas": 2**63}, (400, 10025)),
    ({"flow_control": 1}, (400, 10025)),
    ({"description": 5}, (400, 10025)),
    ({"opt_start_time": 5}, (400, 10025)),
]


@pytest.mark.parametrize("kind", kinds())
async def test_consumer_numbers_that_do_not_fit(kind: str, tmp_path: Path) -> None:
    srv = start(kind, tmp_path)
    try:
        nc = await nats.connect(srv.url)
        await jreq(nc, CREATE + "S", {"name": "S", "subjects": ["s"]})
        got, want = [], []
        for i, (fields, expected) in enumerate(CONSUMER_NUMBERS):
            cfg = {"durable_name": f"C{i}", "ack_policy": "explicit", **fields}
            reply = await jreq(nc, f"$JS.API.CONSUMER.DURABLE.CREATE.S.C{i}", {"stream_name": "S", "config": cfg})
            got.append((fields, err(reply)))
            want.append((fields, expected))
        assert got == want
        await nc.close()
    finally:
        srv.stop()
    assert_healthy(srv)


# pull-request bodies nats-server answers with a 400 status on the reply subject
BAD_PULLS = [
    b'{"batch":1e400}', b'{"batch":[1]}', b'{"expires":1e400}', b'{"max_bytes":"x"}', b'{"batch":1.5}',
    b'{"batch":1.0,"no_wait":true}', b'{"batch":9223372036854775808}', b'{"no_wait":1}', b'{"batch":NaN}',
    b'{"idle_heartbeat":"1s"}', b'{"batch":{}}', b'{', b'{"batch":1,"expires":-1e400}',
]


@pytest.mark.parametrize("kind", kinds())
async def test_bad_pull_requests_get_400(kind: str, tmp_path: Path) -> None:
    srv = start(kind, tmp_path)
    try:
        nc = await nats.connect(srv.url)
        await jreq(nc, CREATE + "P", {"name": "P", "subjects": ["p"]})
        await jreq(nc, "$JS.API.CONSUMER.DURABLE.CREATE.P.D",
                   {"stream_name": "P", "config": {"durable_name": "D", "ack_policy": "explicit"}})
        for body in BAD_PULLS:
            m = await req(nc, "$JS.API.CONSUMER.MSG.NEXT.P.D", body)
            assert m.headers is not None, (body, m.data)
            assert m.headers.get("Status") == "400", (body, m.headers)
            assert m.headers.get("Description", "").startswith("Bad Request - "), (body, m.headers)
        # a negative heartbeat is no heartbeat: the request just times out
        m = await req(nc, "$JS.API.CONSUMER.MSG.NEXT.P.D", b'{"idle_heartbeat":-5,"expires":300000000}')
        assert m.headers is not None and m.headers.get("Status") == "408", m.headers
        # a plain number body beyond int64 is a batch of one (Go's strconv.Atoi fails)
        await req(nc, "p", b"1")
        m = await pull(nc, "$JS.API.CONSUMER.MSG.NEXT.P.D", b"99999999999999999999999")
        assert m.data == b"1"
        # and the consumer still serves
        info = await jreq(nc, "$JS.API.CONSUMER.INFO.P.D")
        assert info["name"] == "D"
        await nc.close()
    finally:
        srv.stop()
    assert_healthy(srv)


@pytest.mark.parametrize("kind", kinds())
async def test_consumer_delete_refuses_a_body(kind: str, tmp_path: Path) -> None:
    """A PubAck (or any message) landing on CONSUMER.DELETE must not delete the consumer."""
    srv = start(kind, tmp_path)
    try:
        nc = await nats.connect(srv.url)
        await jreq(nc, CREATE + "S", {"name": "S", "subjects": ["s"]})
        await jreq(nc, "$JS.API.CONSUMER.DURABLE.CREATE.S.C",
                   {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit"}})
        # nats-server's isEmptyRequest: nothing at all, or a JSON object without keys
        for body in (b'{"stream":"S", "seq":1}', b"x", b"null", b" ", b"[]", b'{"":0}'):
            reply = await jreq(nc, "$JS.API.CONSUMER.DELETE.S.C", body)
            assert err(reply) == (400, 10038), (body, reply)
            assert reply["error"]["description"] == "expected an empty request payload"
        info = await jreq(nc, "$JS.API.CONSUMER.INFO.S.C")
        assert info.get("name") == "C", info
        for body in (b"", b"{}", b" { } "):
            reply = await jreq(nc, "$JS.API.CONSUMER.DURABLE.CREATE.S.C",
                               {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit"}})
            assert err(reply) is None, reply
            reply = await jreq(nc, "$JS.API.CONSUMER.DELETE.S.C", body)
            assert reply.get("success") is True, (body, reply)
        # the same rule for STREAM.DELETE
        for body in (b" ", b'{"stream":"S","seq":1}'):
            reply = await jreq(nc, "$JS.API.STREAM.DELETE.S", body)
            assert err(reply) == (400, 10038), (body, reply)
        assert (await jreq(nc, "$JS.API.STREAM.DELETE.S", b" {} ")).get("success") is True
        await nc.close()
    finally:
        srv.stop()
    assert_healthy(srv)


# names nats-server 2.9.10 accepts: they must work here too, on disk and after a restart
GOOD_NAMES = ["%" * 255, "~" * 255, "$" * 255, "a" * 255, "é" * 127, "KV_" + "%" * 252, "%2F", "$x",
              "日本", "a\"b", "'" * 255]
# (name, stream answer, durable consumer answer)
BAD_NAMES: list[tuple[str, tuple[int, int], tuple[int, int]]] = [
    ("é" * 128, (500, 10052), (400, 10102)),  # 256 bytes: the limit counts bytes
    ("a" * 256, (500, 10052), (400, 10102)),
    ("a/b", (400, 10128), (400, 10127)),
    ("a\\b", (400, 10128), (400, 10127)),
    ("/" * 255, (400, 10128), (400, 10127)),
    ("a\x00b", (500, 10049), (500, 10012)),
]


def walk_store(store: Path) -> list[Path]:
    return [Path(d) / f for d, dirs, files in os.walk(store) for f in dirs + files]


@pytest.mark.parametrize("kind", kinds())
async def test_awkward_names(kind: str, tmp_path: Path) -> None:
    srv = start(kind, tmp_path)
    store = tmp_path / "store"
    before = set(tmp_path.iterdir())
    try:
        nc = await nats.connect(srv.url)
        await jreq(nc, CREATE + "HOST", {"name": "HOST", "subjects": ["host"]})
        for i, name in enumerate(GOOD_NAMES):
            reply = await jreq(nc, CREATE + name, {"name": name, "subjects": [f"g.{i}"]})
            assert err(reply) is None, (name, reply)
            ack = json.loads((await req(nc, f"g.{i}", b"x")).data)
            assert ack.get("seq") == 1, (name, ack)
            cfg = {"durable_name": name, "ack_policy": "explicit"}
            reply = await jreq(nc, f"$JS.API.CONSUMER.DURABLE.CREATE.HOST.{name}",
                               {"stream_name": "HOST", "config": cfg})
            assert err(reply) is None, (name, reply)
            # a durable on the awkward stream too, so its state lives under that directory
            reply = await jreq(nc, f"$JS.API.CONSUMER.DURABLE.CREATE.{name}.{name}",
                               {"stream_name": name, "config": cfg})
            assert err(reply) is None, (name, reply)
        for name, stream_err, consumer_err in BAD_NAMES:
            reply = await jreq(nc, CREATE + name, {"name": name, "subjects": ["bad"]})
            assert err(reply) == stream_err, (name, reply)
            cfg = {"durable_name": name, "ack_policy": "explicit"}
            reply = await jreq(nc, f"$JS.API.CONSUMER.DURABLE.CREATE.HOST.{name}",
                               {"stream_name": "HOST", "config": cfg})
            assert err(reply) == consumer_err, (name, reply)
        await nc.close()
        if kind == "pyjetstream":
            srv.stop()
            assert_healthy(srv)
            srv = start(kind, tmp_path)
            nc = await nats.connect(srv.url)
            names = await jreq(nc, "$JS.API.STREAM.NAMES")
            assert sorted(names["streams"]) == sorted(["HOST", *GOOD_NAMES])
            hosted = await jreq(nc, "$JS.API.CONSUMER.NAMES.HOST")
            assert sorted(hosted["consumers"]) == sorted(GOOD_NAMES)
            for i, name in enumerate(GOOD_NAMES):
                info = await jreq(nc, f"$JS.API.STREAM.INFO.{name}")
                assert info["state"]["messages"] == 1, (name, info)
                c = await jreq(nc, f"$JS.API.CONSUMER.INFO.{name}.{name}")
                assert c.get("name") == name, (name, c)
                assert json.loads((await req(nc, f"g.{i}", b"y")).data).get("seq") == 2
            # deleting removes every file of the stream, its consumers' included
            for name in GOOD_NAMES:
                assert (await jreq(nc, f"$JS.API.STREAM.DELETE.{name}")).get("success") is True
            await nc.close()
            left = [p for p in walk_store(store) if "HOST" not in str(p)]
            assert all(p.is_dir() for p in left), left
    finally:
        srv.stop()
    # nothing outside the store directory was created
    after = set(tmp_path.iterdir())
    assert {p for p in after - before if not p.name.endswith(".out")} == set()
    for p in walk_store(store):
        assert p.resolve().is_relative_to(store.resolve()), p
        assert len(p.name.encode()) <= 255
    assert_healthy(srv)


async def test_sequences_at_the_top_of_the_range(tmp_path: Path) -> None:
    """first_seq and purge move the sequence; ours keeps it within int64 and refuses clearly."""
    srv = start("pyjetstream", tmp_path)
    try:
        nc = await nats.connect(srv.url)
        for storage in ("file", "memory"):
            # nats-server >= 2.10 decodes first_seq as a uint64
            for bad in (2**64, -1, 1.5):
                reply = await jreq(nc, CREATE + "T", {"name": "T", "first_seq": bad, "storage": storage})
                assert err(reply) == (400, 10025), (bad, reply)
            reply = await jreq(nc, CREATE + "T", {"name": "T", "first_seq": 2**64 - 1, "storage": storage})
            assert err(reply) is not None and reply["error"]["description"] != "internal error", reply
            top = 2**63 - 1
            name = f"TOP{storage}"
            reply = await jreq(nc, CREATE + name, {"name": name, "first_seq": top - 1, "storage": storage})
            assert err(reply) is None, reply
            acks = [json.loads((await req(nc, name, b"x")).data) for _ in range(3)]
            assert [a.get("seq") for a in acks[:2]] == [top - 1, top]
            assert "error" in acks[2] and acks[2]["error"]["code"] < 600, acks[2]
            info = await jreq(nc, f"$JS.API.STREAM.INFO.{name}")
            assert info["state"]["last_seq"] == top
            # a purge to the largest uint64 empties the stream, as in nats-server
            name2 = f"PURGE{storage}"
            await jreq(nc, CREATE + name2, {"name": name2, "storage": storage})
            await req(nc, name2, b"x")
            reply = await jreq(nc, f"$JS.API.STREAM.PURGE.{name2}", {"seq": 2**64 - 1})
            assert reply.get("success") is True and reply.get("purged") == 1, reply
            ack = json.loads((await req(nc, name2, b"y")).data)
            assert ack.get("seq", 0) <= top, ack
            reply = await jreq(nc, f"$JS.API.STREAM.INFO.{name2}")
            assert err(reply) is None
        await nc.close()
        srv.stop()
        assert_healthy(srv)
        # and the file streams come back
        srv = start("pyjetstream", tmp_path)
        nc = await nats.connect(srv.url)
        info = await jreq(nc, "$JS.API.STREAM.INFO.TOPfile")
        assert info["state"]["last_seq"] == 2**63 - 1
        await jreq(nc, "$JS.API.STREAM.INFO.PURGEfile")
        await nc.close()
    finally:
        srv.stop()
    assert_healthy(srv)


def test_event_loop_policy_is_default() -> None:
    # the tests above use the default loop; a leaked custom policy would make them flaky
    assert isinstance(asyncio.get_event_loop_policy(), asyncio.DefaultEventLoopPolicy)
