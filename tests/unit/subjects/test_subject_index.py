"""SubjectIndex: examples, then hypothesis properties against the reference matcher.

Every test body runs once per index configuration (cache off, cache on, and a tiny cache that
is forever shrinking), so the cache can never hide a bug in the trie or add one of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subject_reference import reference_match

from pyjetstream.subjects import EMPTY_RESULT, SubjectIndex
from pyjetstream.subjects import index as index_module


class Sub:
    """A subscription stand-in: identity semantics, like the server's."""

    __slots__ = ("subject", "queue", "tag")

    def __init__(self, subject: str, queue: str | None = None, tag: int = 0) -> None:
        self.subject = subject
        self.queue = queue
        self.tag = tag

    def __repr__(self) -> str:
        return f"Sub({self.subject!r}, {self.queue!r}, #{self.tag})"


CONFIGS = {"nocache": dict(cache=False), "cache": dict(cache=True), "tinycache": dict(cache=True, cache_max=3)}


def walker(config: str):
    """For "...-wide" configurations, force the non-recursive walker used for long subjects."""
    return mock.patch.object(index_module, "_MAX_RECURSION", 0) if config.endswith("-wide") else nullcontext()


PROPERTY_CONFIGS = [*CONFIGS, "nocache-wide", "cache-wide"]


@pytest.fixture(params=list(CONFIGS))
def make_index(request: pytest.FixtureRequest):
    return lambda: SubjectIndex(**CONFIGS[request.param])


def ids(subs: Sequence[Sub]) -> list[int]:
    return sorted(id(s) for s in subs)


def normalize(result) -> tuple[list[int], dict[str, list[int]]]:
    """(sorted plain ids, queue name -> sorted member ids), checking the group invariants."""
    plain, groups = result
    assert isinstance(plain, tuple) and isinstance(groups, tuple)
    by_queue: dict[str, list[int]] = {}
    for group in groups:
        assert isinstance(group, tuple) and len(group) > 0, "groups are non-empty tuples"
        names = {m.queue for m in group}
        assert len(names) == 1 and None not in names, f"one queue name per group: {names}"
        name = names.pop()
        assert name not in by_queue, f"queue {name!r} split over two groups"
        by_queue[name] = ids(group)
    assert all(s.queue is None for s in plain)
    return ids(plain), by_queue


def expected(subs: list[Sub], subject: str) -> tuple[list[int], dict[str, list[int]]]:
    matched = [s for s in subs if reference_match(s.subject, subject)]
    by_queue: dict[str, list[int]] = {}
    for s in matched:
        if s.queue is not None:
            by_queue.setdefault(s.queue, []).append(id(s))
    return ids([s for s in matched if s.queue is None]), {q: sorted(v) for q, v in by_queue.items()}


# -- examples --------------------------------------------------------------------------------


def test_literal_and_wildcards(make_index) -> None:
    ix = make_index()
    subs = [Sub(f) for f in ["foo.bar", "foo.*", "foo.>", ">", "*.bar", "foo", "foo.bar.baz"]]
    for s in subs:
        ix.insert(s)
    by = {s.subject: s for s in subs}
    for subject, want in [
        ("foo.bar", ["foo.bar", "foo.*", "foo.>", ">", "*.bar"]),
        ("foo", ["foo", ">"]),
        ("foo.baz", ["foo.*", "foo.>", ">"]),
        ("foo.bar.baz", ["foo.>", ">", "foo.bar.baz"]),
        ("x.bar", [">", "*.bar"]),
        ("x", [">"]),
    ]:
        for _ in range(2):  # second time from the cache, where there is one
            plain, groups = ix.match(subject)
            assert ids(plain) == ids([by[w] for w in want]), subject
            assert groups == ()


def test_queue_groups_are_grouped_by_name_across_filters(make_index) -> None:
    ix = make_index()
    q1 = [Sub("orders.new", "q1"), Sub("orders.*", "q1"), Sub("orders.>", "q1")]
    q2 = [Sub("orders.new", "q2")]
    plain = [Sub("orders.new"), Sub("orders.*")]
    other = [Sub("orders.old", "q1"), Sub("orders.new.x", "q2")]
    for s in q1 + q2 + plain + other:
        ix.insert(s)
    for _ in range(2):
        got = normalize(ix.match("orders.new"))
        assert got == (ids(plain), {"q1": ids(q1), "q2": ids(q2)})


def test_empty_results_share_one_sentinel(make_index) -> None:
    ix = make_index()
    assert ix.match("foo") is EMPTY_RESULT
    ix.insert(Sub("foo.bar"))
    assert ix.match("foo") is EMPTY_RESULT
    assert ix.match("foo.baz") is EMPTY_RESULT
    assert ix.match("foo.bar") is not EMPTY_RESULT
    assert not ix.has_interest("foo.baz")
    assert ix.has_interest("foo.bar")


@pytest.mark.parametrize("subject", ["", ".", "foo.", ".foo", "foo..bar", "..", "foo.bar."])
def test_subjects_with_empty_tokens_match_nothing(make_index, subject: str) -> None:
    ix = make_index()
    for f in [">", "*", "foo.>", "*.*", "foo.*.bar", "foo.*"]:
        ix.insert(Sub(f))
    assert ix.match(subject) is EMPTY_RESULT
    assert not ix.has_interest(subject)


def test_wildcard_tokens_in_published_subject_compare_literally(make_index) -> None:
    ix = make_index()
    star, gt, lit = Sub("a.*"), Sub("a.>"), Sub("a.b")
    for s in (star, gt, lit):
        ix.insert(s)
    assert ids(ix.match("a.*")[0]) == ids([star, gt])
    assert ids(ix.match("a.>")[0]) == ids([star, gt])


@pytest.mark.parametrize(
    "subject", ["", "foo..bar", ".foo", "foo.", "foo.>.bar", ">.foo", "foo bar", "foo\tbar", "a.\n"]
)
def test_insert_rejects_invalid_subjects(make_index, subject: str) -> None:
    ix = make_index()
    with pytest.raises(ValueError, match="^sublist: invalid subject$"):
        ix.insert(Sub(subject))
    assert ix.count == 0
    assert list(ix.all_subscriptions()) == []


@pytest.mark.parametrize("queue", ["", "a b", "q\r\n"])
def test_insert_rejects_invalid_queue_names(make_index, queue: str) -> None:
    ix = make_index()
    with pytest.raises(ValueError, match="^sublist: invalid subject$"):
        ix.insert(Sub("foo", queue))
    assert ix.count == 0


def test_remove_by_identity(make_index) -> None:
    ix = make_index()
    a, b = Sub("foo.*"), Sub("foo.*")
    ix.insert(a)
    ix.insert(b)
    assert ix.count == 2
    assert ix.match("foo.x")[0] and len(ix.match("foo.x")[0]) == 2
    assert ix.remove(Sub("foo.*")) is False, "an equal-looking object is not the stored one"
    assert ix.remove(a) is True
    assert ix.remove(a) is False
    assert ix.match("foo.x")[0] == (b,)
    assert ix.remove(b) is True
    assert ix.match("foo.x") is EMPTY_RESULT
    assert ix.count == 0


def test_remove_of_never_inserted_or_invalid_is_false(make_index) -> None:
    ix = make_index()
    ix.insert(Sub("foo.bar", "q"))
    assert ix.remove(Sub("foo.bar")) is False
    assert ix.remove(Sub("foo.bar", "other")) is False
    assert ix.remove(Sub("foo..bar")) is False
    assert ix.remove(Sub("")) is False
    assert ix.remove(Sub("nothing.here.>")) is False
    assert ix.count == 1


def test_insert_twice_is_a_no_op(make_index) -> None:
    ix = make_index()
    s, q = Sub("foo"), Sub("foo", "q")
    for _ in range(3):
        ix.insert(s)
        ix.insert(q)
        assert ix.count == 2
        plain, groups = ix.match("foo")
        assert plain == (s,) and groups == ((q,),)
    assert ix.remove(s) and ix.remove(q)
    assert ix.count == 0


def test_trie_is_pruned_after_removals(make_index) -> None:
    ix = make_index()
    subs = [Sub(f, q) for f in ["a.b.c", "a.*.c", "a.>", "*.b", ">", "a.b.c.d.e"] for q in (None, "q")]
    for s in subs:
        ix.insert(s)
    for s in subs:
        assert ix.remove(s)
    root = ix._root
    assert root.is_empty() and not root.lits and root.pwc is None and root.fwc is None


def test_all_subscriptions_lists_each_once(make_index) -> None:
    ix = make_index()
    subs = [Sub(f, q, i) for i, (f, q) in enumerate(
        [("a", None), ("a", None), ("a", "q"), ("a.*", "q"), ("a.>", None), (">", "r"), ("b.c", None)]
    )]
    for s in subs:
        ix.insert(s)
    assert ids(list(ix.all_subscriptions())) == ids(subs)
    ix.remove(subs[2])
    assert ids(list(ix.all_subscriptions())) == ids(subs[:2] + subs[3:])


def test_remove_batch(make_index) -> None:
    ix = make_index()
    mine = [Sub("a.*"), Sub("a.b", "q"), Sub(">")]
    theirs = [Sub("a.b"), Sub("a.>", "q")]
    for s in mine + theirs:
        ix.insert(s)
    ix.match("a.b")
    assert ix.remove_batch([*mine, Sub("never")]) == 3
    assert ix.count == 2
    assert normalize(ix.match("a.b")) == (ids(theirs[:1]), {"q": ids(theirs[1:])})


def test_stats_counters(make_index) -> None:
    ix = make_index()
    cached = ix._cache_on
    a, b = Sub("a.*"), Sub("a.b", "q")
    ix.insert(a)
    ix.insert(b)
    ix.match("a.b")
    ix.match("a.b")
    ix.match("a.c")
    before = ix.stats()
    assert before["cache_size"] == (min(2, ix._cache_max) if cached else 0)
    ix.remove(a)
    after = ix.stats()
    assert after["subs"] == 1 and after["inserts"] == 2 and after["removes"] == 1
    assert after["matches"] == 3
    assert after["cache_hits"] == (1 if cached else 0)
    assert after["cache_size"] == 0, "removing a.* evicts both a.b and a.c"


def test_cache_hit_returns_the_stored_result() -> None:
    ix: SubjectIndex[Sub] = SubjectIndex(cache=True)
    ix.insert(Sub("foo.*"))
    first = ix.match("foo.bar")
    assert ix.match("foo.bar") is first
    assert ix.stats()["cache_hits"] == 1


def test_cache_stays_bounded() -> None:
    ix: SubjectIndex[Sub] = SubjectIndex(cache=True, cache_max=16)
    s = Sub(">")
    ix.insert(s)
    for i in range(200):
        assert ix.match(f"subj.{i}")[0] == (s,)
        assert ix.stats()["cache_size"] <= 16
    assert ix.stats()["cache_size"] >= 8, "shrinking drops only the older half"
    # the newest entries survive a shrink
    assert ix.match("subj.199")[0] == (s,)
    assert ix.stats()["cache_hits"] == 1


def test_cache_disabled_never_fills() -> None:
    ix: SubjectIndex[Sub] = SubjectIndex(cache=False)
    ix.insert(Sub("foo"))
    for _ in range(3):
        ix.match("foo")
    assert ix.stats()["cache_size"] == 0 and ix.stats()["cache_hits"] == 0


def test_long_subjects_use_the_non_recursive_walker(make_index) -> None:
    # Far past the recursion threshold and deep enough that recursing once per `*` token
    # would hit Python's recursion limit.
    n = 3000
    ix = make_index()
    all_stars = Sub(".".join(["*"] * n))
    stars_then_gt = Sub(".".join(["*"] * (n - 1) + [">"]))
    literal = Sub(".".join(["t"] * n))
    gt, a_gt, short = Sub(">"), Sub("t.>"), Sub("t.*")
    subs = [all_stars, stars_then_gt, literal, gt, a_gt, short]
    for s in subs:
        ix.insert(s)
    for subject in [".".join(["t"] * n), ".".join(["t"] * (n - 1) + ["u"]), ".".join(["t"] * (n + 1)), "t.t"]:
        want = [s for s in subs if reference_match(s.subject, subject)]
        assert ids(ix.match(subject)[0]) == ids(want)
    for s in subs:
        assert ix.remove(s)
    assert ix._root.is_empty()


def test_cache_max_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SubjectIndex(cache_max=0)


# -- properties ------------------------------------------------------------------------------

# Tokens from a tiny alphabet so filters collide, share prefixes and prune each other's nodes.
_lit = st.sampled_from(["a", "b", "c*"])
_ftok = st.sampled_from(["a", "b", "c*", "*", "*"])
_filters = st.builds(
    lambda toks, gt: ".".join(toks + [">"] if gt else toks) or ">",
    st.lists(_ftok, min_size=0, max_size=3),
    st.booleans(),
)
_queues = st.sampled_from([None, None, "q1", "q2"])
_subjects = st.one_of(
    st.lists(_lit, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["", "a..b", ".a", "a.", "a.*", "a.>"]),  # odd subjects must agree too
)
# One operation: insert a new sub, re-insert / remove an existing one (by position), or match.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), _filters, _queues),
        st.tuples(st.just("reinsert"), st.integers(0, 50)),
        st.tuples(st.just("remove"), st.integers(0, 50)),
        st.tuples(st.just("remove_absent"), _filters, _queues),
        st.tuples(st.just("match"), _subjects),
        st.tuples(st.just("match"), _subjects),
    ),
    max_size=60,
)
PROBES = ["a", "b", "c*", "a.a", "a.b", "b.a", "c*.a", "a.a.a", "a.b.c*", "b.b.b.b", "a.a.a.a", "x"]


@pytest.mark.parametrize("config", PROPERTY_CONFIGS)
@settings(max_examples=150, deadline=None)
@given(ops=_ops)
def test_match_equals_reference_under_random_inserts_and_removes(config: str, ops) -> None:
    with walker(config):
        check_random_ops(SubjectIndex(**CONFIGS[config.removesuffix("-wide")]), ops)


def check_random_ops(ix: SubjectIndex[Sub], ops) -> None:
    model: list[Sub] = []
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "insert":
            s = Sub(op[1], op[2], n)
            ix.insert(s)
            model.append(s)
        elif kind == "reinsert" and model:
            ix.insert(model[op[1] % len(model)])
        elif kind == "remove" and model:
            s = model.pop(op[1] % len(model))
            assert ix.remove(s) is True
            assert ix.remove(s) is False
        elif kind == "remove_absent":
            assert ix.remove(Sub(op[1], op[2])) is False
        elif kind == "match":
            assert normalize(ix.match(op[1])) == expected(model, op[1]), op[1]
            # one-off matching (with its last-token cache) must agree at every step too
            assert normalize(ix.match_once(op[1])) == expected(model, op[1]), op[1]
        assert ix.count == len(model)
    for subject in PROBES:
        assert normalize(ix.match_once(subject)) == expected(model, subject), subject
        got = ix.match(subject)
        assert normalize(got) == expected(model, subject), subject
        assert (got is EMPTY_RESULT) == (not expected(model, subject)[0] and not expected(model, subject)[1])
        assert ix.has_interest(subject) == any(reference_match(s.subject, subject) for s in model)
    assert ids(list(ix.all_subscriptions())) == ids(model)
    assert not index_module._NO_CHILDREN, "the leaves' shared child table must stay empty"
    if not model:
        assert ix._root.is_empty()


@pytest.mark.parametrize("config", list(CONFIGS))
@settings(max_examples=60, deadline=None)
@given(
    filters=st.lists(st.tuples(_filters, _queues), min_size=1, max_size=25),
    subjects=st.lists(st.lists(_lit, min_size=1, max_size=4).map(".".join), min_size=1, max_size=10),
)
def test_every_warm_cache_entry_stays_correct_through_churn(config: str, filters, subjects) -> None:
    # Warm the cache with every subject, then insert and remove each filter in turn, checking
    # every subject after every change: an insert must extend each cached entry it matches and
    # a removal must evict them.
    ix: SubjectIndex[Sub] = SubjectIndex(**CONFIGS[config])
    model: list[Sub] = []
    for subject in subjects:
        ix.match(subject)
    for i, (f, q) in enumerate(filters):
        s = Sub(f, q, i)
        ix.insert(s)
        model.append(s)
        for subject in subjects:
            assert normalize(ix.match(subject)) == expected(model, subject)
    for s in list(model):
        model.remove(s)
        ix.remove(s)
        for subject in subjects:
            assert normalize(ix.match(subject)) == expected(model, subject)
    assert ix.count == 0


def test_match_once_answers_like_match_but_never_fills_the_cache() -> None:
    from pyjetstream.subjects import SubjectIndex

    class Sub:
        def __init__(self, subject: str, queue: str | None = None) -> None:
            self.subject = subject
            self.queue = queue

    idx: SubjectIndex[Sub] = SubjectIndex()
    inbox = Sub("_INBOX.abc.*")
    idx.insert(inbox)
    before = idx.stats()["cache_size"]
    plain, queues = idx.match_once("_INBOX.abc.1")
    assert list(plain) == [inbox] and not queues
    assert idx.stats()["cache_size"] == before
    assert idx.match_once("_INBOX.other.1")[0] == ()
    # an entry cached by match() is used by match_once
    idx.match("_INBOX.abc.2")
    assert list(idx.match_once("_INBOX.abc.2")[0]) == [inbox]


def test_match_once_last_token_cache_follows_inserts_and_removes() -> None:
    from pyjetstream.subjects import SubjectIndex

    class S:
        def __init__(self, subject: str) -> None:
            self.subject = subject
            self.queue = None

    idx: SubjectIndex[S] = SubjectIndex()
    acks = S("$JS.ACK.ST.C.>")
    idx.insert(acks)
    assert list(idx.match_once("$JS.ACK.ST.C.1.2.3")[0]) == [acks]
    assert list(idx.match_once("$JS.ACK.ST.C.1.2.4")[0]) == [acks]  # from the last-token cache
    literal = S("$JS.ACK.ST.C.1.2.5")
    idx.insert(literal)  # a literal last token: the answer now depends on it
    assert list(idx.match_once("$JS.ACK.ST.C.1.2.4")[0]) == [acks]
    assert {id(x) for x in idx.match_once("$JS.ACK.ST.C.1.2.5")[0]} == {id(acks), id(literal)}
    idx.remove(acks)
    assert list(idx.match_once("$JS.ACK.ST.C.1.2.4")[0]) == []
    assert list(idx.match_once("$JS.ACK.ST.C.1.2.")[0]) == []  # an empty last token matches nothing


def test_match_once_answers_ack_and_inbox_subjects_from_their_head() -> None:
    from pyjetstream.subjects import SubjectIndex

    class S:
        def __init__(self, subject: str) -> None:
            self.subject = subject
            self.queue = None

    idx: SubjectIndex[S] = SubjectIndex()
    acks, inbox = S("$JS.ACK.ST.C.>"), S("_INBOX.abc.*")
    idx.insert(acks)
    idx.insert(inbox)
    assert list(idx.match_once("$JS.ACK.ST.C.1.7.7.1700.0")[0]) == [acks]
    assert list(idx.match_once("_INBOX.abc.1")[0]) == [inbox]
    hits = idx.stats()["cache_hits"]
    assert list(idx.match_once("$JS.ACK.ST.C.1.8.8.1701.0")[0]) == [acks]
    assert list(idx.match_once("_INBOX.abc.2")[0]) == [inbox]
    assert idx.stats()["cache_hits"] == hits + 2
    # the head answers only subjects of the shape it was learnt from
    assert list(idx.match_once("_INBOX.abc.2.3")[0]) == []
    assert list(idx.match_once("$JS.ACK.ST.C")[0]) == []
    assert list(idx.match_once("$JS.ACK.ST.C.1..8")[0]) == []
