"""`pyjetstream kv ...` as subprocesses against a live server."""

from __future__ import annotations

import json

from conftest import LiveServer, run_cli


async def test_kv_lifecycle(server: LiveServer, nc) -> None:
    res = await run_cli(server, "kv", "add", "CFG", "--history", "5", "--description", "settings")
    assert res.rc == 0, res.err
    lines = [ln.strip() for ln in res.out.splitlines()]
    assert res.out.startswith("Information for Key-Value Store Bucket CFG created ")
    assert "History Kept: 5" in lines and "Description: settings" in lines

    assert (await run_cli(server, "kv", "put", "CFG", "color", "blue")).out == "blue\n"
    assert (await run_cli(server, "kv", "put", "CFG", "color", "red")).rc == 0
    assert (await run_cli(server, "kv", "put", "CFG", "size", stdin=b"XL")).out == "XL\n"

    kv = await nc.jetstream().key_value("CFG")
    assert (await kv.get("color")).value == b"red"

    res = await run_cli(server, "kv", "get", "CFG", "color")
    head, _, rest = res.out.partition("\n")
    assert res.rc == 0 and head.startswith("CFG > color revision: 2 created @ 20") and rest == "\nred\n"
    res = await run_cli(server, "kv", "get", "CFG", "color", "--raw")
    assert res.out == "red\n"
    res = await run_cli(server, "kv", "get", "CFG", "color", "--json")
    assert json.loads(res.out) == {"bucket": "CFG", "key": "color", "revision": 2, "value": "red"}

    res = await run_cli(server, "kv", "ls", "CFG")
    assert res.out == "color\nsize\n"
    res = await run_cli(server, "kv", "ls")
    assert "Key-Value Buckets" in res.out
    row = next(ln for ln in res.out.splitlines() if ln.startswith("│ CFG"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[0:2] == ["CFG", "settings"] and cells[4] == "3"
    assert (await run_cli(server, "kv", "ls", "--names")).out == "CFG\n"

    res = await run_cli(server, "kv", "del", "CFG", "color")
    assert res.rc == 1 and "confirmation" in res.err
    res = await run_cli(server, "kv", "del", "CFG", "color", "-f")
    assert res.rc == 0
    res = await run_cli(server, "kv", "get", "CFG", "color")
    assert res.rc == 1 and res.err.strip() == "pyjetstream: error: key color not found in bucket CFG"

    res = await run_cli(server, "kv", "history", "CFG", "color")
    assert res.rc == 0 and "History for CFG > color" in res.out
    ops = [[c.strip() for c in ln.strip("│").split("│")] for ln in res.out.splitlines()
           if ln.startswith("│ color")]
    assert [(o[1], o[2], o[5]) for o in ops] == [("1", "PUT", "blue"), ("2", "PUT", "red"), ("4", "DEL", "")]

    res = await run_cli(server, "kv", "rm", "CFG", "-f")
    assert res.rc == 0
    res = await run_cli(server, "kv", "info", "CFG")
    assert res.rc == 1 and "bucket CFG not found" in res.err


async def test_kv_watch_prints_updates(server: LiveServer, nc, start_cli) -> None:
    kv = await nc.jetstream().create_key_value(bucket="W")
    await kv.put("a", b"1")
    watch = await start_cli(server, "kv", "watch", "W", "--count", "3")
    await watch.wait_for_line("Watching W > >")
    await watch.wait_for_line("PUT W > a: 1")  # the current value comes first
    await kv.put("b", b"2")
    await kv.delete("a")
    res = await watch.finish()
    assert res.rc == 0, res.err
    updates = [ln.split("] ", 1)[1] for ln in res.out.splitlines() if ln.startswith("[")]
    assert updates == ["PUT W > a: 1", "PUT W > b: 2", "DEL W > a"]


async def test_kv_missing_bucket(server: LiveServer) -> None:
    res = await run_cli(server, "kv", "get", "NOPE", "k")
    assert res.rc == 1 and res.err.strip() == "pyjetstream: error: bucket NOPE not found"
