"""Big tables a store drops (a purge or delete of a big stream) are freed a chunk per loop pass,
not in one pass: the store answers at once as if they were gone, and the old entries go over
the following passes, at most _RELEASE_CHUNK each."""

from __future__ import annotations

import asyncio

from pyjetstream.jetstream.store import _core
from pyjetstream.jetstream.store.memory import MemoryStore

N = 3 * _core._RELEASE_CHUNK + 10


async def test_release_later_frees_a_chunk_per_loop_pass() -> None:
    a = {i: (i, "s", b"", b"x", i) for i in range(N)}
    b = {i: i for i in range(N)}
    _core.release_later(a, b, {1: 2})  # the small one is left to the caller
    assert len(a) + len(b) == 2 * N  # nothing freed inside the caller's pass
    seen = []
    while len(a) + len(b):
        before = len(a) + len(b)
        await asyncio.sleep(0)
        seen.append(before - len(a) - len(b))
    assert max(seen) == _core._RELEASE_CHUNK and sum(seen) == 2 * N


def test_outside_a_loop_the_caller_frees_at_once() -> None:
    a = {i: i for i in range(N)}
    _core.release_later(a)  # no loop: nothing scheduled, nothing kept
    assert len(a) == N


async def test_a_purged_memory_store_is_empty_at_once_and_usable() -> None:
    st = MemoryStore()
    for i in range(N):
        st.store_msg(f"s.{i}", b"", b"x", i + 1, ttl_ns=10 if i % 2 else 0)
    assert st.purge() == N
    assert (st.num_msgs, st.first_seq, st.subject_names(), st.load_msg(1)) == (0, N + 1, [], None)
    assert st.store_msg("s.1", b"", b"y", N + 5) == N + 1
    assert st.expired(N + 1000) == [] and st.subject_msgs("s.1") == 1
    await asyncio.sleep(0)
    st.delete()
