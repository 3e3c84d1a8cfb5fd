"""Micro-benchmark of the subject index: ns per match on a cache hit and on a miss, 1k subs.

Owns nothing but its measurement; it must not be imported by the package or the tests. Prints
one human-readable line per case and, last, one JSON line with all figures (like the other
benches). Best of several repeats, so a busy shared machine skews it less. Rerun with:

    .venv/bin/python bench/subjects_bench.py [--subs 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable

from pyjetstream.subjects import SubjectIndex, is_valid_subject, subject_matches


class Sub:
    __slots__ = ("subject", "queue")

    def __init__(self, subject: str, queue: str | None = None) -> None:
        self.subject = subject
        self.queue = queue


def build_subs(n: int, rng: random.Random) -> list[Sub]:
    """A server-like mix: mostly literal inbox/service subjects, some `*` and `>` filters,
    some queue groups."""
    subs: list[Sub] = []
    for i in range(n):
        kind = i % 10
        if kind < 6:
            subs.append(Sub(f"svc.{i}.req"))
        elif kind < 8:
            subs.append(Sub(f"events.{i % 40}.*"))
        elif kind < 9:
            subs.append(Sub(f"logs.{i % 25}.>"))
        else:
            subs.append(Sub(f"work.{i % 10}.jobs", f"w{rng.randrange(3)}"))
    return subs


def subjects_for(n: int, rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            out.append(f"svc.{rng.randrange(n)}.req")
        elif kind == 1:
            out.append(f"events.{rng.randrange(40)}.created")
        elif kind == 2:
            out.append(f"logs.{rng.randrange(25)}.app.error")
        elif kind == 3:
            out.append(f"work.{rng.randrange(10)}.jobs")
        else:
            out.append(f"nobody.{rng.randrange(1000)}.listens")
    return out


def ns_per_call(fn: Callable[[list[str]], None], subjects: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(subjects)
        best = min(best, (time.perf_counter_ns() - t0) / len(subjects))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(7)
    subs = build_subs(args.subs, rng)

    cached: SubjectIndex[Sub] = SubjectIndex(cache=True)
    uncached: SubjectIndex[Sub] = SubjectIndex(cache=False)
    for s in subs:
        cached.insert(s)
        uncached.insert(s)

    # Hits: a working set smaller than the cache, warmed first.
    hot = sorted(set(subjects_for(args.subs, rng, 600)))[:512]
    hot_loop = hot * 40
    for s in hot:
        cached.match(s)

    def run_cached(subjects: list[str]) -> None:
        m = cached.match
        for s in subjects:
            m(s)

    def run_uncached(subjects: list[str]) -> None:
        m = uncached.match
        for s in subjects:
            m(s)

    # Misses with the cache on: every subject new, so each call walks the trie, stores the
    # result and now and then halves the cache.
    # The last token is made unique, so wildcard filters still match where they did before.
    churn_sets = [[s.rsplit(".", 1)[0] + f".u{r}_{i}" for i, s in enumerate(hot_loop)] for r in range(args.repeat)]
    churn_iter = iter(churn_sets)

    def run_churn(_: list[str]) -> None:
        m = cached.match
        for s in next(churn_iter):
            m(s)

    filters = [s.subject for s in subs]
    pairs = [(filters[i % len(filters)], hot_loop[i]) for i in range(len(hot_loop))]

    def run_subject_matches(_: list[str]) -> None:
        for f, s in pairs:
            subject_matches(f, s)

    def run_valid(subjects: list[str]) -> None:
        for s in subjects:
            is_valid_subject(s)

    def insert_remove_cost(filter_: str, rounds: int = 50) -> float:
        """ns for one insert plus one remove of `filter_`, each time with a full cache (the
        worst case: a wildcard change scans every cached subject)."""
        best = float("inf")
        for _ in range(args.repeat):
            total = 0
            for r in range(rounds):
                for i in range(cached._cache_max - len(cached._cache)):
                    cached.match(f"filler.{r}.{i}")
                p = Sub(filter_)
                t0 = time.perf_counter_ns()
                cached.insert(p)
                cached.remove(p)
                total += time.perf_counter_ns() - t0
            best = min(best, total / rounds)
        return best

    fanout = sum(len(p) + sum(len(g) for g in q) for p, q in (uncached.match(s) for s in hot)) / len(hot)
    results = {
        "match_cache_hit_ns": ns_per_call(run_cached, hot_loop, args.repeat),
        "match_no_cache_ns": ns_per_call(run_uncached, hot_loop, args.repeat),
        "match_cache_miss_churn_ns": ns_per_call(run_churn, hot_loop, args.repeat),
        "subject_matches_ns": ns_per_call(run_subject_matches, hot_loop, args.repeat),
        "is_valid_subject_ns": ns_per_call(run_valid, hot_loop, args.repeat),
        "insert_remove_literal_full_cache_ns": insert_remove_cost("events.3.created"),
        "insert_remove_wildcard_full_cache_ns": insert_remove_cost("events.*.created"),
        "insert_remove_leading_wildcard_full_cache_ns": insert_remove_cost("*.>"),
    }
    print(f"subject index, {args.subs} subs, {len(hot)} distinct hot subjects, mean fanout {fanout:.1f}")
    for name, ns in results.items():
        print(f"  {name:44s} {ns:10.0f} ns")
    print(json.dumps({"bench": "subjects", "subs": args.subs, "python": platform.python_version(),
                      **{k: round(v, 1) for k, v in results.items()}, "stats": cached.stats()}))


if __name__ == "__main__":
    main()
