"""`pyjetstream consumer ...` as subprocesses against a live server."""

from __future__ import annotations

import json

from conftest import LiveServer, run_cli


async def _orders(nc, n: int) -> None:
    js = nc.jetstream()
    await js.add_stream(name="ORDERS", subjects=["orders.>"])
    for i in range(1, n + 1):
        await js.publish("orders.new", f"order {i}".encode(), headers={"Seq": str(i)})


async def test_consumer_add_info_ls_report(server: LiveServer, nc) -> None:
    await _orders(nc, 4)
    res = await run_cli(server, "consumer", "add", "ORDERS", "PROC", "--filter", "orders.new", "--wait", "10s",
                        "--max-deliver", "5", "--description", "processor")
    assert res.rc == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith("Information for Consumer ORDERS > PROC created ")
    stripped = [ln.strip() for ln in lines]
    for expected in ("Pull Mode: true", "Filter Subject: orders.new", "Ack Policy: Explicit",
                     "Ack Wait: 10.00s", "Maximum Deliveries: 5", "Unprocessed Messages: 4"):
        assert expected in stripped
    info = await nc.jetstream().consumer_info("ORDERS", "PROC")
    assert info.config.durable_name == "PROC" and info.config.max_deliver == 5

    res = await run_cli(server, "consumer", "add", "ORDERS", "PUSH", "--target", "push.orders", "--deliver", "last")
    assert res.rc == 0, res.err
    assert "Delivery Subject: push.orders" in [ln.strip() for ln in res.out.splitlines()]
    assert "Deliver Policy: Last" in [ln.strip() for ln in res.out.splitlines()]

    res = await run_cli(server, "consumer", "ls", "ORDERS")
    assert res.rc == 0 and "Consumers" in res.out
    rows = [[x.strip() for x in ln.strip("│").split("│")] for ln in res.out.splitlines()
            if ln.startswith("│ P")]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
        ("PROC", "processor", "0", "4", "never"), ("PUSH", "", "0", "1", "never")]
    assert (await run_cli(server, "consumer", "ls", "ORDERS", "--names")).out == "PROC\nPUSH\n"
    names = [i["name"] for i in json.loads((await run_cli(server, "consumer", "ls", "ORDERS", "--json")).out)]
    assert names == ["PROC", "PUSH"]

    res = await run_cli(server, "consumer", "report", "ORDERS")
    assert res.rc == 0 and "Consumer report for ORDERS with 2 consumers" in res.out
    row = next(ln for ln in res.out.splitlines() if ln.startswith("│ PUSH"))
    assert [x.strip() for x in row.strip("│").split("│")][:3] == ["PUSH", "Push", "Explicit"]


async def test_consumer_next_acks_and_naks(server: LiveServer, nc) -> None:
    await _orders(nc, 3)
    await nc.jetstream().add_consumer("ORDERS", durable_name="PULL", ack_policy="explicit")
    res = await run_cli(server, "consumer", "next", "ORDERS", "PULL")
    assert res.rc == 0, res.err
    assert "subj: orders.new / tries: 1 / cons seq: 1 / str seq: 1 / pending: 2" in res.out
    assert "  Seq: 1" in res.out and "order 1" in res.out and res.out.rstrip().endswith("Acknowledged message")

    res = await run_cli(server, "consumer", "next", "ORDERS", "PULL", "--nak")
    assert res.rc == 0 and "str seq: 2" in res.out and "NaK'd message" in res.out
    # the nak'd message comes back, second try
    res = await run_cli(server, "consumer", "next", "ORDERS", "PULL", "--count", "2", "--raw")
    assert res.rc == 0
    assert sorted(res.out.split()) == sorted("order 2 order 3".split())
    info = await nc.jetstream().consumer_info("ORDERS", "PULL")
    # four deliveries for three messages: the nak caused exactly one redelivery
    assert (info.ack_floor.stream_seq, info.delivered.consumer_seq, info.num_ack_pending) == (3, 4, 0)

    res = await run_cli(server, "consumer", "next", "ORDERS", "PULL", "--timeout", "1")
    assert res.rc == 1 and "no message" in res.err


async def test_consumer_edit_rm_and_errors(server: LiveServer, nc, tmp_path) -> None:
    await _orders(nc, 1)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"durable_name": "FROMFILE", "ack_policy": "explicit", "max_ack_pending": 7}))
    res = await run_cli(server, "consumer", "add", "ORDERS", "--config", str(cfg), "--json")
    assert res.rc == 0, res.err
    assert json.loads(res.out)["config"]["max_ack_pending"] == 7

    res = await run_cli(server, "consumer", "edit", "ORDERS", "FROMFILE", "--description", "edited", "-f")
    assert res.rc == 0, res.err
    assert '  description: null -> "edited"' in res.out
    assert (await nc.jetstream().consumer_info("ORDERS", "FROMFILE")).config.description == "edited"

    res = await run_cli(server, "consumer", "rm", "ORDERS", "FROMFILE")
    assert res.rc == 1 and "confirmation" in res.err
    res = await run_cli(server, "consumer", "rm", "ORDERS", "FROMFILE", "-f")
    assert res.rc == 0 and "was removed" in res.out
    res = await run_cli(server, "consumer", "info", "ORDERS", "FROMFILE")
    assert res.rc == 1
    assert res.err.strip() == ("pyjetstream: error: consumer ORDERS > FROMFILE: consumer not found "
                               "(err_code=10014, code=404)")
