"""The StreamStore contract, run against every backend (memory, file, file with tiny segments).

Each behaviour is checked live and, where state must survive, again after `reopen`.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from pyjetstream.jetstream.store import ErrStoreClosed, SimpleState, StoreError
from pyjetstream.jetstream.store.base import StreamStore

T0 = 1_700_000_000_000_000_000


def both(store, reopen):
    """The store itself, then the same data through a reopened store (for file backends)."""
    yield store
    yield reopen(store)


def fill(st, subjects, n, size=8, t0=T0):
    seqs = []
    for i in range(n):
        subj = subjects[i % len(subjects)]
        seqs.append(st.store_msg(subj, b"", b"%d" % i + b"x" * size, t0 + i))
    return seqs


def test_backend_has_every_member_of_the_interface(store):
    """mypy holds the backends to StreamStore statically; this does at run time. MemoryStore once
    lacked write_out (each ack batch on a memory work queue raised), and the interface declared an
    expired_before that the stream never called while the stream called an undeclared expired."""
    members = [n for n in vars(StreamStore) if not n.startswith("_")]
    assert "expired" in members and "write_out" in members
    assert [n for n in members if not hasattr(type(store), n)] == []
    store.store_msg("a", b"", b"", T0)
    store.write_out()
    assert store.expired(T0 + 10, max_age_ns=5) == [1]


def test_store_and_load(store, reopen):
    hdr = b"NATS/1.0\r\nA: b\r\n\r\n"
    assert store.store_msg("foo", hdr, b"hello", T0) == 1
    assert store.store_msg("bar", b"", b"", T0 + 5) == 2
    for st in both(store, reopen):
        m = st.load_msg(1)
        assert (m.seq, m.subject, m.hdr, m.data, m.ts) == (1, "foo", hdr, b"hello", T0)
        m2 = st.load_msg(2)
        assert (m2.subject, m2.hdr, m2.data, m2.ts) == ("bar", b"", b"", T0 + 5)
        assert st.load_msg(3) is None and st.load_msg(0) is None
        s = st.state()
        assert (s.msgs, s.first_seq, s.last_seq, s.first_ts, s.last_ts) == (2, 1, 2, T0, T0 + 5)
        assert s.bytes == st.msg_size("foo", hdr, b"hello") + st.msg_size("bar", b"", b"")
        assert s.num_subjects == 2 and s.num_deleted == 0


def test_empty_state_and_first_seq(backend):
    st = backend.open(first_seq=100)
    s = st.state()
    assert (s.msgs, s.first_seq, s.last_seq, s.first_ts) == (0, 100, 99, 0)
    assert st.store_msg("a", b"", b"1", T0) == 100
    st = backend.reopen(st)
    assert st.state().first_seq == 100 and st.state().last_seq == 100
    assert st.store_msg("a", b"", b"2", T0) == 101


def test_load_next_with_filters(store, reopen):
    subjects = ["orders.eu.new", "orders.us.new", "orders.eu.done", "stock.x"]
    fill(store, subjects, 40)
    for st in both(store, reopen):
        assert st.load_next_msg("", 1).seq == 1
        assert st.load_next_msg(">", 7).seq == 7
        assert st.load_next_msg("orders.us.new", 1).seq == 2
        assert st.load_next_msg("orders.us.new", 3).seq == 6
        assert st.load_next_msg("orders.*.done", 4).seq == 7
        assert st.load_next_msg("orders.eu.>", 4).seq == 5
        assert st.load_next_msg("*.x", 1).seq == 4
        assert st.load_next_msg("stock.x", 40).seq == 40
        assert st.load_next_msg("stock.x", 41) is None
        assert st.load_next_msg("nope", 1) is None
        assert st.load_next_msg("nope.*", 1) is None
        assert st.load_next_msg("orders", 1) is None  # a literal matches only itself
        assert st.load_next_msg("", 0).seq == 1


def test_load_next_sparse_wildcard_jumps(store):
    # One rare subject among many others: the filtered load must still find it.
    for i in range(300):
        store.store_msg(f"busy.{i % 7}", b"", b"x", T0 + i)
    store.store_msg("rare.one", b"", b"r", T0 + 300)
    for i in range(50):
        store.store_msg("busy.1", b"", b"x", T0 + 400 + i)
    assert store.load_next_msg("rare.*", 1).seq == 301
    assert store.load_next_msg("rare.>", 302) is None
    assert store.load_next_msg("*.one", 1).data == b"r"


def test_load_last_and_prev(store, reopen):
    fill(store, ["a.1", "a.2", "b"], 9)
    store.remove_msg(9)
    for st in both(store, reopen):
        assert st.load_last_msg("").seq == 8
        assert st.load_last_msg("a.1").seq == 7
        assert st.load_last_msg("a.*").seq == 8
        assert st.load_last_msg("b").seq == 6  # 9 was removed
        assert st.load_last_msg("zzz") is None
        assert st.load_prev_msg(9).seq == 8
        assert st.load_prev_msg(5).seq == 5
        assert st.load_prev_msg(0) is None


def test_remove_interior_and_first(store, reopen):
    fill(store, ["a", "b"], 10)
    assert store.remove_msg(5)
    assert not store.remove_msg(5)
    assert not store.remove_msg(11)
    assert store.remove_msg(1)
    assert store.remove_msg(2)
    for st in both(store, reopen):
        s = st.state(deleted=True)
        assert (s.msgs, s.first_seq, s.last_seq, s.num_deleted) == (7, 3, 10, 1)
        assert s.deleted == [5]
        assert s.first_ts == T0 + 2
        assert st.load_msg(5) is None and st.load_msg(1) is None
        assert st.load_next_msg("", 4).seq == 4
        assert st.load_next_msg("", 5).seq == 6
        assert st.subjects_state("") == {"a": SimpleState(3, 3, 9), "b": SimpleState(4, 4, 10)}


def test_remove_last_keeps_last_seq(store, reopen):
    fill(store, ["a"], 3)
    for seq in (3, 2, 1):
        assert store.remove_msg(seq)
    for st in both(store, reopen):
        s = st.state()
        assert (s.msgs, s.first_seq, s.last_seq, s.num_subjects, s.bytes) == (0, 4, 3, 0, 0)
    st = reopen(st)
    assert st.store_msg("a", b"", b"", T0) == 4


def test_erase(store, reopen, backend):
    secret = b"TOP-SECRET-PAYLOAD"
    store.store_msg("a", b"", b"keep", T0)
    store.store_msg("a", b"", secret, T0 + 1)
    store.store_msg("a", b"", b"keep", T0 + 2)
    assert store.remove_msg(2, erase=True)
    st = reopen(store)
    assert st.load_msg(2) is None
    assert st.state().msgs == 2 and st.state(deleted=True).deleted == [2]
    if backend.kind != "memory":
        import os

        for name in os.listdir(st.directory):
            with open(os.path.join(st.directory, name), "rb") as f:
                assert secret not in f.read(), name


def test_purge_all_keeps_sequence(store, reopen):
    fill(store, ["a", "b"], 10)
    assert store.purge() == 10
    for st in both(store, reopen):
        s = st.state()
        assert (s.msgs, s.bytes, s.first_seq, s.last_seq, s.num_subjects) == (0, 0, 11, 10, 0)
        assert st.load_next_msg("", 1) is None
    st = reopen(st)
    assert st.store_msg("a", b"", b"", T0) == 11
    assert st.state().first_seq == 11


def test_purge_subject_seq_keep(store, reopen):
    fill(store, ["a", "b", "c.x", "c.y"], 20)  # a: 1,5,..17  b: 2,6,..18
    assert store.purge("a") == 5
    assert store.purge("b", keep=2) == 3  # keeps 14, 18
    assert store.purge("c.*", seq=9) == 4  # c.x 3,7  c.y 4,8
    for st in both(store, reopen):
        s = st.state()
        assert s.msgs == 20 - 5 - 3 - 4
        assert "a" not in st.subjects_state("")
        assert st.subjects_state("b") == {"b": SimpleState(2, 14, 18)}
        assert st.subjects_state("c.*") == {"c.x": SimpleState(3, 11, 19), "c.y": SimpleState(3, 12, 20)}
        assert s.first_seq == 11


def test_purge_all_with_seq_and_keep(store, reopen):
    fill(store, ["a", "b"], 10)
    assert store.purge(seq=4) == 3
    assert store.state().first_seq == 4
    assert store.purge(keep=3) == 4
    for st in both(store, reopen):
        s = st.state()
        assert (s.msgs, s.first_seq, s.last_seq) == (3, 8, 10)
    assert st.purge(keep=5) == 0


def test_compact(store, reopen):
    fill(store, ["a", "b"], 10)
    store.remove_msg(6)
    assert store.compact(7) == 5
    assert store.compact(3) == 0
    for st in both(store, reopen):
        s = st.state()
        assert (s.msgs, s.first_seq, s.last_seq, s.num_deleted) == (4, 7, 10, 0)
        assert st.subjects_state("") == {"a": SimpleState(2, 7, 9), "b": SimpleState(2, 8, 10)}
    store = st
    assert store.compact(20) == 4
    for st in both(store, reopen):
        s = st.state()
        assert (s.msgs, s.first_seq, s.last_seq) == (0, 20, 19)


def test_subject_first_last_repair(store, reopen):
    fill(store, ["a", "b", "c"], 30)
    for seq in (1, 4, 28, 25):  # the first two and the last two "a" messages
        assert store.remove_msg(seq)
    for st in both(store, reopen):
        assert st.subjects_state("a") == {"a": SimpleState(6, 7, 22)}
        assert st.load_last_msg("a").seq == 22
        assert st.load_next_msg("a", 1).seq == 7
        assert st.filtered_state(1, "a") == SimpleState(6, 7, 22)


def test_filtered_state(store, reopen):
    fill(store, ["x.a", "x.b", "y"], 30)
    store.remove_msg(4)
    for st in both(store, reopen):
        assert st.filtered_state(1, "") == SimpleState(29, 1, 30)
        assert st.filtered_state(10, ">") == SimpleState(21, 10, 30)
        assert st.filtered_state(1, "x.a") == SimpleState(9, 1, 28)
        assert st.filtered_state(8, "x.a") == SimpleState(7, 10, 28)
        assert st.filtered_state(1, "x.*") == SimpleState(19, 1, 29)
        assert st.filtered_state(20, "x.>") == SimpleState(7, 20, 29)
        assert st.filtered_state(31, "") == SimpleState(0, 0, 0)
        assert st.filtered_state(1, "nope") == SimpleState(0, 0, 0)


def test_msg_size_matches_nats_server(store, backend):
    # nats-server: memory store subject+hdr+msg+16; file store its record size, 22+subj+msg+8
    # and 4+hdr more with headers.
    if backend.kind == "memory":
        assert store.msg_size("foo", b"", b"hello") == 3 + 5 + 16
        assert store.msg_size("foo", b"NATS/1.0\r\n\r\n", b"hello") == 3 + 12 + 5 + 16
    else:
        assert store.msg_size("foo", b"", b"hello") == 22 + 3 + 5 + 8
        assert store.msg_size("foo", b"NATS/1.0\r\n\r\n", b"hello") == 22 + 3 + 4 + 12 + 5 + 8
    store.store_msg("foo", b"NATS/1.0\r\n\r\n", b"hello", T0)
    store.store_msg("foo", b"", b"hello", T0)
    expect = store.msg_size("foo", b"NATS/1.0\r\n\r\n", b"hello") + store.msg_size("foo", b"", b"hello")
    assert store.state().bytes == expect
    store.remove_msg(1)
    assert store.state().bytes == store.msg_size("foo", b"", b"hello")


def test_num_subjects_and_bytes(store):
    seqs = fill(store, ["a", "b", "c"], 6)
    sizes = {s: store.msg_size(m.subject, m.hdr, m.data) for s in seqs if (m := store.load_msg(s))}
    assert store.state().bytes == sum(sizes.values())
    store.purge("c")
    s = store.state()
    assert (s.num_subjects, s.msgs) == (2, 4)
    assert s.bytes == sum(sizes.values()) - sizes[3] - sizes[6]


def test_max_age_expiry(store, reopen):
    for i in range(10):
        store.store_msg("a", b"", b"", T0 + i * 1000)
    for st in both(store, reopen):
        assert st.expired(T0 + 999, max_age_ns=1000) == []
        assert st.expired(T0 + 3000, max_age_ns=1000) == [1, 2, 3]
        assert st.expired(T0 + 5000, max_age_ns=2000) == [1, 2, 3, 4]


def test_ttl_expiry(store, reopen):
    store.store_msg("a", b"", b"", T0)
    store.store_msg("t", b"", b"", T0, ttl_ns=500)
    store.store_msg("t", b"", b"", T0 + 1, ttl_ns=10_000)
    store.store_msg("never", b"", b"", T0, ttl_ns=-1)
    store.store_msg("a", b"", b"", T0 + 2000)
    st = reopen(store)
    assert st.expired(T0 + 400) == []
    assert st.expired(T0 + 600) == [2]
    # max_age takes the untagged messages, TTL governs the others; "never" never expires.
    assert st.expired(T0 + 1500, max_age_ns=1000) == [1]
    assert st.expired(T0 + 20_000) == [3]
    assert st.expired(T0 + 5000, max_age_ns=1) == [1, 5]


def test_expired_in_bounded_steps(store, reopen):
    """limit: at most that many per call, TTL'd and aged alike; removing them and asking again
    gives the next ones, until none is left (a backlog removed a step at a time)."""
    for i in range(10):
        store.store_msg("a", b"", b"", T0 + i)
    store.store_msg("t", b"", b"", T0, ttl_ns=5)
    store.store_msg("t", b"", b"", T0, ttl_ns=6)
    st = reopen(store)
    got: list[list[int]] = []
    while step := st.expired(T0 + 1000, max_age_ns=100, limit=4):
        got.append(step)
        for seq in step:
            assert st.remove_msg(seq)
    assert all(len(g) <= 4 for g in got) and len(got) == 3
    assert sorted(s for g in got for s in g) == list(range(1, 13))
    assert st.state().msgs == 0


def test_ttl_of_removed_message_is_not_reported(store, reopen):
    store.store_msg("t", b"", b"", T0, ttl_ns=100)
    store.store_msg("t", b"", b"", T0, ttl_ns=300)
    store.store_msg("u", b"", b"", T0)
    assert store.next_ttl_deadline() == T0 + 100
    store.remove_msg(1)
    st = reopen(store)
    assert st.next_ttl_deadline() == T0 + 300
    assert st.expired(T0 + 1000) == [2]
    assert st.next_ttl_deadline() == 0


def test_skip_msgs(store, reopen):
    store.skip_msgs(1, 5)
    s = store.state()
    assert (s.msgs, s.first_seq, s.last_seq) == (0, 6, 5)
    assert store.store_msg("a", b"", b"", T0) == 6
    store.skip_msgs(7, 3)
    assert store.store_msg("a", b"", b"", T0) == 10
    with pytest.raises(StoreError):
        store.skip_msgs(5, 1)
    for st in both(store, reopen):
        s = st.state(deleted=True)
        assert (s.msgs, s.first_seq, s.last_seq, s.num_deleted) == (2, 6, 10, 3)
        assert s.deleted == [7, 8, 9]
        assert st.load_next_msg("", 7).seq == 10


def test_large_skip_then_store(store, reopen):
    store.store_msg("a", b"", b"1", T0)
    store.skip_msgs(2, 1_000_000)
    assert store.store_msg("a", b"", b"2", T0) == 1_000_002
    for st in both(store, reopen):
        assert st.load_next_msg("a", 2).seq == 1_000_002
        assert st.state().num_deleted == 1_000_000
        assert st.load_prev_msg(999_999).seq == 1


def test_commit_sync_and_async(store):
    done = []
    store.store_msg("a", b"", b"", T0)
    store.commit(lambda: done.append("sync"))

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        for i in range(50):
            store.store_msg("a", b"", b"", T0)
            store.commit(lambda i=i: done.append(i))
        store.commit(lambda: fut.set_result(True))
        await asyncio.wait_for(fut, 10)

    asyncio.run(main())
    assert done == ["sync", *range(50)]


def test_closed_store_raises(store):
    store.store_msg("a", b"", b"", T0)
    store.close()
    with pytest.raises(ErrStoreClosed):
        store.store_msg("a", b"", b"", T0)
    with pytest.raises(ErrStoreClosed):
        store.load_msg(1)


def test_many_segments_roundtrip(store, reopen):
    data = [bytes([i % 251]) * (i % 300) for i in range(600)]
    for i, d in enumerate(data):
        store.store_msg(f"s.{i % 5}", b"NATS/1.0\r\n\r\n" if i % 2 else b"", d, T0 + i)
    for seq in range(3, 600, 7):
        store.remove_msg(seq)
    for st in both(store, reopen):
        for i, d in enumerate(data):
            m = st.load_msg(i + 1)
            if (i + 1) % 7 == 3 and i + 1 >= 3:
                assert m is None
            else:
                assert m.data == d and m.subject == f"s.{i % 5}" and m.ts == T0 + i


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_randomized_against_model(backend, seed):
    """Random operations on this backend and on a plain-Python model must agree, across reopens."""
    rnd = random.Random(seed)
    st = backend.open()
    model: dict[int, tuple[str, bytes]] = {}
    last = 0
    # Long and short names: stores may search long subjects differently from short ones.
    subjects = ["alpha.1", "alpha.2", "b.1", "c", "orders.eu.new"]
    for step in range(1500):
        op = rnd.random()
        if op < 0.6:
            subj = rnd.choice(subjects)
            data = rnd.randbytes(rnd.randint(0, 60))
            last = st.store_msg(subj, b"", data, T0 + step)
            model[last] = (subj, data)
        elif op < 0.8 and model:
            seq = rnd.choice(list(model))
            assert st.remove_msg(seq, erase=rnd.random() < 0.2)
            del model[seq]
        elif op < 0.83:
            subj = rnd.choice(subjects + ["alpha.*", ">"])
            keep = rnd.choice([0, 0, 1, 3])
            from pyjetstream.jetstream.store._match import matcher

            match = matcher(subj)
            cand = sorted(s for s, (n, _d) in model.items() if match(n))
            drop = cand[: max(len(cand) - keep, 0)] if keep else cand
            assert st.purge(subj, keep=keep) == len(drop)
            for s in drop:
                del model[s]
        elif op < 0.85 and model:
            floor = rnd.randint(min(model), max(model) + 1)
            gone = [s for s in model if s < floor]
            assert st.compact(floor) == len(gone)
            for s in gone:
                del model[s]
        elif op < 0.87:
            n = rnd.randint(1, 5)
            st.skip_msgs(last + 1, n)
            last += n
        elif op < 0.89:
            st = backend.reopen(st)
        else:
            start = rnd.randint(1, last + 2)
            filt = rnd.choice(subjects + ["alpha.*", ">", "*.1", "orders.>"])
            from pyjetstream.jetstream.store._match import matcher

            match = matcher(filt)
            want = min((s for s, (n, _d) in model.items() if s >= start and match(n)), default=None)
            got = st.load_next_msg(filt, start)
            assert (got.seq if got else None) == want, (step, filt, start)
            hits = sorted(s for s, (n, _d) in model.items() if s >= start and match(n))
            want_fs = SimpleState(len(hits), hits[0], hits[-1]) if hits else SimpleState(0, 0, 0)
            assert st.filtered_state(start, filt) == want_fs, (step, filt, start)
            every = [s for s, (n, _d) in model.items() if match(n)]
            got_last = st.load_last_msg(filt)
            assert (got_last.seq if got_last else None) == (max(every) if every else None), step
        s = st.state()
        assert s.msgs == len(model), step
        assert s.bytes == sum(st.msg_size(n, b"", d) for n, d in model.values()), step
        assert s.last_seq == last, step
        assert s.first_seq == (min(model) if model else last + 1), step
    st = backend.reopen(st)
    for seq, (subj, data) in model.items():
        m = st.load_msg(seq)
        assert m is not None and (m.subject, m.data) == (subj, data)
    per: dict[str, list[int]] = {}
    for seq, (subj, _d) in sorted(model.items()):
        per.setdefault(subj, []).append(seq)
    assert st.subjects_state("") == {k: SimpleState(len(v), v[0], v[-1]) for k, v in per.items()}


def test_kv_history_keeps_subject_first_exact(store, reopen):
    # As a stream with max_msgs_per_subject=3 does: after each store, drop the key's oldest.
    keys = [f"kv.key{i}" for i in range(7)]
    seqs: dict[str, list[int]] = {k: [] for k in keys}
    for i in range(300):
        k = keys[(i * 5) % 7] if i % 3 else keys[i % 7]
        seqs[k].append(store.store_msg(k, b"", b"%d" % i, T0 + i))
        ss = store.subjects_state(k)[k]
        while ss.msgs > 3:
            assert ss.first == seqs[k][0]
            assert store.remove_msg(ss.first)
            seqs[k].pop(0)
            ss = store.subjects_state(k)[k]
        assert (ss.msgs, ss.first, ss.last) == (len(seqs[k]), seqs[k][0], seqs[k][-1])
        if i == 150:
            store = reopen(store)
    for st in both(store, reopen):
        assert st.subjects_state("kv.>") == {k: SimpleState(len(v), v[0], v[-1]) for k, v in seqs.items()}
        for k, v in seqs.items():
            assert st.load_next_msg(k, 1).seq == v[0]
            assert st.load_last_msg(k).seq == v[-1]
