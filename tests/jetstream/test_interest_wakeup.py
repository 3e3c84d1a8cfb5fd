"""A push consumer created before its subscriber (nats-py's order: create, then SUB) starts
delivering when the SUB arrives, not when its interest re-check timer next fires.

The re-check timer is set to an hour here, so only the subscription notification can deliver
within the tests' timeouts. The nats.py suite's `test_ephemeral_subscribe` failed under load
without it: a second consumer's subscriber got nothing while the first read and acked ten.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig, StreamConfig
from servers import flushed

from pyjetstream.jetstream import consumer_runner
from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server

HOUR_NS = 3600 * 10**9


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # -> Server
    monkeypatch.setattr(consumer_runner, "INTEREST_RECHECK_MIN_NS", HOUR_NS)
    monkeypatch.setattr(consumer_runner, "INTEREST_RECHECK_NS", HOUR_NS)
    srv = Server(ServerOptions(host="127.0.0.1", port=0, jetstream=JetStreamOptions(
        enabled=True, store_dir=str(tmp_path / "js"))))
    await srv.start()
    yield srv
    await srv.shutdown()


@pytest.fixture
async def nc(server: Server):  # -> nats.NATS
    conn = await nats.connect(f"nats://127.0.0.1:{server.port}")
    yield conn
    await conn.close()


async def _stream_with(nc: nats.NATS, n: int) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"], storage="memory"))
    for i in range(n):
        await js.publish(f"s.{i}", b"x")


@pytest.mark.parametrize("sub_subject", ["deliver.a", "deliver.*", "deliver.>", ">"])
async def test_subscriber_arriving_after_create_gets_the_backlog(nc: nats.NATS, sub_subject: str) -> None:
    await _stream_with(nc, 3)
    js = nc.jetstream()
    await js.add_consumer("S", ConsumerConfig(durable_name="D", deliver_subject="deliver.a"))
    await flushed(nc)  # the consumer has looked for a subscriber and found none
    sub = await nc.subscribe(sub_subject)
    got = [(await sub.next_msg(timeout=5)).subject for _ in range(3)]
    assert got == ["s.0", "s.1", "s.2"]


async def test_nats_py_ephemeral_subscribers_both_get_everything(nc: nats.NATS) -> None:
    await _stream_with(nc, 10)
    js = nc.jetstream()
    sub1 = await js.subscribe("s.>")
    sub2 = await js.subscribe("s.>")
    for sub in (sub1, sub2):
        for _ in range(10):
            await (await sub.next_msg(timeout=5)).ack_sync()


async def test_a_subscriber_elsewhere_does_not_wake_it(server: Server, nc: nats.NATS) -> None:
    await _stream_with(nc, 1)
    js = nc.jetstream()
    await js.add_consumer("S", ConsumerConfig(durable_name="D", deliver_subject="deliver.a"))
    other = await nc.subscribe("deliver.b")
    await flushed(nc)
    info = await js.consumer_info("S", "D")
    assert (info.push_bound, info.delivered.stream_seq) == (None, 0)
    watchers = server.global_account.interest_watchers
    assert list(watchers) == ["deliver.a"]
    sub = await nc.subscribe("deliver.a")
    assert (await sub.next_msg(timeout=5)).subject == "s.0"
    assert watchers == {}  # only consumers without a subscriber watch
    await sub.unsubscribe()
    await other.unsubscribe()
    await js.delete_consumer("S", "D")
    await flushed(nc)
    assert watchers == {}  # a deleted consumer watches nothing


async def test_a_returning_subscriber_gets_what_came_while_it_was_away(server: Server, nc: nats.NATS) -> None:
    await _stream_with(nc, 1)
    js = nc.jetstream()
    await js.add_consumer("S", ConsumerConfig(durable_name="D", deliver_subject="deliver.a", ack_policy="none"))
    first = await nc.subscribe("deliver.a")
    assert (await first.next_msg(timeout=5)).subject == "s.0"
    await first.unsubscribe()
    await js.publish("s.later", b"y")  # delivered to nobody: the consumer pauses and watches
    await flushed(nc)
    assert list(server.global_account.interest_watchers) == ["deliver.a"]
    second = await nc.subscribe("deliver.a")
    assert (await second.next_msg(timeout=5)).subject == "s.later"


async def test_a_flood_of_wildcard_subs_costs_a_pass_over_the_watchers_per_loop_pass(
        server: Server, nc: nats.NATS, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile: a wildcard SUB could match any watched deliver subject. Looked up per SUB, 200
    idle push consumers and 4,000 wildcard SUBs in one write would be 800,000 matches in one
    go; the account looks them up once per loop pass instead."""
    from pyjetstream.server.client import Account

    scans = 0
    real = Account._check_watchers

    def counting(self: Account) -> None:
        nonlocal scans
        scans += 1
        real(self)

    monkeypatch.setattr(Account, "_check_watchers", counting)
    await _stream_with(nc, 1)
    js = nc.jetstream()
    for i in range(200):
        await js.add_consumer("S", ConsumerConfig(durable_name=f"D{i}", deliver_subject=f"idle.{i}"))
    assert len(server.global_account.interest_watchers) == 200
    await flushed(nc)
    scans = 0  # (each consumer's own `$JS.ACK.<stream>.<name>.>` subscription was one)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await reader.readline()  # INFO
    writer.write(b"CONNECT {\"verbose\":false}\r\n" + b"".join(b"SUB other.*.%d %d\r\n" % (i, i)
                                                               for i in range(4000)) + b"PING\r\n")
    assert await asyncio.wait_for(reader.readline(), 30) == b"PONG\r\n"
    assert 1 <= scans <= 40, scans
    assert len(server.global_account.interest_watchers) == 200  # none of them was matched
    writer.close()
