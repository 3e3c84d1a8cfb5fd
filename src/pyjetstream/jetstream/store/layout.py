"""Where stores live on disk, and the stream metadata file the stream layer persists through us.

Owns the directory layout under a server's store_dir:

    <store_dir>/jetstream/<account>/streams/<stream>/meta.json     stream config (written by the
                                                                   stream layer via write_meta)
    <store_dir>/jetstream/<account>/streams/<stream>/meta.sum      CRC32 of meta.json
    <store_dir>/jetstream/<account>/streams/<stream>/msgs/         FileStore segments
    <store_dir>/jetstream/<account>/streams/<stream>/obs/<consumer>/{config.json,state.dat}

Names are percent-quoted into path components so no account, stream or consumer name can escape
its directory. A name whose quoted form would not fit a file name (255 bytes: a 255-byte name of
characters that need quoting) is stored as a prefix of that form, `%~` and a hash of the name;
quoting never yields `%~`, so the two forms cannot collide. Such a directory name cannot be turned
back into the name: whoever lists directories takes names from the metadata inside. Also the factories `open_stream_store` / `open_consumer_store`. Must not parse
the metadata: its bytes belong to the stream layer.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, unquote
from zlib import crc32

from pyjetstream.jetstream.store._sync import atomic_write, make_dirs
from pyjetstream.jetstream.store.base import ConsumerStore, StoreError, StreamStore
from pyjetstream.jetstream.store.consumer import FileConsumerStore
from pyjetstream.jetstream.store.file import FileStore
from pyjetstream.jetstream.store.memory import MemoryConsumerStore, MemoryStore

META_FILE = "meta.json"
META_SUM = "meta.sum"


class ErrCorruptMeta(StoreError):
    pass


# Room under NAME_MAX (255 bytes on the file systems we run on) for the hashed form.
_MAX_COMPONENT = 200
_HASHED = "%~"


def _q(name: str) -> str:
    q = quote(name, safe="")
    if q in (".", ".."):
        return q.replace(".", "%2E")
    if len(q) <= _MAX_COMPONENT:
        return q
    # imported here: OpenSSL's hashing costs ~1 MiB of RSS, and only overlong names need it
    import hashlib

    # surrogatepass: a name is whatever JSON gave us, lone surrogates included
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return q[:120] + _HASHED + digest


def name_from_component(component: str) -> str | None:
    """The name a path component stands for, or None for a hashed one (see the docstring)."""
    return None if _HASHED in component else unquote(component)


def stream_dir(store_dir: str, account: str, stream: str) -> str:
    return os.path.join(store_dir, "jetstream", _q(account), "streams", _q(stream))


def consumer_dir(stream_directory: str, consumer: str) -> str:
    return os.path.join(stream_directory, "obs", _q(consumer))


def list_streams(store_dir: str) -> list[tuple[str, str, str]]:
    """(account, stream, directory) for every stream directory holding a meta file, sorted."""
    out: list[tuple[str, str, str]] = []
    root = os.path.join(store_dir, "jetstream")
    if not os.path.isdir(root):
        return out
    for acc in sorted(os.listdir(root)):
        sroot = os.path.join(root, acc, "streams")
        if not os.path.isdir(sroot):
            continue
        for name in sorted(os.listdir(sroot)):
            d = os.path.join(sroot, name)
            if os.path.isfile(os.path.join(d, META_FILE)):
                # a hashed name is reported as its component; the metadata holds the real one
                out.append((unquote(acc), name_from_component(name) or name, d))
    return out


def list_consumers(stream_directory: str) -> list[tuple[str | None, str]]:
    """(consumer, directory) for every consumer directory of a stream, sorted; the consumer is
    None when its directory name is hashed (its saved config names it)."""
    root = os.path.join(stream_directory, "obs")
    if not os.path.isdir(root):
        return []
    return [(name_from_component(n), os.path.join(root, n)) for n in sorted(os.listdir(root))
            if os.path.isdir(os.path.join(root, n))]


def write_meta(directory: str, data: bytes) -> None:
    """Atomically (and durably) replace the stream's metadata."""
    make_dirs(directory)
    atomic_write(os.path.join(directory, META_FILE), bytes(data))
    atomic_write(os.path.join(directory, META_SUM), b"%08x" % crc32(data))


def read_meta(directory: str) -> bytes | None:
    """The metadata last written, None when there is none; ErrCorruptMeta when it fails its sum."""
    try:
        with open(os.path.join(directory, META_FILE), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        with open(os.path.join(directory, META_SUM), "rb") as f:
            want = f.read().strip()
    except FileNotFoundError:
        return data
    if want != b"%08x" % crc32(data):
        raise ErrCorruptMeta(f"stream metadata in {directory} fails its checksum")
    return data


def remove_dir(directory: str) -> None:
    import shutil  # here: it loads bz2 and lzma, which a server that deletes nothing never needs

    shutil.rmtree(directory, ignore_errors=True)


def open_stream_store(storage: str, directory: str, **opts: Any) -> StreamStore:
    """storage "file": a FileStore in <directory>/msgs (opts: sync_always, sync_interval_s,
    block_size, first_seq); "memory": a MemoryStore (opts: first_seq; the rest ignored)."""
    if storage == "file":
        return FileStore(os.path.join(directory, "msgs"), **opts)
    if storage == "memory":
        return MemoryStore(first_seq=opts.get("first_seq", 1))
    raise StoreError(f"unknown storage type {storage!r}")


def open_consumer_store(storage: str, directory: str) -> ConsumerStore:
    """directory is the consumer's own (see consumer_dir)."""
    if storage == "file":
        return FileConsumerStore(directory)
    if storage == "memory":
        return MemoryConsumerStore()
    raise StoreError(f"unknown storage type {storage!r}")
