"""subject_matches, subjects_overlap and is_subset checked against brute force.

Filters are every valid filter of up to three tokens over a small alphabet; the universe is
every literal subject of up to four tokens over that alphabet plus one token no filter names.
That universe is exhaustive for these filters: any witness subject can be shortened to four
tokens and have its foreign tokens renamed to "c" without changing which filters match it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from subject_reference import reference_match

from pyjetstream.subjects import (
    is_subset,
    is_valid_subject,
    subject_matches,
    subjects_overlap,
)

FILTER_TOKENS = ["a", "b*", "*"]  # "b*" is a literal token that looks like a wildcard
UNIVERSE_TOKENS = ["a", "b*", "c"]


def _all_filters() -> list[str]:
    out = []
    for n in range(1, 4):
        for toks in itertools.product(FILTER_TOKENS, repeat=n):
            out.append(".".join(toks))
        for toks in itertools.product(FILTER_TOKENS, repeat=n - 1):
            out.append(".".join((*toks, ">")))
    return out


FILTERS = _all_filters()
UNIVERSE = [".".join(t) for n in range(1, 5) for t in itertools.product(UNIVERSE_TOKENS, repeat=n)]
MATCHES = {f: frozenset(s for s in UNIVERSE if reference_match(f, s)) for f in FILTERS}


def test_filters_are_valid_and_distinct() -> None:
    assert len(FILTERS) == len(set(FILTERS)) == 39 + 13
    assert all(is_valid_subject(f) for f in FILTERS)


@pytest.mark.parametrize(
    ("flt", "subject", "expected"),
    [
        ("foo", "foo", True),
        ("foo", "bar", False),
        ("foo.bar", "foo", False),
        ("foo", "foo.bar", False),
        ("*", "foo", True),
        ("*", "foo.bar", False),
        (">", "foo", True),
        (">", "foo.bar.baz", True),
        ("foo.>", "foo", False),
        ("foo.>", "foo.bar", True),
        ("foo.>", "foo.bar.baz", True),
        ("foo.*", "foo.bar", True),
        ("foo.*", "foo.bar.baz", False),
        ("*.bar", "foo.bar", True),
        ("*.*", "foo.bar", True),
        ("foo.*.baz", "foo.x.baz", True),
        ("foo.*.baz", "foo.x.bar", False),
        ("*.>", "foo", False),
        ("*.>", "foo.bar", True),
        ("foo*", "foo", False),
        ("foo*", "foo*", True),
        ("foo*.bar", "fooX.bar", False),
        # an empty filter never matches; callers handle "no filter" themselves
        ("", "foo", False),
        ("", "", False),
        # subjects with empty tokens never match
        (">", "", False),
        (">", "foo..bar", False),
        ("*.*", ".foo", False),
        ("foo.*", "foo.", False),
    ],
)
def test_subject_matches_table(flt: str, subject: str, expected: bool) -> None:
    assert subject_matches(flt, subject) is expected
    assert reference_match(flt, subject) is expected


def test_subject_matches_agrees_with_reference_exhaustively() -> None:
    for f in FILTERS:
        for s in UNIVERSE:
            assert subject_matches(f, s) == (s in MATCHES[f]), (f, s)


def test_overlap_agrees_with_brute_force() -> None:
    for a in FILTERS:
        for b in FILTERS:
            expected = bool(MATCHES[a] & MATCHES[b])
            assert subjects_overlap(a, b) == expected, (a, b)


def test_subset_agrees_with_brute_force() -> None:
    for a in FILTERS:
        for b in FILTERS:
            expected = MATCHES[a] <= MATCHES[b]
            assert is_subset(a, b) == expected, (a, b)


@pytest.mark.parametrize(
    ("a", "b", "overlap", "a_in_b"),
    [
        ("foo.bar", "foo.bar", True, True),
        ("foo.bar", "foo.baz", False, False),
        ("foo.*", "foo.bar", True, False),
        ("foo.bar", "foo.*", True, True),
        ("foo.>", "foo.*", True, False),
        ("foo.*", "foo.>", True, True),
        ("foo.>", "foo", False, False),
        ("foo.*.baz", "foo.>", True, True),
        ("*.bar", "foo.*", True, False),
        (">", "foo.bar", True, False),
        ("foo.bar", ">", True, True),
        ("*", ">", True, True),
        ("*.*", "*", False, False),
        ("*.>", ">", True, True),
        (">", "*.>", True, False),
        ("", "foo", False, False),
        ("", "", False, False),
        ("", ">", False, False),
        (">", "", False, False),
        ("", "*", False, False),
    ],
)
def test_overlap_and_subset_table(a: str, b: str, overlap: bool, a_in_b: bool) -> None:
    assert subjects_overlap(a, b) is overlap
    assert subjects_overlap(b, a) is overlap
    assert is_subset(a, b) is a_in_b


# Longer filters and subjects than the exhaustive test reaches, checked by sampling.
_tok = st.sampled_from(["a", "b", "ab", "a*", "*"])
_filters = st.builds(
    lambda toks, gt: ".".join(toks + ([">"] if gt else [])),
    st.lists(_tok, min_size=0, max_size=6),
    st.booleans(),
).filter(bool)
_subjects = st.lists(st.sampled_from(["a", "b", "ab", "a*", "zz"]), min_size=1, max_size=8).map(".".join)


@given(_filters, _subjects)
def test_subject_matches_property(flt: str, subject: str) -> None:
    assert subject_matches(flt, subject) == reference_match(flt, subject)


@given(_filters, _filters, st.lists(_subjects, max_size=30))
def test_overlap_and_subset_consistent_with_samples(a: str, b: str, subjects: list[str]) -> None:
    # A sampled subject matching both proves overlap; one matching a but not b disproves
    # subset. (Sampling cannot prove the converse; the exhaustive tests above do that.)
    for s in subjects:
        ma, mb = reference_match(a, s), reference_match(b, s)
        if ma and mb:
            assert subjects_overlap(a, b)
        if ma and not mb:
            assert not is_subset(a, b)
    if is_subset(a, b):
        assert subjects_overlap(a, b)
