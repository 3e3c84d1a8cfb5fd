"""Kill -9 a key-value style writer many times: segment rewrites and tombstones must stay safe.

The child keeps one message per key (each update removes the key's previous message, as a KV
bucket with history 1 does) plus "pin" messages that are never removed, with tiny segments so
that sealed segments are rewritten often. After each SIGKILL the parent reopens the store and
checks, against what the child reported durable: every pin is there; for every key the durable
version is there or a newer one is; no key has a version older than its durable one; the
per-subject table agrees with the messages actually stored.
"""

from __future__ import annotations

import random
import time

import pytest

from pyjetstream.jetstream.store import FileStore, SimpleState

from .child_kill import run_until_killed

BLOCK = 4096

CHILD = r"""
import asyncio, random, sys
from pyjetstream.jetstream.store import FileStore

def payload(subject, seq):
    return b"%s|%d|" % (subject.encode(), seq) + b"." * (seq % 90)

async def main(directory, seed, block):
    rnd = random.Random(seed)
    st = FileStore(directory, block_size=block)
    latest = {}
    for subj, ss in st.subjects_state("kv.>").items():
        latest[subj] = ss.last
        seq = ss.first
        while seq < ss.last:  # a crash may leave an older version whose removal was not durable
            st.remove_msg(seq)
            nxt = st.load_next_msg(subj, seq + 1)
            seq = nxt.seq if nxt else ss.last
    out = sys.stdout
    out.write("R %d\n" % st.state().last_seq)
    out.flush()
    while True:
        reports = []
        for _ in range(rnd.randint(1, 60)):
            if rnd.random() < 0.05:
                seq = st.state().last_seq + 1
                st.store_msg("pin.%d" % seq, b"", payload("pin.%d" % seq, seq), seq)
                reports.append("P %d" % seq)
            key = "kv.k%d" % rnd.randrange(30)
            seq = st.state().last_seq + 1
            st.store_msg(key, b"", payload(key, seq), seq)
            prev = latest.get(key)
            if prev is not None:
                assert st.remove_msg(prev), prev
            latest[key] = seq
            reports.append("D %s %d" % (key, seq))
        st.commit(lambda r=reports: (out.write("\n".join(r) + "\n"), out.flush()))
        await asyncio.sleep(0)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def check(directory: str, durable: dict[str, int], pins: set[int]) -> None:
    st = FileStore(directory, block_size=BLOCK)
    try:
        present: dict[str, list[int]] = {}
        n = 0
        m = st.load_next_msg("", 1)
        while m is not None:
            n += 1
            assert m.data.startswith(b"%s|%d|" % (m.subject.encode(), m.seq)), m
            assert m.ts == m.seq
            present.setdefault(m.subject, []).append(m.seq)
            m = st.load_next_msg("", m.seq + 1)
        s = st.state()
        assert s.msgs == n
        if s.lost is not None:
            assert not set(s.lost.msgs) & (set(durable.values()) | pins), s.lost
        for p in pins:
            assert present.get(f"pin.{p}") == [p], p
        for key, seq in durable.items():
            have = present.get(key, [])
            assert have and min(have) >= seq and (seq in have or max(have) > seq), (key, seq, have)
        assert st.subjects_state("") == {k: SimpleState(len(v), v[0], v[-1]) for k, v in present.items()}
    finally:
        st.close()


@pytest.mark.slow
def test_sigkill_kv_writer(tmp_path):
    directory = str(tmp_path / "store")
    rnd = random.Random(99)
    deadline = time.monotonic() + 5
    durable: dict[str, int] = {}
    pins: set[int] = set()
    kills = 0
    while time.monotonic() < deadline or kills < 5:
        lines = run_until_killed(CHILD, [directory, str(rnd.randrange(1 << 30)), str(BLOCK)], rnd, 0.3)
        kills += 1
        for line in lines[1:]:
            parts = line.split()
            if parts[0] == "P":
                pins.add(int(parts[1]))
            elif parts[0] == "D":
                durable[parts[1]] = max(durable.get(parts[1], 0), int(parts[2]))
        check(directory, durable, pins)
    print(f"kv: {kills} kills, {len(pins)} pins, {sum(durable.values())} key-seq sum durable")
    assert kills >= 5 and durable
