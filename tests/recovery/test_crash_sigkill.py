"""Kill -9 a process that writes to a FileStore, many times; every durable-reported message stays.

A child process opens the store, publishes batches (store_msg + commit per message, one loop
iteration per batch) and prints the highest sequence whose on_durable callback has run. The
parent SIGKILLs it at a random moment, reopens the store itself and checks that every reported
sequence is present with its own payload, in order, with no gaps; then the next child continues.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from pyjetstream.jetstream.store import FileStore

CHILD = r"""
import asyncio, random, sys
from pyjetstream.jetstream.store import FileStore

def payload(seq, n):
    return b"%d|" % seq + bytes([seq % 251]) * n

async def main(directory, seed):
    rnd = random.Random(seed)
    st = FileStore(directory, block_size=64 * 1024)
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
        await asyncio.sleep(0)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def check_store(directory: str, acked: int) -> int:
    st = FileStore(directory, block_size=64 * 1024)
    try:
        s = st.state()
        assert s.last_seq >= acked, (s.last_seq, acked)
        assert s.first_seq == 1 or s.msgs == 0
        assert s.msgs == s.last_seq, "gaps in the sequence"  # nothing is ever removed here
        if s.lost is not None:
            assert all(seq > acked for seq in s.lost.msgs), (s.lost, acked)
        seq = 0
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
def test_sigkill_loop_keeps_every_durable_message(tmp_path):
    directory = str(tmp_path / "store")
    rnd = random.Random(1234)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    deadline = time.monotonic() + 12
    acked = 0
    kills = 0
    while time.monotonic() < deadline or kills < 5:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, directory, str(rnd.randrange(1 << 30))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        lines: list[str] = []
        ready = threading.Event()

        def reader(p=proc, lines=lines, ready=ready) -> None:
            for line in p.stdout:
                lines.append(line)
                if line.startswith("R "):
                    ready.set()
            ready.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            assert ready.wait(30), "child did not start"
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(rnd.uniform(0.0, 0.35))  # the kill moment is what varies; nothing to poll
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            t.join(10)
            proc.stdout.close()
            proc.stderr.close()
        kills += 1
        start = int(lines[0].split()[1])
        assert start >= acked
        for line in lines[1:]:
            acked = max(acked, int(line.split()[1]))
        last = check_store(directory, acked)
        assert last >= acked
    print(f"{kills} kills, {acked} messages acknowledged durable")
    assert kills >= 5 and acked > 0
