"""The stores' private filter matcher agrees with a plain token-by-token definition."""

from __future__ import annotations

import itertools

from pyjetstream.jetstream.store._match import is_all, is_literal, matcher


def reference(filt: str, subject: str) -> bool:
    f, s = filt.split("."), subject.split(".")
    for i, tok in enumerate(f):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(f) == len(s)


def test_matcher_against_reference():
    subjects = [".".join(p) for n in (1, 2, 3) for p in itertools.product("ab", repeat=n)]
    filters = subjects + [".".join(p) for n in (1, 2, 3) for p in itertools.product(["a", "*", ">"], repeat=n)
                          if ">" not in p[:-1]]
    for f in filters:
        m = matcher(f)
        for s in subjects:
            assert m(s) == reference(f, s), (f, s)
            assert m(s) == reference(f, s), (f, s)  # second call answers from the cache


def test_all_and_literal():
    assert is_all("") and is_all(">") and not is_all("a.>")
    assert is_literal("a.b") and not is_literal("a.*") and not is_literal("a.>")
    assert matcher("")("anything.at.all")
