"""Strict API decoding (nats-server 2.12+): a request field nats-server's request structs do not
know is refused with 10025 `invalid JSON: json: unknown field "x"`, top level and nested; keys
match case-insensitively as in Go; `strict: false` drops unknown fields instead; unpin requests
are never strict (pull requests: tests/differential/test_js_strict_diff.py). The fields
nats-server knows are honoured or refused by name: `pedantic` mode (nats-server's refusals
where a default would change the config), MSG.GET's `batch`/`max_bytes`, a body sent to
CONSUMER.INFO. Also: the field table matches the json tags of nats-server v2.12.9's structs
(when its source mirror is on this machine)."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyjetstream.jetstream import strict

from .conftest import FakeServer

UNKNOWN = 'invalid JSON: json: unknown field "{}"'


def _err(r: dict[str, Any]) -> tuple[int, str]:
    assert "error" in r, r
    return r["error"]["err_code"], r["error"]["description"]


async def _stream(server: FakeServer, name: str = "S", **cfg: object) -> dict[str, Any]:
    r = await server.api(f"STREAM.CREATE.{name}", {"name": name, "subjects": [f"{name.lower()}.>"], **cfg})
    assert "error" not in r, r
    return r


@pytest.mark.parametrize(("extra", "bad"), [
    ({"bogus": 1}, "bogus"),
    ({"placement": {"cluster": "", "zone": "a"}}, "zone"),
    ({"consumer_limits": {"max_ack_pending": 5, "max_waiting": 1}}, "max_waiting"),
    ({"republish": {"dest": "r.>", "headers": True}}, "headers"),
    ({"subject_transform": {"src": "t.>", "dest": "u.>", "x": 1}}, "x"),
    ({"sources": [{"name": "O", "external": {"api": "$JS.x.API", "deliver": "", "domain": "y"}}]}, "domain"),
    ({"sources": [{"name": "O", "subject_transform_dest": "x.>"}]}, "subject_transform_dest"),
    ({"mirror": {"name": "O", "subject_transforms": [{"src": ">", "dest": ">", "z": 0}]}}, "z"),
    ({"state": {}}, "state"),  # JSApiStreamRestoreRequest's, not a create's
])
async def test_stream_create_refuses_unknown_fields(server: FakeServer, js: Any, extra: dict[str, Any],
                                                    bad: str) -> None:
    body = {"name": "T", "subjects": ["t.>"], **extra}
    if "mirror" in extra or "sources" in extra:
        body.pop("subjects")
    assert _err(await server.api("STREAM.CREATE.T", body)) == (10025, UNKNOWN.format(bad))
    assert "T" not in js.accounts["$G"].streams


async def test_first_unknown_field_in_document_order_is_named(server: FakeServer, js: Any) -> None:
    r = await server.api("STREAM.CREATE.T", b'{"name":"T","zz":1,"placement":{"aa":1},"bb":2}')
    assert _err(r) == (10025, UNKNOWN.format("zz"))


async def test_keys_match_case_insensitively_as_in_go(server: FakeServer, js: Any) -> None:
    r = await server.api("STREAM.CREATE.T", {"NAME": "T", "Subjects": ["t.>"], "MAX_MSGS": 5,
                                             "consumer_limits": {"Max_Ack_Pending": 7}})
    assert "error" not in r, r
    assert (r["config"]["name"], r["config"]["max_msgs"]) == ("T", 5)
    assert r["config"]["consumer_limits"] == {"max_ack_pending": 7}
    # a later duplicate wins, as in Go
    r = await server.api("STREAM.CREATE.U", b'{"name":"U","subjects":["u"],"max_msgs":1,"Max_Msgs":9}')
    assert r["config"]["max_msgs"] == 9


async def test_stream_update_and_other_stream_requests(server: FakeServer, js: Any) -> None:
    await _stream(server)
    cases = [
        ("STREAM.UPDATE.S", {"name": "S", "subjects": ["s.>"], "bogus": 1}, {}),
        ("STREAM.INFO.S", {"deleted_details": True, "bogus": 1}, {"total": 0, "offset": 0, "limit": 0}),
        ("STREAM.NAMES", {"subject": ">", "bogus": 1}, {"total": 0, "offset": 0, "limit": 0, "streams": None}),
        ("STREAM.LIST", {"bogus": 1}, {"total": 0, "offset": 0, "limit": 0, "streams": []}),
        ("STREAM.PURGE.S", {"filter": "s.a", "bogus": 1}, {"purged": 0}),
        ("STREAM.MSG.GET.S", {"seq": 1, "bogus": 1}, {}),
        ("STREAM.MSG.DELETE.S", {"seq": 1, "bogus": 1}, {}),
        # the body is decoded before the stream is looked up, as in nats-server
        ("STREAM.MSG.GET.NOPE", {"seq": 1, "bogus": 1}, {}),
        ("STREAM.PURGE.NOPE", {"bogus": 1}, {"purged": 0}),
    ]
    for subject, body, fields in cases:
        r = await server.api(subject, body)
        assert _err(r) == (10025, UNKNOWN.format("bogus")), subject
        assert {k: r[k] for k in fields} == fields, subject
    # known fields in any case still work
    r = await server.api("STREAM.INFO.S", {"Deleted_Details": True})
    assert r["config"]["name"] == "S"


async def test_paged_bodies_that_are_not_json_objects_are_ignored(server: FakeServer, js: Any) -> None:
    await _stream(server)
    for body in (b'"x"', b"hello", b"null"):
        r = await server.api("STREAM.NAMES", body)
        assert r["streams"] == ["S"], body
    r = await server.api("STREAM.NAMES", b"[1]")
    assert _err(r) == (10025, "invalid JSON: json: cannot unmarshal array into Go value of type "
                              "server.JSApiStreamNamesRequest")


async def test_consumer_requests(server: FakeServer, js: Any) -> None:
    await _stream(server)
    ok = await server.api("CONSUMER.CREATE.S.C", {"stream_name": "S", "config": {
        "name": "C", "ack_policy": "explicit", "priority_groups": ["g"], "priority_policy": "pinned_client"}})
    assert "error" not in ok, ok
    cases = [
        ("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": {"name": "D"}, "bogus": 1}, {}),
        ("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": {"name": "D", "bogus": 1}}, {}),
        ("CONSUMER.DURABLE.CREATE.S.D", {"stream_name": "S", "config": {"durable_name": "D", "bogus": 1}}, {}),
        ("CONSUMER.CREATE.NOPE.D", {"stream_name": "NOPE", "config": {"name": "D", "bogus": 1}}, {}),
        ("CONSUMER.NAMES.S", {"bogus": 1}, {"total": 0, "offset": 0, "limit": 0, "consumers": []}),
        ("CONSUMER.LIST.S", {"bogus": 1}, {"total": 0, "offset": 0, "limit": 0, "consumers": []}),
        ("CONSUMER.PAUSE.S.C", {"bogus": 1}, {"paused": False, "pause_until": "0001-01-01T00:00:00Z"}),
        ("CONSUMER.PAUSE.S.NOPE", {"bogus": 1}, {"paused": False}),
    ]
    for subject, body, fields in cases:
        r = await server.api(subject, body)
        assert _err(r) == (10025, UNKNOWN.format("bogus")), subject
        assert {k: r[k] for k in fields} == fields, subject
    assert "D" not in js.accounts["$G"].streams["S"].consumers
    # CONSUMER.INFO takes no body at all (nats-server's isEmptyRequest)
    assert _err(await server.api("CONSUMER.INFO.S.C", {"bogus": 1})) == (10038, "expected an empty request payload")
    assert "error" not in await server.api("CONSUMER.INFO.S.C", {})
    # unpin is decoded by nats-server with plain json.Unmarshal: an unknown field is dropped
    assert await server.api("CONSUMER.UNPIN.S.C", {"group": "g", "bogus": 1}) == {
        "type": "io.nats.jetstream.api.v1.consumer_unpin_response"}
    assert await server.api("CONSUMER.UNPIN.S.C", {"GROUP": "g"}) == {
        "type": "io.nats.jetstream.api.v1.consumer_unpin_response"}


async def test_strict_false_drops_unknown_fields(server: FakeServer, js: Any) -> None:
    js.strict = False
    r = await server.api("STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"], "bogus": 1,
                                             "placement": {"zone": "a"}})
    assert "error" not in r, r
    assert "bogus" not in r["config"] and "placement" not in r["config"]
    r = await server.api("CONSUMER.CREATE.T.C", {"stream_name": "T", "config": {"name": "C", "bogus": 1},
                                                 "extra": True})
    assert "error" not in r, r
    assert "bogus" not in r["config"]  # dropped, not echoed
    assert "bogus" not in js.accounts["$G"].streams["T"].consumers["C"].config.to_json()
    assert "error" not in await server.api("STREAM.INFO.T", {"bogus": 1})
    # known fields of the wrong type are still refused
    assert _err(await server.api("STREAM.INFO.T", {"deleted_details": "yes"}))[0] == 10025


async def test_pedantic_mode_refuses_what_defaults_would_change(server: FakeServer, js: Any) -> None:
    pedantic = "pedantic mode: {}"
    assert "error" not in await server.api("STREAM.CREATE.T", {"name": "T", "subjects": ["t"], "pedantic": False})
    assert "error" not in await server.api("STREAM.CREATE.T", {"name": "T", "subjects": ["t"], "pedantic": True})
    cases = [
        ({"max_msgs": -5}, (10157, pedantic.format("max_msgs must be set to -1"))),
        ({"max_age": 60_000_000_000}, (10157, pedantic.format("duplicate window cannot be bigger than max age"))),
        ({"subject_delete_marker_ttl": 2_000_000_000},
         (10052, "subject delete marker cannot be set if message TTLs are disabled")),
        ({"allow_msg_schedules": True}, (10052, "message scheduling cannot be set if roll-ups are disabled")),
        ({"republish": {"dest": "rp.>"}}, (10157, pedantic.format("republish source can not be empty"))),
    ]
    for extra, want in cases:
        r = await server.api("STREAM.CREATE.U", {"name": "U", "subjects": ["u.>"], **extra, "pedantic": True})
        assert _err(r) == want, extra
        # without pedantic mode the default applies
        assert "error" not in await server.api("STREAM.CREATE.U", {"name": "U", "subjects": ["u.>"], **extra}), extra
        assert "error" not in await server.api("STREAM.DELETE.U")
    r = await server.api("STREAM.UPDATE.T", {"name": "T", "subjects": ["t"], "max_bytes": -2, "pedantic": True})
    assert _err(r) == (10157, pedantic.format("max_bytes must be set to -1"))
    # sealing still sets its limits in pedantic mode, as in nats-server
    r = await server.api("STREAM.UPDATE.T", {"name": "T", "subjects": ["t"], "sealed": True, "pedantic": True})
    assert r["config"]["sealed"] is True
    await server.api("STREAM.CREATE.O", {"name": "O", "subjects": ["o.>"], "allow_direct": True})
    r = await server.api("STREAM.CREATE.M", {"name": "M", "mirror": {"name": "O"}, "pedantic": True})
    assert _err(r) == (10157, pedantic.format("origin stream has direct get set, mirror has it disabled"))
    await server.api("STREAM.CREATE.L", {"name": "L", "subjects": ["l.>"], "consumer_limits": {"max_ack_pending": 50}})
    consumers = [
        ("O", {"max_deliver": -3}, "max_deliver must be set to -1"),
        ("O", {"priority_timeout": -1}, "priority_timeout must not be negative"),
        ("O", {"backoff": [1_000_000_000, 2_000_000_000], "max_deliver": 5},
         "first backoff value has to equal batch AckWait"),
        ("L", {}, "max_ack_pending must be set if it's configured in stream limits"),
    ]
    for stream, extra, text in consumers:
        body = {"stream_name": stream, "config": {"name": "C", "ack_policy": "explicit", **extra}}
        assert _err(await server.api(f"CONSUMER.CREATE.{stream}.C", {**body, "pedantic": True})) == (
            10157, pedantic.format(text)), extra
        assert "error" not in await server.api(f"CONSUMER.CREATE.{stream}.C", body), extra
        assert "error" not in await server.api(f"CONSUMER.DELETE.{stream}.C")
    r = await server.api("STREAM.CREATE.V", {"name": "V", "subjects": ["v"], "pedantic": 1})
    assert _err(r)[0] == 10025
    assert "V" not in js.accounts["$G"].streams


async def test_msg_get_fields_nats_server_knows(server: FakeServer, js: Any, clock: Any) -> None:
    await _stream(server)
    await server.request("s.a", b"one", hdr=b"NATS/1.0\r\nX: 1\r\n\r\n")
    clock.advance(10)
    await server.request("s.b", b"two")
    for extra in ({"batch": 2}, {"max_bytes": 10}):
        assert _err(await server.api("STREAM.MSG.GET.S", {"seq": 1, **extra})) == (10003, "bad request")
    r = await server.api("STREAM.MSG.GET.S", {"seq": 1, "no_hdr": True})
    assert "hdrs" not in r["message"] and base64.b64decode(r["message"]["data"]) == b"one"
    assert "hdrs" in (await server.api("STREAM.MSG.GET.S", {"seq": 1}))["message"]
    first = (await server.api("STREAM.MSG.GET.S", {"seq": 1}))["message"]["time"]
    second = (await server.api("STREAM.MSG.GET.S", {"seq": 2}))["message"]["time"]
    assert (await server.api("STREAM.MSG.GET.S", {"start_time": first}))["message"]["seq"] == 1
    assert (await server.api("STREAM.MSG.GET.S", {"start_time": second}))["message"]["seq"] == 2
    r = await server.api("STREAM.MSG.GET.S", {"start_time": second, "next_by_subj": "s.a"})
    assert _err(r)[0] == 10037
    assert _err(await server.api("STREAM.MSG.GET.S", {"seq": 1, "start_time": first}))[0] == 10003
    # direct get's multi_last and up_to_* are decoded and unused here, as by nats-server
    assert (await server.api("STREAM.MSG.GET.S", {"seq": 1, "multi_last": ["s.b"], "up_to_seq": 1}))[
        "message"]["seq"] == 1


# ------------------------------------------------------------------ the table against nats-server's source

_MIRROR = Path("/work/.mirror/nats-io+nats-server/repo")
_TAG = "v2.12.9"
# fields of later releases the table knows so that they are refused by name, not as unknown
_LATER = {"StreamConfig": {"allow_batched"}, "StreamSource": {"consumer"}}


def _go_tags(path: str, struct: str) -> set[str]:
    src = subprocess.run(["git", "-C", str(_MIRROR), "show", f"{_TAG}:{path}"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(rf"^type {struct} struct {{\n(.*?)^}}", src, re.M | re.S)
    assert m, struct
    tags = set(re.findall(r'json:"([^",]+)', m.group(1)))
    return tags - {"-"}


@pytest.mark.skipif(not _MIRROR.exists(), reason="no nats-server source mirror on this machine")
@pytest.mark.parametrize(("shape", "path", "struct", "embedded"), [
    (strict.STREAM_CONFIG_REQUEST, "server/stream.go", "StreamConfig", {"pedantic"}),
    (strict.STREAM_SOURCE, "server/stream.go", "StreamSource", set()),
    (strict.EXTERNAL, "server/stream.go", "ExternalStream", set()),
    (strict.SUBJECT_TRANSFORM, "server/stream.go", "SubjectTransformConfig", set()),
    (strict.REPUBLISH, "server/stream.go", "RePublish", set()),
    (strict.CONSUMER_LIMITS, "server/stream.go", "StreamConsumerLimits", set()),
    (strict.PLACEMENT, "server/jetstream_cluster.go", "Placement", set()),
    (strict.CONSUMER_CONFIG, "server/consumer.go", "ConsumerConfig", set()),
    (strict.CREATE_CONSUMER_REQUEST, "server/consumer.go", "CreateConsumerRequest", set()),
    (strict.STREAM_INFO_REQUEST, "server/jetstream_api.go", "JSApiStreamInfoRequest", {"offset"}),
    (strict.STREAM_NAMES_REQUEST, "server/jetstream_api.go", "JSApiStreamNamesRequest", {"offset"}),
    (strict.STREAM_LIST_REQUEST, "server/jetstream_api.go", "JSApiStreamListRequest", {"offset"}),
    (strict.STREAM_PURGE_REQUEST, "server/jetstream_api.go", "JSApiStreamPurgeRequest", set()),
    (strict.MSG_DELETE_REQUEST, "server/jetstream_api.go", "JSApiMsgDeleteRequest", set()),
    (strict.MSG_GET_REQUEST, "server/jetstream_api.go", "JSApiMsgGetRequest", set()),
    (strict.CONSUMERS_REQUEST, "server/jetstream_api.go", "JSApiConsumersRequest", {"offset"}),
    (strict.CONSUMER_PAUSE_REQUEST, "server/jetstream_api.go", "JSApiConsumerPauseRequest", set()),
    (strict.CONSUMER_UNPIN_REQUEST, "server/jetstream_api.go", "JSApiConsumerUnpinRequest", set()),
])
def test_field_table_is_nats_servers(shape: strict.Struct, path: str, struct: str, embedded: set[str]) -> None:
    """`embedded`: fields that come from an embedded struct (ApiPagedRequest) or the request
    wrapper (StreamConfigRequest's pedantic)."""
    want = _go_tags(path, struct) | embedded | _LATER.get(struct, set())
    assert set(shape.fields) == want
