"""A fake server implementing the JetStream seam (subscribe_internal/publish), a fake client
connection (seams.ApiClient), a fake clock, and fixtures that start JetStream on memory stores,
for driving the API without sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from pyjetstream.jetstream.manager import JetStream
from pyjetstream.jetstream.store.memory import MemoryStore
from pyjetstream.subjects import subject_matches, subjects_overlap


@dataclass
class FakeAccount:
    name: str = "$G"


@dataclass
class FakeSub:
    account: FakeAccount
    subject: str
    callback: Any
    queue: str | None = None
    raw: bool = False


class FakePerms:
    """Publish permissions (seams.PublishPermissions) that allow every subject but those the
    `denied` filters match."""

    def __init__(self, *denied: str) -> None:
        self.denied = denied

    def may_publish_all(self, pattern: str) -> bool:
        return not any(subjects_overlap(pattern, d) for d in self.denied)


@dataclass
class FakeClient:
    """The connection a request came from, as the API reads it (seams.ApiClient). `held`
    collects what the API made it wait for (fair.start's long jobs)."""

    cid: int = 7
    name: str = "fake-client"
    lang: str = "python3"
    version: str = "0.0"
    host: str = "127.0.0.1"
    perms: FakePerms | None = None
    held: list[asyncio.Future[Any]] = field(default_factory=list)

    def hold_until(self, fut: asyncio.Future[Any]) -> None:
        self.held.append(fut)


@dataclass
class Delivered:
    subject: str
    reply: str
    hdr: bytes | None
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class JsOptions:
    store_dir: str = ""
    max_mem: int = -1
    max_file: int = -1
    sync_interval: float | None = None
    enabled: bool = True
    domain: str = ""
    strict: bool = True


@dataclass
class AccountLimits:
    max_mem: int = -1
    max_file: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    store_max_stream_bytes: int = -1
    max_bytes_required: bool = False


class FakeClock:
    def __init__(self, start: int = 1_764_000_000_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000_000)


class FakeServer:
    """Routes publishes to internal subscriptions; everything else lands in `outbox`
    (what a client subscribed to that subject would receive). Implements seams.MessageBus."""

    server_name = "fake"

    def __init__(self) -> None:
        self.global_account = FakeAccount("$G")
        self.accounts: dict[str, FakeAccount] = {"$G": self.global_account}
        self.subs: list[FakeSub] = []
        self.outbox: list[Delivered] = []
        self.listening: set[str] = set()  # subjects with "client" interest (advisories)
        self._inbox = itertools.count(1)
        self.watchers: list[tuple[str, Any]] = []  # (deliver subject, callback) of watch_interest

    def subscribe_internal(self, account: FakeAccount, subject: str, callback: Any, queue: str | None = None,
                           raw: bool = False, clients_only: bool = False) -> FakeSub:
        sub = FakeSub(account, subject, callback, queue, raw)
        self.subs.append(sub)
        return sub

    def unsubscribe_internal(self, sub: FakeSub) -> None:
        self.subs.remove(sub)

    def watch_interest(self, account: FakeAccount, subject: str, callback: Any) -> None:
        self.watchers.append((subject, callback))

    def unwatch_interest(self, account: FakeAccount, subject: str, callback: Any) -> None:
        self.watchers.remove((subject, callback))

    def has_interest(self, account: FakeAccount, subject: str) -> bool:
        return any(subject_matches(f, subject) for f in self.listening) or any(
            s.account is account and subject_matches(s.subject, subject) for s in self.subs)

    def respond(self, account: FakeAccount, subject: str, hdr: bytes | None, payload: bytes) -> int:
        # as the server's: client subscriptions only, no internal subscriber takes a reply
        return self.publish(account, subject, "", hdr, payload, internal=False)

    def publish(self, account: FakeAccount, subject: str, reply: str, hdr: bytes | None, payload: bytes,
                client: Any = None, internal: bool = True) -> int:
        n = 0
        for sub in list(self.subs) if internal else ():
            if sub.account is account and subject_matches(sub.subject, subject):
                if sub.raw:  # the server's raw form: reply bytes, header length, body + CRLF
                    sub.callback(subject, reply.encode(), len(hdr or b""), (hdr or b"") + payload + b"\r\n")
                else:
                    sub.callback(sub, client, subject, reply, hdr, payload)
                n += 1
        if n == 0 and reply and subject not in self.listening and not subject.startswith("_INBOX."):
            # a requester with no responders gets the 503 status, as the core server does
            self.outbox.append(Delivered(reply, "", b"NATS/1.0 503\r\n\r\n", b""))
        elif subject.startswith("_INBOX.") or subject in self.listening or any(
            subject_matches(f, subject) for f in self.listening
        ):
            self.outbox.append(Delivered(subject, reply, hdr, payload))
        return n

    def route(self, account: FakeAccount, subject: str, subject_b: bytes, reply_b: bytes, hdr_len: int,
              size_tok: bytes, body: bytes, origin: None, internal: bool = True) -> int:
        # what a client sees is the delivered subject (subject_b); routing is by `subject`
        data = body[:-2]
        assert size_tok == b"%d" % len(data)
        return self.publish(account, subject, reply_b.decode(), data[:hdr_len] or None, data[hdr_len:],
                            internal=internal)

    def sole_subscriber(self, account: FakeAccount, subject: str) -> None:
        return None  # no client connections here: every delivery is routed

    def flush_output(self) -> None:
        pass  # deliveries are recorded as they are made: nothing is buffered

    # --- helpers for tests -------------------------------------------------------------------

    def new_inbox(self) -> str:
        return f"_INBOX.t.{next(self._inbox)}"

    def replies(self, inbox: str) -> list[Delivered]:
        return [d for d in self.outbox if d.subject == inbox]

    async def request(self, subject: str, body: Any = b"", hdr: bytes | None = None,
                      account: FakeAccount | None = None, client: FakeClient | None = None) -> Delivered:
        out = await self.request_many(subject, body, hdr, account, client)
        assert len(out) == 1, out
        return out[0]

    async def request_many(self, subject: str, body: Any = b"", hdr: bytes | None = None,
                           account: FakeAccount | None = None, client: FakeClient | None = None) -> list[Delivered]:
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        inbox = self.new_inbox()
        self.publish(account or self.global_account, subject, inbox, hdr, body, client=client)
        await settle()
        return self.replies(inbox)

    async def api(self, subject: str, body: Any = b"", account: FakeAccount | None = None) -> dict[str, Any]:
        return (await self.request("$JS.API." + subject, body, account=account)).json()


async def settle() -> None:
    """Let call_soon callbacks (group commits) run; no wall-clock waiting."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
async def js(server: FakeServer, clock: FakeClock, tmp_path: Any) -> Any:
    # file-storage streams use memory stores here: the API and stream logic are under test,
    # the file backend has its own contract suite
    def factory(cfg: Any, directory: str, js: Any) -> MemoryStore:
        return MemoryStore(first_seq=max(cfg.first_seq, 1))

    j = JetStream(server, JsOptions(store_dir=str(tmp_path)), store_factory=factory, clock=clock)
    j.enable_account(server.global_account, AccountLimits())
    await j.start()
    yield j
    await j.stop()


def hdrs(**kv: str) -> bytes:
    lines = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in kv.items())
    return b"NATS/1.0\r\n" + lines.encode() + b"\r\n"
