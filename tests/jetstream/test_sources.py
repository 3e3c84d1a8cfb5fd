"""Mirrors and sources between streams of one account, through the fake server."""

from __future__ import annotations

import base64
from typing import Any

from .conftest import FakeServer, hdrs, settle


async def create(server: FakeServer, name: str, **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, **cfg})
    assert "error" not in r, r
    return r


async def pub(server: FakeServer, subject: str, data: bytes = b"x", **headers: str) -> dict:
    r = await server.request(subject, data, hdr=hdrs(**headers) if headers else None)
    return r.json()


async def state(server: FakeServer, name: str) -> dict:
    return (await server.api(f"STREAM.INFO.{name}"))["state"]


async def get(server: FakeServer, name: str, seq: int) -> dict:
    return (await server.api(f"STREAM.MSG.GET.{name}", {"seq": seq}))["message"]


async def test_config_errors(server: FakeServer, js: object) -> None:
    r = await server.api("STREAM.CREATE.M", {"name": "M", "subjects": ["m"], "mirror": {"name": "O"}})
    assert r["error"] == {"code": 400, "err_code": 10034, "description": "stream mirrors can not contain subjects"}
    r = await server.api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}, "sources": [{"name": "P"}]})
    assert r["error"]["err_code"] == 10031
    # 2.10 lets a mirror filter (2.9 answered 10033); the filter and transforms exclude each other
    r = await server.api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O", "filter_subject": "a",
                                                                    "subject_transforms": [{"src": "b", "dest": "c"}]}})
    assert r["error"]["err_code"] == 10150
    r = await server.api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}, "first_seq": 5})
    assert r["error"]["err_code"] == 10143
    r = await server.api("STREAM.CREATE.M", {"name": "M", "sources": [{"name": "O"}, {"name": "O"}]})
    assert r["error"]["err_code"] == 10140
    r = await server.api("STREAM.CREATE.M", {"name": "M", "sources": [{"name": "a.b"}]})
    assert r["error"]["err_code"] == 10141
    await create(server, "A", subjects=["a.>"], sources=[{"name": "B"}])
    r = await server.api("STREAM.CREATE.B", {"name": "B", "subjects": ["b.>"], "sources": [{"name": "A"}]})
    assert r["error"]["description"] == "detected cycle"


async def test_mirror_keeps_sequences_and_follows(server: FakeServer, js: Any) -> None:
    await create(server, "O", subjects=["o.*"])
    for i in range(3):
        await pub(server, f"o.{i}", b"m%d" % i)
    await server.api("STREAM.PURGE.O", {"seq": 2})  # the mirror starts at the origin's first seq
    r = await create(server, "M", mirror={"name": "O"})
    assert "subjects" not in r["config"]
    await settle()
    st = await state(server, "M")
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (2, 2, 3)
    await pub(server, "o.9", b"live", X_K="v")
    await settle()
    m = await get(server, "M", 4)
    assert m["subject"] == "o.9" and base64.b64decode(m["data"]) == b"live"
    assert base64.b64decode(m["hdrs"]) == b"NATS/1.0\r\nX-K: v\r\n\r\n"
    o = await get(server, "O", 4)
    assert o["time"] == m["time"]
    info = await server.api("STREAM.INFO.M")
    assert info["mirror"]["name"] == "O" and info["mirror"]["lag"] == 0
    r = await server.api("STREAM.UPDATE.M", {"name": "M", "mirror": {"name": "X"}})
    assert r["error"]["err_code"] == 10055


async def test_mirror_created_before_its_origin(server: FakeServer, js: Any) -> None:
    await create(server, "M", mirror={"name": "O"})
    await create(server, "O", subjects=["o"])
    await pub(server, "o")
    await settle()
    assert (await state(server, "M"))["messages"] == 1


async def test_sources_merge_with_header_and_filter(server: FakeServer, js: Any) -> None:
    await create(server, "S1", subjects=["s1.*"])
    await create(server, "S2", subjects=["s2.*"])
    await pub(server, "s1.a", b"1")
    await pub(server, "s2.a", b"2")
    await pub(server, "s2.b", b"3")
    await create(server, "AGG", subjects=["agg"], sources=[{"name": "S1"}, {"name": "S2", "filter_subject": "s2.b"}])
    await settle()
    st = await state(server, "AGG")
    assert st["messages"] == 2
    got = {base64.b64decode((await get(server, "AGG", s))["hdrs"]) for s in (1, 2)}
    assert got == {b"NATS/1.0\r\nNats-Stream-Source: S1 1 > > s1.a\r\n\r\n",
                   b"NATS/1.0\r\nNats-Stream-Source: S2 2 s2.b > s2.b\r\n\r\n"}
    await pub(server, "s1.z", b"4")
    await pub(server, "s2.a", b"filtered out")
    await pub(server, "agg", b"direct")  # a stream with sources may still take its own subjects
    await settle()
    assert (await state(server, "AGG"))["messages"] == 4
    info = await server.api("STREAM.INFO.AGG")
    assert [s["name"] for s in info["sources"]] == ["S1", "S2"]
    assert info["sources"][1]["filter_subject"] == "s2.b"


async def test_source_dedupes_by_msg_id_and_start_seq(server: FakeServer, js: Any) -> None:
    await create(server, "S1", subjects=["s1"])
    await create(server, "S2", subjects=["s2"])
    await pub(server, "s1", b"a", Nats_Msg_Id="same")
    await pub(server, "s2", b"a", Nats_Msg_Id="same")
    await pub(server, "s2", b"b")
    await create(server, "D", sources=[{"name": "S1"}, {"name": "S2", "opt_start_seq": 1}])
    await create(server, "L", sources=[{"name": "S2", "opt_start_seq": 2}])
    await settle()
    assert (await state(server, "D"))["messages"] == 2  # the second "same" was a duplicate
    assert (await state(server, "L"))["messages"] == 1


async def test_deleting_the_origin_stops_the_link(server: FakeServer, js: Any) -> None:
    await create(server, "O", subjects=["o"])
    await create(server, "M", mirror={"name": "O"})
    await pub(server, "o")
    await settle()
    await server.api("STREAM.DELETE.O")
    info = await server.api("STREAM.INFO.M")
    assert info["state"]["messages"] == 1 and info["mirror"]["lag"] == 0
    assert js.accounts["$G"].streams["M"].links[0].origin is None


async def test_interest_origin_keeps_messages_until_sourced(server: FakeServer, js: Any) -> None:
    await create(server, "O", subjects=["o"], retention="interest")
    await create(server, "S", sources=[{"name": "O"}])
    await pub(server, "o", b"1")
    await settle()
    # the source counted as interest, copied the message, and its copy released it
    assert (await state(server, "S"))["messages"] == 1
    assert (await state(server, "O"))["messages"] == 0


async def test_a_full_target_stalls_the_source_until_there_is_room(server: FakeServer, js: Any) -> None:
    await create(server, "O", subjects=["o"])
    await create(server, "T", max_msgs=1, discard="new", sources=[{"name": "O"}])
    link = js.accounts["$G"].streams["T"].links[0]
    link.RETRY_DELAY = 0  # retry on the next loop iteration instead of after a second
    await pub(server, "o", b"1")
    await pub(server, "o", b"2")
    await settle()
    assert (await state(server, "T"))["messages"] == 1 and link.sseq == 1
    await server.api("STREAM.PURGE.T")
    await settle()
    st = await state(server, "T")
    assert st["messages"] == 1 and link.sseq == 2  # message 2 was not lost, only delayed
    m = (await server.api("STREAM.MSG.GET.T", {"seq": st["last_seq"]}))["message"]
    assert base64.b64decode(m["data"]) == b"2"
