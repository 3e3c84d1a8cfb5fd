"""The reference matcher: the definition of subject matching, written to be obviously correct.

Used only by tests, as the oracle the trie index, its cache and the fast predicates in
`match.py` are checked against. Deliberately slow and simple; never import it from the server.
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
