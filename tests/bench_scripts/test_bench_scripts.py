"""Every script in bench/ still runs: each once, at a size that takes a second or two.

The scripts use the library's own API (stores, the subscription store, the server class) and
are not type-checked with it; a changed signature broke two of them unnoticed until a
benchmark was rerun. Nothing here looks at a figure (tests never assert on timing): a run
passes when it exits 0 and prints the result line or table it exists for. Results go to a
temporary directory, never to bench/results/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import have_nats_server

ROOT = Path(__file__).resolve().parents[2]
# the team's client harness, outside this repository (run_all.py and sync_modes.py drive it)
JSBENCH = Path(os.environ.get("JSBENCH", ROOT.parent / "shared" / "bench" / "jsbench.py"))
NEEDS_JSBENCH = {"run_all.py", "sync_modes.py"}

# script, arguments ({tmp} is a temporary directory), text the output must hold,
# whether it starts nats-server beside ours
RUNS: list[tuple[str, list[str], str, bool]] = [
    ("consumer_bench.py", ["--n", "300"], '"phase": "ordered"', True),
    ("embed_bench.py", ["--rounds", "1", "--out", "{tmp}/embed.jsonl"], "pyjetstream server process", True),
    ("eventing_micro.py", [], '"step": "dispatcher: request headers"', False),
    ("eventing_bench.py", ["--servers", "pyjetstream", "--events", "100", "--rate", "100", "--seconds", "0.3",
                           "--out", "{tmp}/eventing.jsonl"], "| pyjetstream |", False),
    ("gc_bench.py", ["--msgs", "2000", "--subjects", "10"], '"op": "delete"', False),
    ("hotpath_bench.py", ["--msgs", "2000"], '"bench": "core_relay_inprocess"', False),
    ("js_bench.py", ["--msgs", "300", "--out", "{tmp}/js.jsonl"], "| stream_info |", True),
    ("push_inprocess.py", ["--msgs", "500"], '"acked": 500', False),
    ("store_bench.py", ["--n", "500"], '"phase": "reopen-again"', False),
    ("subjects_bench.py", ["--subs", "20", "--repeat", "1"], '"bench": "subjects"', False),
    ("aiohttp_client_bench.py", ["--requests", "100"], '"requests": 100', False),
    ("startup_bench.py", ["--rounds", "1", "--out", "{tmp}/startup.jsonl"], "| pyjetstream server |", True),
    ("restart_bench.py", ["--count", "2000", "--servers", "pyjetstream"], "clean shutdown (s)", False),
    ("crash_loop.py", ["--cycles", "1", "--max-per-cycle", "200", "--dir", "{tmp}/crash"], '"problems": 0', False),
    ("dsync_probe.py", ["--ops", "20", "--rounds", "1"], "o_dsync", False),
    ("sync_modes.py", ["--rounds", "1", "--sync-msgs", "20", "--out", "{tmp}/sync.jsonl"], "| ours-inline |", True),
    ("run_all.py", ["--suite", "core", "--msgs", "500", "--out", "{tmp}/run_all.jsonl"], "RSS ours", True),
]


def test_every_script_is_listed() -> None:
    scripts = {p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_")}
    assert scripts == {r[0] for r in RUNS}


@pytest.mark.parametrize(("script", "args", "expect", "needs_ref"), RUNS, ids=[r[0] for r in RUNS])
def test_bench_script_runs(tmp_path: Path, script: str, args: list[str], expect: str, needs_ref: bool) -> None:
    if needs_ref and not have_nats_server():
        pytest.skip("nats-server is not installed")
    if script in NEEDS_JSBENCH and not JSBENCH.exists():
        pytest.skip(f"the team's jsbench.py is not at {JSBENCH} (set JSBENCH)")
    argv = [sys.executable, str(ROOT / "bench" / script)] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted((ROOT / "bench" / "results").iterdir())
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr[-2000:]
    assert expect in res.stdout, res.stdout[-2000:]
    assert sorted((ROOT / "bench" / "results").iterdir()) == before
