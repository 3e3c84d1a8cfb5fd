"""Subject, literal-subject and queue-name validation: tables of nats-server's edge cases, and
a property test against an independent regular-expression definition."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyjetstream.subjects import (
    has_wildcard,
    is_literal,
    is_valid_literal_subject,
    is_valid_queue_name,
    is_valid_subject,
    tokenize,
)

# (subject, valid as filter, valid as literal/publish subject)
CASES = [
    ("foo", True, True),
    ("foo.bar", True, True),
    ("foo.bar.baz", True, True),
    ("a", True, True),
    ("$JS.API.STREAM.INFO.orders", True, True),
    ("_INBOX.abc123.xyz", True, True),
    ("*", True, False),
    (">", True, False),
    ("foo.*", True, False),
    ("*.bar", True, False),
    ("foo.>", True, False),
    ("*.>", True, False),
    ("foo.*.baz.>", True, False),
    ("*.*.*", True, False),
    # wildcard characters inside a longer token are literal text
    ("foo*.bar", True, True),
    ("foo.b*r", True, True),
    ("foo.>bar", True, True),
    ("foo.bar>", True, True),
    ("**", True, True),
    (">>", True, True),
    ("foo.**.>", True, False),
    # `>` anywhere but last
    (">.foo", False, False),
    ("foo.>.bar", False, False),
    ("foo.>.*", False, False),
    (">.>", False, False),
    # empty tokens: leading, trailing, doubled dots, lone dots
    ("", False, False),
    (".", False, False),
    ("..", False, False),
    (".foo", False, False),
    ("foo.", False, False),
    ("foo..bar", False, False),
    (".foo.bar.", False, False),
    ("foo.*.", False, False),
    (".>", False, False),
    ("foo.>.", False, False),
    # whitespace anywhere
    (" ", False, False),
    ("foo bar", False, False),
    (" foo", False, False),
    ("foo ", False, False),
    ("foo\tbar", False, False),
    ("foo\rbar", False, False),
    ("foo\nbar", False, False),
    ("foo\fbar", False, False),
    ("foo.\t", False, False),
    ("\n", False, False),
    ("foo. .bar", False, False),
    ("* ", False, False),
    ("> ", False, False),
    ("foo.* .bar", False, False),
    # non-ASCII and punctuation are allowed (nats-server does not restrict them)
    ("ünïcödé.subject", True, True),
    ("a-b_c:d/e", True, True),
    # other control characters are not separators on the wire, so they are not rejected
    ("foo\vbar", True, True),
    ("foo\x00bar", True, True),
]


@pytest.mark.parametrize(("subject", "valid", "literal"), CASES)
def test_validation_table(subject: str, valid: bool, literal: bool) -> None:
    assert is_valid_subject(subject) is valid
    assert is_valid_literal_subject(subject) is literal


@pytest.mark.parametrize(
    ("queue", "valid"),
    [("q", True), ("workers", True), ("a.b", True), ("q*", True), ("", False), ("a b", False),
     ("a\tb", False), ("q\r\n", False)],
)
def test_queue_name_validation(queue: str, valid: bool) -> None:
    assert is_valid_queue_name(queue) is valid


@pytest.mark.parametrize(
    ("subject", "literal"),
    [("foo", True), ("foo*", True), ("a.>b", True), ("*", False), ("a.>", False), ("a.*.b", False)],
)
def test_is_literal_and_has_wildcard(subject: str, literal: bool) -> None:
    assert is_literal(subject) is literal
    assert has_wildcard(subject) is (not literal)


def test_tokenize_keeps_empty_tokens() -> None:
    assert tokenize("a.b.c") == ["a", "b", "c"]
    assert tokenize("a..b") == ["a", "", "b"]
    assert tokenize("") == [""]


# An independent definition: no whitespace, tokens of non-dot characters, and no `>` token
# followed by another token.
_WS = " \t\r\n\f"
_VALID_RE = re.compile(rf"[^.{_WS}]+(\.[^.{_WS}]+)*")
_LITERAL_RE = re.compile(r"(^|\.)[*>](\.|$)")


def _spec_valid(s: str) -> bool:
    return bool(_VALID_RE.fullmatch(s)) and not re.search(r"(^|\.)>\.", s)


def _spec_literal(s: str) -> bool:
    # A wildcard token is a lone `*` or `>` between separators or the ends.
    return _spec_valid(s) and not _LITERAL_RE.search(s)


def _has_wildcard_token(s: str) -> bool:
    return any(t in ("*", ">") for t in s.split("."))


@given(st.text(alphabet="ab.*> \t\n\r\f\v\x00é", max_size=12))
def test_validation_agrees_with_regex_spec(s: str) -> None:
    assert is_valid_subject(s) == _spec_valid(s)
    assert is_valid_literal_subject(s) == _spec_literal(s)
    if is_valid_subject(s):
        assert is_literal(s) == (not _has_wildcard_token(s))
