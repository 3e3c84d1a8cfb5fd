"""Subject-filter matching for the stores' own scans (filtered loads, purges, states).

Owns only the token comparison a store needs to answer `load_next_msg(filter, ...)` and friends;
subject validation and the routing index live in `pyjetstream.subjects`.

Why a second matcher next to subjects.match.subject_matches: the store stays below everything
else in the package and imports none of it; a filtered scan tests every record, so the
predicate is built once per filter (cached) and remembers its answer per subject; and a store
reads "" (no filter) and ">" as "every subject", where subject_matches says no to "".
tests/unit/store/test_store_match.py ties it to the reference matcher with a property test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


def is_all(filter_subject: str) -> bool:
    return filter_subject == "" or filter_subject == ">"


@lru_cache(maxsize=1024)
def is_literal(filter_subject: str) -> bool:
    toks = filter_subject.split(".")
    return "*" not in toks and ">" not in toks


@lru_cache(maxsize=1024)
def matcher(filter_subject: str) -> Callable[[str], bool]:
    """A predicate for one filter; cached because consumers reuse the same filter for every load."""
    if is_all(filter_subject):
        return lambda _s: True
    ftoks = filter_subject.split(".")
    if "*" not in ftoks and ">" not in ftoks:
        return filter_subject.__eq__
    n = len(ftoks)
    full_wc = ftoks[-1] == ">"
    # Streams hold few distinct subjects compared to messages, so remembering answers per subject
    # turns the per-record check of a filtered scan into one dict lookup.
    cache: dict[str, bool] = {}

    def match(subject: str) -> bool:
        hit = cache.get(subject)
        if hit is not None:
            return hit
        if len(cache) > 4096:
            cache.clear()
        hit = cache[subject] = _match(subject)
        return hit

    def _match(subject: str) -> bool:
        stoks = subject.split(".")
        if full_wc:
            if len(stoks) < n:
                return False
            check = n - 1
        else:
            if len(stoks) != n:
                return False
            check = n
        for i in range(check):
            f = ftoks[i]
            if f != "*" and f != stoks[i]:
                return False
        return True

    return match
