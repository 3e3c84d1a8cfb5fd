"""The duplicate window after a restart is rebuilt from the messages that carry headers only
(StreamStore.header_candidates): the ids and the last message id must come out exactly as a
full forward read gives them, whatever mix of messages the window holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyjetstream.jetstream.store.file import FileStore
from pyjetstream.jetstream.store.memory import MemoryStore

from .conftest import FakeClock, FakeServer, hdrs
from .test_manager import request, start


def _fill(st: Any) -> None:
    # seq 1 plain, 2 id, 3 header without id, 4 plain, 5 id, 6 plain (then removed), 7 plain
    st.store_msg("a", b"", b"1" * 100, 1)
    st.store_msg("a", hdrs(Nats_Msg_Id="x"), b"2" * 100, 2)
    st.store_msg("a", hdrs(Other="v"), b"3" * 100, 3)
    st.store_msg("b", b"", b"4" * 100, 4)
    st.store_msg("b", hdrs(Nats_Msg_Id="y"), b"5" * 100, 5)
    st.store_msg("b", b"", b"6", 6)
    st.store_msg("b", b"", b"7", 7)
    st.remove_msg(6)


@pytest.mark.parametrize("kind", ["file", "file-s2", "memory"])
def test_header_candidates_name_every_message_with_headers(tmp_path: Any, kind: str) -> None:
    if kind == "memory":
        st: Any = MemoryStore()
    else:
        st = FileStore(str(tmp_path / "s"), compression="s2" if kind == "file-s2" else "none")
    _fill(st)
    want = [2, 3, 5]
    got = st.header_candidates(1, 7)
    if kind == "file-s2":
        # a compressed record hides its header length: it is a candidate, never missed
        assert set(want) <= set(got) and set(got) <= {1, 2, 3, 4, 5, 7}
    else:
        assert got == want
    assert st.header_candidates(4, 5) == [5] or kind == "file-s2"
    assert st.header_candidates(6, 6) == []  # removed
    assert st.header_candidates(8, 100) == [] and st.header_candidates(5, 4) == []
    st.remove_msg(5)
    assert 5 not in st.header_candidates(1, 7)
    if kind != "memory":
        st.close()
        again = FileStore(str(tmp_path / "s"))
        assert 5 not in again.header_candidates(1, 7) and {2, 3} <= set(again.header_candidates(1, 7))
        again.close()


async def _restart_with(tmp_path: Any, clock: FakeClock, msgs: list[tuple[bytes, bytes | None]]) -> tuple[Any, Any]:
    server = FakeServer()
    js = await start(server, str(tmp_path), clock)
    await request(server, "$JS.API.STREAM.CREATE.S", {"name": "S", "duplicate_window": 60_000_000_000})
    for body, hdr in msgs:
        await request(server, "S", body, hdr=hdr)
    await js.stop()
    server2 = FakeServer()
    js2 = await start(server2, str(tmp_path), clock)
    return server2, js2


async def test_last_msg_id_is_none_when_a_plain_message_came_last(tmp_path: Any, clock: FakeClock) -> None:
    server, js = await _restart_with(tmp_path, clock, [(b"a", hdrs(Nats_Msg_Id="m1")), (b"b", None)])
    dup = json.loads((await request(server, "S", b"a", hdr=hdrs(Nats_Msg_Id="m1"))).payload)
    assert dup == {"stream": "S", "seq": 1, "duplicate": True}
    # the last message had no id: expecting "m1" as the last id must fail
    r = json.loads((await request(server, "S", b"c", hdr=hdrs(Nats_Expected_Last_Msg_Id="m1"))).payload)
    assert r["error"]["err_code"] == 10070
    await js.stop()


async def test_last_msg_id_survives_when_its_message_came_last(tmp_path: Any, clock: FakeClock) -> None:
    msgs: list[tuple[bytes, bytes | None]] = [(b"p%d" % i, None) for i in range(50)]
    msgs += [(b"h", hdrs(Other="1")), (b"a", hdrs(Nats_Msg_Id="m2"))]
    server, js = await _restart_with(tmp_path, clock, msgs)
    r = json.loads((await request(server, "S", b"c", hdr=hdrs(Nats_Expected_Last_Msg_Id="m2"))).payload)
    assert r == {"stream": "S", "seq": 53}
    dup = json.loads((await request(server, "S", b"a", hdr=hdrs(Nats_Msg_Id="m2"))).payload)
    assert dup == {"stream": "S", "seq": 52, "duplicate": True}
    await js.stop()


async def test_header_without_id_came_last(tmp_path: Any, clock: FakeClock) -> None:
    server, js = await _restart_with(tmp_path, clock, [(b"a", hdrs(Nats_Msg_Id="m3")), (b"h", hdrs(Other="1"))])
    r = json.loads((await request(server, "S", b"c", hdr=hdrs(Nats_Expected_Last_Msg_Id="m3"))).payload)
    assert r["error"]["err_code"] == 10070
    dup = json.loads((await request(server, "S", b"a", hdr=hdrs(Nats_Msg_Id="m3"))).payload)
    assert dup["duplicate"] is True
    await js.stop()
