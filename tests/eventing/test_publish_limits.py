"""A publish never costs the proxy its NATS connection: whatever the server would answer with
-ERR (and close the connection for) is refused first with a 4xx and the reason.

Pure checks of `wire` first, then the real proxy over HTTP against a real server (both
implementations, see conftest) configured with a small max_payload: every class of request
that reaches a NATS subject, header or payload, at and past its limit. After each refused
request the connection is the same one (no reconnect) and the next good event is stored.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing import wire
from pyjetstream.eventing.dispatcher import dead_letter_reserve
from pyjetstream.eventing.service import EventingService, reconnect_backoff
from pyjetstream.eventing.testing import wait_until

from .conftest import fast_config, start_nats

MAX_PAYLOAD = 8192
GOOD = {"ce-specversion": "1.0", "ce-type": "order.created.v1", "ce-source": "app", "ce-id": "good",
        "content-type": "application/json"}
LIMITS = {"retention": "limits"}


# -- wire, without a server ---------------------------------------------------------------

@pytest.mark.parametrize("subject,fragment", [
    ("", "empty"), ("a b", "' '"), ("a\tb", "'\\t'"), ("a\r\nb", "'\\r'"), ("a\x00b", "'\\x00'"),
    ("a\x85b", "'\\x85'"), ("a\u2028b", "'\\u2028'"), ("a\udcffb", "'\\udcff'"), ("a..b", "empty token"),
    (".a", "empty token"), ("a.", "empty token"), ("a.*.b", "wildcard"), ("a.>", "wildcard"),
])
def test_subjects_a_server_would_refuse(subject: str, fragment: str) -> None:
    problem = wire.subject_problem(subject)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("subject", ["kyma.app.order.created.v1", "a", "kyma.é.ü😀", "a*b.c>d", "$x.y"])
def test_subjects_a_server_takes(subject: str) -> None:
    assert wire.subject_problem(subject) is None


@pytest.mark.parametrize("headers,fragment", [
    ({"ce-id": "a\r\nNats-Msg-Id: x"}, "'\\r'"), ({"ce-id": "a\nb"}, "'\\n'"), ({"ce-id": "a\x00b"}, "'\\x00'"),
    ({"ce-id": "\udcff"}, "'\\udcff'"), ({"bad name": "x"}, "header name"), ({"a:b": "x"}, "header name"),
    ({"é": "x"}, "header name"),
])
def test_header_blocks_a_server_would_misread(headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(wire.Refused) as info:
        wire.header_block(headers)
    assert info.value.status == 400 and fragment in info.value.message


def test_header_block_is_what_nats_py_writes() -> None:
    assert wire.header_block({"a": " x ", "B-c": "é\tz"}) == "NATS/1.0\r\na: x\r\nB-c: é\tz\r\n\r\n".encode()


def test_size_counts_headers_and_payload_as_the_server_does() -> None:
    headers = {"ce-id": "x"}
    block = len(wire.header_block(headers))
    wire.check_publish("a.b", headers, b"p" * (100 - block), max_payload=100)
    with pytest.raises(wire.Refused) as info:
        wire.check_publish("a.b", headers, b"p" * (101 - block), max_payload=100)
    assert info.value.status == 413 and "at most 100" in info.value.message
    # room kept for larger headers a dead-letter copy carries
    wire.check_publish("a.b", headers, b"p" * 60, max_payload=100, reserve=40)
    with pytest.raises(wire.Refused) as info:
        wire.check_publish("a.b", headers, b"p" * 61, max_payload=100, reserve=40)
    assert "40 of them kept for the headers of a dead-letter copy" in info.value.message


def test_control_line_bound_is_exact() -> None:
    def line(subject: str) -> int:
        block = len(wire.header_block({}))
        total = block + 1
        return 5 + len(subject.encode()) + 1 + 6 + wire.REPLY_TOKENS + 1 + len(str(block)) + 1 + len(str(total))
    subject = "a" * (4096 - line(""))
    assert line(subject) == 4096
    wire.check_publish(subject, {}, b"x", max_payload=1 << 20)
    with pytest.raises(wire.Refused) as info:
        wire.check_publish(subject + "b", {}, b"x", max_payload=1 << 20)
    assert info.value.status == 400 and "control line" in info.value.message
    # multi-byte characters count in bytes, as on the wire
    with pytest.raises(wire.Refused):
        wire.check_publish(subject[:-1] + "é", {}, b"x", max_payload=1 << 20)


def test_events_without_a_utf8_form_are_refused() -> None:
    for event in (ce.CloudEvent({"id": "\ud800"}), ce.CloudEvent({"id": "x"}, b'"\\udcff"'),
                  ce.CloudEvent({"id": "x", "datacontenttype": "application/json"}, b"[" * 100_000 + b"]" * 100_000)):
        with pytest.raises(wire.Refused) as info:
            wire.encode_event(event)
        assert info.value.status == 400


@pytest.mark.parametrize("value", ["a\x00", "a\r\nb", "\x7f", "\x9f", "\ud800", "\ufffe", "\U0010ffff", "\ufdd0",
                                   "\t"])
def test_cloudevents_strings_refuse_what_the_spec_disallows(value: str) -> None:
    assert ce.string_problem(value) is not None
    with pytest.raises(ce.CloudEventError):
        ce.validate(ce.CloudEvent({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "ext": value}))


def test_reconnect_backoff_grows_to_a_ceiling_and_tries_the_least_tried_server() -> None:
    class S:
        def __init__(self, reconnects: int) -> None:
            self.reconnects = reconnects
    delays = [reconnect_backoff([S(n)], {})[1] for n in range(12)]
    assert 0.4 <= delays[0] <= 0.6
    assert all(d <= 5.0 * 1.2 for d in delays) and delays[-1] >= 4.0
    assert delays[3] > delays[0] * 4
    a, b = S(3), S(1)
    assert reconnect_backoff([a, b], {})[0] is b


# -- the real proxy -----------------------------------------------------------------------

@pytest.fixture
async def small(server_kind, tmp_path):
    """A server with max_payload 8 KiB, and the service on it (limits retention: messages stay)."""
    conf = tmp_path / "small.conf"
    conf.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    proc = start_nats(server_kind, tmp_path, "-c", str(conf))
    svc = EventingService(proc.url, fast_config(stream=LIMITS), run_dispatcher=False)
    await svc.start()
    assert svc.nc.max_payload == MAX_PAYLOAD
    try:
        yield svc
    finally:
        await svc.stop()
        proc.stop()


async def send(svc: EventingService, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{svc.port}{path}", headers=headers, data=body) as r:
        return r.status, await r.read()


async def raw_post(svc: EventingService, path: str, head: bytes, body: bytes) -> int:
    """A request with header bytes no HTTP client library would send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
    writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + head
                 + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def still_works(svc: EventingService, nc_before: object, marker: str) -> None:
    """Same connection, never reconnected, and a good event is stored."""
    assert svc.nc is nc_before and svc.nc.is_connected
    assert svc.nc.stats["reconnects"] == 0
    status, _ = await send(svc, "/publish", {**GOOD, "ce-id": marker}, b"{}")
    assert status == 204
    msg = await svc.nc.jetstream().get_last_msg("sap", "kyma.app.order.created.v1")
    assert ce.parse_structured(msg.data).id == marker


def binary(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


CASES = [
    # (name, headers, body, expected status, fragment of the reason)
    ("type too long for the control line", binary(**{"ce-type": "a." * 2100 + "v1"}), b"{}", 413, b"at most 8192"),
    ("control character in type", binary(**{"ce-type": "a%00b.v1"}), b"{}", 400, b"control character"),
    ("CR LF in id", binary(**{"ce-id": "a%0D%0ANats-Msg-Id:%20x"}), b"{}", 400, b"control character"),
    ("tab in source", binary(**{"ce-source": "a%09b"}), b"{}", 400, b"control character"),
    ("C1 control in extension", binary(**{"ce-myext": "%C2%85"}), b"{}", 400, b"control character"),
    ("noncharacter in type", binary(**{"ce-type": "a%EF%BF%BE.v1"}), b"{}", 400, b"noncharacter"),
    ("huge id", binary(**{"ce-id": "x" * 5000}), b"{}", 413, b"at most 8192"),
    ("payload over max_payload", binary(), b'"' + b"x" * 9000 + b'"', 413, b"at most 8192"),
    ("escapes grow past max_payload", binary(**{"content-type": "text/plain"}), b"\x01" * 2000, 413,
     b"at most 8192"),
]


@pytest.mark.parametrize("name,headers,body,status,reason", CASES, ids=[c[0] for c in CASES])
async def test_binary_requests_past_a_limit_get_4xx_and_keep_the_connection(small, name, headers, body, status,
                                                                            reason) -> None:
    nc = small.nc
    got, text = await send(small, "/publish", headers, body)
    assert got == status and reason in text, (got, text)
    await still_works(small, nc, f"after-{name}")


async def test_headers_that_push_the_message_past_max_payload(small) -> None:
    """The payload alone fits (nats-py's own check passes); headers plus payload do not."""
    nc = small.nc
    event = ce.parse_http({**GOOD, "ce-id": "exact"}, b"\"" + b"x" * 10 + b"\"")
    out = small.publisher.prepare(event)
    room = MAX_PAYLOAD - max(len(wire.header_block(out.headers)), dead_letter_reserve("sap")) - len(out.payload)
    exact = b'"' + b"x" * (10 + room) + b'"'
    assert (await send(small, "/publish", {**GOOD, "ce-id": "exact"}, exact))[0] == 204
    msg = await nc.jetstream().get_last_msg("sap", "kyma.app.order.created.v1")
    assert ce.parse_structured(msg.data).id == "exact"
    status, text = await send(small, "/publish", {**GOOD, "ce-id": "exacu"}, exact[:-1] + b'x"')
    assert status == 413 and b"at most 8192, 215 of them kept for the headers of a dead-letter copy" in text
    await still_works(small, nc, "after-headers")


async def test_raw_header_bytes_that_are_not_utf8(small) -> None:
    nc = small.nc
    head = b"ce-specversion: 1.0\r\nce-type: order\xff.v1\r\nce-source: app\r\nce-id: 1\r\n" \
           b"content-type: application/json\r\n"
    assert await raw_post(small, "/publish", head, b"{}") == 400
    await still_works(small, nc, "after-raw")


@pytest.mark.parametrize("doc,fragment", [
    ({"type": "\ud800.v1"}, b"lone surrogate"),
    ({"id": "a\nb"}, b"control character"),
    ({"data": {"k": "\udfff"}}, b"not valid Unicode"),
    ({"data": "x\ud800", "datacontenttype": "text/plain"}, b"not valid Unicode"),
    ({"type": "t." * 3000 + "v1"}, b"at most 8192"),
])
async def test_structured_requests(small, doc, fragment) -> None:
    nc = small.nc
    event = {"specversion": "1.0", "type": "order.created.v1", "source": "app", "id": "s1",
             "datacontenttype": "application/json", "data": {"a": 1}, **doc}
    # ensure_ascii keeps lone surrogates as \\u escapes, which is how a client sends them
    status, text = await send(small, "/publish", {"content-type": "application/cloudevents+json"},
                              json.dumps(event).encode())
    assert 400 <= status < 500 and fragment in text, (status, text)
    await still_works(small, nc, "after-structured")


async def test_deeply_nested_json_is_a_400_not_a_crash(small) -> None:
    nc = small.nc
    deep = b"[" * 30000 + b"]" * 30000
    assert (await send(small, "/publish", {"content-type": "application/cloudevents+json"}, deep))[0] == 400
    assert (await send(small, "/publish", GOOD, deep))[0] == 400
    legacy = b'{"event-type":"o.c","event-type-version":"v1","event-time":"2020-01-01T00:00:00Z","data":' \
             + deep + b"}"
    status, text = await send(small, "/app/v1/events", {"content-type": "application/json"}, legacy)
    assert status == 400 and json.loads(text)["type"] == "bad_payload_syntax"
    await still_works(small, nc, "after-deep")


LEGACY = {"event-type": "order.created", "event-type-version": "v1", "event-time": "2020-09-28T14:47:16.491Z",
          "data": {"a": 1}}


@pytest.mark.parametrize("path,changes,status,kind", [
    ("/a%00b/v1/events", {}, 400, "bad_payload_syntax"),
    ("/a%0D%0Ab/v1/events", {}, 400, "bad_payload_syntax"),
    ("/app/v1/events", {"event-type": {"not": "a string"}}, 400, "validation_violation"),
    ("/app/v1/events", {"event-type": "o." * 3000 + "c"}, 413, "request_body_too_large"),
    ("/app/v1/events", {"data": "x" * 9000}, 413, "request_body_too_large"),
    ("/app/v1/events", {"data": "\ud800"}, 400, "bad_payload_syntax"),
])
async def test_legacy_requests(small, path, changes, status, kind) -> None:
    nc = small.nc
    before = (await nc.jetstream().stream_info("sap")).state.messages
    got, text = await send(small, path, {"content-type": "application/json"}, json.dumps({**LEGACY, **changes}).encode())
    assert got == status and json.loads(text)["type"] == kind, (got, text)
    # refused before the first copy: nothing stored, nothing to roll back
    assert (await nc.jetstream().stream_info("sap")).state.messages == before
    await still_works(small, nc, "after-legacy")


async def test_an_id_naming_a_nats_header_does_not_hide_the_dedupe_id(make_service) -> None:
    """nats-server reads a header at its first occurrence in the block, value or not."""
    svc = await make_service(fast_config(stream=LIMITS, dedupe=True), run_dispatcher=False)
    for _ in range(2):
        assert (await send(svc, "/publish", {**GOOD, "ce-id": "Nats-Msg-Id", "ce-type": "Nats-Msg-Id.v1"},
                           b"{}"))[0] == 204
    assert (await svc.nc.jetstream().stream_info("sap")).state.messages == 1


async def test_subject_at_and_past_the_control_line(make_service) -> None:
    """With the default 1 MiB max_payload the control line is the limit: the longest subject
    the proxy lets through is stored, one byte more is a 400, and the connection stays."""
    svc = await make_service(fast_config(stream=LIMITS), run_dispatcher=False)
    nc = svc.nc

    def subject_for(event_type: str) -> str:
        return f"kyma.app.{event_type}"

    longest = None
    for n in range(3900, 4100):
        event_type = "t" * n + ".v1"
        try:
            svc.publisher.prepare(ce.parse_http({**GOOD, "ce-type": event_type}, b"{}"))
        except wire.Refused:
            break
        longest = event_type
    assert longest is not None
    status, _ = await send(svc, "/publish", {**GOOD, "ce-type": longest, "ce-id": "longest"}, b"{}")
    assert status == 204
    msg = await nc.jetstream().get_last_msg("sap", subject_for(longest))
    assert ce.parse_structured(msg.data).id == "longest"
    status, text = await send(svc, "/publish", {**GOOD, "ce-type": "t" + longest}, b"{}")
    assert status == 400 and b"control line" in text
    await still_works(svc, nc, "after-control-line")


async def test_headers_over_what_jetstream_stores(make_service) -> None:
    """JetStream refuses a header block over 64 KiB (10097); the proxy says why, as a 413."""
    svc = await make_service(fast_config(stream=LIMITS, max_request_size=400_000), run_dispatcher=False)
    nc = svc.nc
    doc = {"specversion": "1.0", "type": "order.created.v1", "source": "app", "id": "i" * 70_000, "data": {}}
    status, text = await send(svc, "/publish", {"content-type": "application/cloudevents+json"},
                              json.dumps(doc).encode())
    assert status == 413 and b"at most 65535" in text
    await still_works(svc, nc, "after-big-headers")


async def test_dead_letter_copy_of_the_largest_event_still_fits(server_kind, tmp_path, sink) -> None:
    """An event the proxy let through at the very limit, whose delivery fails for good: its
    dead-letter copy carries more headers than the original, so it is sent with fewer of them
    rather than over max_payload (which the server would answer with -ERR and a closed
    connection, shared by every part of the eventing)."""
    from .test_dispatch import manifest, ready

    conf = tmp_path / "small.conf"
    conf.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    proc = start_nats(server_kind, tmp_path, "-c", str(conf))
    svc = EventingService(proc.url, fast_config(), resync_interval=2.0)
    try:
        await svc.start()
        await svc.wait_synced()
        sink.mode = "fail"
        sub = manifest(sink=sink.url, types=["order.created.v1"], source="app",
                       config={"maxDeliveryAttempts": "1", "backoffDelay": "50ms"})
        await svc.store.apply(sub)
        await ready(svc, sub)
        nc = svc.nc
        headers = {**GOOD, "ce-id": "big"}
        out = svc.publisher.prepare(ce.parse_http(headers, b'"x"'))
        room = MAX_PAYLOAD - max(len(wire.header_block(out.headers)), dead_letter_reserve("sap")) - len(out.payload)
        assert dead_letter_reserve("sap") > len(wire.header_block(out.headers))  # the case that matters
        assert (await send(svc, "/publish", headers, b'"' + b"x" * (1 + room) + b'"'))[0] == 204
        js = nc.jetstream()

        async def dead_lettered() -> bool:
            return (await js.stream_info("sap-dlq")).state.messages == 1
        await wait_until(dead_lettered, what="the dead-letter copy")
        letter = await js.get_msg("sap-dlq", 1)
        assert json.loads(letter.data)["id"] == "big"
        assert letter.headers["Eventing-Dead-Letter-Reason"] and "Eventing-Last-Error" not in letter.headers
        assert svc.nc is nc and nc.stats["reconnects"] == 0
    finally:
        await svc.stop()
        proc.stop()
