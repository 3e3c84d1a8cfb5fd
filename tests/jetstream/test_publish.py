"""The publish path: PubAcks, dedupe, expected-* headers, rollup, TTL, limits, retention."""

from __future__ import annotations

from typing import Any

from pyjetstream.subjects import subject_matches

from .conftest import FakeClock, FakeServer, hdrs


async def create(server: FakeServer, name: str, **cfg: object) -> dict:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, **cfg})
    assert "error" not in r, r
    return r


async def pub(server: FakeServer, subject: str, data: bytes = b"x", **headers: str) -> dict:
    r = await server.request(subject, data, hdr=hdrs(**headers) if headers else None)
    return r.json()


async def info(server: FakeServer, name: str = "S") -> dict:
    return (await server.api(f"STREAM.INFO.{name}"))["state"]


async def test_puback_and_no_responders(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["a.>"])
    assert await pub(server, "a.1") == {"stream": "S", "seq": 1}
    assert await pub(server, "a.2") == {"stream": "S", "seq": 2}
    r = await server.request("b.1", b"x")
    assert r.hdr == b"NATS/1.0 503\r\n\r\n"


async def test_plain_publish_without_reply_is_stored(server: FakeServer, js: object) -> None:
    from .conftest import settle

    await create(server, "S")
    server.publish(server.global_account, "S", "", None, b"fire and forget")
    await settle()
    assert (await info(server))["messages"] == 1


async def test_pubacks_wait_for_the_commit(server: FakeServer, js: Any) -> None:
    await create(server, "S")
    stream = js.accounts["$G"].streams["S"]
    held: list[Any] = []
    stream.store.commit = held.append  # a store whose fsync has not finished yet
    inbox = server.new_inbox()
    for i in range(3):
        server.publish(server.global_account, "S", inbox, None, b"%d" % i)
    from .conftest import settle

    await settle()
    assert server.replies(inbox) == []
    assert len(held) == 1  # one group commit for the whole batch
    held[0]()
    assert [r.json()["seq"] for r in server.replies(inbox)] == [1, 2, 3]


async def test_no_ack_stream_sends_nothing(server: FakeServer, js: object) -> None:
    from .conftest import settle

    await create(server, "S", no_ack=True)
    inbox = server.new_inbox()
    server.publish(server.global_account, "S", inbox, None, b"x")
    await settle()
    assert server.replies(inbox) == []
    assert (await info(server))["messages"] == 1


async def test_msg_id_dedupe_within_window(server: FakeServer, js: object, clock: FakeClock) -> None:
    await create(server, "S", duplicate_window=1_000_000_000)
    assert await pub(server, "S", Nats_Msg_Id="m1") == {"stream": "S", "seq": 1}
    assert await pub(server, "S", Nats_Msg_Id="m1") == {"stream": "S", "seq": 1, "duplicate": True}
    assert await pub(server, "S", Nats_Msg_Id="m2") == {"stream": "S", "seq": 2}
    # the same id next to other Nats-* headers goes through the full header parse
    assert await pub(server, "S", Nats_Msg_Id="m2", Nats_Expected_Stream="S") == {
        "stream": "S", "seq": 2, "duplicate": True}
    clock.advance(2)
    assert await pub(server, "S", Nats_Msg_Id="m1") == {"stream": "S", "seq": 3}
    assert await pub(server, "S", Nats_Expected_Stream="S", Nats_Msg_Id="m2") == {"stream": "S", "seq": 4}
    assert (await info(server))["messages"] == 4


async def test_expected_headers(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["e.*"])
    r = await pub(server, "e.a", Nats_Expected_Stream="OTHER")
    assert r == {"error": {"code": 400, "err_code": 10060, "description": "expected stream does not match"},
                 "stream": "S", "seq": 0}
    assert (await pub(server, "e.a", Nats_Expected_Stream="S"))["seq"] == 1
    r = await pub(server, "e.a", Nats_Expected_Last_Sequence="5")
    assert r["error"] == {"code": 400, "err_code": 10071, "description": "wrong last sequence: 1"}
    assert (await pub(server, "e.b", Nats_Expected_Last_Sequence="1"))["seq"] == 2
    # 0 means "no message on this subject yet" (KV create)
    assert (await pub(server, "e.c", Nats_Expected_Last_Subject_Sequence="0"))["seq"] == 3
    r = await pub(server, "e.c", Nats_Expected_Last_Subject_Sequence="0")
    assert r["error"]["description"] == "wrong last sequence: 3"
    assert (await pub(server, "e.c", Nats_Expected_Last_Subject_Sequence="3"))["seq"] == 4
    assert (await pub(server, "e.a", Nats_Msg_Id="id1"))["seq"] == 5
    r = await pub(server, "e.a", Nats_Expected_Last_Msg_Id="zzz")
    assert r["error"] == {"code": 400, "err_code": 10070, "description": "wrong last msg ID: id1"}
    assert (await pub(server, "e.a", Nats_Expected_Last_Msg_Id="id1"))["seq"] == 6
    assert (await info(server))["messages"] == 6


async def test_rollup(server: FakeServer, js: object) -> None:
    await create(server, "NR", subjects=["nr.*"])
    r = await pub(server, "nr.a", Nats_Rollup="sub")
    assert r["error"] == {"code": 500, "err_code": 10111, "description": "rollup not permitted"}
    await create(server, "S", subjects=["r.*"], allow_rollup_hdrs=True)
    for subj in ("r.a", "r.b", "r.a"):
        await pub(server, subj)
    assert (await pub(server, "r.a", Nats_Rollup="sub"))["seq"] == 4
    st = await info(server)
    assert st["messages"] == 2  # r.b and the rollup message
    r = await pub(server, "r.a", Nats_Rollup="bogus")
    assert r["error"]["description"] == 'rollup value invalid: "bogus"'
    assert (await pub(server, "r.b", Nats_Rollup="all"))["seq"] == 5
    st = await info(server)
    assert st["messages"] == 1 and st["first_seq"] == 5


async def test_msg_ttl(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server, "NT")
    r = await pub(server, "NT", Nats_TTL="5s")
    assert r["error"] == {"code": 400, "err_code": 10166, "description": "per-message TTL is disabled"}
    await create(server, "S", allow_msg_ttl=True)
    r = await pub(server, "S", Nats_TTL="500ms")
    assert r["error"] == {"code": 400, "err_code": 10165, "description": "invalid per-message TTL"}
    assert (await pub(server, "S", Nats_TTL="2s"))["seq"] == 1
    assert (await pub(server, "S", Nats_TTL="10"))["seq"] == 2
    assert (await pub(server, "S", Nats_TTL="never"))["seq"] == 3
    stream = js.accounts["$G"].streams["S"]
    clock.advance(3)
    assert stream.expire(clock()) == 1
    clock.advance(10)
    assert stream.expire(clock()) == 1
    st = await info(server)
    assert st["messages"] == 1 and st["first_seq"] == 3


async def test_ttl_header_is_read_as_nats_server_reads_it(server: FakeServer, js: Any) -> None:
    """Go's ParseDuration first (so "0" is a zero duration, under the 1s minimum, and a sign is
    allowed), then a plain number of seconds (parseMessageTTL in nats-server's stream.go)."""
    await create(server, "S", allow_msg_ttl=True)
    invalid = {"code": 400, "err_code": 10165, "description": "invalid per-message TTL"}
    for bad in ("0", "0s", "-5s", "999ms", "5x", "-1"):
        assert (await pub(server, "S", Nats_TTL=bad))["error"] == invalid, bad
    assert (await pub(server, "S", Nats_TTL="+2s"))["seq"] == 1
    assert (await pub(server, "S", Nats_TTL="1m30s"))["seq"] == 2
    assert (await pub(server, "S", Nats_TTL="7"))["seq"] == 3


async def test_max_age_expiry(server: FakeServer, js: Any, clock: FakeClock) -> None:
    await create(server, "S", max_age=1_000_000_000)
    await pub(server, "S")
    clock.advance(0.5)
    await pub(server, "S")
    stream = js.accounts["$G"].streams["S"]
    assert stream.next_expiry() == clock() - 500_000_000 + 1_000_000_000
    clock.advance(0.6)
    assert stream.expire(clock()) == 1
    clock.advance(1)
    assert stream.expire(clock()) == 1
    assert (await info(server))["messages"] == 0


async def test_max_msgs_discard_old_and_new(server: FakeServer, js: object) -> None:
    await create(server, "OLD", subjects=["old"], max_msgs=2)
    for _ in range(4):
        await pub(server, "old")
    st = await info(server, "OLD")
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (2, 3, 4)
    await create(server, "NEW", subjects=["new"], max_msgs=2, discard="new")
    await pub(server, "new")
    await pub(server, "new")
    r = await pub(server, "new")
    assert r["error"] == {"code": 503, "err_code": 10077, "description": "maximum messages exceeded"}


async def test_max_bytes(server: FakeServer, js: object) -> None:
    # each message here accounts 3 (subject) + 10 (payload) + 16 bytes
    await create(server, "NEW", subjects=["new"], max_bytes=60, discard="new")
    await pub(server, "new", b"0123456789")
    await pub(server, "new", b"0123456789")
    r = await pub(server, "new", b"0123456789")
    assert r["error"]["description"] == "maximum bytes exceeded"
    await create(server, "OLD", subjects=["old"], max_bytes=60)
    for _ in range(3):
        await pub(server, "old", b"0123456789")
    st = await info(server, "OLD")
    assert st["messages"] == 2 and st["bytes"] <= 60


async def test_max_msgs_per_subject(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["k.*"], max_msgs_per_subject=2)
    for subj in ("k.a", "k.a", "k.b", "k.a"):
        await pub(server, subj)
    r = await server.api("STREAM.INFO.S", {"subjects_filter": ">"})
    assert r["state"]["subjects"] == {"k.a": 2, "k.b": 1}
    await create(server, "N", subjects=["n.*"], max_msgs_per_subject=1, discard="new",
                 discard_new_per_subject=True)
    await pub(server, "n.a")
    r = await pub(server, "n.a")
    assert r["error"]["description"] == "maximum messages per subject exceeded"
    assert (await pub(server, "n.b"))["seq"] == 2


async def test_max_msg_size_and_sealed(server: FakeServer, js: object) -> None:
    await create(server, "S", max_msg_size=4)
    assert (await pub(server, "S", b"1234"))["seq"] == 1
    r = await pub(server, "S", b"12345")
    assert r["error"] == {"code": 400, "err_code": 10054, "description": "message size exceeds maximum allowed"}
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "max_msg_size": 4, "sealed": True})
    assert r["config"]["sealed"] is True and r["config"]["deny_delete"] is True
    r = await pub(server, "S", b"1")
    assert r["error"] == {"code": 400, "err_code": 10109, "description": "invalid operation on sealed stream"}
    r = await server.api("STREAM.PURGE.S")
    assert r["error"]["err_code"] == 10109


async def test_first_seq(server: FakeServer, js: object) -> None:
    r = await create(server, "S", first_seq=100)
    assert r["config"]["first_seq"] == 100
    assert (await pub(server, "S"))["seq"] == 100


class FakeConsumer:
    """Records hook calls; needs an ack for every matching message it has not acked."""

    def __init__(self, filt: str = ">") -> None:
        self.filt = filt
        self.acked: set[int] = set()
        self.new: list[int] = []
        self.removed: list[int] = []
        self.purged: list[int] = []
        self.stopped: bool | None = None

    def matches(self, subject: str) -> bool:
        return subject_matches(self.filt, subject)

    def needs_ack(self, seq: int, subject: str) -> bool:
        return self.matches(subject) and seq not in self.acked

    def on_new_msg(self, seq: int, subject: str) -> None:
        self.new.append(seq)

    def on_msgs_removed(self, first_seq: int) -> None:
        self.removed.append(first_seq)

    def on_purged(self, first_seq: int) -> None:
        self.purged.append(first_seq)

    def info(self) -> dict[str, Any]:
        return {}

    def stop(self, delete: bool = False) -> None:
        self.stopped = delete


async def test_interest_retention(server: FakeServer, js: Any) -> None:
    await create(server, "S", subjects=["i.*"], retention="interest")
    stream = js.accounts["$G"].streams["S"]
    # no consumer: the sequence is used and acked, nothing is stored
    assert (await pub(server, "i.a"))["seq"] == 1
    assert (await info(server))["messages"] == 0
    c1, c2 = FakeConsumer("i.a"), FakeConsumer(">")
    stream.add_consumer("c1", c1)
    stream.add_consumer("c2", c2)
    assert (await pub(server, "i.a"))["seq"] == 2
    assert (await pub(server, "i.b"))["seq"] == 3
    assert c1.new == [2, 3] and c2.new == [2, 3]
    c2.acked.add(2)
    stream.ack_msg(2, c2)
    assert (await info(server))["messages"] == 2  # c1 still needs seq 2
    c1.acked.add(2)
    stream.ack_msg(2, c1)
    assert (await info(server))["messages"] == 1
    # removing the only consumer interested in seq 3 drops it
    stream.remove_consumer("c2")
    assert (await info(server))["messages"] == 0


async def test_workqueue_and_stream_delete_stops_consumers(server: FakeServer, js: Any) -> None:
    await create(server, "S", retention="workqueue")
    stream = js.accounts["$G"].streams["S"]
    c = FakeConsumer()
    stream.add_consumer("c", c)
    await pub(server, "S")
    await pub(server, "S")
    stream.ack_msg(1, c)
    st = await info(server)
    assert st["messages"] == 1 and st["consumer_count"] == 1
    await server.api("STREAM.PURGE.S")
    assert c.purged == [3]
    await server.api("STREAM.DELETE.S")
    assert c.stopped is True


async def test_workqueue_ack_on_memory_storage(server: FakeServer, js: Any) -> None:
    """An ack removes the message and schedules a write-out of the removal, which the memory
    store must take too (it once lacked write_out: an AttributeError on every ack batch)."""
    import asyncio

    from .conftest import settle

    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: failures.append(ctx))
    try:
        await create(server, "S", retention="workqueue", storage="memory")
        stream = js.accounts["$G"].streams["S"]
        c = FakeConsumer()
        stream.add_consumer("c", c)
        await pub(server, "S")
        await pub(server, "S")
        stream.ack_msg(1, c)
        stream.ack_msg(2, c)
        await settle()
    finally:
        loop.set_exception_handler(previous)
    assert failures == []
    assert (await info(server))["messages"] == 0


async def test_limits_notify_consumers(server: FakeServer, js: Any) -> None:
    await create(server, "S", max_msgs=1)
    c = FakeConsumer()
    js.accounts["$G"].streams["S"].add_consumer("c", c)
    await pub(server, "S")
    await pub(server, "S")
    assert c.new == [1, 2] and c.removed == [2]


async def test_max_streams_limit(server: FakeServer, js: Any) -> None:
    js.accounts["$G"].limits.max_streams = 1
    await create(server, "A")
    r = await server.api("STREAM.CREATE.B", {"name": "B"})
    assert r["error"] == {"code": 400, "err_code": 10027, "description": "maximum number of streams reached"}


async def test_account_storage_limit(server: FakeServer, js: Any) -> None:
    js.accounts["$G"].limits.max_file = 100
    await create(server, "S")
    assert (await pub(server, "S", b"x" * 40))["seq"] == 1  # 1 + 40 + 16 bytes accounted
    r = await pub(server, "S", b"x" * 40)
    assert r["error"] == {"code": 400, "err_code": 10002, "description": "resource limits exceeded for account"}
    await create(server, "M", storage="memory")  # memory has its own (unlimited) budget
    assert (await pub(server, "M", b"x" * 40))["seq"] == 1


async def test_expected_last_subject_sequence_for_another_subject(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["o.>"])
    await pub(server, "o.a.1")
    await pub(server, "o.b.1")
    hdr = {"Nats_Expected_Last_Subject_Sequence": "1", "Nats_Expected_Last_Subject_Sequence_Subject": "o.a.*"}
    assert (await pub(server, "o.a.2", **hdr))["seq"] == 3
    r = await pub(server, "o.a.3", **hdr)
    assert r["error"]["description"] == "wrong last sequence: 3"
    r = await pub(server, "o.a.3", Nats_Expected_Last_Subject_Sequence_Subject="o.a.*")
    assert r["error"]["err_code"] == 10193


async def test_subject_delete_markers_on_max_age(server: FakeServer, js: Any, clock: FakeClock) -> None:
    r = await create(server, "KV_b", subjects=["$KV.b.>"], max_age=60_000_000_000,
                     subject_delete_marker_ttl=300_000_000_000)
    # markers force TTLs and roll-ups on, as nats-server does
    assert r["config"]["allow_msg_ttl"] is True and r["config"]["allow_rollup_hdrs"] is True
    await pub(server, "$KV.b.k1", b"old")
    await pub(server, "$KV.b.k1", b"new")
    await pub(server, "$KV.b.k2", b"only")
    stream = js.accounts["$G"].streams["KV_b"]
    clock.advance(61)
    stream.expire(clock())
    st = await info(server, "KV_b")
    assert st["messages"] == 2 and st["last_seq"] == 5  # two markers replaced three messages
    for seq, subj in ((4, "$KV.b.k1"), (5, "$KV.b.k2")):
        m = (await server.api("STREAM.MSG.GET.KV_b", {"seq": seq}))["message"]
        hdr = __import__("base64").b64decode(m["hdrs"])
        assert m["subject"] == subj and "data" not in m
        assert b"Nats-Marker-Reason: MaxAge\r\n" in hdr and b"Nats-TTL: 5m0s\r\n" in hdr
    # the markers themselves go away after their own TTL, without new markers
    clock.advance(301)
    stream.expire(clock())
    assert (await info(server, "KV_b"))["messages"] == 0


async def test_store_failure_is_a_puback_error_not_a_crash(server: FakeServer, js: Any) -> None:
    from pyjetstream.jetstream.store.base import StoreError

    await create(server, "S")
    stream = js.accounts["$G"].streams["S"]

    def broken(*a: Any, **k: Any) -> int:
        raise OSError(28, "No space left on device")

    stream.store.store_msg = broken
    r = await pub(server, "S")
    assert r["error"]["err_code"] == 10077 and "No space left" in r["error"]["description"]

    def closed(*a: Any, **k: Any) -> int:
        raise StoreError("store is closed")

    stream.store.store_msg = closed
    r = await pub(server, "S", Nats_Msg_Id="y")
    assert r["error"] == {"code": 503, "err_code": 10077, "description": "store is closed"}


async def test_republish(server: FakeServer, js: object) -> None:
    r = await server.api("STREAM.CREATE.RP", {"name": "RP", "subjects": ["rp.>"], "republish": {"dest": "rp.>"}})
    assert r["error"]["description"] == "stream configuration for republish destination forms a cycle"
    r = await server.api("STREAM.CREATE.RP", {"name": "RP", "subjects": ["rp.>"],
                                              "republish": {"src": "zz.>", "dest": "out.>"}})
    assert r["error"]["description"] == "stream configuration for republish source is not valid subset of subjects"
    r = await server.api("STREAM.CREATE.RP", {"name": "RP", "subjects": ["rp.>"],
                                              "republish": {"src": "rp.*", "dest": "out.x"}})
    assert r["error"]["description"] == "stream configuration for republish not valid"
    r = await create(server, "RP", subjects=["rp.>"], republish={"src": "rp.*.>", "dest": "out.$1.>"})
    assert r["config"]["republish"] == {"src": "rp.*.>", "dest": "out.$1.>"}
    server.listening.add("out.>")
    await pub(server, "rp.a.b", b"one", X_Key="k")
    await pub(server, "rp.a.b", b"two")
    await pub(server, "rp.solo", b"not matched")
    got = [d for d in server.outbox if d.subject.startswith("out.")]
    assert [(d.subject, d.payload) for d in got] == [("out.a.b", b"one"), ("out.a.b", b"two")]
    assert got[0].hdr.startswith(b"NATS/1.0\r\nX-Key: k\r\nNats-Stream: RP\r\nNats-Subject: rp.a.b\r\n")
    assert b"Nats-Sequence: 1\r\n" in got[0].hdr and b"Nats-Last-Sequence: 0\r\n" in got[0].hdr
    assert b"Nats-Sequence: 2\r\n" in got[1].hdr and b"Nats-Last-Sequence: 1\r\n" in got[1].hdr
    await create(server, "HO", subjects=["ho.*"], republish={"dest": "hout.>", "headers_only": True})
    server.listening.add("hout.>")
    await pub(server, "ho.x", b"12345")
    (h,) = [d for d in server.outbox if d.subject.startswith("hout.")]
    assert h.subject == "hout.ho.x" and h.payload == b"" and b"Nats-Msg-Size: 5\r\n" in h.hdr


async def test_subject_transform_on_ingest(server: FakeServer, js: object) -> None:
    r = await server.api("STREAM.CREATE.T", {"name": "T", "subjects": ["in.>"],
                                             "subject_transform": {"src": "in.*.*", "dest": "st.$2.$3"}})
    assert r["error"]["err_code"] == 10156
    r = await server.api("STREAM.CREATE.T", {"name": "T", "subjects": ["in.>"],
                                             "subject_transform": {"src": "in..x", "dest": "st"}})
    assert r["error"] == {"code": 400, "err_code": 10155, "description": "stream transform source: invalid subject in..x"}
    r = await create(server, "T", subjects=["in.>"], subject_transform={"src": "in.*.*", "dest": "st.$2.$1"})
    assert r["config"]["subject_transform"] == {"src": "in.*.*", "dest": "st.$2.$1"}
    await pub(server, "in.a.b")
    await pub(server, "in.other")  # outside the source: stored as published
    r = await server.api("STREAM.INFO.T", {"subjects_filter": ">"})
    assert r["state"]["subjects"] == {"st.b.a": 1, "in.other": 1}
