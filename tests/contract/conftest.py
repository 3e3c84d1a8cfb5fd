"""Fixtures that give every contract test each stream-store backend.

`store` is a fresh store; `reopen(store)` returns the same data seen through a new store object
(a clean close and reopen for the file backend, the same object for memory), so the contract is
checked both live and after a restart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from pyjetstream.jetstream.store import FileStore, MemoryStore

BACKENDS = ["memory", "file", "file-small-blocks"]


class Backend:
    def __init__(self, kind: str, tmp: str) -> None:
        self.kind = kind
        self.tmp = tmp
        self.opened: list[FileStore] = []

    def open(self, first_seq: int = 1, name: str = "s") -> MemoryStore | FileStore:
        if self.kind == "memory":
            return MemoryStore(first_seq=first_seq)
        block = 4096 if self.kind == "file-small-blocks" else 8 * 1024 * 1024
        st = FileStore(os.path.join(self.tmp, name), block_size=block, first_seq=first_seq)
        self.opened.append(st)
        return st

    def reopen(self, st: MemoryStore | FileStore) -> MemoryStore | FileStore:
        if isinstance(st, MemoryStore):
            return st
        st.close()
        new = FileStore(st.directory, block_size=st._block_size)
        self.opened.append(new)
        return new

    def close_all(self) -> None:
        for st in self.opened:
            st.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    b = Backend(request.param, str(tmp_path))
    yield b
    b.close_all()


@pytest.fixture
def store(backend: Backend) -> MemoryStore | FileStore:
    return backend.open()


@pytest.fixture
def reopen(backend: Backend) -> Callable[[MemoryStore | FileStore], MemoryStore | FileStore]:
    return backend.reopen
