"""Nothing the server publishes is an API call, whatever subject a client chose for it: push
consumers' deliver subjects, stream republish destinations, mirror/source origins (external
prefixes) and KV buckets built on them are refused when they point into `$JS.API.>`,
`$JS.ACK.>`, `$JS.FC.>` or `$SYS.>`; and a server-published message that reaches such a
subject anyway (a configuration stored before these checks, a republish destination chosen
per message) is never executed. Real nats-py clients; nats-server 2.9.10 shows where it is
more lenient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig, ExternalStream, KeyValueConfig, RePublish, StreamSource
from servers import KINDS, flushed, have_nats_server, start_in_process, start_server

from pyjetstream.server.server import Server

RESERVED = ["$JS.API.STREAM.DELETE.S", "$JS.API.CONSUMER.CREATE.S", "$JS.ACK.S.C.1.1.1.0.0",
            "$JS.FC.S.C.x", "$SYS.REQ.SERVER.PING"]
# near misses: not the reserved namespaces
FREE = ["$JS.EVENT.custom", "$JS.APIX.x", "$JS.API", "$SYSTEM.x", "_INBOX.x"]


def _kinds() -> list[str]:
    return [k for k in KINDS if k == "pyjetstream" or have_nats_server()]


@pytest.fixture(params=_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


async def _api_error(coro: object) -> tuple[int, str]:
    # 10052 (invalid stream config) is a 500 in nats-server's table, 10112 a 400
    with pytest.raises(nats.js.errors.APIError) as e:
        await coro  # type: ignore[misc]
    return e.value.err_code, e.value.description


# ------------------------------------------------------------------ deliver subjects
@pytest.mark.parametrize("deliver", RESERVED)
def test_push_consumer_deliver_subject_cannot_be_reserved(kind: str, tmp_path: Path, deliver: str) -> None:
    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.publish("s.1", b"")  # an empty body: a valid request if it were executed
        create = js.add_consumer("S", ConsumerConfig(durable_name="P", deliver_subject=deliver, ack_policy="none"))
        if kind == "pyjetstream":
            assert await _api_error(create) == (10112, "invalid push consumer deliver subject")
            # nor by updating a consumer that delivers elsewhere
            await js.add_consumer("S", ConsumerConfig(durable_name="Q", deliver_subject="_INBOX.q",
                                                      ack_policy="none"))
            update = js.add_consumer("S", ConsumerConfig(durable_name="Q", deliver_subject=deliver,
                                                         ack_policy="none"))
            assert await _api_error(update) == (10112, "invalid push consumer deliver subject")
            assert (await js.consumer_info("S", "Q")).config.deliver_subject == "_INBOX.q"
        else:
            await create  # nats-server 2.9.10 takes it
        await nc.close()

    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


@pytest.mark.parametrize("deliver", FREE)
def test_near_miss_deliver_subjects_are_fine(tmp_path: Path, deliver: str) -> None:
    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        sub = await nc.subscribe(deliver)
        await js.add_consumer("S", ConsumerConfig(durable_name="P", deliver_subject=deliver, ack_policy="none"))
        await js.publish("s.1", b"hi")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"hi"
        await nc.close()

    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ republish
@pytest.mark.parametrize("dest", ["$JS.API.STREAM.DELETE.S", "$JS.API.>", "$JS.>", "$JS.ACK.>", "$SYS.x",
                                  "$JS.FC.x", "$JS.{{wildcard(1)}}.STREAM.DELETE.S", "$JS.$1.>"])
def test_republish_destination_cannot_be_reserved(kind: str, tmp_path: Path, dest: str) -> None:
    # a source the destination's wildcards fit
    ref = "wildcard" in dest or "$1" in dest
    src = ("r.*.>" if ref else "r.>") if dest.endswith(">") else ("r.*" if ref else "r.x")

    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        add = js.add_stream(name="R", subjects=["r.>"], republish=RePublish(src=src, dest=dest))
        if kind == "pyjetstream":
            code, text = await _api_error(add)
            assert code == 10052
            assert "republish destination" in text and "$JS.API.>" in text
        else:
            await add  # nats-server 2.9.10 takes it
        await nc.close()

    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


def test_kv_bucket_republish_cannot_be_reserved(tmp_path: Path) -> None:
    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        code, _ = await _api_error(js.create_key_value(KeyValueConfig(
            bucket="B", republish=RePublish(src=">", dest="$JS.API.STREAM.PURGE.X"))))
        assert code == 10052
        # a bucket republishing elsewhere works, and its watchers deliver to their inboxes
        kv = await js.create_key_value(KeyValueConfig(bucket="C", republish=RePublish(src=">", dest="copies.>")))
        sub = await nc.subscribe("copies.>")
        await kv.put("k", b"v")
        assert (await sub.next_msg(timeout=5)).data == b"v"
        await nc.close()

    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


def test_republish_chosen_per_message_never_reaches_the_api(tmp_path: Path) -> None:
    """dest `{{wildcard(1)}}.>` lets the publisher pick the first token: `r.$JS.API.STREAM.DELETE.S`
    would be republished to `$JS.API.STREAM.DELETE.S`. Accepted (a publisher of r.ok.x gets
    ok.x), but such copies are dropped, and nothing would execute them anyway."""
    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.publish("s.1", b"keep")
        await js.add_stream(name="R", subjects=["r.>"], republish=RePublish(src="r.*.>", dest="{{wildcard(1)}}.>"))
        spy = await nc.subscribe("$JS.API.>")
        ok = await nc.subscribe("ok.>")
        await js.publish("r.$JS.API.STREAM.DELETE.S", b"")
        await js.publish("r.ok.x", b"copy")
        assert (await ok.next_msg(timeout=5)).subject == "ok.x"
        await flushed(nc)
        assert spy.pending_msgs == 0
        await spy.unsubscribe()
        assert (await js.stream_info("S")).state.messages == 1
        assert (await js.stream_info("R")).state.messages == 2
        await nc.close()

    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ mirrors and sources
@pytest.mark.parametrize("external", [ExternalStream(api="$JS.API"), ExternalStream(api="$JS.x.API"),
                                      ExternalStream(api="$JS.other.API", deliver="$JS.API.x")])
def test_external_origins_are_refused(kind: str, tmp_path: Path, external: ExternalStream) -> None:
    async def run() -> None:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        code, text = await _api_error(js.add_stream(name="M", sources=[StreamSource(name="O", external=external)]))
        if kind == "pyjetstream":
            # sourcing from another account or domain is not supported at all
            assert (code, text) == (10052, "sourcing from another account or domain is not supported by this server")
        elif external.api == "$JS.API":
            assert code == 10021  # nats-server: api prefix overlaps $JS.API
        await nc.close()

    if kind == "nats-server" and external.api != "$JS.API":
        pytest.skip("nats-server takes these (the prefixes of another domain)")
    with start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js")) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ what arrives anyway
@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_in_process(tmp_path / "js")
    yield srv
    await srv.shutdown()


async def test_server_published_messages_are_never_executed(server: Server) -> None:
    """Below every configuration check: a message the server itself publishes (a delivery, a
    republished copy, from a configuration stored before these checks) to an API, ack or
    flow-control subject reaches client subscribers but no handler."""
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}")
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s.>"])
    for i in range(3):
        await js.publish(f"s.{i}", b"x")
    await js.add_consumer("S", ConsumerConfig(durable_name="C", ack_policy="explicit"))
    pull = await js.pull_subscribe_bind("C", "S")
    [msg] = await pull.fetch(1, timeout=5)
    spy = await nc.subscribe("$JS.>")
    await flushed(nc)
    account = server.global_account
    # executed, these would delete, purge, add a consumer and ack the pending message
    for subject, body in [("$JS.API.STREAM.DELETE.S", b""), ("$JS.API.STREAM.PURGE.S", b"{}"),
                          ("$JS.API.CONSUMER.DURABLE.CREATE.S.X",
                           b'{"stream_name":"S","config":{"durable_name":"X","ack_policy":"explicit"}}'),
                          (msg.reply, b"+ACK"), (msg.reply, b"+TERM")]:
        server.publish(account, subject, "_INBOX.answer", None, body)
    await flushed(nc)
    assert spy.pending_msgs == 5
    info = await js.stream_info("S")
    assert info.state.messages == 3
    assert [c.name for c in await js.consumers_info("S")] == ["C"]
    assert (await js.consumer_info("S", "C")).num_ack_pending == 1
    await nc.close()


async def test_every_handler_in_the_acting_subjects_takes_client_messages_only(server: Server) -> None:
    """A subscriber added under $JS.API., $JS.ACK., $JS.FC. or $SYS. without asking for
    clients_only gets it anyway; elsewhere the caller decides."""
    seen: list[tuple[str, bool]] = []

    def handler(sub: object, origin: object, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None:
        seen.append((subject, origin is not None))

    account = server.global_account
    for subject in ("$SYS.REQ.X", "$JS.API.FUTURE.>", "$JS.ACK.X.>", "$JS.FC.X.>", "other.x"):
        server.subscribe_internal(account, subject, handler)
    for subject in ("$SYS.REQ.X", "$JS.API.FUTURE.CALL", "$JS.ACK.X.1", "$JS.FC.X.1", "other.x"):
        server.publish(account, subject, "", None, b"")
    assert seen == [("other.x", False)]
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}")
    for subject in ("$SYS.REQ.X", "$JS.API.FUTURE.CALL", "$JS.ACK.X.1", "$JS.FC.X.1"):
        await nc.publish(subject, b"")
    await flushed(nc)
    await nc.close()
    assert seen[1:] == [("$SYS.REQ.X", True), ("$JS.API.FUTURE.CALL", True), ("$JS.ACK.X.1", True),
                        ("$JS.FC.X.1", True)]
