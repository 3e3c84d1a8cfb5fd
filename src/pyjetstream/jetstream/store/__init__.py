"""JetStream message and consumer stores: the interface, the memory and file backends, the layout.

Re-exports the public names; import from here, not from the private modules.
"""

from pyjetstream.jetstream.store.base import (
    ConsumerState,
    ConsumerStore,
    ErrStoreClosed,
    ErrStoreEOF,
    ErrStoreMsgNotFound,
    LostData,
    SequencePair,
    SimpleState,
    StoredMsg,
    StoreError,
    StreamState,
    StreamStore,
)
from pyjetstream.jetstream.store.consumer import FileConsumerStore
from pyjetstream.jetstream.store.file import ErrStoreInUse, FileStore
from pyjetstream.jetstream.store.layout import (
    ErrCorruptMeta,
    consumer_dir,
    list_consumers,
    list_streams,
    open_consumer_store,
    open_stream_store,
    read_meta,
    remove_dir,
    stream_dir,
    write_meta,
)
from pyjetstream.jetstream.store.memory import MemoryConsumerStore, MemoryStore

__all__ = [
    "ConsumerState", "ConsumerStore", "ErrCorruptMeta", "ErrStoreClosed", "ErrStoreEOF", "ErrStoreInUse",
    "ErrStoreMsgNotFound", "FileConsumerStore", "FileStore", "LostData", "MemoryConsumerStore",
    "MemoryStore", "SequencePair", "SimpleState", "StoreError", "StoredMsg", "StreamState",
    "StreamStore", "consumer_dir", "list_consumers", "list_streams", "open_consumer_store",
    "open_stream_store", "read_meta", "remove_dir", "stream_dir", "write_meta",
]
