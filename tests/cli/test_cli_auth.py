"""The global connection options against servers that require credentials."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, start_server


async def test_user_password(server_name: str, tmp_path: Path) -> None:
    with start_server(server_name, tmp_path, "--user alice --pass s3cret") as live:
        res = await run_cli(live, "stream", "ls", "--user", "alice", "--password", "s3cret")
        assert (res.rc, res.out) == (0, "No Streams defined\n"), res.err
        # the options also work before the command name
        res = await run_cli(live, "--user", "alice", "--password", "s3cret", "stream", "ls", "--names")
        assert (res.rc, res.out) == (0, ""), res.err
        res = await run_cli(live, "stream", "ls", "--user", "alice", "--password", "wrong")
        assert res.rc == 1 and res.out == ""
        assert res.err.strip() == f"pyjetstream: error: could not connect to {live.url}: authorization violation"
        res = await run_cli(live, "stream", "ls", NATS_USER="alice", NATS_PASSWORD="s3cret")
        assert res.rc == 0, res.err


async def test_token(server_name: str, tmp_path: Path) -> None:
    with start_server(server_name, tmp_path, "--auth tok123") as live:
        res = await run_cli(live, "pub", "x", "hi", "--token", "tok123")
        assert (res.rc, res.out) == (0, 'Published 2 bytes to "x"\n'), res.err
        res = await run_cli(live, "pub", "x", "hi")
        assert res.rc == 1 and "authorization violation" in res.err
