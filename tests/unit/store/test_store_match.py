"""The stores' private filter matcher agrees with the reference definition of matching."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from subject_reference import reference_match

from pyjetstream.jetstream.store._match import is_all, is_literal, matcher
from pyjetstream.subjects import subject_matches

TOKENS = ["a", "b", "b*", "c>"]  # the last two are literal tokens that look like wildcards


def test_matcher_against_reference():
    subjects = [".".join(p) for n in (1, 2, 3) for p in itertools.product("ab", repeat=n)]
    filters = subjects + [".".join(p) for n in (1, 2, 3) for p in itertools.product(["a", "*", ">"], repeat=n)
                          if ">" not in p[:-1]]
    for f in filters:
        m = matcher(f)
        for s in subjects:
            assert m(s) == reference_match(f, s), (f, s)
            assert m(s) == reference_match(f, s), (f, s)  # second call answers from the cache


literal = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map(".".join)
filters = st.tuples(st.lists(st.sampled_from([*TOKENS, "*"]), min_size=0, max_size=4),
                    st.booleans()).map(lambda t: ".".join(t[0] + [">"] if t[1] or not t[0] else t[0]))


@given(filters, st.lists(literal, min_size=1, max_size=20))
def test_matcher_is_the_reference_and_the_routing_predicate(f, subjects):
    m = matcher(f)
    for s in subjects:
        want = reference_match(f, s)
        assert m(s) == want == subject_matches(f, s), (f, s)


def test_all_and_literal():
    assert is_all("") and is_all(">") and not is_all("a.>")
    assert is_literal("a.b") and not is_literal("a.*") and not is_literal("a.>")
    assert matcher("")("anything.at.all")
