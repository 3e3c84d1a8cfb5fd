"""Fixtures that give every contract test each stream-store backend.

`store` is a fresh store; `reopen(store)` returns the same data seen through a new store object
(a clean close and reopen for the file backend, the same object for memory), so the contract is
checked both live and after a restart. The "file-crash" backend reopens a copy of the directory
taken without a clean close, which is what a kill -9 leaves behind; "file-few-fds" keeps at most
two sealed segments open, so reads keep reopening files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from pyjetstream.jetstream.store import FileStore, MemoryStore
from pyjetstream.jetstream.store import file as file_mod

# "file-s2*": records compressed (stream `compression: s2`), live, after a crash and reopened
BACKENDS = ["memory", "file", "file-small-blocks", "file-crash", "file-few-fds", "file-s2", "file-s2-crash"]


class Backend:
    def __init__(self, kind: str, tmp: str) -> None:
        self.kind = kind
        self.tmp = tmp
        self.opened: list[FileStore] = []
        self.n = 0
        self.compression = "s2" if kind.startswith("file-s2") else "none"

    def open(self, first_seq: int = 1, name: str = "s") -> MemoryStore | FileStore:
        if self.kind == "memory":
            return MemoryStore(first_seq=first_seq)
        block = 8 * 1024 * 1024 if self.kind in ("file", "file-s2") else 4096
        st = FileStore(os.path.join(self.tmp, name), block_size=block, first_seq=first_seq,
                       compression=self.compression)
        self.opened.append(st)
        return st

    def reopen(self, st: MemoryStore | FileStore) -> MemoryStore | FileStore:
        if isinstance(st, MemoryStore):
            return st
        if self.kind in ("file-crash", "file-s2-crash") and not st._closed:
            st.flush()
            self.n += 1
            image = os.path.join(self.tmp, f"crash{self.n}")
            shutil.copytree(st.directory, image)
            st.close()
            new = FileStore(image, block_size=st._block_size, compression=self.compression)
            self.opened.append(new)
            return new
        st.close()
        new = FileStore(st.directory, block_size=st._block_size, compression=self.compression)
        self.opened.append(new)
        return new

    def close_all(self) -> None:
        for st in self.opened:
            st.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Backend]:
    if request.param.startswith("file-s2"):
        # every message compressed, however small, so the whole contract runs on K_MSGZ records
        monkeypatch.setattr(file_mod, "_MIN_Z", 0)
        monkeypatch.setattr(file_mod, "_Z_ALWAYS", True)
    if request.param == "file-few-fds":
        # Tiny segments and at most two open sealed segments: every read path must reopen.
        monkeypatch.setattr(file_mod, "_MAX_OPEN", 2)
    b = Backend(request.param, str(tmp_path))
    yield b
    b.close_all()


@pytest.fixture
def store(backend: Backend) -> MemoryStore | FileStore:
    return backend.open()


@pytest.fixture
def reopen(backend: Backend) -> Callable[[MemoryStore | FileStore], MemoryStore | FileStore]:
    return backend.reopen
