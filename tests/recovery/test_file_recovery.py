"""FileStore recovery: torn tails, flipped bytes, crash images, damaged index and snapshot files.

A "crash image" is a copy of the store directory taken after the data reached the OS but
without a clean close: exactly what a `kill -9` leaves behind (the page cache survives).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct

import pytest

from pyjetstream.jetstream.store import FileStore, SimpleState
from pyjetstream.jetstream.store.file import HS, records_end

T0 = 1_700_000_000_000_000_000


def payload(i: int) -> bytes:
    return b"msg-%04d-" % i + bytes([i % 256]) * (i % 40)


def make_store(d: str, n: int, block_size: int = 8 * 1024 * 1024) -> FileStore:
    st = FileStore(d, block_size=block_size)
    for i in range(1, n + 1):
        st.store_msg(f"sub.{i % 3}", b"NATS/1.0\r\nK: v\r\n\r\n" if i % 4 == 0 else b"", payload(i), T0 + i)
    st.flush()
    return st


def crash_image(st: FileStore, dst: str) -> str:
    st.flush()
    shutil.copytree(st.directory, dst)
    return dst


def seg_files(d: str) -> list[str]:
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".seg"))


def record_offsets(path: str) -> list[int]:
    with open(path, "rb") as f:
        data = f.read()
    offs, pos = [], 0
    while pos < len(data):
        reclen = struct.unpack_from("<I", data, pos)[0]
        if reclen == 0:
            break  # a crash image's tail segment goes on with preallocated zeros
        offs.append(pos)
        pos += reclen
    return offs


def assert_msgs(st: FileStore, seqs) -> None:
    for i in seqs:
        m = st.load_msg(i)
        assert m is not None, i
        assert (m.subject, m.data, m.ts) == (f"sub.{i % 3}", payload(i), T0 + i)


def crash_segment(tmp_path, n: int) -> tuple[str, str]:
    """A crash image of a store of n messages in one segment: (the image's directory, its segment)."""
    st = make_store(str(tmp_path / "orig"), n)
    image = crash_image(st, str(tmp_path / "image"))
    st.close()
    return image, seg_files(image)[0]


def assert_goes_on_at(re: FileStore, d: str, n: int) -> None:
    """The repaired store re (of directory d) takes a new message at sequence n and keeps it,
    and the messages before it, across a restart. Closes re."""
    assert re.store_msg("new", b"", b"after", T0) == n
    re.close()
    re = FileStore(d)
    assert re.load_msg(n).data == b"after"
    assert_msgs(re, range(1, n))
    re.close()


@pytest.mark.parametrize("clean_close", [False, True])
def test_cut_last_record_at_every_offset(tmp_path, clean_close, caplog):
    n = 12
    st = make_store(str(tmp_path / "orig"), n)
    if clean_close:
        st.close()
        image = str(tmp_path / "orig")
    else:
        image = crash_image(st, str(tmp_path / "image"))
    seg = seg_files(image)[0]
    size = records_end(seg)
    start = record_offsets(seg)[-1]
    for cut in range(start, size + 1):
        d = str(tmp_path / f"cut{cut}")
        shutil.copytree(image, d)
        os.truncate(seg_files(d)[0], cut)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="pyjetstream.store"):
            re = FileStore(d)
        s = re.state()
        assert_msgs(re, range(1, n))
        if cut == size:
            assert s.msgs == n and s.last_seq == n and s.lost is None
            assert_msgs(re, [n])
            re.close()
        else:
            assert s.msgs == n - 1 and s.last_seq == n - 1 and re.load_msg(n) is None
            if cut == start:
                assert s.lost is None  # a clean record boundary: nothing half-written
            else:
                assert s.lost is not None and s.lost.bytes == cut - start
                assert s.lost.msgs in ([n], [])  # the seq is known once the header survived
                if cut - start >= HS:
                    assert s.lost.msgs == [n]
                assert any("truncating" in r.getMessage() for r in caplog.records)
            # the repaired store takes new messages at the next sequence and keeps them
            assert_goes_on_at(re, d, n)
        shutil.rmtree(d)
    st.close()


@pytest.mark.parametrize("where", ["length", "kind", "seq", "subject", "payload", "crc"])
def test_flipped_byte_in_middle_record(tmp_path, where, caplog):
    n = 20
    image, seg = crash_segment(tmp_path, n)
    offs = record_offsets(seg)
    victim = 10  # seq 10 is the tenth record
    base = offs[victim - 1]
    reclen = offs[victim] - base
    at = {"length": base + 1, "kind": base + 4, "seq": base + 5, "subject": base + HS + 1,
          "payload": base + reclen - 8, "crc": base + reclen - 2}[where]
    with open(seg, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x5A]))
    with caplog.at_level(logging.ERROR, logger="pyjetstream.store"):
        re = FileStore(image)
    s = re.state()
    assert re.load_msg(victim) is None
    assert_msgs(re, [i for i in range(1, n + 1) if i != victim])
    assert s.msgs == n - 1 and s.last_seq == n
    assert s.lost is not None and s.lost.msgs == [victim] and s.lost.bytes >= reclen
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert re.store_msg("sub.0", b"", b"x", T0) == n + 1
    re.close()
    re = FileStore(image)
    assert_msgs(re, [i for i in range(1, n + 1) if i != victim])
    assert re.state().lost.msgs == [victim]  # still reported after another restart
    re.close()


def test_corruption_found_on_read_is_dropped_and_reported(tmp_path):
    st = make_store(str(tmp_path / "s"), 10)
    st.close()
    seg = seg_files(str(tmp_path / "s"))[0]
    offs = record_offsets(seg)
    with open(seg, "r+b") as f:  # damage seq 4's payload behind the clean-close index's back
        f.seek(offs[4] - 6)
        f.write(b"\xff")
    re = FileStore(str(tmp_path / "s"))
    assert re.state().msgs == 10  # the index says it is there; only reading reveals the damage
    assert re.load_msg(4) is None
    s = re.state()
    assert s.msgs == 9 and s.lost.msgs == [4]
    assert re.load_next_msg("", 4).seq == 5
    re.close()
    re = FileStore(str(tmp_path / "s"))
    assert re.state().msgs == 9 and re.load_msg(4) is None
    re.close()


def test_crash_image_restores_everything(tmp_path):
    st = FileStore(str(tmp_path / "s"), block_size=4096)
    for i in range(1, 301):
        st.store_msg(f"sub.{i % 3}", b"", payload(i), T0 + i, ttl_ns=5000 if i == 299 else 0)
    st.remove_msg(7)
    st.remove_msg(150, erase=True)
    st.purge("sub.2", keep=5)
    st.compact(20)
    st.skip_msgs(301, 4)
    before = st.state(deleted=True)
    subj_before = st.subjects_state("")
    image = crash_image(st, str(tmp_path / "img"))
    st.close()
    re = FileStore(image, block_size=4096)
    after = re.state(deleted=True)
    assert after == before
    assert re.subjects_state("") == subj_before
    assert re.expired(T0 + 299 + 5000) == [299]
    for seq in range(1, 305):
        a = re.load_msg(seq)
        if seq < 20 or seq in (150, 7) or (seq % 3 == 2 and seq < 285) or seq > 300:
            assert a is None, seq
        else:
            assert a.data == payload(seq)
    assert re.store_msg("x", b"", b"", T0) == 305
    re.close()


def test_last_seq_survives_when_last_messages_removed(tmp_path):
    st = make_store(str(tmp_path / "s"), 5)
    for seq in (5, 4):
        st.remove_msg(seq)
    image = crash_image(st, str(tmp_path / "img"))
    st.purge()
    image2 = crash_image(st, str(tmp_path / "img2"))
    st.close()
    for d, msgs in ((image, 3), (image2, 0)):
        re = FileStore(d)
        s = re.state()
        assert (s.msgs, s.last_seq) == (msgs, 5)
        assert re.store_msg("a", b"", b"", T0) == 6
        re.close()


def test_full_purge_drops_segments_and_survives_crash(tmp_path):
    st = make_store(str(tmp_path / "s"), 400, block_size=4096)
    assert len(seg_files(st.directory)) > 5
    st.purge()
    assert len(seg_files(st.directory)) <= 2
    image = crash_image(st, str(tmp_path / "img"))
    st.close()
    re = FileStore(image, block_size=4096)
    s = re.state()
    assert (s.msgs, s.first_seq, s.last_seq, s.num_subjects) == (0, 401, 400, 0)
    re.close()


def test_workqueue_style_removal_drops_old_segments(tmp_path):
    st = make_store(str(tmp_path / "s"), 600, block_size=4096)
    nseg = len(seg_files(st.directory))
    for seq in range(1, 501):
        st.remove_msg(seq)
    assert len(seg_files(st.directory)) < nseg
    image = crash_image(st, str(tmp_path / "img"))
    st.close()
    re = FileStore(image, block_size=4096)
    s = re.state()
    assert (s.msgs, s.first_seq, s.last_seq) == (100, 501, 600)
    assert_msgs(re, range(501, 601))
    re.close()


@pytest.mark.parametrize("damage", ["snapshot", "index", "both", "remove-snapshot"])
def test_damaged_or_missing_metadata_falls_back_to_scan(tmp_path, damage):
    st = make_store(str(tmp_path / "s"), 300, block_size=4096)
    st.remove_msg(100)
    st.remove_msg(1)
    before = st.state(deleted=True)
    st.close()
    d = st.directory
    if damage in ("snapshot", "both"):
        with open(os.path.join(d, "index.snap"), "r+b") as f:
            f.seek(20)
            f.write(b"\x00\x01\x02")
    if damage in ("index", "both"):
        for n in os.listdir(d):
            if n.endswith(".idx"):
                with open(os.path.join(d, n), "r+b") as f:
                    f.seek(40)
                    f.write(b"\xee\xee")
    if damage == "remove-snapshot":
        os.unlink(os.path.join(d, "index.snap"))
    re = FileStore(d, block_size=4096)
    assert re.state(deleted=True) == before
    assert_msgs(re, [i for i in range(2, 301) if i != 100])
    re.close()


def test_empty_and_garbage_segment(tmp_path):
    d = str(tmp_path / "s")
    st = make_store(d, 5)
    st.close()
    with open(os.path.join(d, "00000002.seg"), "wb") as f:
        f.write(b"\x07" * 10)  # a segment created, then garbage, no valid record
    re = FileStore(d)
    s = re.state()
    assert s.msgs == 5 and s.lost is not None and s.lost.bytes == 10
    assert re.store_msg("a", b"", b"", T0) == 6
    re.close()
    re = FileStore(d)
    assert re.load_msg(6) is not None and re.state().msgs == 6
    re.close()


def test_truncated_sealed_segment_in_the_middle(tmp_path, caplog):
    d = str(tmp_path / "s")
    st = make_store(d, 400, block_size=4096)
    st.close()
    segs = seg_files(d)
    assert len(segs) >= 5
    victim = segs[2]
    offs = record_offsets(victim)
    with open(victim, "rb") as f:
        first_in_victim = struct.unpack_from("<IBQ", f.read(13))[2]
    cut_record = len(offs) // 2
    os.truncate(victim, offs[cut_record] + 7)  # mid-record, inside a sealed segment
    with caplog.at_level(logging.WARNING, logger="pyjetstream.store"):
        re = FileStore(d, block_size=4096)
    lost = list(range(first_in_victim + cut_record, first_in_victim + len(offs)))
    s = re.state()
    assert s.lost is not None and s.lost.msgs == lost
    assert s.msgs == 400 - len(lost) and s.last_seq == 400
    assert_msgs(re, [i for i in range(1, 401) if i not in lost])
    assert any("rescanning" in r.getMessage() for r in caplog.records)
    image = crash_image(re, str(tmp_path / "img"))
    re.close()
    for path in (d, image):  # the repair was saved: both a clean and a crash restart agree
        again = FileStore(path, block_size=4096)
        assert again.state() == s
        again.close()


def test_flipped_byte_in_last_record(tmp_path):
    st = make_store(str(tmp_path / "s"), 6)
    image = crash_image(st, str(tmp_path / "img"))
    st.close()
    seg = seg_files(image)[0]
    size = records_end(seg)
    with open(seg, "r+b") as f:
        f.seek(size - 10)  # inside the payload of seq 6
        b = f.read(1)
        f.seek(size - 10)
        f.write(bytes([b[0] ^ 1]))
    re = FileStore(image)
    s = re.state()
    assert (s.msgs, s.last_seq) == (5, 5)
    assert s.lost is not None and s.lost.msgs == [6]
    assert_msgs(re, range(1, 6))
    re.close()
    assert os.path.getsize(seg) < size  # the bad record was cut off


def test_one_store_per_directory(tmp_path):
    from pyjetstream.jetstream.store import ErrStoreInUse

    d = str(tmp_path / "s")
    st = make_store(d, 3)
    with pytest.raises(ErrStoreInUse):
        FileStore(d)
    st.store_msg("sub.1", b"", payload(4), T0 + 4)  # the first store is unaffected
    st.close()
    re = FileStore(d)
    assert re.state().msgs == 4
    re.close()


def test_corrupt_first_message_of_a_subject_is_skipped_by_filtered_loads(tmp_path):
    d = str(tmp_path / "s")
    st = make_store(d, 10)
    st.close()
    seg = seg_files(d)[0]
    offs = record_offsets(seg)
    with open(seg, "r+b") as f:  # seq 1 is the first "sub.1" message
        f.seek(offs[1] - 6)
        f.write(b"\xfe")
    re = FileStore(d)
    m = re.load_next_msg("sub.1", 1)
    assert m is not None and m.seq == 4
    assert re.load_next_msg("sub.*", 1).seq == 2
    assert re.state().lost.msgs == [1] and re.state().first_seq == 2
    re.close()


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_kv_updates_reclaim_space_and_survive_restart(tmp_path, restart):
    """Key-value style: each update removes the key's previous message, and some keys are never
    updated (they pin old segments). Sealed segments that are mostly removed messages get
    rewritten, so disk use stays well below what was written."""
    d = str(tmp_path / "s")
    st = FileStore(d, block_size=4096)
    latest: dict[str, int] = {}
    pins: dict[str, int] = {}
    written = 0
    for i in range(4000):
        if i % 25 == 0:
            pins[f"pin.{i}"] = st.store_msg(f"pin.{i}", b"", b"p", T0 + i)
            written += HS + len(f"pin.{i}") + 1 + 4
        key = f"kv.k{i % 40}"
        data = b"v%d-" % i + b"." * 50
        seq = st.store_msg(key, b"", data, T0 + i)
        written += HS + len(key) + len(data) + 4
        if key in latest:
            assert st.remove_msg(latest[key])
            written += HS + len(key) + 4
        latest[key] = seq
        if i % 97 == 0:
            st.commit(lambda: None)
    st.flush()
    on_disk = sum(records_end(p) for p in seg_files(d))
    assert on_disk < written * 0.6, (on_disk, written)
    before = st.state()
    if restart == "crash":
        d = crash_image(st, str(tmp_path / "img"))
    st.close()
    re = FileStore(d, block_size=4096)
    assert re.state() == before
    live = {**latest, **pins}
    assert re.subjects_state("") == {k: SimpleState(1, s, s) for k, s in live.items()}
    for key, seq in live.items():
        m = re.load_msg(seq)
        assert m is not None and m.subject == key
    assert re.load_next_msg("kv.*", 1).seq == min(latest.values())
    assert re.state(deleted=True).deleted == sorted(set(range(before.first_seq, before.last_seq + 1))
                                                    - set(live.values()))
    re.close()


def test_open_descriptors_stay_bounded(tmp_path, monkeypatch):
    from pyjetstream.jetstream.store import file as file_mod

    monkeypatch.setattr(file_mod, "_MAX_OPEN", 3)
    d = str(tmp_path / "s")

    def seg_fds() -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # closed while listing
            n += target.startswith(d) and target.endswith(".seg")
        return n

    st = make_store(d, 2000, block_size=4096)
    assert len(seg_files(d)) > 20
    assert seg_fds() <= 3 + 1
    assert_msgs(st, range(1, 2001))  # reading everything reopens and recloses files
    assert seg_fds() <= 3 + 1
    for seq in range(5, 2000, 3):
        st.remove_msg(seq, erase=seq % 2 == 0)
    image = crash_image(st, str(tmp_path / "img"))
    st.close()
    re = FileStore(image, block_size=4096)
    assert seg_fds() <= 3 + 1
    assert_msgs(re, [i for i in range(1, 2001) if i < 5 or (i - 5) % 3])
    re.close()


def test_a_lost_sequence_reused_by_a_new_message_is_no_longer_reported_lost(tmp_path):
    from pyjetstream.jetstream.store import FileStore

    d = str(tmp_path / "s")
    st = FileStore(d)
    for i in range(3):
        st.store_msg("a", b"", b"x%d" % i, i + 1)
    st.flush()
    st.close()
    seg = sorted(p for p in (tmp_path / "s").rglob("*.seg"))[-1]
    raw = seg.read_bytes()
    seg.write_bytes(raw[:-3])  # tear the last record (seq 3)
    st = FileStore(d)
    assert st.state().lost is not None and 3 in st.state().lost.msgs
    assert st.store_msg("a", b"", b"new", 10) == 3
    st.flush()
    assert 3 not in (st.state().lost.msgs if st.state().lost else [])
    st.close()
    st = FileStore(d)
    assert 3 not in (st.state().lost.msgs if st.state().lost else [])
    assert st.load_msg(3).data == b"new"
    st.close()


async def test_dropped_segments_go_only_after_their_compact_record_is_durable(tmp_path):
    """With a loop running, emptied segments leave the store at once but their files wait for
    the writer thread's sync of the compact record: a crash before that finds them and skips
    them; a crash after finds them gone; close() never leaves them behind."""
    import asyncio

    st = make_store(str(tmp_path / "s"), 600, block_size=4096)
    before = seg_files(st.directory)
    for seq in range(1, 501):
        st.remove_msg(seq)
    assert st.segment_count() < len(before)
    assert set(before) <= set(seg_files(st.directory))  # nothing unlinked before the loop runs
    st.write_out()  # the removals reach the OS (the end of the loop pass), nothing is synced
    image = str(shutil.copytree(st.directory, tmp_path / "img"))  # kill -9 now
    re = FileStore(image, block_size=4096)
    s = re.state()
    assert (s.msgs, s.first_seq, s.last_seq) == (100, 501, 600)
    assert_msgs(re, range(501, 601))
    re.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(seg_files(st.directory)) > st.segment_count() and loop.time() < deadline:
        await asyncio.sleep(0.005)  # the writer thread's sync; no clock to fake across threads
    assert len(seg_files(st.directory)) == st.segment_count()
    # more removals, then a close before the loop runs: the files still go, after the sync
    for seq in range(501, 591):
        st.remove_msg(seq)
    st.close()
    again = FileStore(st.directory, block_size=4096)
    assert len(seg_files(again.directory)) == again.segment_count()
    s = again.state()
    assert (s.msgs, s.first_seq, s.last_seq) == (10, 591, 600)
    again.close()


# ---------------------------------------------------------------- preallocated tail segments
# The tail segment's file is allocated ahead of its records (posix_fallocate), so what a crash
# leaves is records followed by zeros up to a 4096-byte boundary, not a file ending at its data.


def test_crash_image_has_a_preallocated_tail_that_reads_as_the_end(tmp_path, caplog):
    n = 30
    image, seg = crash_segment(tmp_path, n)
    end = records_end(seg)
    length = os.path.getsize(seg)
    assert length > end and length % 4096 == 0  # the zeros these tests are about
    with caplog.at_level(logging.WARNING, logger="pyjetstream.store"):
        re = FileStore(image)
    s = re.state()
    assert (s.msgs, s.last_seq, s.lost) == (n, n, None)
    assert not caplog.records  # the zeros are free space, not damage
    assert_msgs(re, range(1, n + 1))
    # new records go where the old ones end, not after the zeros
    assert re.store_msg("after", b"", b"new", T0) == n + 1
    re.flush()
    assert records_end(seg) > end and os.path.getsize(seg) == length
    re.close()
    assert os.path.getsize(seg) == records_end(seg)  # a clean close gives the space back
    re = FileStore(image)
    assert re.load_msg(n + 1).data == b"new" and re.state().lost is None
    assert_msgs(re, range(1, n + 1))
    re.close()


def test_new_segment_of_zeros_is_empty_not_damage(tmp_path, caplog):
    """A crash right after a roll preallocated the new segment, before any record reached it."""
    d = str(tmp_path / "s")
    st = make_store(d, 5)
    st.close()
    with open(os.path.join(d, "00000002.seg"), "wb") as f:
        f.write(bytes(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="pyjetstream.store"):
        re = FileStore(d)
    s = re.state()
    assert (s.msgs, s.last_seq, s.lost) == (5, 5, None) and not caplog.records
    assert re.store_msg("a", b"", b"x", T0) == 6
    re.close()
    re = FileStore(d)
    assert re.load_msg(6).data == b"x" and re.state().msgs == 6
    re.close()


def test_torn_last_record_inside_preallocated_space(tmp_path, caplog):
    """The last record only partly reached the disk and zeros follow (no shorter file): every
    such cut loses that record alone and the store goes on at its sequence."""
    n = 12
    image, seg = crash_segment(tmp_path, n)
    end = records_end(seg)
    length = os.path.getsize(seg)
    start = record_offsets(seg)[-1]
    for cut in range(start, end):
        d = str(tmp_path / f"cut{cut}")
        shutil.copytree(image, d)
        with open(seg_files(d)[0], "r+b") as f:
            f.seek(cut)
            f.write(bytes(end - cut))  # the record's bytes from cut on never made it
        assert os.path.getsize(seg_files(d)[0]) == length
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="pyjetstream.store"):
            re = FileStore(d)
        s = re.state()
        assert_msgs(re, range(1, n))
        assert s.msgs == n - 1 and s.last_seq == n - 1 and re.load_msg(n) is None, cut
        if cut == start:
            assert s.lost is None and not caplog.records
        else:
            # the damage reported is what was written of the record, never the free space
            assert s.lost is not None and 0 < s.lost.bytes <= cut - start, (cut, s.lost)
            if cut - start >= HS:
                assert s.lost.msgs == [n]
        assert_goes_on_at(re, d, n)
        shutil.rmtree(d)


def test_damaged_length_in_the_middle_with_preallocated_tail(tmp_path, caplog):
    """A middle record's length now points past the last record, into the zeros: the records
    it spans are found again and kept; only the damaged one is lost."""
    n = 20
    image, seg = crash_segment(tmp_path, n)
    offs = record_offsets(seg)
    victim = 15
    base = offs[victim - 1]
    with open(seg, "r+b") as f:
        f.seek(base)
        f.write(struct.pack("<I", records_end(seg) - base + 100))
    with caplog.at_level(logging.ERROR, logger="pyjetstream.store"):
        re = FileStore(image)
    s = re.state()
    assert re.load_msg(victim) is None
    assert_msgs(re, [i for i in range(1, n + 1) if i != victim])
    assert s.msgs == n - 1 and s.last_seq == n and s.lost is not None and s.lost.msgs == [victim]
    re.close()


def test_seal_gives_back_preallocated_space(tmp_path):
    d = str(tmp_path / "s")
    st = make_store(d, 400, block_size=8192)
    st.flush()
    segs = seg_files(d)
    assert len(segs) >= 3
    for p in segs[:-1]:
        assert os.path.getsize(p) == records_end(p)  # sealed: exactly its records
    assert os.path.getsize(segs[-1]) > records_end(segs[-1])
    st.close()
    assert all(os.path.getsize(p) == records_end(p) for p in seg_files(d))
