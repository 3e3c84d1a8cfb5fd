"""The reference matcher: the definition of subject matching, written to be obviously correct.

The tests' oracle: the trie index, its cache, the predicates in subjects/match.py and the
stores' specialised matcher (jetstream/store/_match.py) are checked against it. Deliberately
slow and simple, and kept out of the package.
"""

from __future__ import annotations


def reference_match(filter: str, subject: str) -> bool:
    """Does literal `subject` match `filter`? `*` is one token, a final `>` one or more."""
    ftoks, stoks = filter.split("."), subject.split(".")
    if "" in ftoks or "" in stoks:
        return False  # empty filter/subject, or an empty token anywhere
    for i, f in enumerate(ftoks):
        if f == ">" and i == len(ftoks) - 1:
            return len(stoks) > i  # at least one token left for `>`
        if i >= len(stoks) or (f != "*" and f != stoks[i]):
            return False
    return len(ftoks) == len(stoks)
