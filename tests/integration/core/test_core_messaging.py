"""Core messaging through `pyjetstream server` with the real nats-py client over real sockets:
pub/sub, wildcards, queue groups, request/reply, no responders, headers, UNSUB with max,
echo, max_payload. One server process is shared by the whole module."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import MaxPayloadError, NoRespondersError
from servers import RawClient, ServerProc, flushed, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> ServerProc:
    s = start_server("pyjetstream", tmp_path_factory.mktemp("core"), config="max_payload: 4096\n")
    yield s
    s.stop()


async def collect(sub, n: int, timeout: float = 5.0) -> list:
    return [await sub.next_msg(timeout=timeout) for _ in range(n)]


async def test_pub_sub_and_wildcards(srv: ServerProc) -> None:
    nc = await nats.connect(srv.url)
    try:
        exact = await nc.subscribe("orders.eu.created")
        star = await nc.subscribe("orders.*.created")
        full = await nc.subscribe("orders.>")
        other = await nc.subscribe("orders.*")
        await nc.publish("orders.eu.created", b"1")
        await nc.publish("orders.us.created", b"2")
        await nc.publish("orders.us.deleted.soft", b"3")
        await flushed(nc)
        assert [m.data for m in await collect(exact, 1)] == [b"1"]
        assert [m.data for m in await collect(star, 2)] == [b"1", b"2"]
        assert [(m.subject, m.data) for m in await collect(full, 3)] == [
            ("orders.eu.created", b"1"), ("orders.us.created", b"2"), ("orders.us.deleted.soft", b"3")]
        with pytest.raises(nats.errors.TimeoutError):
            await other.next_msg(timeout=0.2)  # `*` is one token: none of the three match
    finally:
        await nc.close()


async def test_queue_group_delivers_each_message_to_one_member(srv: ServerProc) -> None:
    members = [await nats.connect(srv.url) for _ in range(3)]
    pub = await nats.connect(srv.url)
    got: list[tuple[int, bytes]] = []
    try:
        for i, nc in enumerate(members):
            async def cb(msg, i=i):
                got.append((i, msg.data))
            await nc.subscribe("jobs", queue="workers", cb=cb)
            await flushed(nc)
        plain = await pub.subscribe("jobs")
        n = 300
        for k in range(n):
            await pub.publish("jobs", str(k).encode())
        await flushed(pub)
        assert len(await collect(plain, n)) == n  # plain subscribers all get a copy
        deadline = asyncio.get_running_loop().time() + 5
        while len(got) < n and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for nc in members:
            await flushed(nc)
        assert sorted(int(d) for _, d in got) == list(range(n))  # each exactly once
    finally:
        for nc in [*members, pub]:
            await nc.close()


async def test_request_reply_and_no_responders(srv: ServerProc) -> None:
    svc = await nats.connect(srv.url)
    cli = await nats.connect(srv.url)
    try:
        async def handler(msg):
            await msg.respond(b"echo:" + msg.data)
        await svc.subscribe("svc.echo", cb=handler)
        await flushed(svc)
        reply = await cli.request("svc.echo", b"hi", timeout=5)
        assert reply.data == b"echo:hi"
        with pytest.raises(NoRespondersError):
            await cli.request("svc.nobody", b"x", timeout=5)
    finally:
        await svc.close()
        await cli.close()


async def test_headers_round_trip(srv: ServerProc) -> None:
    nc = await nats.connect(srv.url)
    try:
        sub = await nc.subscribe("hdr")
        await nc.publish("hdr", b"body", headers={"Trace-Id": "abc", "X-Empty": ""})
        msg = (await collect(sub, 1))[0]
        assert msg.data == b"body"
        assert msg.headers["Trace-Id"] == "abc"
    finally:
        await nc.close()


async def test_unsubscribe_with_max(srv: ServerProc) -> None:
    nc = await nats.connect(srv.url)
    try:
        sub = await nc.subscribe("limited")
        await sub.unsubscribe(limit=2)
        for k in range(5):
            await nc.publish("limited", str(k).encode())
        await flushed(nc)
        probe = await nc.subscribe("limited.done")
        await nc.publish("limited.done", b"")
        await collect(probe, 1)  # everything published before has been routed
        assert [m.data for m in await collect(sub, 2)] == [b"0", b"1"]
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.2)
    finally:
        await nc.close()


async def test_echo_false_skips_own_messages(srv: ServerProc) -> None:
    quiet = await nats.connect(srv.url, no_echo=True)
    other = await nats.connect(srv.url)
    try:
        own = await quiet.subscribe("echo.test")
        theirs = await other.subscribe("echo.test")
        await flushed(quiet)
        await flushed(other)
        await quiet.publish("echo.test", b"from-quiet")
        await other.publish("echo.test", b"from-other")
        await flushed(quiet)
        await flushed(other)
        assert sorted(m.data for m in await collect(theirs, 2)) == [b"from-other", b"from-quiet"]
        assert [m.data for m in await collect(own, 1)] == [b"from-other"]
        with pytest.raises(nats.errors.TimeoutError):
            await own.next_msg(timeout=0.2)
    finally:
        await quiet.close()
        await other.close()


async def test_max_payload_client_refuses_and_server_rejects(srv: ServerProc) -> None:
    nc = await nats.connect(srv.url)
    try:
        assert nc.max_payload == 4096  # from the server's INFO
        with pytest.raises(MaxPayloadError):
            await nc.publish("big", b"x" * 4097)
        sub = await nc.subscribe("big")
        await nc.publish("big", b"x" * 4096)
        assert len((await collect(sub, 1))[0].data) == 4096
    finally:
        await nc.close()
    raw = RawClient(srv.port)
    try:
        assert raw.info["max_payload"] == 4096
        raw.send(b"CONNECT {\"verbose\":false}\r\nPUB big 4097\r\n")
        assert raw.read_until_closed() == b"-ERR 'Maximum Payload Violation'\r\n"
    finally:
        raw.close()


async def test_many_messages_in_order(srv: ServerProc) -> None:
    pub = await nats.connect(srv.url)
    sub_nc = await nats.connect(srv.url)
    try:
        sub = await sub_nc.subscribe("seq", pending_msgs_limit=20000)
        await flushed(sub_nc)
        n = 5000
        for k in range(n):
            await pub.publish("seq", b"%d" % k)
        await flushed(pub)
        assert [int(m.data) for m in await collect(sub, n)] == list(range(n))
    finally:
        await pub.close()
        await sub_nc.close()
