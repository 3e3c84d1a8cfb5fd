"""`pub`, `sub`, `req`, `reply` as subprocesses against a live server, with a nats-py peer."""

from __future__ import annotations

import asyncio

from conftest import LiveServer, run_cli
from servers import flushed


async def test_pub_count_headers_and_templates(server: LiveServer, nc) -> None:
    got: list = []
    async def keep(m) -> None:
        got.append(m)

    sub = await nc.subscribe("orders.>", cb=keep)
    await flushed(nc)
    res = await run_cli(server, "pub", "orders.{{Count}}", "order {{Count}}", "--count", "3",
                        "-H", "Trace:t-{{Count}}", "-H", "Kind:test")
    assert res.rc == 0, res.err
    assert res.out.splitlines() == [f'Published 7 bytes to "orders.{i}"' for i in (1, 2, 3)]
    for _ in range(100):
        if len(got) == 3:
            break
        await asyncio.sleep(0.02)
    assert [(m.subject, m.data, m.headers["Trace"], m.headers["Kind"]) for m in got] == [
        (f"orders.{i}", f"order {i}".encode(), f"t-{i}", "test") for i in (1, 2, 3)]
    await sub.unsubscribe()


async def test_pub_body_from_stdin_and_jetstream_ack(server: LiveServer, nc) -> None:
    await nc.jetstream().add_stream(name="S", subjects=["s.>"])
    res = await run_cli(server, "pub", "s.one", "-J", stdin=b"from stdin")
    assert res.rc == 0, res.err
    assert res.out.strip() == 'Published 10 bytes to "s.one" (stream S seq 1)'
    msg = await nc.jetstream().get_msg("S", 1)
    assert msg.data == b"from stdin"
    res = await run_cli(server, "pub", "nowhere", "x", "-J")
    assert res.rc == 1 and "no stream stores subject nowhere" in res.err


async def test_sub_prints_headers_and_exits_after_count(server: LiveServer, nc, start_cli) -> None:
    proc = await start_cli(server, "sub", "greet.*", "--count", "2")
    await proc.wait_for_line("Subscribing on greet.*")
    await nc.publish("greet.a", b"hello", headers={"Lang": "en"})
    await nc.publish("greet.b", b"hallo", reply="answers")
    res = await proc.finish()
    assert res.rc == 0, res.err
    assert res.out == (
        "Subscribing on greet.*\n"
        '[#1] Received on "greet.a"\nLang: en\n\nhello\n\n'
        '[#2] Received on "greet.b" with reply "answers"\n\nhallo\n\n'
    )


async def test_sub_queue_group_shares_messages(server: LiveServer, nc, start_cli) -> None:
    subs = [await start_cli(server, "sub", "work", "--queue", "workers") for _ in range(2)]
    for proc in subs:
        await proc.wait_for_line("Subscribing on work in group workers")
    for i in range(20):
        await nc.publish("work", f"job {i}".encode())
    await flushed(nc)
    seen: list[str] = []

    async def collect(proc) -> None:
        while True:
            raw = await proc.proc.stdout.readline()
            if not raw:
                return
            if raw.startswith(b"job "):
                seen.append(raw.decode().strip())

    async def until_all() -> None:
        while len(seen) < 20:
            await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(collect(p)) for p in subs]
    try:
        await asyncio.wait_for(until_all(), 15)
    finally:
        for t in tasks:
            t.cancel()
    assert sorted(seen) == sorted(f"job {i}" for i in range(20))  # each message exactly once, no copies


async def test_sub_acks_jetstream_messages(server: LiveServer, nc, start_cli) -> None:
    js = nc.jetstream()
    await js.add_stream(name="JS", subjects=["js.>"])
    await js.publish("js.a", b"one")
    await js.publish("js.a", b"two")
    await js.add_consumer("JS", durable_name="PUSH", deliver_subject="push.deliver", ack_policy="explicit")
    proc = await start_cli(server, "sub", "push.deliver", "--count", "2", "--ack")
    res = await proc.finish()
    assert res.rc == 0, res.err
    assert res.out.startswith("Subscribing on push.deliver with acknowledgement of JetStream messages\n")
    assert "[#1] Received JetStream message: stream: JS seq: 1 / pending: 1 / subject: js.a / time: " in res.out
    assert "[#2] Received JetStream message: stream: JS seq: 2 / pending: 0 / subject: js.a" in res.out
    info = await js.consumer_info("JS", "PUSH")
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == 2


async def test_req_and_reply(server: LiveServer, nc, start_cli) -> None:
    replier = await start_cli(server, "reply", "svc.echo", "you said {{Request}} (#{{Count}})", "--count", "2")
    await replier.wait_for_line('Listening on "svc.echo"')
    res = await run_cli(server, "req", "svc.echo", "ping {{Count}}", "--count", "2")
    assert res.rc == 0, res.err
    lines = res.out.splitlines()
    assert lines[0] == 'Sending request on "svc.echo"'
    assert lines[1].startswith("Received with rtt ")
    assert "you said ping 1 (#1)" in lines and "you said ping 2 (#2)" in lines
    done = await replier.finish()
    assert done.rc == 0
    assert '[#1] Received on "svc.echo" with reply "_INBOX.' in done.out


async def test_req_without_responders_fails(server: LiveServer) -> None:
    res = await run_cli(server, "req", "nobody.home", "hi", "--timeout", "1")
    assert res.rc == 1
    assert res.err.strip() == "pyjetstream: error: no responders are available for nobody.home"
