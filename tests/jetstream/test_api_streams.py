"""Stream API handlers driven through the fake server: shapes, defaults and error codes."""

from __future__ import annotations

import base64
from typing import Any

from .conftest import FakeServer, hdrs


async def create(server: FakeServer, name: str, **cfg: object) -> dict:
    return await server.api(f"STREAM.CREATE.{name}", {"name": name, **cfg})


async def test_account_info_has_api_level(server: FakeServer, js: object) -> None:
    r = await server.api("INFO")
    assert r["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert r["api"]["level"] >= 1
    assert r["streams"] == 0
    assert r["limits"]["max_streams"] == -1
    await create(server, "S")
    r = await server.api("INFO")
    assert r["streams"] == 1
    assert r["api"]["total"] == 2 and r["api"]["errors"] == 0


async def test_create_echoes_server_defaults(server: FakeServer, js: object) -> None:
    r = await create(server, "ORDERS")
    assert r["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    assert r["did_create"] is True
    c = r["config"]
    assert c["subjects"] == ["ORDERS"]
    for k, v in {"retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 0,
                 "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "file",
                 "num_replicas": 1, "duplicate_window": 120_000_000_000, "sealed": False, "deny_delete": False,
                 "deny_purge": False, "allow_rollup_hdrs": False, "allow_direct": False}.items():
        assert c[k] == v, k
    st = r["state"]
    assert st["messages"] == 0 and st["first_seq"] == 0 and st["last_seq"] == 0
    assert st["first_ts"] == "0001-01-01T00:00:00Z"
    assert r["created"].endswith("Z")


async def test_duplicate_window_follows_short_max_age(server: FakeServer, js: object) -> None:
    r = await create(server, "S", max_age=30_000_000_000)
    assert r["config"]["duplicate_window"] == 30_000_000_000


async def test_create_is_idempotent_but_refuses_a_different_config(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["a.>"])
    again = await create(server, "S", subjects=["a.>"])
    assert "error" not in again and again["created"] == (await server.api("STREAM.INFO.S"))["created"]
    diff = await create(server, "S", subjects=["a.>"], max_msgs=5)
    assert diff["error"] == {"code": 400, "err_code": 10058,
                             "description": "stream name already in use with a different configuration"}


async def test_create_errors(server: FakeServer, js: object) -> None:
    assert (await server.api("STREAM.CREATE.S", {}))["error"]["err_code"] == 10056
    assert (await server.api("STREAM.CREATE.S", b"{bad"))["error"] == {
        "code": 400, "err_code": 10025, "description": "invalid JSON"}
    assert (await server.api("STREAM.CREATE.S", {"name": "S", "retention": "bogus"}))["error"]["err_code"] == 10025
    r = await create(server, "S", max_age=10)
    assert r["error"] == {"code": 500, "err_code": 10052, "description": "max age needs to be >= 100ms"}
    r = await create(server, "S", num_replicas=3)
    assert r["error"]["err_code"] == 10074
    r = await create(server, "S", sealed=True)
    assert r["error"]["description"] == "stream configuration for create can not be sealed"
    r = await create(server, "S", discard_new_per_subject=True)
    assert r["error"]["description"] == "discard new per subject requires discard new policy to be set"
    r = await create(server, "S", subjects=["a.*", "a.b"])
    assert r["error"]["description"] == 'subject "a.*" overlaps with "a.b"'
    r = await create(server, "S", subjects=[">"])
    assert r["error"]["description"] == "capturing all subjects requires no-ack to be true"
    r = await create(server, "S", deny_purge=True, allow_rollup_hdrs=True)
    assert r["error"]["description"] == "roll-ups require the purge permission"
    await create(server, "A", subjects=["a.>"])
    r = await create(server, "B", subjects=["a.b"])
    assert r["error"] == {"code": 400, "err_code": 10065, "description": "subjects overlap with an existing stream"}
    r = await server.api("STREAM.NAMES")
    assert r["streams"] == ["A"]


async def test_update_rules(server: FakeServer, js: object) -> None:
    await create(server, "S", deny_delete=True)
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "storage": "memory", "deny_delete": True})
    assert r["error"]["description"] == "stream configuration update can not change storage type"
    r = await server.api("STREAM.UPDATE.S", {"name": "S"})
    assert r["error"]["description"] == "stream configuration update can not cancel deny message deletes"
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "deny_delete": True, "retention": "workqueue"})
    assert r["error"]["description"] == "stream configuration update can not change retention policy"
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "deny_delete": True, "retention": "interest"})
    assert r["error"]["err_code"] == 10052
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "deny_delete": True, "max_consumers": 3})
    assert r["error"]["description"] == "stream configuration update can not change MaxConsumers"
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "deny_delete": True, "max_msgs": 7,
                                             "description": "hi", "subjects": ["x.>"]})
    assert r["type"] == "io.nats.jetstream.api.v1.stream_update_response"
    assert r["config"]["max_msgs"] == 7 and r["config"]["description"] == "hi"
    # the new subjects capture publishes, the old one no longer does
    ack = (await server.request("x.1", b"v")).json()
    assert ack == {"stream": "S", "seq": 1}
    nr = await server.request("S", b"v")
    assert nr.hdr == b"NATS/1.0 503\r\n\r\n"
    r = await server.api("STREAM.UPDATE.NOPE", {"name": "NOPE"})
    assert r["error"]["err_code"] == 10059


async def test_update_shrinking_limits_drops_old_messages(server: FakeServer, js: object) -> None:
    await create(server, "S")
    for i in range(5):
        await server.request("S", str(i))
    r = await server.api("STREAM.UPDATE.S", {"name": "S", "max_msgs": 2})
    assert r["state"]["messages"] == 2 and r["state"]["first_seq"] == 4


async def test_info_delete_and_not_found(server: FakeServer, js: object) -> None:
    r = await server.api("STREAM.INFO.NOPE")
    assert r["error"] == {"code": 404, "err_code": 10059, "description": "stream not found"}
    await create(server, "S")
    r = await server.api("STREAM.INFO.S")
    assert r["type"] == "io.nats.jetstream.api.v1.stream_info_response"
    assert r["config"]["name"] == "S"
    r = await server.api("STREAM.DELETE.S")
    assert r == {"type": "io.nats.jetstream.api.v1.stream_delete_response", "success": True}
    assert (await server.api("STREAM.DELETE.S"))["error"]["err_code"] == 10059
    assert (await server.api("STREAM.INFO.S"))["error"]["err_code"] == 10059


async def test_info_subjects_filter_and_deleted_details(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["s.>"])
    for subj in ("s.a", "s.b", "s.a", "s.c"):
        await server.request(subj, b"x")
    await server.api("STREAM.MSG.DELETE.S", {"seq": 2})
    r = await server.api("STREAM.INFO.S", {"subjects_filter": "s.a", "deleted_details": True})
    assert r["state"]["subjects"] == {"s.a": 2}
    assert r["state"]["deleted"] == [2] and r["state"]["num_deleted"] == 1
    assert r["state"]["num_subjects"] == 2


async def test_names_and_list_paging_and_filter(server: FakeServer, js: object) -> None:
    for i in range(5):
        await create(server, f"S{i}", subjects=[f"s{i}.>"])
    r = await server.api("STREAM.NAMES")
    assert r["total"] == 5 and r["limit"] == 1024 and r["offset"] == 0
    assert r["streams"] == [f"S{i}" for i in range(5)]
    r = await server.api("STREAM.NAMES", {"offset": 3})
    assert r["streams"] == ["S3", "S4"] and r["offset"] == 3
    r = await server.api("STREAM.NAMES", {"subject": "s2.x"})
    assert r["streams"] == ["S2"] and r["total"] == 1
    r = await server.api("STREAM.LIST", {"offset": 4})
    assert r["limit"] == 256 and r["total"] == 5
    assert [s["config"]["name"] for s in r["streams"]] == ["S4"]


async def test_unknown_api_subject_is_bad_request(server: FakeServer, js: object) -> None:
    for subj in ("FOO", "STREAM.CREATE", "STREAM.CREATE.a.b", "STREAM.MSG.GET"):
        r = await server.api(subj)
        assert r == {"type": "io.nats.jetstream.api.v1.system_response",
                     "error": {"code": 400, "err_code": 10003, "description": "bad request"}}, subj


async def test_account_without_jetstream_gets_10039(server: FakeServer, js: object) -> None:
    # accounts that exist when JetStream starts but are not enabled answer with 10039
    from .conftest import FakeAccount

    other = FakeAccount("OTHER")
    server.accounts["OTHER"] = other
    await js.stop()
    await js.start()
    r = await server.api("INFO", account=other)
    assert r["error"] == {"code": 503, "err_code": 10039, "description": "JetStream not enabled for account"}


async def test_purge_variants(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["p.*"])
    for subj in ("p.a", "p.b", "p.a", "p.b", "p.a"):
        await server.request(subj, b"x")
    r = await server.api("STREAM.PURGE.S", {"filter": "p.a", "keep": 1})
    assert r == {"type": "io.nats.jetstream.api.v1.stream_purge_response", "success": True, "purged": 2}
    r = await server.api("STREAM.PURGE.S", {"seq": 4})
    assert r["purged"] == 1  # only seq 2 (p.b) was left below 4
    info = await server.api("STREAM.INFO.S")
    assert info["state"]["first_seq"] == 4 and info["state"]["messages"] == 2
    r = await server.api("STREAM.PURGE.S", {"seq": 4, "keep": 1})
    assert r["error"]["err_code"] == 10003
    r = await server.api("STREAM.PURGE.S")
    assert r["purged"] == 2
    info = await server.api("STREAM.INFO.S")
    assert info["state"]["messages"] == 0 and info["state"]["first_seq"] == 6 and info["state"]["last_seq"] == 5


async def test_deny_purge_and_deny_delete(server: FakeServer, js: object) -> None:
    await create(server, "S", deny_purge=True, deny_delete=True)
    await server.request("S", b"x")
    r = await server.api("STREAM.PURGE.S")
    assert r["error"] == {"code": 500, "err_code": 10110, "description": "stream purge not permitted"}
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 1})
    assert r["error"] == {"code": 500, "err_code": 10057, "description": "message delete not permitted"}


async def test_msg_get_forms(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["g.*"])
    await server.request("g.a", b"one", hdr=hdrs(X_Key="v"))
    await server.request("g.b", b"two")
    await server.request("g.a", b"three")
    r = await server.api("STREAM.MSG.GET.S", {"seq": 1})
    m = r["message"]
    assert r["type"] == "io.nats.jetstream.api.v1.stream_msg_get_response"
    assert (m["subject"], m["seq"], base64.b64decode(m["data"])) == ("g.a", 1, b"one")
    assert b"X-Key: v" in base64.b64decode(m["hdrs"])
    assert m["time"].endswith("Z")
    r = await server.api("STREAM.MSG.GET.S", {"last_by_subj": "g.a"})
    assert r["message"]["seq"] == 3
    r = await server.api("STREAM.MSG.GET.S", {"next_by_subj": "g.b", "seq": 1})
    assert r["message"]["seq"] == 2
    r = await server.api("STREAM.MSG.GET.S", {"seq": 9})
    assert r["error"] == {"code": 404, "err_code": 10037, "description": "no message found"}
    r = await server.api("STREAM.MSG.GET.S", {})
    assert r["error"]["err_code"] == 10003
    r = await server.api("STREAM.MSG.GET.NOPE", {"seq": 1})
    assert r["error"]["err_code"] == 10059


async def test_msg_delete_with_and_without_erase(server: FakeServer, js: object) -> None:
    await create(server, "S")
    for _ in range(3):
        await server.request("S", b"x")
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 2})
    assert r == {"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": True}
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 3, "no_erase": True})
    assert r["success"] is True
    # an interior hole is "not found" (10043); outside the stored range the store errors (10057)
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 2})
    assert r["error"] == {"code": 400, "err_code": 10043, "description": "sequence 2 not found"}
    r = await server.api("STREAM.MSG.DELETE.S", {"seq": 9})
    assert r["error"] == {"code": 500, "err_code": 10057, "description": "stream store EOF"}
    info = await server.api("STREAM.INFO.S")
    assert info["state"]["messages"] == 1 and info["state"]["last_seq"] == 3


async def test_direct_get(server: FakeServer, js: object) -> None:
    await create(server, "KV", subjects=["$KV.b.>"], allow_direct=True)
    await server.request("$KV.b.k1", b"v1", hdr=hdrs(KV_Operation="PUT"))
    await server.request("$KV.b.k2", b"v2")
    # subject form: last message for the subject
    r = await server.request("$JS.API.DIRECT.GET.KV.$KV.b.k1")
    assert r.payload == b"v1"
    assert r.hdr.startswith(b"NATS/1.0\r\nKV-Operation: PUT\r\n")
    assert b"Nats-Stream: KV\r\n" in r.hdr and b"Nats-Subject: $KV.b.k1\r\n" in r.hdr
    assert b"Nats-Sequence: 1\r\n" in r.hdr and b"Nats-Time-Stamp: " in r.hdr and r.hdr.endswith(b"\r\n\r\n")
    # JSON form
    r = await server.request("$JS.API.DIRECT.GET.KV", {"seq": 2})
    assert r.payload == b"v2" and r.hdr.startswith(b"NATS/1.0\r\nNats-Stream: KV\r\n")
    r = await server.request("$JS.API.DIRECT.GET.KV", {"last_by_subj": "$KV.b.k2"})
    assert b"Nats-Sequence: 2\r\n" in r.hdr
    r = await server.request("$JS.API.DIRECT.GET.KV.$KV.b.nope")
    assert r.hdr == b"NATS/1.0 404 Message Not Found\r\n\r\n"
    r = await server.request("$JS.API.DIRECT.GET.KV")
    assert r.hdr == b"NATS/1.0 408 Empty Request\r\n\r\n"
    r = await server.request("$JS.API.DIRECT.GET.KV", b"{nope")
    assert r.hdr == b"NATS/1.0 408 Malformed Request\r\n\r\n"
    r = await server.request("$JS.API.DIRECT.GET.KV", {"seq": 1, "last_by_subj": "x"})
    assert r.hdr == b"NATS/1.0 408 Bad Request\r\n\r\n"


async def test_direct_get_batch(server: FakeServer, js: object) -> None:
    await create(server, "S", subjects=["d.*"], allow_direct=True)
    for subj in ("d.a", "d.b", "d.a", "d.a"):
        await server.request(subj, subj.encode())
    out = await server.request_many("$JS.API.DIRECT.GET.S", {"seq": 1, "next_by_subj": "d.a", "batch": 2})
    assert [m.payload for m in out[:2]] == [b"d.a", b"d.a"]
    assert b"Nats-Sequence: 1\r\n" in out[0].hdr and b"Nats-Sequence: 3\r\n" in out[1].hdr
    assert b"Nats-Num-Pending: 2\r\n" in out[0].hdr
    assert out[2].hdr.startswith(b"NATS/1.0 204 EOB\r\n")
    assert b"Nats-Last-Sequence: 3\r\n" in out[2].hdr


async def test_direct_get_needs_allow_direct(server: FakeServer, js: object) -> None:
    await create(server, "S")
    await server.request("S", b"x")
    r = await server.request("$JS.API.DIRECT.GET.S", {"seq": 1})
    assert r.hdr == b"NATS/1.0 503\r\n\r\n"


async def test_stream_advisories(server: FakeServer, js: object) -> None:
    server.listening.add("$JS.EVENT.ADVISORY.>")
    await create(server, "S")
    await server.api("STREAM.UPDATE.S", {"name": "S", "max_msgs": 3})
    await server.api("STREAM.DELETE.S")
    adv = [d for d in server.outbox if d.subject.startswith("$JS.EVENT.ADVISORY.STREAM.")]
    assert [d.subject for d in adv] == ["$JS.EVENT.ADVISORY.STREAM.CREATED.S",
                                        "$JS.EVENT.ADVISORY.STREAM.UPDATED.S",
                                        "$JS.EVENT.ADVISORY.STREAM.DELETED.S"]
    bodies = [d.json() for d in adv]
    assert [b["action"] for b in bodies] == ["create", "modify", "delete"]
    assert all(b["type"] == "io.nats.jetstream.advisory.v1.stream_action" and b["stream"] == "S" for b in bodies)
    assert all(len(b["id"]) == 22 and b["timestamp"].endswith("Z") for b in bodies)


async def test_api_audit_advisory_only_with_interest(server: FakeServer, js: object) -> None:
    await create(server, "S")
    assert not [d for d in server.outbox if d.subject == "$JS.EVENT.ADVISORY.API"]
    server.listening.add("$JS.EVENT.ADVISORY.API")
    await server.api("STREAM.INFO.NOPE", b'{"deleted_details":false}')
    (adv,) = [d.json() for d in server.outbox if d.subject == "$JS.EVENT.ADVISORY.API"]
    assert adv["type"] == "io.nats.jetstream.advisory.v1.api_audit"
    assert adv["subject"] == "$JS.API.STREAM.INFO.NOPE"
    assert adv["request"] == '{"deleted_details":false}'
    assert '"err_code":10059' in adv["response"]
    assert adv["client"]["acc"] == "$G"


async def test_required_api_level(server: FakeServer, js: object) -> None:
    await create(server, "S", allow_direct=True)
    ok = await server.request("$JS.API.STREAM.INFO.S", hdr=hdrs(Nats_Required_Api_Level="1"))
    assert "error" not in ok.json()
    r = await server.request("$JS.API.STREAM.INFO.S", hdr=hdrs(Nats_Required_Api_Level="99"))
    assert r.json()["error"] == {"code": 412, "err_code": 10185, "description": "JetStream minimum api level required"}
    r = await server.request("$JS.API.DIRECT.GET.S", b'{"seq":1}', hdr=hdrs(Nats_Required_Api_Level="99"))
    assert r.hdr == b"NATS/1.0 412 Required Api Level\r\n\r\n"


async def test_accounts_are_isolated(server: FakeServer, js: Any) -> None:
    from .conftest import AccountLimits, FakeAccount

    other = FakeAccount("B")
    server.accounts["B"] = other
    js.enable_account(other, AccountLimits(max_streams=1))  # enabled after start: subscribes at once
    await create(server, "S", subjects=["same.>"])
    r = await server.api("STREAM.CREATE.S", {"name": "S", "subjects": ["same.>"], "max_msgs": 5}, account=other)
    assert r["did_create"] is True and r["config"]["max_msgs"] == 5
    ack = (await server.request("same.x", b"b", account=other)).json()
    assert ack == {"stream": "S", "seq": 1}
    assert (await server.api("STREAM.INFO.S"))["state"]["messages"] == 0
    r = await server.api("STREAM.CREATE.T", {"name": "T"}, account=other)
    assert r["error"]["err_code"] == 10027
    assert (await server.api("INFO", account=other))["limits"]["max_streams"] == 1


async def test_enabling_a_disabled_account_replaces_its_10039_answer(server: FakeServer, js: Any) -> None:
    from .conftest import AccountLimits, FakeAccount

    other = FakeAccount("C")
    server.accounts["C"] = other
    await js.stop()
    await js.start()
    assert (await server.api("INFO", account=other))["error"]["err_code"] == 10039
    js.enable_account(other, AccountLimits())
    replies = await server.request_many("$JS.API.INFO", account=other)
    assert len(replies) == 1 and "error" not in replies[0].json()


async def test_direct_get_multi_last_and_start_time(server: FakeServer, js: object, clock: Any) -> None:
    await create(server, "KV", subjects=["kv.>"], allow_direct=True)
    for subj, data in (("kv.a", b"a1"), ("kv.b", b"b1"), ("kv.a", b"a2"), ("kv.c.x", b"c1"), ("kv.b", b"b2")):
        await server.request(subj, data)
        clock.advance(1)
    out = await server.request_many("$JS.API.DIRECT.GET.KV", {"multi_last": ["kv.a", "kv.b"]})
    assert [m.payload for m in out[:-1]] == [b"a2", b"b2"]
    assert b"Nats-Num-Pending: 1\r\n" in out[0].hdr and b"Nats-Num-Pending: 0\r\n" in out[1].hdr
    assert out[-1].hdr == (b"NATS/1.0 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 5\r\n"
                           b"Nats-UpTo-Sequence: 5\r\n\r\n")
    # as of seq 3: kv.b's last was then seq 2
    out = await server.request_many("$JS.API.DIRECT.GET.KV", {"multi_last": ["kv.>"], "up_to_seq": 3})
    assert [m.payload for m in out[:-1]] == [b"b1", b"a2"]
    out = await server.request_many("$JS.API.DIRECT.GET.KV", {"multi_last": ["kv.>"], "batch": 1})
    assert [m.payload for m in out[:-1]] == [b"a2"] and b"Nats-Num-Pending: 2\r\n" in out[-1].hdr
    r = await server.request("$JS.API.DIRECT.GET.KV", {"multi_last": ["zz.>"]})
    assert r.hdr == b"NATS/1.0 404 No Results\r\n\r\n"
    from pyjetstream.gotime import format_rfc3339

    start = format_rfc3339(clock() - 3 * 1_000_000_000)  # the time the third message was stored
    r = await server.request("$JS.API.DIRECT.GET.KV", {"start_time": start})
    assert r.payload == b"a2" and b"Nats-Sequence: 3\r\n" in r.hdr
    out = await server.request_many("$JS.API.DIRECT.GET.KV", {"start_time": start, "batch": 5})
    assert [m.payload for m in out[:-1]] == [b"a2", b"c1", b"b2"]


async def test_newer_consumer_operations_are_refused_as_unknown(server: FakeServer, js: Any) -> None:
    """RESET (nats-server 2.14+) has an explicit handler that refuses it the way an unknown
    request is refused, as nats-server 2.9.10 does: 10003 with the generic type. (PAUSE and
    UNPIN are implemented: tests/differential/test_js_consumer_pause_diff.py and
    tests/differential/test_js_priority_groups_diff.py.)"""
    import json

    from pyjetstream.jetstream import api, router

    unknown = await server.request("$JS.API.NO.SUCH.THING", b"")
    for op in ("RESET",):
        route, handler = router.resolve(["CONSUMER", op, "S", "C"])
        assert route is not None and handler is api.not_implemented
        r = await server.request(f"$JS.API.CONSUMER.{op}.S.C", b"{}")
        assert json.loads(r.payload) == json.loads(unknown.payload) == {
            "type": "io.nats.jetstream.api.v1.system_response",
            "error": {"code": 400, "err_code": 10003, "description": "bad request"}}
