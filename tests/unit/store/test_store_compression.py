"""Compressed records in the file store (stream `compression: s2`): what is written, what is
read back, that sizes and counts do not change, and that recovery's checksum scan still finds
torn and damaged compressed records."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from pyjetstream.jetstream.store import FileStore
from pyjetstream.jetstream.store import file as file_mod


def _kinds(directory: str) -> list[int]:
    """The record kinds in a store's segments, in order."""
    out = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".seg"):
            continue
        data = open(os.path.join(directory, name), "rb").read()
        pos = 0
        while pos + file_mod.HS <= len(data):
            reclen, kind, *_ = file_mod._HDR.unpack_from(data, pos)
            if reclen == 0:
                break  # the tail's preallocated space
            out.append(kind)
            pos += reclen
    return out


def _fill(st: FileStore, n: int = 50) -> list[tuple[str, bytes, bytes]]:
    msgs = []
    for i in range(n):
        hdr = b"NATS/1.0\r\nOrder-Id: %d\r\n\r\n" % i if i % 2 else b""
        data = (b"order %d of a customer in region eu-west; " % i) * (1 + i % 5)
        msgs.append((f"orders.{i % 3}", hdr, data))
        st.store_msg(msgs[-1][0], hdr, data, 1_000 + i)
    st.flush()
    return msgs


def _check(st: FileStore, msgs: list[tuple[str, bytes, bytes]]) -> None:
    for seq, (subj, hdr, data) in enumerate(msgs, 1):
        m = st.load_msg(seq)
        assert m is not None and (m.subject, bytes(m.hdr or b""), bytes(m.data), m.ts) == (subj, hdr, data, 999 + seq)


def test_compressed_records_read_back_and_account_as_uncompressed(tmp_path: Any) -> None:
    plain = FileStore(str(tmp_path / "plain"))
    z = FileStore(str(tmp_path / "z"), compression="s2")
    msgs = _fill(plain)
    assert _fill(z) == msgs
    assert z.compression == "s2" and plain.compression == "none"
    _check(z, msgs)
    # nats-server reports the messages' own sizes whatever the storage does with them
    assert z.state().bytes == plain.state().bytes and z.state().msgs == plain.state().msgs == 50
    assert {s: ss.msgs for s, ss in z.subjects_state(">").items()} == {"orders.0": 17, "orders.1": 17, "orders.2": 16}
    assert [m.seq for m in (z.load_next_msg("orders.1", 1), z.load_last_msg("orders.2"))] == [2, 48]
    kinds = _kinds(str(tmp_path / "z"))
    assert kinds.count(file_mod.K_MSGZ) >= 35 and set(kinds) <= {file_mod.K_MSG, file_mod.K_MSGZ}
    assert file_mod.K_MSGZ not in _kinds(str(tmp_path / "plain"))
    size = sum(file_mod.records_end(os.path.join(tmp_path / "z", f)) for f in os.listdir(tmp_path / "z")
               if f.endswith(".seg"))
    psize = sum(file_mod.records_end(os.path.join(tmp_path / "plain", f)) for f in os.listdir(tmp_path / "plain")
                if f.endswith(".seg"))
    assert size < psize * 0.75  # short messages, each compressed on its own
    for st in (plain, z):
        st.close()
    z = FileStore(str(tmp_path / "z"), compression="s2")
    _check(z, msgs)
    assert z.state().bytes == FileStore(str(tmp_path / "plain")).state().bytes
    z.close()


def test_small_and_incompressible_bodies_stay_plain(tmp_path: Any) -> None:
    st = FileStore(str(tmp_path / "s"), compression="s2")
    st.store_msg("a", b"", b"tiny", 1)
    st.store_msg("b", b"", os.urandom(4096), 2)
    st.store_msg("c", b"", b"z" * 4096, 3)
    st.flush()
    assert _kinds(str(tmp_path / "s")) == [file_mod.K_MSG, file_mod.K_MSG, file_mod.K_MSGZ]
    st.close()


def test_switching_compression_keeps_both_kinds_readable(tmp_path: Any) -> None:
    d = str(tmp_path / "s")
    st = FileStore(d)
    st.store_msg("a", b"", b"x" * 200, 1)
    st.set_compression("s2")
    st.store_msg("a", b"", b"y" * 200, 2)
    st.close()
    st = FileStore(d)  # opened plain: the compressed record still reads
    st.store_msg("a", b"", b"z" * 200, 3)
    assert [bytes(st.load_msg(s).data)[:1] for s in (1, 2, 3)] == [b"x", b"y", b"z"]  # type: ignore[union-attr]
    st.close()
    assert _kinds(d) == [file_mod.K_MSG, file_mod.K_MSGZ, file_mod.K_MSG]


def test_crash_image_torn_tail_and_damage(tmp_path: Any) -> None:
    """What kill -9 leaves (no clean close: no index, no snapshot of the tail), then a torn last
    record, then a flipped byte inside a compressed body: recovery keeps every intact message
    and reports exactly the damaged ones lost."""
    d = str(tmp_path / "s")
    st = FileStore(d, compression="s2")
    msgs = _fill(st, 20)
    image = str(tmp_path / "crash")
    shutil.copytree(d, image)
    st.close()
    re = FileStore(image, compression="s2")
    _check(re, msgs)
    assert re.state().lost is None
    re.close()

    torn = str(tmp_path / "torn")
    shutil.copytree(d, torn)
    for f in ("index.snap", *[n for n in os.listdir(torn) if n.endswith(".idx")]):
        if os.path.exists(os.path.join(torn, f)):
            os.unlink(os.path.join(torn, f))
    seg = os.path.join(torn, sorted(n for n in os.listdir(torn) if n.endswith(".seg"))[-1])
    os.truncate(seg, file_mod.records_end(seg) - 7)
    re = FileStore(torn, compression="s2")
    st_ = re.state()
    assert st_.last_seq == 19 and st_.lost is not None and st_.lost.msgs == [20]
    _check(re, msgs[:19])
    re.store_msg("after", b"", b"q" * 300, 5_000)  # the store goes on after the cut
    assert bytes(re.load_msg(20).data) == b"q" * 300  # type: ignore[union-attr]
    re.close()

    bad = str(tmp_path / "bad")
    shutil.copytree(d, bad)
    for f in ("index.snap", *[n for n in os.listdir(bad) if n.endswith(".idx")]):
        if os.path.exists(os.path.join(bad, f)):
            os.unlink(os.path.join(bad, f))
    seg = os.path.join(bad, sorted(n for n in os.listdir(bad) if n.endswith(".seg"))[0])
    data = bytearray(open(seg, "rb").read())
    # the fifth record's last body byte (before its checksum)
    pos = 0
    for _ in range(4):
        pos += file_mod._HDR.unpack_from(data, pos)[0]
    reclen, kind, seq, *_ = file_mod._HDR.unpack_from(data, pos)
    assert (kind, seq) == (file_mod.K_MSGZ, 5)
    data[pos + reclen - 5] ^= 0xFF
    open(seg, "wb").write(bytes(data))
    re = FileStore(bad, compression="s2")
    s = re.state()
    assert s.lost is not None and s.lost.msgs == [5] and s.msgs == 19
    assert re.load_msg(5) is None
    _check(re, msgs[:4])
    for seq in range(6, 21):
        m = re.load_msg(seq)
        assert m is not None and bytes(m.data) == msgs[seq - 1][2]
    re.close()


def test_erase_and_rewrite_of_compressed_records(tmp_path: Any) -> None:
    st = FileStore(str(tmp_path / "s"), block_size=4096, compression="s2")
    msgs = _fill(st, 60)
    assert st.remove_msg(3, erase=True)
    for seq in range(10, 40):
        st.remove_msg(seq)  # enough of a sealed segment gone to be rewritten
    st.flush()
    keep = [s for s in range(1, 61) if s != 3 and not 10 <= s < 40]
    for s in keep:
        m = st.load_msg(s)
        assert m is not None and bytes(m.data) == msgs[s - 1][2]
    total = st.state().bytes
    st.close()
    st = FileStore(str(tmp_path / "s"), block_size=4096, compression="s2")
    assert [m.seq for m in (st.load_msg(s) for s in range(1, 61)) if m] == keep
    assert st.state().bytes == total
    st.close()


@pytest.mark.parametrize("bad", [b"", b"\x00" * 40])
def test_a_garbled_compressed_body_with_a_good_checksum_is_refused_not_crashing(tmp_path: Any, bad: bytes) -> None:
    """A record whose checksum holds but whose Snappy block is not valid (written by a buggy
    or hostile hand) raises the store's error on load rather than an arbitrary exception."""
    st = FileStore(str(tmp_path / "s"), compression="s2")
    st.store_msg("a", b"", b"a" * 500, 1)
    st.flush()
    st.close()
    seg = os.path.join(tmp_path / "s", sorted(n for n in os.listdir(tmp_path / "s") if n.endswith(".seg"))[0])
    data = bytearray(open(seg, "rb").read())
    reclen, kind, seq, ts, ttl, slen, hlen = file_mod._HDR.unpack_from(data, 0)
    q = file_mod.HS + slen
    body = bytes(data[:q]) + file_mod._ZSUB.pack(0, 500) + bad
    body = file_mod._pack_hdr(len(body) + 4, kind, seq, ts, ttl, slen, 0) + body[file_mod.HS:]
    open(seg, "wb").write(body + file_mod._pack_crc(file_mod.crc32(body)))
    for f in os.listdir(tmp_path / "s"):
        if f.endswith((".idx", ".snap")):
            os.unlink(os.path.join(tmp_path / "s", f))
    st = FileStore(str(tmp_path / "s"), compression="s2")
    assert st.load_msg(1) is None
    assert st.state().lost is not None and st.state().lost.msgs == [1]  # type: ignore[union-attr]
    st.close()
