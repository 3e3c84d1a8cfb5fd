"""Directory layout helpers, stream metadata files and the store factories."""

from __future__ import annotations

import pytest

from pyjetstream.jetstream.store import (
    ErrCorruptMeta,
    FileConsumerStore,
    FileStore,
    MemoryConsumerStore,
    MemoryStore,
    StoreError,
    consumer_dir,
    list_consumers,
    list_streams,
    open_consumer_store,
    open_stream_store,
    read_meta,
    stream_dir,
    write_meta,
)


def test_meta_roundtrip_and_listing(tmp_path):
    root = str(tmp_path)
    d1 = stream_dir(root, "$G", "ORDERS")
    d2 = stream_dir(root, "acc/weird", "..")
    assert d2.startswith(str(tmp_path / "jetstream")) and "/../" not in d2
    assert read_meta(d1) is None
    write_meta(d1, b'{"name":"ORDERS"}')
    write_meta(d2, b"{}")
    write_meta(d1, b'{"name":"ORDERS","v":2}')
    assert read_meta(d1) == b'{"name":"ORDERS","v":2}'
    assert list_streams(root) == sorted([("$G", "ORDERS", d1), ("acc/weird", "..", d2)])
    c = consumer_dir(d1, "dur")
    FileConsumerStore(c).close()
    assert list_consumers(d1) == [("dur", c)]


def test_corrupt_meta_is_an_error(tmp_path):
    d = stream_dir(str(tmp_path), "$G", "S")
    write_meta(d, b'{"name":"S"}')
    with open(f"{d}/meta.json", "wb") as f:
        f.write(b'{"name":"X"}')
    with pytest.raises(ErrCorruptMeta):
        read_meta(d)


def test_factories(tmp_path):
    d = stream_dir(str(tmp_path), "$G", "S")
    st = open_stream_store("file", d, sync_interval_s=1.0, first_seq=5)
    assert isinstance(st, FileStore) and st.directory == f"{d}/msgs"
    assert st.store_msg("a", b"", b"", 1) == 5
    st.close()
    assert isinstance(open_stream_store("memory", d, block_size=1), MemoryStore)
    assert isinstance(open_consumer_store("file", consumer_dir(d, "c")), FileConsumerStore)
    assert isinstance(open_consumer_store("memory", "unused"), MemoryConsumerStore)
    with pytest.raises(StoreError):
        open_stream_store("tape", d)
