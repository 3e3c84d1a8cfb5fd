"""Structural comparison of two clients' JSON reports (ours vs nats-server).

Owns only the diff: paths where two JSON values differ, and dropping paths that a test
declares divergent on purpose; and the two assertions every client's test module makes with
it (a scenario's report matches a reference's, a documented difference is real), given that
module's reports, checks and documented differences. It must not know any scenario.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

Report = dict[str, Any]
Reports = Callable[..., Report]  # reports(scenario, kind="pyjetstream")
Skipped = dict[str, dict[str, Any]]  # reference -> scenario -> the documented paths


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Every path (dotted, list indexes in brackets) where `a` and `b` differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            sub = f"{path}.{k}" if path else k
            if k not in a or k not in b:
                out.append(f"{sub}: only in {'nats-server' if k in a else 'pyjetstream'}")
            else:
                out.extend(diff_paths(a[k], b[k], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff_paths(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path}: nats-server={a!r} pyjetstream={b!r}"]
    return []


def get_path(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def without(doc: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """A copy of `doc` with the dotted `paths` removed (missing ones are ignored)."""
    doc = copy.deepcopy(doc)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return doc


def with_paths_from(doc: dict[str, Any], source: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """A copy of `doc` whose dotted `paths` hold `source`'s values (paths `source` lacks are
    removed): a reference report with its documented differences taken from ours, so that the
    per-scenario facts can still be checked on the rest of it."""
    doc = without(doc, paths)
    for path in paths:
        *parents, last = path.split(".")
        src: Any = source
        dst: Any = doc
        for part in parents:
            src = src.get(part) if isinstance(src, dict) else None
            dst = dst.setdefault(part, {}) if isinstance(dst, dict) else None
        if isinstance(src, dict) and last in src and isinstance(dst, dict):
            dst[last] = copy.deepcopy(src[last])
    return doc


def assert_scenario_matches(reports: Reports, scenario: str, reference: str, skipped: Skipped,
                            check: Callable[[Report], None], client: str) -> None:
    """Our report of `scenario` equals `reference`'s but at the paths documented in `skipped`,
    and `check` holds on both (on the reference's with those paths taken from ours)."""
    ref, ours = reports(scenario, reference), reports(scenario)
    skip = list(skipped[reference].get(scenario, {}))
    # the expectations themselves hold on the reference server (its documented differences aside)
    check(with_paths_from(ref, ours, skip))
    diffs = diff_paths(without(ref, skip), without(ours, skip))
    assert not diffs, f"{client} sees pyjetstream differ from {reference}:\n" + "\n".join(diffs)
    check(ours)


def assert_documented_differences_are_real(reports: Reports, skipped: Skipped) -> None:
    """Every documented difference is real: the reference answers otherwise at that path
    (references not available are passed over)."""
    for reference, scenarios in skipped.items():
        for scenario, paths in scenarios.items():
            try:
                ref = reports(scenario, reference)
            except pytest.skip.Exception:
                continue
            ours = reports(scenario)
            for path in paths:
                assert get_path(ref, path) != get_path(ours, path), (reference, scenario, path)
