"""`pyjetstream stream ...` as a subprocess against a live server: output and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import LiveServer, run_cli


async def _publish(nc, subject: str, n: int, body: bytes = b"hello", headers=None) -> None:
    js = nc.jetstream()
    for _ in range(n):
        await js.publish(subject, body, headers=headers)


def _centered(title: str, inner: int) -> str:
    """The title row: centered, the odd space going to the right."""
    gap = inner - 2 - len(title)
    return f"│ {' ' * (gap // 2)}{title}{' ' * (gap - gap // 2)} │"


def _utc(text: str) -> str:
    # An independent reading of RFC 3339 (seconds precision is all the table shows).
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


async def test_stream_ls_snapshot_against_live_server(server: LiveServer, nc) -> None:
    js = nc.jetstream()
    await js.add_stream(name="ORDERS", subjects=["orders.>"], description="Order events")
    await js.add_stream(name="EMPTY", subjects=["empty"])
    await _publish(nc, "orders.new", 3)
    orders = json.loads((await nc.request("$JS.API.STREAM.INFO.ORDERS", b"")).data)
    empty = json.loads((await nc.request("$JS.API.STREAM.INFO.EMPTY", b"")).data)
    size = orders["state"]["bytes"]
    assert 0 < size < 1000
    last = orders["state"]["last_ts"]
    # Freeze "now" 5.8 s after the last message, whatever the server's clock said.
    whole, _, frac = last.rstrip("Z").partition(".")
    last_ns = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()) * 10**9 \
        + int((frac or "0").ljust(9, "0"))
    now_ns = last_ns + 5_800_000_000
    stamp = datetime.fromtimestamp(now_ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    now = f"{stamp}.{now_ns % 10**9:09d}Z"
    res = await run_cli(server, "stream", "ls", PYJETSTREAM_CLI_NOW=now, COLUMNS="100")
    assert res.rc == 0, res.err
    # The byte count depends on the server's per-record overhead; everything else is fixed.
    size_text = f"{size} B"
    w = max(4, len(size_text))
    bar, pad = "─" * (w - 4), " " * (w - 4)
    expected = (
        f"╭──────────────────────────────────────────────────────────────────────────────{bar}╮\n"
        f"{_centered('Streams', 74 + w)}\n"
        f"├────────┬──────────────┬─────────────────────┬──────────┬──────{bar}┬──────────────┤\n"
        f"│ Name   │ Description  │ Created             │ Messages │ Size {pad}│ Last Message │\n"
        f"├────────┼──────────────┼─────────────────────┼──────────┼──────{bar}┼──────────────┤\n"
        f"│ EMPTY  │              │ {_utc(empty['created'])} │ 0        │ {'0 B'.ljust(w)} │ never        │\n"
        f"│ ORDERS │ Order events │ {_utc(orders['created'])} │ 3        │ {size_text.ljust(w)} │ 5.80s        │\n"
        f"╰────────┴──────────────┴─────────────────────┴──────────┴──────{bar}┴──────────────╯\n"
    )
    assert res.out.rstrip("\n") + "\n" == expected


async def test_stream_ls_names_json_and_empty(server: LiveServer, nc) -> None:
    res = await run_cli(server, "stream", "ls")
    assert (res.rc, res.out) == (0, "No Streams defined\n")
    js = nc.jetstream()
    await js.add_stream(name="B", subjects=["b"])
    await js.add_stream(name="A", subjects=["a"])
    res = await run_cli(server, "stream", "ls", "--names")
    assert (res.rc, res.out) == (0, "A\nB\n")
    res = await run_cli(server, "stream", "ls", "--json")
    assert [i["config"]["name"] for i in json.loads(res.out)] == ["A", "B"]
    res = await run_cli(server, "stream", "ls", "--subject", "b")
    assert res.out.splitlines()[1].strip("│ ") == "Streams matching b"
    assert [ln.split("│")[1].strip() for ln in res.out.splitlines()[5:-1]] == ["B"]
    res = await run_cli(server, "stream", "state", "A")
    assert res.rc == 0 and res.out.startswith("State for Stream A created ") and "Limits:" not in res.out


async def test_stream_add_info_edit_purge_rm(server: LiveServer, nc, tmp_path) -> None:
    res = await run_cli(server, "stream", "add", "ORDERS", "--subjects", "orders.*,returns.*", "--storage",
                        "memory", "--max-msgs", "100", "--max-age", "1h", "--description", "orders")
    assert res.rc == 0, res.err
    assert "Stream ORDERS was created" in res.out
    assert "Subjects: orders.*, returns.*" in res.out
    await _publish(nc, "orders.a", 4)
    await _publish(nc, "orders.b", 2, headers={"Trace": "t1"})

    res = await run_cli(server, "stream", "info", "ORDERS")
    assert res.rc == 0
    lines = res.out.splitlines()
    assert lines[0].startswith("Information for Stream ORDERS created ")
    assert "               Storage: Memory" in lines
    assert "      Maximum Messages: 100" in lines
    assert "           Maximum Age: 1h0m0s" in lines
    assert "              Messages: 6" in lines
    assert "    Number of Subjects: 2" in lines

    res = await run_cli(server, "stream", "info", "ORDERS", "--json")
    info = json.loads(res.out)
    assert info["config"]["max_msgs"] == 100 and info["state"]["messages"] == 6

    # edit without -f and without a terminal refuses, and changes nothing
    res = await run_cli(server, "stream", "edit", "ORDERS", "--max-msgs", "50")
    assert res.rc == 1 and "-f" in res.err
    res = await run_cli(server, "stream", "edit", "ORDERS", "--max-msgs", "50", "-f")
    assert res.rc == 0, res.err
    assert "max_msgs: 100 -> 50" in res.out
    assert "Maximum Messages: 50" in res.out

    res = await run_cli(server, "stream", "get", "ORDERS", "5")
    assert res.rc == 0
    assert res.out.startswith("Item: ORDERS#5 received ")
    assert "on Subject orders.b" in res.out and "  Trace: t1" in res.out and res.out.rstrip().endswith("hello")

    # --keep before --subject: nats-server 2.9.10 mishandles `keep` once the tail was purged
    res = await run_cli(server, "stream", "purge", "ORDERS", "--keep", "4", "-f")
    assert res.rc == 0 and "Purged 2 messages" in res.out
    res = await run_cli(server, "stream", "purge", "ORDERS", "--subject", "orders.b", "-f")
    assert res.rc == 0 and "Purged 2 messages" in res.out
    assert "Messages: 2" in [ln.strip() for ln in res.out.splitlines()]

    res = await run_cli(server, "stream", "rm", "ORDERS")
    assert res.rc == 1 and "confirmation" in res.err
    res = await run_cli(server, "stream", "rm", "ORDERS", "-f")
    assert res.rc == 0 and "Stream ORDERS was removed" in res.out
    res = await run_cli(server, "stream", "info", "ORDERS")
    assert res.rc == 1
    assert res.err.strip() == "pyjetstream: error: stream ORDERS: stream not found (err_code=10059, code=404)"


async def test_stream_add_from_config_file_and_errors(server: LiveServer, nc, tmp_path) -> None:
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"name": "CFG", "subjects": ["cfg.>"], "max_msgs_per_subject": 5,
                               "storage": "file", "retention": "limits"}))
    res = await run_cli(server, "stream", "add", "--config", str(cfg), "--json")
    assert res.rc == 0, res.err
    assert json.loads(res.out)["config"]["max_msgs_per_subject"] == 5
    # overlapping subjects: the API's description and err_code, one line, exit 1
    res = await run_cli(server, "stream", "add", "OTHER", "--subjects", "cfg.>")
    assert res.rc == 1
    assert len(res.err.strip().splitlines()) == 1
    assert "subjects overlap with an existing stream" in res.err and "err_code=10065" in res.err


async def test_stream_purge_seq_view_report(server: LiveServer, nc) -> None:
    js = nc.jetstream()
    await js.add_stream(name="LOG", subjects=["log.>"])
    for i in range(1, 6):
        await js.publish(f"log.{i % 2}", f"line {i}".encode())
    res = await run_cli(server, "stream", "view", "LOG", "--page", "3")
    assert res.rc == 0
    assert [ln for ln in res.out.splitlines() if ln.startswith("line")] == ["line 1", "line 2", "line 3"]
    res = await run_cli(server, "stream", "view", "LOG", "--subject", "log.0", "--json")
    bodies = [json.loads(chunk)["seq"] for chunk in res.out.replace("}\n{", "}\x00{").split("\x00")]
    assert bodies == [2, 4]
    res = await run_cli(server, "stream", "purge", "LOG", "--seq", "3", "-f")
    assert res.rc == 0 and "Purged 2 messages" in res.out
    res = await run_cli(server, "stream", "report")
    assert res.rc == 0
    assert "Stream Report" in res.out
    row = next(ln for ln in res.out.splitlines() if ln.startswith("│ LOG"))
    assert [cell.strip() for cell in row.strip("│").split("│")][:4] == ["LOG", "File", "0", "3"]


async def test_unreachable_server_is_one_line_and_exit_1(server: LiveServer) -> None:
    from servers import free_port

    res = await run_cli(None, "-s", f"nats://127.0.0.1:{free_port()}", "stream", "ls")
    assert res.rc == 1
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyjetstream: error: could not connect to nats://127.0.0.1:")
    assert "connection refused" in lines[0]
