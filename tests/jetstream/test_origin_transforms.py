"""Subject transforms on sources and mirrors (nats-server 2.10): validation with nats-server's
error codes and texts, the subjects copied, the Nats-Stream-Source header, resuming the right
source after a restart, and nats-py over a real socket."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import nats
import pytest

from pyjetstream.jetstream.schemas import SubjectTransform, mapping_error, origin_index_name

from .conftest import FakeClock, FakeServer, settle
from .procs import own_server_available, start_js
from .test_manager import request, start, wait_for


async def _create(server: FakeServer, name: str, **cfg: object) -> dict[str, Any]:
    return await server.api(f"STREAM.CREATE.{name}", {"name": name, **cfg})


async def _subjects(server: FakeServer, name: str) -> list[tuple[int, str, str]]:
    st = (await server.api(f"STREAM.INFO.{name}"))["state"]
    out = []
    for seq in range(st["first_seq"], st["last_seq"] + 1):
        r = await server.api(f"STREAM.MSG.GET.{name}", {"seq": seq})
        if "message" in r:
            m = r["message"]
            out.append((seq, m["subject"], base64.b64decode(m.get("hdrs") or b"").decode()))
    return out


def test_mapping_error_texts_are_nats_servers() -> None:
    assert mapping_error("o.*.>", "s.$1.>") is None
    assert mapping_error("o.>", "") is None  # an empty destination only filters
    assert mapping_error("o.*.*", "a.$1") is None  # not every wildcard has to be used
    assert mapping_error("o.*.>", "s.$2.>") == "invalid mapping destination: wildcard index out of range in $2: [2]"
    assert mapping_error("o.x", "s.$1") == "invalid mapping destination: wildcard index out of range in $1"
    assert mapping_error("o.*.>", "m.*.>") == "invalid subject"
    assert mapping_error("o.>", "m") == "invalid subject"  # > on one side only
    assert mapping_error("o.*", "m..$1") == "invalid mapping destination: invalid transform in "
    assert mapping_error("o.*", "m.{{nope(1)}}") == "invalid mapping destination: unknown function in {{nope(1)}}"
    assert mapping_error("o.*", "m.>.x") == "invalid mapping destination: invalid transform in x"
    # a function nats-server has and we do not: refused, in words of our own
    assert "not supported" in (mapping_error("o.*", "m.{{partition(2,1)}}") or "")


def test_non_strict_transform_drops_tokens_and_index_names() -> None:
    assert SubjectTransform("o.*.*", "a.$2", strict=False).match("o.x.y") == "a.y"
    with pytest.raises(ValueError):
        SubjectTransform("o.*.*", "a.$2")  # republish and stream transforms stay strict
    assert origin_index_name({"name": "O"}) == "O > >"
    assert origin_index_name({"name": "O", "filter_subject": "o.1"}) == "O o.1 >"
    assert origin_index_name({"name": "O", "subject_transforms": [{"src": "a.>", "dest": "b.>"},
                                                                  {"src": "c", "dest": ""}]}) == "O a.>\fc b.>\f>"


@pytest.mark.parametrize(("cfg", "code", "text"), [
    ({"sources": [{"name": "O", "filter_subject": "o.>", "subject_transforms": [{"src": "o.>", "dest": "s.>"}]}]},
     10144, "source with multiple subject transforms cannot also have a single subject filter"),
    ({"sources": [{"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"}, {"src": "o.1.>", "dest": "t.>"}]}]},
     10147, "source filters can not overlap"),
    ({"sources": [{"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "s.$2.>"}]}]},
     10146, "source transform: invalid mapping destination: wildcard index out of range in $2: [2]"),
    ({"sources": [{"name": "O", "subject_transforms": [{"src": "o..x", "dest": "s.>"}]}]},
     10145, "source transform source: invalid subject o..x"),
    ({"sources": [{"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"}]},
                  {"name": "O", "subject_transforms": [{"src": "o.>", "dest": "s.>"}]}]},
     10140, "duplicate source configuration detected"),
    ({"sources": [{"name": "O"}, {"name": "O", "filter_subject": ">"}]},
     10140, "duplicate source configuration detected"),  # no filter and `>` are one index name
    ({"mirror": {"name": "O", "filter_subject": "o.0.>", "subject_transforms": [{"src": "o.1.>", "dest": "m.>"}]}},
     10150, "mirror with multiple subject transforms cannot also have a single subject filter"),
    ({"mirror": {"name": "O", "subject_transforms": [{"src": "o.>", "dest": "m.>"}, {"src": "o.1.>", "dest": "n.>"}]}},
     10152, "mirror subject filters can not overlap"),
    ({"mirror": {"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "m.*.>"}]}},
     10154, "mirror transform: invalid subject"),
    ({"mirror": {"name": "O", "subject_transforms": [{"src": "o.*.>", "dest": "m.$1.>"}]}, "subjects": ["q"]},
     10034, "stream mirrors can not contain subjects"),
    ({"mirror": {"name": "a.b", "subject_transforms": [{"src": "x.>", "dest": "m.*.>"}]}},
     10154, "mirror transform: invalid subject"),  # transforms are checked before the name
])
async def test_invalid_origin_transforms(server: FakeServer, js: Any, cfg: dict[str, Any], code: int,
                                         text: str) -> None:
    r = await _create(server, "T", **cfg)
    assert r.get("error") == {"code": 400, "err_code": code, "description": text}


@pytest.mark.parametrize("sts", ["nope", [1], [{"src": 5, "dest": "x"}], [{"src": "a", "dest": ["x"]}]])
async def test_malformed_transforms_are_invalid_json(server: FakeServer, js: Any, sts: Any) -> None:
    r = await _create(server, "T", sources=[{"name": "O", "subject_transforms": sts}])
    assert r["error"]["code"] == 400 and r["error"]["err_code"] in (10025, 10052)  # never accepted


async def test_sources_copy_transformed_subjects(server: FakeServer, js: Any) -> None:
    assert "error" not in await _create(server, "O", subjects=["o.>"])
    for i in range(2):
        await server.request(f"o.{i % 2}.x{i}", b"m")
    r = await _create(server, "S", sources=[
        {"name": "O", "subject_transforms": [{"src": "o.0.>", "dest": "a.>"}, {"src": "o.1.>", "dest": "b.>"}]},
        {"name": "O", "subject_transforms": [{"src": "o.*.*", "dest": "all.$2"}]},
        {"name": "O", "subject_transforms": [{"src": "o.1.>", "dest": ""}]},  # filter only
    ])
    assert "error" not in r, r
    assert r["config"]["sources"][2]["subject_transforms"] == [{"src": "o.1.>", "dest": ""}]
    await settle()
    await server.request("o.1.x2", b"live")  # followed after the catch-up
    await server.request("o.7.x3", b"matches only the second source")
    await settle()
    got = {(subj, hdr) for _, subj, hdr in await _subjects(server, "S")}
    assert got == {
        ("a.x0", "NATS/1.0\r\nNats-Stream-Source: O 1 o.0.>\fo.1.> a.>\fb.> o.0.x0\r\n\r\n"),
        ("b.x1", "NATS/1.0\r\nNats-Stream-Source: O 2 o.0.>\fo.1.> a.>\fb.> o.1.x1\r\n\r\n"),
        ("b.x2", "NATS/1.0\r\nNats-Stream-Source: O 3 o.0.>\fo.1.> a.>\fb.> o.1.x2\r\n\r\n"),
        ("all.x0", "NATS/1.0\r\nNats-Stream-Source: O 1 o.*.* all.$2 o.0.x0\r\n\r\n"),
        ("all.x1", "NATS/1.0\r\nNats-Stream-Source: O 2 o.*.* all.$2 o.1.x1\r\n\r\n"),
        ("all.x2", "NATS/1.0\r\nNats-Stream-Source: O 3 o.*.* all.$2 o.1.x2\r\n\r\n"),
        ("all.x3", "NATS/1.0\r\nNats-Stream-Source: O 4 o.*.* all.$2 o.7.x3\r\n\r\n"),
        ("o.1.x1", "NATS/1.0\r\nNats-Stream-Source: O 2 o.1.> > o.1.x1\r\n\r\n"),
        ("o.1.x2", "NATS/1.0\r\nNats-Stream-Source: O 3 o.1.> > o.1.x2\r\n\r\n"),
    }
    info = await server.api("STREAM.INFO.S")
    assert [s.get("subject_transforms") for s in info["sources"]] == [
        [{"src": "o.0.>", "dest": "a.>"}, {"src": "o.1.>", "dest": "b.>"}],
        [{"src": "o.*.*", "dest": "all.$2"}], [{"src": "o.1.>", "dest": ""}]]
    assert [s["lag"] for s in info["sources"]] == [0, 0, 0]


async def test_mirror_transform_keeps_sequences_with_gaps(server: FakeServer, js: Any) -> None:
    assert "error" not in await _create(server, "O", subjects=["o.>"])
    for i in range(4):
        await server.request(f"o.{i % 2}.x{i}", b"m")
    r = await _create(server, "M", mirror={"name": "O", "subject_transforms": [{"src": "o.1.>", "dest": "m.>"}]})
    assert "error" not in r, r
    r = await _create(server, "F", mirror={"name": "O", "filter_subject": "o.0.>"})
    assert "error" not in r, r
    await settle()
    await server.request("o.1.x4", b"live")
    await server.request("o.0.x5", b"not mirrored by M")
    await settle()
    assert await _subjects(server, "M") == [(2, "m.x1", ""), (4, "m.x3", ""), (5, "m.x4", "")]
    assert [(s, subj) for s, subj, _ in await _subjects(server, "F")] == [(1, "o.0.x0"), (3, "o.0.x2"), (6, "o.0.x5")]
    st = (await server.api("STREAM.INFO.M"))["state"]
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (3, 2, 5)
    await server.request("o.1.x6", b"live")
    await settle()
    assert (await _subjects(server, "M"))[-1] == (7, "m.x6", "")
    info = await server.api("STREAM.INFO.F")
    assert info["mirror"]["filter_subject"] == "o.0.>" and info["mirror"]["lag"] == 0


async def test_restart_resumes_each_transformed_source(tmp_path: Any, clock: FakeClock) -> None:
    """Two sources of one origin, told apart only by their transforms: after a restart each
    resumes from its own last copied sequence (the header's index-name parts), copying nothing
    twice and missing nothing."""
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.O", {"name": "O", "subjects": ["o.*"]})
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "sources": [
        {"name": "O", "subject_transforms": [{"src": "o.a", "dest": "a"}]},
        {"name": "O", "subject_transforms": [{"src": "o.*", "dest": "any.$1"}]}]})
    for subj in ("o.a", "o.b", "o.b"):
        await request(server, subj, b"x")
    streams = js.accounts["$G"].streams
    await wait_for(lambda: streams["S"].store.state().msgs == 4)
    await js.stop()
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    streams = js2.accounts["$G"].streams
    await request(server2, "o.a", b"after")
    await wait_for(lambda: streams["S"].store.state().msgs == 6)
    await asyncio.sleep(0.05)  # anything copied twice would show up now
    store = streams["S"].store
    subjects = [m.subject for m in (store.load_msg(s) for s in range(1, store.state().last_seq + 1)) if m]
    assert sorted(subjects) == ["a", "a", "any.a", "any.a", "any.b", "any.b"]
    await js2.stop()


@pytest.mark.skipif(not own_server_available(), reason="no server")
async def test_nats_py_source_and_mirror_transforms(tmp_path: Any) -> None:
    proc = start_js("pyjetstream", str(tmp_path / "store"))
    nc = await nats.connect(proc.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["orders.>"])
        await js.publish("orders.eu.1", b"one")
        await js.publish("orders.us.2", b"two")
        body = {"name": "AGG", "sources": [{"name": "O", "subject_transforms": [
            {"src": "orders.*.>", "dest": "region.$1.>"}]}]}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.AGG", json.dumps(body).encode())).data)
        assert "error" not in r, r
        body = {"name": "M", "mirror": {"name": "O", "subject_transforms": [{"src": "orders.us.>", "dest": "us.>"}]}}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.M", json.dumps(body).encode())).data)
        assert "error" not in r, r
        await js.publish("orders.us.3", b"three")
        sub = await js.pull_subscribe("region.>", "d", stream="AGG")
        got: list[str] = []
        while len(got) < 3:
            got += [m.subject for m in await sub.fetch(3 - len(got), timeout=5)]
        assert got == ["region.eu.1", "region.us.2", "region.us.3"]
        for _ in range(100):
            if (await js.stream_info("M")).state.messages == 2:
                break
            await asyncio.sleep(0.02)
        m = await js.get_msg("M", 3)
        assert (m.subject, m.data) == ("us.3", b"three")
        bad = {"name": "B", "sources": [{"name": "O", "subject_transforms": [{"src": "orders.*", "dest": "x.$3"}]}]}
        r = json.loads((await nc.request("$JS.API.STREAM.CREATE.B", json.dumps(bad).encode())).data)
        assert r["error"]["err_code"] == 10146
    finally:
        await nc.close()
        proc.stop()


async def test_origin_echo_and_refused_durable_consumer(server: FakeServer, js: Any) -> None:
    retired = [{"name": "O", "filter_subject": "o.>", "subject_transform_dest": "x.>", "opt_start_seq": 0,
                "subject_transforms": []}]
    # strict (nats-server 2.12's default): the retired field is unknown to StreamSource
    r = await _create(server, "S", sources=retired)
    assert r["error"]["description"] == 'invalid JSON: json: unknown field "subject_transform_dest"'
    js.strict = False  # `jetstream { strict: false }`: dropped, as json.Unmarshal drops it
    r = await _create(server, "S", sources=retired)
    assert r["config"]["sources"] == [{"name": "O", "filter_subject": "o.>"}]
    js.strict = True
    r = await _create(server, "T", sources=[{"name": "O", "subject_transforms": [{"dest": "t.>"}]}])
    assert r["config"]["sources"] == [{"name": "O", "subject_transforms": [{"src": "", "dest": "t.>"}]}]
    r = await _create(server, "U", sources=[{"name": "O", "consumer": {"name": "c", "deliver_subject": "d"}}])
    assert r["error"]["description"] == "sourcing through a durable consumer is not supported by this server"


async def test_mirror_stored_with_extra_keys_is_still_the_same_mirror(server: FakeServer, js: Any) -> None:
    assert "error" not in await _create(server, "O", subjects=["o.>"])
    assert "error" not in await _create(server, "M", mirror={"name": "O"})
    stream = js.accounts["$G"].streams["M"]
    # as a config written before echoes were normalised would load
    stream.config.mirror = {"name": "O", "opt_start_seq": 0, "subject_transform_dest": ""}
    cfg = (await server.api("STREAM.INFO.M"))["config"]
    r = await server.api("STREAM.UPDATE.M", {**cfg, "mirror": {"name": "O"}, "description": "same mirror"})
    assert "error" not in r, r
