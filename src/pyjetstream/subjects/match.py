"""Subject and filter predicates: validation, literal matching, overlap and subset.

Owns the meaning of a NATS subject: tokens separated by '.', `*` matching exactly one token,
`>` matching one or more trailing tokens. Pure functions on strings; no state, no IO. The
token trie that answers "who is interested in this subject" lives in `index.py`.

Callers pass *valid* filters (checked once, when a subscription or stream is created) to the
matching predicates; those predicates do not re-validate on every call, because they run per
message. With an invalid filter their answer is unspecified (but they never raise).
"""

from __future__ import annotations

PWC = "*"
"""Partial wildcard token: matches exactly one token."""
FWC = ">"
"""Full wildcard token: matches one or more tokens; only valid as the last token."""
SEP = "."


def tokenize(subject: str) -> list[str]:
    """Split a subject into its tokens (empty tokens included, so `a..b` keeps its hole)."""
    return subject.split(SEP)


def has_whitespace(s: str) -> bool:
    """True if `s` contains one of the characters the wire protocol treats as separators
    (space, tab, CR, LF, FF)."""
    if " " in s:
        return True
    # isprintable() is one C pass and False for every control character, so the per-character
    # checks run only for the rare string that has some control character.
    return not s.isprintable() and ("\t" in s or "\r" in s or "\n" in s or "\f" in s)


def is_valid_subject(s: str) -> bool:
    """A subject or filter: non-empty tokens, no whitespace, `>` only as the last token.

    `*` and `>` are wildcards only as whole tokens; `foo*` or `a>b` are ordinary literal tokens.
    """
    # Substring tests instead of splitting: this runs for every SUB (and, pedantic, every PUB).
    if not s or " " in s or (not s.isprintable() and has_whitespace(s)):
        return False
    if s[0] == SEP or s[-1] == SEP or ".." in s:
        return False
    # With no empty tokens, a `>` token that is not last shows as ">." at the start or ".>.".
    return FWC not in s or not (s.startswith(">.") or ".>." in s)


def is_valid_literal_subject(s: str) -> bool:
    """A valid subject without wildcard tokens: what a message may be published to."""
    if not s or " " in s or (not s.isprintable() and has_whitespace(s)):
        return False
    if s[0] == SEP or s[-1] == SEP or ".." in s:
        return False
    return not ((PWC in s and _has_token(s, PWC)) or (FWC in s and _has_token(s, FWC)))


def _has_token(s: str, tok: str) -> bool:
    """Is the one-character `tok` a whole token of `s`? (`s` has no empty tokens.)"""
    return s == tok or s.startswith(tok + SEP) or s.endswith(SEP + tok) or (SEP + tok + SEP) in s


def is_literal(subject: str) -> bool:
    """True if no token is a wildcard. Does not check validity."""
    if PWC not in subject and FWC not in subject:
        return True
    tokens = subject.split(SEP)
    return PWC not in tokens and FWC not in tokens


def has_wildcard(subject: str) -> bool:
    """True if some token is `*` or `>`. Does not check validity."""
    return not is_literal(subject)


def is_valid_queue_name(queue: str) -> bool:
    """A queue group name: any non-empty string without whitespace."""
    return bool(queue) and not has_whitespace(queue)


def subject_matches(filter: str, subject: str) -> bool:
    """Does the literal `subject` match the (valid) `filter`?

    An empty filter never matches (callers that treat "no filter" as "everything" must check
    for it first), and a subject with empty tokens (`a..b`, `.a`, `a.`) never matches.
    Wildcard tokens inside `subject` are compared as plain text, exactly as the index does.
    """
    if filter == subject:
        # Same string: a valid filter matches itself; "" is no filter at all.
        return filter != ""
    if PWC not in filter and FWC not in filter:
        # A filter without wildcard characters is literal, and it differs from the subject.
        return False
    ftoks = filter.split(SEP)
    stoks = subject.split(SEP)
    if "" in stoks:
        return False
    n = len(ftoks)
    if ftoks[-1] == FWC:
        n -= 1
        if len(stoks) <= n:
            return False
    elif len(stoks) != n:
        return False
    for i in range(n):
        f = ftoks[i]
        if f != PWC and f != stoks[i]:
            return False
    return True


def subjects_overlap(a: str, b: str) -> bool:
    """Is there a literal subject that both (valid) filters match? Never for an empty filter."""
    if not a or not b:
        return False
    if a == b:
        return True
    at = a.split(SEP)
    bt = b.split(SEP)
    for x, y in zip(at, bt, strict=False):
        if x == FWC or y == FWC:
            # Both still have a token here; `>` absorbs whatever the other side needs (>= 1).
            return True
        if x != y and x != PWC and y != PWC:
            return False
    return len(at) == len(bt)


def is_subset(sub: str, of: str) -> bool:
    """Does every literal subject matching `sub` also match `of`? (Both valid filters.)

    An empty filter on either side gives False: "" means "no filter" to callers, not "nothing".
    """
    if not sub or not of:
        return False
    if sub == of:
        return True
    st = sub.split(SEP)
    ot = of.split(SEP)
    for i, o in enumerate(ot):
        if i >= len(st):
            # `of` needs more tokens than `sub` ever has.
            return False
        if o == FWC:
            return True
        s = st[i]
        if s == FWC:
            # `sub` matches arbitrarily long subjects; `of` (no `>` here) has a fixed length.
            return False
        if o != PWC and s != o:
            # Includes s == `*`: it matches tokens the literal `o` rejects.
            return False
    return len(st) == len(ot)
