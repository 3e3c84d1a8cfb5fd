"""The typed seams between JetStream and what it runs on.

Owns the `Protocol`s JetStream code is written against: the message bus the server provides
(internal subscriptions, publish, respond, route, sole_subscriber, interest, accounts), the
account handle, the connection behind an API request (ApiClient), the settings and limits
JetStream reads, and the stream's view of its owning account. The stores' interfaces live with the stores (store/base.py: StreamStore,
ConsumerStore) and are re-exported here. The server (server/server.py) and the test doubles
(tests/jetstream/conftest.py, tests/consumers/test_runner.py) implement these; mypy checks
the server, and tests/jetstream/test_seams.py and tests/consumers/test_runner.py check the
server and the doubles at run time.

Holds no behaviour and imports nothing of the server: JetStream must not depend on the server
package (the server imports JetStream, not the other way round).

Account handles are the bus's own objects: JetStream reads only their `name` and passes them
back as it got them, so the bus methods take them as `Any` (a bus may need more of them than
this protocol names, as the server needs each account's subscription index).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pyjetstream.jetstream.store.base import ConsumerStore, StreamStore

if TYPE_CHECKING:
    from pyjetstream.jetstream.consumer_config import ConsumerConfig

__all__ = ["Account", "AccountLimits", "ApiClient", "ConsumerStore", "DirectClient", "DirectSubscriber", "JetStreamSettings",
           "MessageBus", "PublishPermissions", "ServerJetStream", "StreamConsumer", "StreamOwner", "StreamStore", "Subscription",
           "UsageReporter"]


@runtime_checkable
class Account(Protocol):
    @property
    def name(self) -> str: ...


@runtime_checkable
class Subscription(Protocol):
    """What subscribe_internal returns: a handle to unsubscribe with, knowing its account."""

    @property
    def account(self) -> Any: ...


@runtime_checkable
class DirectClient(Protocol):
    """The connection behind a sole subscriber: JetStream frames deliveries straight into it."""

    @property
    def closed(self) -> bool: ...

    def deliver_stored(self, sub: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> None: ...


@runtime_checkable
class DirectSubscriber(Protocol):
    @property
    def client(self) -> DirectClient | None: ...

    delivered: int


@runtime_checkable
class MessageBus(Protocol):
    """The server as JetStream sees it.

    Callbacks of subscribe_internal get (sub, client, subject, reply, hdr, payload), or with
    raw=True (subject, reply bytes, header length, headers + payload + CRLF). clients_only:
    messages the server itself published are not passed on. publish() reaches every
    subscriber; respond() only client subscriptions (replies to a client's request); route()
    is publish with the body already framed and the delivered subject apart from the routing
    subject (what a consumer delivery needs; internal=False reaches client subscriptions only).
    All three return how many subscriptions got it.
    """

    @property
    def accounts(self) -> Mapping[str, Account]: ...

    @property
    def global_account(self) -> Account: ...

    @property
    def server_name(self) -> str: ...

    def subscribe_internal(self, account: Any, subject: str, callback: Callable[..., None],
                           queue: str | None = None, raw: bool = False,
                           clients_only: bool = False) -> Subscription: ...

    def unsubscribe_internal(self, sub: Any) -> None: ...

    def publish(self, account: Any, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> int: ...

    def respond(self, account: Any, subject: str, hdr: bytes | None, payload: bytes) -> int: ...

    def route(self, account: Any, subject: str, subject_b: bytes, reply_b: bytes, hdr_len: int,
              size_tok: bytes, body: bytes, origin: None, internal: bool = True) -> int:
        """internal=False: client subscriptions only, as respond()."""
        ...

    def flush_output(self) -> None:
        """Write the output queued so far to the connections now, not at the next loop pass."""
        ...

    def sole_subscriber(self, account: Any, subject: str) -> DirectSubscriber | None: ...

    def has_interest(self, account: Any, subject: str) -> bool: ...

    def watch_interest(self, account: Any, subject: str, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a subscription matching the literal `subject` is added."""
        ...

    def unwatch_interest(self, account: Any, subject: str, callback: Callable[[], None]) -> None: ...


@runtime_checkable
class PublishPermissions(Protocol):
    """A connection's publish permissions, as far as JetStream asks (server/auth.py's
    PermissionChecker)."""

    def may_publish_all(self, pattern: str) -> bool:
        """May the connection publish to every subject `pattern` matches?"""
        ...


@runtime_checkable
class ApiClient(Protocol):
    """The connection an API request came from (server/client.py's ClientConnection), as the
    API reads it: the publish permissions a deliver subject or republish destination is
    checked against (publish_targets), the fields an audit advisory names (advisories), and
    the hold that keeps its later operations waiting while its long request runs in slices
    (fair.start). A request the server makes itself has no client (None), never a stand-in.
    Read-only here: JetStream never changes the connection."""

    @property
    def perms(self) -> PublishPermissions | None:
        """None: unrestricted."""
        ...

    @property
    def cid(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def lang(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def host(self) -> str: ...

    def hold_until(self, fut: asyncio.Future[Any]) -> None:
        """Process nothing more from this connection until `fut` is done."""
        ...


class StreamConsumer(Protocol):
    """A consumer as its stream drives it (consumer_runner.ConsumerRunner): the stream tells it
    of new and removed messages and asks whether it still needs one (interest retention)."""

    # a stream update checks its new consumer_limits against these (api.stream_update)
    @property
    def config(self) -> ConsumerConfig: ...

    def matches(self, subject: str) -> bool: ...

    def needs_ack(self, seq: int, subject: str) -> bool: ...

    def on_new_msg(self, seq: int, subject: str) -> None: ...

    def on_msgs_removed(self, first_seq: int) -> None: ...

    def on_purged(self, first_seq: int) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def stop(self, delete: bool = False) -> None: ...


class JetStreamSettings(Protocol):
    """The server's JetStream options as the manager reads them (-1: no limit)."""

    @property
    def store_dir(self) -> str: ...

    @property
    def sync_interval(self) -> float | None: ...

    @property
    def max_mem(self) -> int: ...

    @property
    def max_file(self) -> int: ...

    @property
    def domain(self) -> str: ...

    @property
    def strict(self) -> bool: ...


class AccountLimits(Protocol):
    """An account's JetStream limits (-1: none)."""

    @property
    def max_mem(self) -> int: ...

    @property
    def max_file(self) -> int: ...

    @property
    def max_streams(self) -> int: ...

    @property
    def max_consumers(self) -> int: ...

    @property
    def max_ack_pending(self) -> int: ...

    @property
    def memory_max_stream_bytes(self) -> int: ...

    @property
    def store_max_stream_bytes(self) -> int: ...

    @property
    def max_bytes_required(self) -> bool: ...


class UsageReporter(Protocol):
    def usage(self) -> tuple[int, int]:
        """(memory bytes, file bytes) stored by the account's streams."""
        ...


class ServerJetStream(Protocol):
    """The server-wide JetStream a stream checks its server limits against (manager.JetStream)."""

    @property
    def max_mem(self) -> int: ...

    @property
    def max_file(self) -> int: ...

    @property
    def accounts(self) -> Mapping[str, UsageReporter]: ...

    @property
    def domain(self) -> str:
        """The JetStream domain ("" for none): PubAcks and stream info carry it."""
        ...


class StreamOwner(UsageReporter, Protocol):
    """What a stream and its consumers need of the account's JetStream (manager.JsAccount)."""

    @property
    def js(self) -> ServerJetStream: ...

    @property
    def server(self) -> MessageBus: ...

    @property
    def account(self) -> Account: ...

    @property
    def name(self) -> str: ...

    def limit(self, attr: str) -> int:
        """The account's limit `attr` (max_mem, max_file, max_streams, max_consumers); -1: none."""
        ...

