"""SubjectIndex: which subscriptions want a published subject (a token trie with a match cache).

Owns the routing structure of one account: subscriptions by filter, grouped into plain
subscribers and queue groups, and a bounded cache of match results keyed by literal subject.
It stores whatever objects it is given (anything with `.subject` and `.queue`, compared by
identity) and never looks at them otherwise: delivery, queue-member choice, permissions and
client bookkeeping belong to the server. Single-threaded by design (the event loop owns it):
no locks, and every mutation completes synchronously.

Behaviour that differs from nats-server's sublist, on purpose:
- Inserting the same object twice is a no-op (the count is not incremented twice); removing
  an object that is not present returns False instead of raising.
- Queue names are validated on insert (non-empty, no whitespace); the subject is validated
  with `is_valid_subject`, which (unlike nats-server's trie insert) also rejects whitespace.
- When the cache outgrows `cache_max` it drops its oldest half synchronously, in insertion
  order, rather than sweeping random entries in a background goroutine. Hits do not refresh
  an entry's age (FIFO, not LRU): a hit stays a single dict lookup.
- Match results are immutable tuples `(plain, groups)`; no "remote queue weight" expansion
  (there are no routes), and no interest-change notification channels.
- A subject with an empty token (`a..b`, `.a`, `a.`, ``) matches nothing and is not cached,
  as in nats-server; wildcard tokens inside a *published* subject are compared literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

from .match import FWC, PWC, SEP, is_literal, is_valid_queue_name, is_valid_subject

__all__ = ["EMPTY_RESULT", "SubjectIndex", "SubscriptionLike"]


class SubscriptionLike(Protocol):
    """What the index needs from an entry. Entries are compared by identity."""

    @property
    def subject(self) -> str: ...

    @property
    def queue(self) -> str | None: ...


S = TypeVar("S", bound=SubscriptionLike)

# One shared object for "nobody is interested", so `has_interest` is an identity test.
EMPTY_RESULT: tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = ((), ())

# Leaves share this dict as their (empty) child table, so a trie of many leaves does not pay
# for one empty dict each. It is never written to: `_Node.child_for` swaps in a private dict
# before the first insertion.
_NO_CHILDREN: dict[str, _Node] = {}


class _Node:
    """One token position: children by literal token, the `*` and `>` children, and the
    subscriptions whose filter ends here (plain by id, queue members by queue name then id).
    """

    __slots__ = ("lits", "pwc", "fwc", "psubs", "qsubs")

    def __init__(self) -> None:
        self.lits: dict[str, _Node] = _NO_CHILDREN
        self.pwc: _Node | None = None
        self.fwc: _Node | None = None
        self.psubs: dict[int, Any] | None = None
        self.qsubs: dict[str, dict[int, Any]] | None = None

    def child(self, token: str) -> _Node | None:
        if token == PWC:
            return self.pwc
        if token == FWC:
            return self.fwc
        return self.lits.get(token)

    def child_for(self, token: str) -> _Node:
        """The child for `token`, created if missing."""
        if token == PWC:
            if self.pwc is None:
                self.pwc = _Node()
            return self.pwc
        if token == FWC:
            if self.fwc is None:
                self.fwc = _Node()
            return self.fwc
        lits = self.lits
        if lits is _NO_CHILDREN:
            lits = self.lits = {}
        node = lits.get(token)
        if node is None:
            node = lits[token] = _Node()
        return node

    def drop_child(self, token: str) -> None:
        if token == PWC:
            self.pwc = None
        elif token == FWC:
            self.fwc = None
        else:
            del self.lits[token]
            if not self.lits:
                self.lits = _NO_CHILDREN

    def is_empty(self) -> bool:
        return (
            not self.psubs
            and not self.qsubs
            and not self.lits
            and self.pwc is None
            and self.fwc is None
        )


def _with_sub(result: tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]], sub: Any) -> Any:
    """A copy of a cached result with `sub` added (results are shared, so never mutated)."""
    plain, groups = result
    queue = sub.queue
    if queue is None:
        return (plain + (sub,), groups)
    for i, group in enumerate(groups):
        if group[0].queue == queue:
            return (plain, groups[:i] + (group + (sub,),) + groups[i + 1 :])
    return (plain, groups + ((sub,),))


def _keys_matching(keys: Iterable[str], ftoks: list[str]) -> list[str]:
    """The literal subjects among `keys` that the wildcard filter `ftoks` matches.

    Scans the whole match cache on a wildcard insert or removal, so it rejects cheaply first:
    the literal text before the first wildcard must be a prefix, and the number of dots must
    fit; only the filter's literal tokens after that are compared one by one. A filter made
    only of wildcards (`*.>`, `*.*`) is decided by the dot count alone.
    """
    n = len(ftoks)
    gt = ftoks[-1] == FWC
    dots = n - 1
    lead = 0
    while lead < n and ftoks[lead] != PWC and ftoks[lead] != FWC:
        lead += 1
    prefix = SEP.join(ftoks[:lead]) + SEP if lead else ""
    # Literal tokens after the prefix, by position; the prefix itself is checked as text.
    checks = [(i, t) for i, t in enumerate(ftoks) if i >= lead and t != PWC and t != FWC]
    # Comprehensions with one C-level test each, because most keys fail the first test.
    cands = [k for k in keys if k.startswith(prefix)] if prefix else list(keys)
    if gt:
        cands = [k for k in cands if k.count(SEP) >= dots]
    else:
        cands = [k for k in cands if k.count(SEP) == dots]
    if not checks:
        return cands
    out = []
    for key in cands:
        ktoks = key.split(SEP)
        for i, t in checks:
            if ktoks[i] != t:
                break
        else:
            out.append(key)
    return out


# Subjects longer than this are walked without recursion, so no filter of many `*` tokens
# can push a match into Python's recursion limit.
_MAX_RECURSION = 64


def _walk(node: _Node, tokens: list[str], i: int, found: list[_Node]) -> None:
    """Append to `found` every node under `node` whose filter matches tokens[i:].

    Follows the literal child in a loop and recurses only into `*` children; `>` children
    match whatever remains (at least one token, which tokens[i] is).
    """
    last = len(tokens) - 1
    while True:
        if node.fwc is not None:
            found.append(node.fwc)
        pwc = node.pwc
        nxt = node.lits.get(tokens[i])
        if i == last:
            if pwc is not None:
                found.append(pwc)
            if nxt is not None:
                found.append(nxt)
            return
        i += 1
        if pwc is not None:
            _walk(pwc, tokens, i, found)
        if nxt is None:
            return
        node = nxt


def _walk_wide(root: _Node, tokens: list[str], found: list[_Node]) -> None:
    """`_walk` breadth-first, without recursion (for very long subjects)."""
    nodes = [root]
    for t in tokens:
        nxt = []
        for node in nodes:
            if node.fwc is not None:
                found.append(node.fwc)
            if node.pwc is not None:
                nxt.append(node.pwc)
            child = node.lits.get(t)
            if child is not None:
                nxt.append(child)
        nodes = nxt
        if not nodes:
            return
    found.extend(nodes)


def _collect(found: list[_Node]) -> Any:
    """The match result for the matching filter nodes: plain subscribers, then queue members
    gathered by queue name across nodes."""
    plain: list[Any] = []
    groups: dict[str, list[Any]] | None = None
    for node in found:
        if node.psubs:
            plain.extend(node.psubs.values())
        if node.qsubs:
            if groups is None:
                groups = {}
            for queue, members in node.qsubs.items():
                group = groups.get(queue)
                if group is None:
                    groups[queue] = list(members.values())
                else:
                    group.extend(members.values())
    if not plain and not groups:
        return EMPTY_RESULT
    return (tuple(plain), tuple(tuple(g) for g in groups.values()) if groups else ())


class SubjectIndex(Generic[S]):
    """Subscriptions by filter; `match(subject)` gives `(plain, queue_groups)`.

    `plain` is a tuple of subscriptions; `queue_groups` a tuple of non-empty tuples, one per
    distinct queue name among the matches (members of one name gathered across all matching
    filters). Order inside a result is unspecified. Results are shared with the cache and are
    immutable; an empty result is always the object `EMPTY_RESULT`.
    """

    def __init__(self, cache: bool = True, cache_max: int = 1024) -> None:
        # the head's first character -> head depth (negative: exactly one token follows) ->
        # head -> result; depths deepest first. Grouping by first character keeps inbox
        # replies (`_`) and acks (`$`) from trying each other's heads when they alternate.
        self._heads: dict[str, dict[int, dict[str, Any]]] = {}
        if cache_max < 1:
            raise ValueError("cache_max must be at least 1")
        self._root = _Node()
        # With the cache off this dict stays empty forever, so `match` needs no extra branch.
        self._cache: dict[str, tuple[tuple[S, ...], tuple[tuple[S, ...], ...]]] = {}
        self._cache_on = cache
        self._cache_max = cache_max
        self._count = 0
        self._hits = 0
        self._misses = 0
        self._inserts = 0
        self._removes = 0

    # -- reading -------------------------------------------------------------------------

    def match(self, subject: str) -> tuple[Sequence[S], Sequence[Sequence[S]]]:
        """Every subscription interested in the literal `subject`. Hot path: one dict
        lookup on a cache hit."""
        result = self._cache.get(subject)
        if result is not None:
            self._hits += 1
            return result
        return self._match_miss(subject)

    def has_interest(self, subject: str) -> bool:
        """Is anyone subscribed to a filter matching the literal `subject`?"""
        return self.match(subject) is not EMPTY_RESULT

    @property
    def count(self) -> int:
        """Number of subscriptions stored."""
        return self._count

    def all_subscriptions(self) -> Iterator[S]:
        """Every stored subscription, once each (for monitoring; not for the hot path).

        A live view: take `list(...)` of it before inserting or removing while iterating.
        """
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.psubs:
                yield from node.psubs.values()
            if node.qsubs:
                for members in node.qsubs.values():
                    yield from members.values()
            stack.extend(node.lits.values())
            if node.pwc is not None:
                stack.append(node.pwc)
            if node.fwc is not None:
                stack.append(node.fwc)

    def stats(self) -> dict[str, Any]:
        """Counters, plus nats-server's `/subsz` derived figures (hit rate, fanout)."""
        matches = self._hits + self._misses
        fanouts = [len(p) + len(q) for p, q in self._cache.values()]
        return {
            "subs": self._count,
            "cache_size": len(self._cache),
            "inserts": self._inserts,
            "removes": self._removes,
            "matches": matches,
            "cache_hits": self._hits,
            "cache_hit_rate": self._hits / matches if matches else 0.0,
            "max_fanout": max(fanouts, default=0),
            "avg_fanout": sum(fanouts) / len(fanouts) if fanouts else 0.0,
        }

    # -- writing -------------------------------------------------------------------------

    def insert(self, sub: S) -> None:
        """Add a subscription. Raises ValueError for an invalid subject or queue name.
        Inserting an object that is already present changes nothing."""
        subject = sub.subject
        queue = sub.queue
        if not isinstance(subject, str) or not is_valid_subject(subject):
            raise ValueError("sublist: invalid subject")
        if queue is not None and (not isinstance(queue, str) or not is_valid_queue_name(queue)):
            raise ValueError("sublist: invalid subject")
        node = self._root
        tokens = subject.split(SEP)
        for t in tokens:
            node = node.child_for(t)
        key = id(sub)
        if queue is None:
            psubs = node.psubs
            if psubs is None:
                psubs = node.psubs = {}
            if key in psubs:
                return
            psubs[key] = sub
        else:
            qsubs = node.qsubs
            if qsubs is None:
                qsubs = node.qsubs = {}
            members = qsubs.get(queue)
            if members is None:
                members = qsubs[queue] = {}
            if key in members:
                return
            members[key] = sub
        self._count += 1
        self._inserts += 1
        self._heads.clear()
        if self._cache:
            self._cache_add(subject, tokens, sub)

    def remove(self, sub: S) -> bool:
        """Remove a subscription (by identity). False if it was not in the index."""
        if not self._remove_from_trie(sub):
            return False
        self._heads.clear()
        if self._cache:
            self._cache_evict(sub.subject)
        return True

    def remove_batch(self, subs: Iterable[S]) -> int:
        """Remove many subscriptions (a closing connection's); returns how many were present.

        Clears the cache once instead of scanning it per subscription.
        """
        removed = 0
        for sub in subs:
            if self._remove_from_trie(sub):
                removed += 1
        if removed:
            self._cache.clear()
            self._heads.clear()
        return removed

    # -- internals -----------------------------------------------------------------------

    def match_once(self, subject: str) -> tuple[Sequence[S], Sequence[Sequence[S]]]:
        """match() for a subject that will not come again (a reply inbox, an ack subject):
        uses a cached entry if there is one but never adds one, so one-off subjects do not
        evict the entries that pay.

        Such subjects vary only after a fixed head (`_INBOX.<id>.`, `$JS.ACK.<stream>.<consumer>.`)
        below which the index holds nothing but `>` filters, so the answer is the same for
        every tail. It is kept in a second cache under that head (the number of head tokens
        is remembered, so a lookup needs no walk). Any insert or remove clears it.
        """
        result = self._cache.get(subject)
        if result is not None:
            self._hits += 1
            return result
        heads = self._heads.get(subject[:1]) if self._heads else None
        if heads:
            for key, table in heads.items():
                # key > 0: any tail of one or more tokens; key < 0: exactly one more token
                depth = key if key > 0 else -key
                parts = subject.split(SEP, depth)  # one C call finds the head's end
                if len(parts) <= depth:
                    continue
                tail = parts[-1]
                result = table.get(subject[:len(subject) - len(tail) - 1])
                # the tail must be real tokens: none empty, and just one for key < 0
                if (result is not None and tail and tail[0] != SEP and tail[-1] != SEP
                        and (SEP not in tail if key < 0 else SEP + SEP not in tail)):
                    self._hits += 1
                    return result
        result = self._match_miss(subject, store=False)
        if self._cache_on:
            self._remember_head(subject, result)
        return result

    def _remember_head(self, subject: str, result: Any) -> None:
        """Cache `result` under the shortest head of `subject` below which every node the
        walk reaches has no literal and no `*` child (only `>` or nothing): then the answer
        holds for any subject that starts with that head and has at least one more token."""
        tokens = subject.split(SEP)
        if "" in tokens or len(tokens) > _MAX_RECURSION:
            return
        frontier = [self._root]
        last = len(tokens) - 1
        for depth in range(len(tokens)):
            key = 0
            if all(not n.lits and n.pwc is None for n in frontier):
                key = depth  # only `>` below: any tail
            elif depth == last and all(not n.lits for n in frontier):
                key = -depth  # `*` or `>` for the last token: any single last token
            if key:
                group = self._heads.setdefault(subject[:1], {})
                table = group.get(key)
                if table is None:
                    table = group[key] = {}
                    # deepest heads first: a deep head is the more specific one (an ack's
                    # stream.consumer), a shallow one in the same group is rarer (the API)
                    self._heads[subject[:1]] = dict(sorted(group.items(), key=lambda kv: -abs(kv[0])))
                if len(table) >= self._cache_max:
                    table.clear()
                table[SEP.join(tokens[:depth])] = result
                return
            if depth == 0 and not frontier[0].lits and frontier[0].pwc is None:
                return
            token = tokens[depth]
            nxt: list[_Node] = []
            for n in frontier:
                child = n.lits.get(token)
                if child is not None:
                    nxt.append(child)
                if n.pwc is not None:
                    nxt.append(n.pwc)
            frontier = nxt

    def _match_miss(self, subject: str, store: bool = True) -> Any:
        self._misses += 1
        tokens = subject.split(SEP)
        if "" in tokens:
            return EMPTY_RESULT
        found: list[_Node] = []
        if len(tokens) <= _MAX_RECURSION:
            _walk(self._root, tokens, 0, found)
        else:
            _walk_wide(self._root, tokens, found)
        if not found:
            result: Any = EMPTY_RESULT
        elif len(found) == 1 and not found[0].qsubs:
            # The common case: one filter node, plain subscribers only.
            psubs = found[0].psubs
            result = (tuple(psubs.values()), ()) if psubs else EMPTY_RESULT
        else:
            result = _collect(found)
        if self._cache_on and store:
            cache = self._cache
            cache[subject] = result
            if len(cache) > self._cache_max:
                self._shrink_cache()
        return result

    def _shrink_cache(self) -> None:
        # Dicts keep insertion order, so the first keys are the oldest entries.
        cache = self._cache
        drop = len(cache) - self._cache_max // 2
        for key in list(islice(cache, drop)):
            del cache[key]

    def _cache_add(self, subject: str, tokens: list[str], sub: S) -> None:
        cache = self._cache
        if FWC not in tokens and PWC not in tokens:
            # A literal filter can only be in the entry keyed by itself.
            result = cache.get(subject)
            if result is not None:
                cache[subject] = _with_sub(result, sub)
            return
        for key in _keys_matching(cache, tokens):
            cache[key] = _with_sub(cache[key], sub)

    def _cache_evict(self, subject: str) -> None:
        cache = self._cache
        if is_literal(subject):
            cache.pop(subject, None)
            return
        for key in _keys_matching(cache, subject.split(SEP)):
            del cache[key]

    def _remove_from_trie(self, sub: S) -> bool:
        subject = sub.subject
        if not isinstance(subject, str) or not subject:
            return False
        path: list[tuple[_Node, str]] = []
        node = self._root
        for t in subject.split(SEP):
            child = node.child(t)
            if child is None:
                return False
            path.append((node, t))
            node = child
        key = id(sub)
        queue = sub.queue
        if queue is None:
            psubs = node.psubs
            if not psubs or psubs.get(key) is not sub:
                return False
            del psubs[key]
            if not psubs:
                node.psubs = None
        else:
            qsubs = node.qsubs
            if not qsubs:
                return False
            members = qsubs.get(queue)
            if members is None or members.get(key) is not sub:
                return False
            del members[key]
            if not members:
                del qsubs[queue]
                if not qsubs:
                    node.qsubs = None
        self._count -= 1
        self._removes += 1
        # Prune the branch bottom-up while it holds nothing.
        for parent, t in reversed(path):
            if not node.is_empty():
                break
            parent.drop_child(t)
            node = parent
        return True
