"""Run one client transcript against the newer nats-server (NATS_SERVER_NEW) and against ours,
and compare the two step by step.

Owns the run (one server at a time, each in its own store dir, stopped afterwards) and the
step comparison only; what a transcript does and what it records stays in its test file, as
does skipping when NATS_SERVER_NEW is unset. The differential tests import it by name
(`from transcripts import ...`; pytest puts this folder on sys.path). Usage:

    results = await run_on_newer_and_ours(tmp_path, _transcript)  # _transcript(url) -> list
    assert_same_steps(results["ours"], results["newer"])

    proc = start_kind("ours", tmp_path / "ours")  # one server, for checks on ours alone
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from servers import ServerProc

# "newer" and "ours", the keys of a run's results, as servers.py's server kinds
SERVER_KINDS = {"newer": "nats-server-new", "ours": "pyjetstream"}


def start_kind(kind: str, store: Path, *, js_flags: bool = True,
               config: Callable[[Path], str] | None = None) -> ServerProc:
    """Start the "newer" or "ours" server with JetStream storing under `store` (made here), on
    `-js -sd store`; with `js_flags=False` those flags are left out and `config(store)`, the
    text of a config file, says how JetStream runs."""
    store.mkdir(parents=True, exist_ok=True)
    args: Sequence[str] = ("-js", "-sd", str(store)) if js_flags else ()
    return ServerProc(SERVER_KINDS[kind], store, args, None if config is None else config(store)).start()


async def run_on_newer_and_ours(workdir: Path, transcript: Callable[[str], Awaitable[list[Any]]], *,
                                store_suffix: str = "", js_flags: bool = True,
                                config: Callable[[Path], str] | None = None) -> dict[str, list[Any]]:
    """The newer nats-server, then ours, each started (start_kind) in its own store dir
    `workdir / (kind + store_suffix)`, `transcript` awaited with its URL and the server stopped
    whatever happens: {"newer": its transcript, "ours": ours}."""
    results: dict[str, list[Any]] = {}
    for kind in ("newer", "ours"):
        proc = start_kind(kind, workdir / f"{kind}{store_suffix}", js_flags=js_flags, config=config)
        try:
            results[kind] = await transcript(proc.url)
        finally:
            proc.stop()
    return results


def assert_same_steps(ours: list[Any], newer: list[Any]) -> None:
    """Every step of our transcript equals the newer server's (AssertionError (i, ours, newer) at
    the first that does not); transcripts of different lengths are a ValueError (zip strict)."""
    for i, (a, b) in enumerate(zip(ours, newer, strict=True)):
        assert a == b, (i, a, b)
