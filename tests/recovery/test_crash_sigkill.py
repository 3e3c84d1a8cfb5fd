"""Kill -9 a process that writes to a FileStore, many times; every durable-reported message stays.

A child process opens the store, publishes batches (store_msg + commit per message, one loop
iteration per batch) and prints the highest sequence whose on_durable callback has run; in
"wq" mode it also removes runs of the oldest messages, as a work queue does, and reports
each removal before it starts and once it is durable. The
parent SIGKILLs it at a random moment, reopens the store itself and checks that every reported
sequence is present with its own payload, in order, with no gaps; then the next child continues.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from pyjetstream.jetstream.store import FileStore
from pyjetstream.jetstream.store.file import records_end

from .child_kill import run_until_killed

CHILD = r"""
import asyncio, random, sys
from pyjetstream.jetstream.store import FileStore

def payload(seq, n):
    return b"%d|" % seq + bytes([seq % 251]) * n

async def main(directory, seed, workqueue, compression):
    rnd = random.Random(seed)
    st = FileStore(directory, block_size=64 * 1024, compression=compression)
    out = sys.stdout
    out.write("R %d\n" % st.state().last_seq)
    out.flush()
    loop = asyncio.get_running_loop()
    while True:
        top = [0]
        for _ in range(rnd.randint(1, 300)):
            seq = st.state().last_seq + 1
            assert st.store_msg("crash.%d" % (seq % 5), b"", payload(seq, rnd.randint(0, 300)), seq) == seq
            st.commit(lambda s=seq: top.__setitem__(0, s))
        def report(top=top):
            out.write("D %d\n" % top[0])
            out.flush()
        st.commit(report)
        if workqueue and rnd.random() < 0.7:
            # Acknowledge (remove) a run of the oldest messages, as a work queue does.
            first = st.state().first_seq
            upto = min(first + rnd.randint(1, 400), st.state().last_seq)
            out.write("A %d\n" % upto)
            out.flush()
            for seq in range(first, upto + 1):
                st.remove_msg(seq)
            st.commit(lambda u=upto: (out.write("X %d\n" % u), out.flush()))
        await asyncio.sleep(0)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "wq", sys.argv[4]))
"""


def preallocated_tail(directory: str) -> bool:
    """Whether the newest segment goes on past its records (the space preallocated ahead of
    them), as a kill -9 leaves it."""
    segs = sorted(n for n in os.listdir(directory) if n.endswith(".seg"))
    if not segs:
        return False
    path = os.path.join(directory, segs[-1])
    return os.path.getsize(path) > records_end(path)


def check_store(directory: str, acked: int, removed: int, attempted: int, compression: str = "none") -> int:
    """Everything up to `acked` was reported durable; everything up to `removed` was durably
    removed; removals up to `attempted` may or may not have reached the disk."""
    st = FileStore(directory, block_size=64 * 1024, compression=compression)
    try:
        s = st.state()
        assert s.last_seq >= acked, (s.last_seq, acked)
        if s.lost is not None:
            assert all(seq > acked for seq in s.lost.msgs), (s.lost, acked)
        if s.msgs:
            assert removed < s.first_seq <= max(attempted, removed) + 1, (s.first_seq, removed, attempted)
            assert s.num_deleted == 0, "gaps in the sequence"
        else:
            assert acked <= max(attempted, removed)
        seq = s.first_seq - 1
        m = st.load_next_msg("", 1)
        while m is not None:
            seq += 1
            assert m.seq == seq, (m.seq, seq)
            assert m.data.startswith(b"%d|" % seq) and m.subject == f"crash.{seq % 5}"
            assert m.ts == seq
            m = st.load_next_msg("", seq + 1)
        assert seq == s.last_seq
        return s.last_seq
    finally:
        st.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["append", "wq", "append-s2", "wq-s2"])
def test_sigkill_loop_keeps_every_durable_message(tmp_path, mode):
    # "-s2": records compressed (stream compression s2); the payloads compress well
    mode, _, codec = mode.partition("-")
    compression = codec or "none"
    directory = str(tmp_path / "store")
    rnd = random.Random(1234)
    deadline = time.monotonic() + 5
    acked = removed = attempted = 0
    kills = 0
    zero_tails = 0
    while time.monotonic() < deadline or kills < 5:
        lines = run_until_killed(CHILD, [directory, str(rnd.randrange(1 << 30)), mode, compression], rnd, 0.35)
        kills += 1
        start = int(lines[0].split()[1])
        assert start >= acked
        for line in lines[1:]:
            kind, num = line.split()
            if kind == "D":
                acked = max(acked, int(num))
            elif kind == "A":
                attempted = max(attempted, int(num))
            elif kind == "X":
                removed = max(removed, int(num))
        zero_tails += preallocated_tail(directory)
        last = check_store(directory, acked, removed, attempted, compression)
        assert last >= acked
    print(f"{mode}: {kills} kills, {acked} messages acknowledged durable, {removed} removals durable")
    assert kills >= 5 and acked > 0
    assert zero_tails > 0, "no kill left a preallocated tail behind: recovery of one went untested"
