"""The NATS server: accepts connections and routes messages between them.

Owns the accounts (each with its subject index), the client registry, the flush schedule for
dirty connections, the internal-subscription seam JetStream and monitoring use, and the
server lifecycle (start, lame duck, shutdown). All state lives on the one event-loop thread;
nothing here awaits in the middle of a mutation. Framing is the connection's job; storage is
JetStream's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pyjetstream.server.auth import Authenticator
from pyjetstream.server.client import Account, ClientConnection, Subscription
from pyjetstream.server.options import ServerOptions
from pyjetstream.server.tls import RateCounter, build_context
from pyjetstream.subjects import is_valid_subject
from pyjetstream.version import JS_API_LEVEL, VERSION

if TYPE_CHECKING:  # started in start(), imported there
    from pyjetstream.jetstream.manager import JetStream

log = logging.getLogger("pyjetstream.server")

# The nats-server release whose client-visible behaviour we match; clients pick API features by it.
GLOBAL_ACCOUNT = "$G"

InternalCallback = Callable[[Subscription, ClientConnection | None, str, str, bytes | None, bytes], None]
# subscribe_internal(..., raw=True): (subject, reply bytes, header length, headers + payload + CRLF)
RawCallback = Callable[[str, bytes, int, bytes], None]

_ONE_OFF_PREFIXES = ("_INBOX.", "$JS.ACK.", "$JS.FC.")
# The subjects whose messages the server acts on (jetstream.schemas.RESERVED_SUBJECTS, which
# also keeps deliver subjects and republish destinations out of them).
_ACTING_PREFIXES = ("$JS.API.", "$JS.ACK.", "$JS.FC.", "$SYS.")
_NO_RESPONDERS_HDR = b"NATS/1.0 503\r\n\r\n"


def _note_reply(c: ClientConnection, reply_b: bytes, origin: ClientConnection | None) -> None:
    """allow_responses: `c` was sent a message with this reply subject (by `origin`, or by
    the server itself when None) and may answer on it."""
    assert c.perms is not None
    c.perms.note_reply(reply_b.decode("utf-8", "surrogateescape"), origin.perms if origin is not None else None)


# not `secrets`: it loads hmac and OpenSSL's hashing (~1 MiB of RSS in every server); the
# system source is the same os.urandom
_SYSRAND = random.SystemRandom()


def _server_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "N" + "".join(_SYSRAND.choice(alphabet) for _ in range(55))


class Server:
    def __init__(self, opts: ServerOptions, rng: random.Random | None = None) -> None:
        self.opts = opts
        self.rng = rng or random.Random()
        self.server_id = _server_id()
        self.server_name = opts.server_name or self.server_id
        self.auth = Authenticator(opts)
        self.accounts: dict[str, Account] = {}
        self.global_account = self.lookup_account(GLOBAL_ACCOUNT)
        for name, cfg in opts.accounts.items():
            self.lookup_account(name).config = cfg
        self.clients: dict[int, ClientConnection] = {}
        self._next_cid = 0
        self._dirty: list[ClientConnection] = []
        self._flush_scheduled = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._server: asyncio.base_events.Server | None = None
        self.port = opts.port
        self.start_time = time.time()
        self.total_connections = 0
        self.slow_consumers = 0
        self.stale_connections = 0  # closed after ping_max unanswered PINGs
        self.lame_duck = False
        self.ssl_context: ssl.SSLContext | None = build_context(opts) if opts.tls else None
        self.tls_rate = RateCounter(opts.tls_rate_limit) if opts.tls and opts.tls_rate_limit > 0 else None
        self.jetstream: JetStream | None = None
        self.monitor: Any = None
        self._stopped = asyncio.Event()
        self._shutdown_lock = asyncio.Lock()
        self._signal_tasks: set[asyncio.Task[None]] = set()
        self._info_base: dict[str, Any] = {}
        # counters of connections already gone, so /varz totals never go down
        self._closed_totals = {"in_msgs": 0, "in_bytes": 0, "out_msgs": 0, "out_bytes": 0}

    # ------------------------------------------------------------------ accounts
    def lookup_account(self, name: str) -> Account:
        acc = self.accounts.get(name)
        if acc is None:
            acc = self.accounts[name] = Account(name)
        return acc

    def move_client(self, client: ClientConnection, account: Account) -> None:
        old = client.account
        old.clients.discard(client)
        client.account = account
        account.clients.add(client)
        # subscriptions made before a (re-)CONNECT follow the client into its new account
        for sub in client.subs.values():
            old.sublist.remove(sub)
            sub.account = account
            account.add_sub(sub)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        o = self.opts
        self._server = await self.loop.create_server(self._new_client, o.host, o.port, reuse_address=True,
                                                     backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._info_base = {
            "server_id": self.server_id, "server_name": self.server_name, "version": VERSION,
            "proto": 1, "go": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "host": o.host, "port": self.port, "headers": True, "max_payload": o.max_payload,
        }
        if o.jetstream.enabled:
            self._info_base["jetstream"] = True
        if o.jetstream.domain:
            self._info_base["domain"] = o.jetstream.domain
        # 2.12's INFO names the JetStream API level, JetStream enabled or not (nats-server also
        # sends an `xkey` for auth callout, which we do not have; docs/compat.md)
        self._info_base["api_lvl"] = JS_API_LEVEL
        if self.auth.expect_connect:
            self._info_base["auth_required"] = True
        if o.tls:
            self._info_base["tls_required"] = True
            if o.tls_verify:
                self._info_base["tls_verify"] = True
        log.info("Starting pyjetstream server (nats-server %s compatible)", VERSION)
        log.info("Server name: %s", self.server_name)
        if o.jetstream.enabled:
            from pyjetstream.jetstream.manager import JetStream

            self.jetstream = JetStream(self, o.jetstream)
            for acc in self._jetstream_accounts():
                self.jetstream.enable_account(acc, acc.config)
            await self.jetstream.start()
        if o.http_port:
            from pyjetstream.monitoring.http import MonitorServer

            self.monitor = MonitorServer(self)
            await self.monitor.start(o.http_host or o.host, o.http_port)
        if o.pid_file:
            with open(o.pid_file, "w") as f:
                f.write(str(os.getpid()))
        log.info("Listening for client connections on %s:%d", o.host, self.port)
        log.info("Server is ready")

    def _jetstream_accounts(self) -> list[Account]:
        if self.opts.accounts:
            accs = [self.lookup_account(n) for n, c in self.opts.accounts.items() if c.jetstream]
            # The global account keeps JetStream when no account config names it explicitly.
            if not any(a.name == GLOBAL_ACCOUNT for a in accs) and not self.opts.users:
                accs.append(self.global_account)
            return accs
        return [self.global_account]

    def install_signal_handlers(self) -> None:
        loop = self.loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: self._spawn(self.shutdown()))
        loop.add_signal_handler(signal.SIGUSR2, lambda: self._spawn(self.lame_duck_mode()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only a weak reference to a task: an unreferenced shutdown could be
        # collected halfway through.
        task = self.loop.create_task(coro)
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)

    async def wait_closed(self) -> None:
        await self._stopped.wait()

    async def shutdown(self) -> None:
        # A second signal, or lame duck ending, while a shutdown is under way waits for it
        # instead of stopping JetStream a second time concurrently.
        async with self._shutdown_lock:
            if self._stopped.is_set():
                return
            log.info("Initiating Shutdown...")
            if self._server is not None:
                self._server.close()
            for c in list(self.clients.values()):
                c.close("Server Shutdown")
            if self.jetstream is not None:
                await self.jetstream.stop()
            if self.monitor is not None:
                await self.monitor.stop()
            if self.opts.pid_file:
                try:
                    os.unlink(self.opts.pid_file)
                except OSError:
                    pass
            log.info("Server Exiting..")
            self._stopped.set()

    async def lame_duck_mode(self) -> None:
        """Stop accepting, tell clients (INFO with ldm) so they reconnect elsewhere, then close
        them spread over the lame-duck duration and shut down."""
        if self.lame_duck:
            return
        self.lame_duck = True
        log.info("Entering lame duck mode, stop accepting new clients")
        if self._server is not None:
            self._server.close()
        # Only clients that announced protocol 1 accept an asynchronous INFO (nats-server rule).
        for c in list(self.clients.values()):
            if c.protocol >= 1:
                c.send_now(self.info_line(c, ldm=True))
        self._flush_dirty()
        clients = list(self.clients.values())
        grace = min(self.opts.lame_duck_grace, self.opts.lame_duck_duration)
        await asyncio.sleep(grace)
        if clients:
            log.info("Closing existing clients")
        # Spread the closes over the rest of the duration so clients do not all reconnect at
        # once, but never wait more than a second between two: a few clients should not hold
        # the server for minutes.
        spread = max(self.opts.lame_duck_duration - grace, 0.0)
        delay = min(spread / len(clients), 1.0) if clients else 0.0
        for i, c in enumerate(clients):
            c.close("Server Shutdown")
            if delay and i + 1 < len(clients):
                await asyncio.sleep(delay)
        await self.shutdown()

    # ------------------------------------------------------------------ clients
    def _new_client(self) -> ClientConnection:
        self._next_cid += 1
        return ClientConnection(self, self._next_cid)

    def register_client(self, c: ClientConnection) -> None:
        self.clients[c.cid] = c
        c.account.clients.add(c)
        self.total_connections += 1

    def unregister_client(self, c: ClientConnection, reason: str) -> None:
        if self.clients.pop(c.cid, None) is not None:
            ct = self._closed_totals
            ct["in_msgs"] += c.in_msgs
            ct["in_bytes"] += c.in_bytes
            ct["out_msgs"] += c.out_msgs
            ct["out_bytes"] += c.out_bytes
        c.account.clients.discard(c)
        log.debug("cid=%d closed: %s", c.cid, reason)
        if self.monitor is not None:
            self.monitor.record_closed(c, reason)  # before the subscriptions go: /connz counts them
        if c.subs:
            c.account.sublist.remove_batch(list(c.subs.values()))
            c.subs.clear()

    def info_line(self, c: ClientConnection, ldm: bool = False) -> bytes:
        info = dict(self._info_base, client_id=c.cid, client_ip=c.host)
        if ldm:
            info["ldm"] = True
        return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"

    def mark_dirty(self, c: ClientConnection) -> None:
        self._dirty.append(c)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._flush_scheduled = False
        self.flush_output()

    def flush_output(self) -> None:
        """Hand every connection's pending output to its transport now instead of at the next
        loop pass (PubAcks right after their sync: a lone publisher waits for nothing else).
        A flush already scheduled stays so, and takes whatever is marked after this."""
        dirty, self._dirty = self._dirty, []
        for c in dirty:
            c.flush()

    # ------------------------------------------------------------------ routing
    def route(self, account: Account, subject: str, subject_b: bytes, reply_b: bytes, hdr_len: int,
              size_tok: bytes, body: bytes, origin: ClientConnection | None, internal: bool = True) -> int:
        """Deliver one message to every matching subscription of the account. `body` is
        headers + payload + CRLF; `size_tok` the decimal total length. `internal=False`:
        client subscriptions only (see respond)."""
        # Replies to inboxes and JetStream acks name a fresh subject every time: caching them
        # would only evict the subjects that repeat (one character test keeps the common path cheap).
        if subject[:1] in ("_", "$") and subject.startswith(_ONE_OFF_PREFIXES):
            plain, queues = account.sublist.match_once(subject)
        else:
            plain, queues = account.sublist.match(subject)
        n = 0
        for sub in plain:
            c = sub.client
            if c is not None:
                if c is origin and not c.echo:
                    continue
                if c.perms is not None and c.perms.delivery_denied(subject):
                    continue
                c.deliver(sub, subject_b, reply_b, hdr_len, size_tok, body)
                if c.stalling is not None and origin is not None:
                    c.stall_producer(origin)
                if reply_b and c.perms is not None and c.perms.replies is not None:
                    _note_reply(c, reply_b, origin)
            elif internal:
                self._deliver_internal(sub, origin, subject, reply_b, hdr_len, body)
            else:
                continue
            n += 1
            sub.delivered += 1
            if sub.max and sub.delivered >= sub.max:
                self._expire(sub)
        for group in queues:
            sub = group[0] if len(group) == 1 else self.rng.choice(group)
            c = sub.client
            if c is not None:
                if (c is origin and not c.echo) or (c.perms is not None and c.perms.delivery_denied(subject)):
                    # this member may not take it; as nats-server, try the others
                    alt = self._queue_fallback(group, origin, subject)
                    if alt is None:
                        continue
                    sub = alt
                    c = sub.client
            if c is not None:
                c.deliver(sub, subject_b, reply_b, hdr_len, size_tok, body)
                if c.stalling is not None and origin is not None:
                    c.stall_producer(origin)
                if reply_b and c.perms is not None and c.perms.replies is not None:
                    _note_reply(c, reply_b, origin)
            elif internal:
                self._deliver_internal(sub, origin, subject, reply_b, hdr_len, body)
            else:
                continue
            n += 1
            sub.delivered += 1
            if sub.max and sub.delivered >= sub.max:
                self._expire(sub)
        if n == 0 and reply_b and origin is not None and origin.no_responders:
            self._no_responders(origin, subject, reply_b)
        return n

    def sole_subscriber(self, account: Account, subject: str) -> Subscription | None:
        """The one client subscription a message on `subject` would go to when routing could
        be skipped: no queue group, no second or internal subscriber, no permissions, no
        auto-unsubscribe count and a text sid. JetStream resolves a deliver subject once per
        batch with this and frames the batch straight into that client."""
        if subject[:1] in ("_", "$") and subject.startswith(_ONE_OFF_PREFIXES):
            plain, queues = account.sublist.match_once(subject)
        else:
            plain, queues = account.sublist.match(subject)
        if queues or len(plain) != 1:
            return None
        sub = plain[0]
        c = sub.client
        if c is None or c.closed or c.perms is not None or sub.max or sub.sid_s is None:
            return None
        return sub

    def _queue_fallback(self, group: Any, origin: ClientConnection | None, subject: str) -> Subscription | None:
        """A member of `group` that may receive the message (random start), or None."""
        n = len(group)
        start = self.rng.randrange(n)
        for i in range(n):
            sub = group[(start + i) % n]
            c = sub.client
            if c is None:
                return sub
            if (not c.echo and c is origin) or (c.perms is not None and c.perms.delivery_denied(subject)):
                continue
            return sub
        return None

    def _expire(self, sub: Subscription) -> None:
        """UNSUB with a max: the subscription has had its last message."""
        if sub.client is not None:
            sub.client.remove_sub(sub)
        else:
            sub.account.sublist.remove(sub)

    def _deliver_internal(self, sub: Subscription, origin: ClientConnection | None, subject: str,
                          reply_b: bytes, hdr_len: int, body: bytes) -> None:
        if origin is None and sub.clients_only:
            return
        if sub.raw:
            try:
                sub.callback(subject, reply_b, hdr_len, body)
            except Exception:  # noqa: BLE001 - as below
                log.exception("internal subscriber on %r failed for a message on %r", sub.subject, subject)
            return
        hdr = body[:hdr_len] if hdr_len else None
        payload = body[hdr_len:-2]
        if not subject.isascii():
            # internal subscribers get a subject that encodes cleanly even from invalid UTF-8
            subject = subject.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        reply = reply_b.decode("utf-8", "replace") if reply_b else ""
        try:
            sub.callback(sub, origin, subject, reply, hdr, payload)
        except Exception:  # noqa: BLE001 - boundary to another component: its bug must not drop the publisher
            log.exception("internal subscriber on %r failed for a message on %r", sub.subject, subject)

    def _no_responders(self, origin: ClientConnection, subject: str, reply_b: bytes) -> None:
        reply = reply_b.decode("utf-8", "surrogateescape")
        plain, queues = origin.account.sublist.match(reply)
        for sub in list(plain) + [s for g in queues for s in g]:
            if sub.client is origin:
                hdr = _NO_RESPONDERS_HDR
                size = b"%d" % len(hdr)
                origin.deliver(sub, reply_b, b"", len(hdr), size, hdr + b"\r\n")
                return

    # ------------------------------------------------------------------ internal seam
    def subscribe_internal(self, account: Account, subject: str, callback: InternalCallback | RawCallback,
                           queue: str | None = None, raw: bool = False,
                           clients_only: bool = False) -> Subscription:
        """An in-process subscriber. The callback gets (sub, origin, subject, reply, hdr,
        payload) as text and bytes; with `raw`, the cheaper (subject, reply bytes, header
        length, headers + payload + CRLF) for subscribers that see many messages (acks).
        `clients_only`: for subscribers that act on requests (the JetStream API, acks): a
        message the server itself published carries no client's rights and is not passed on."""
        if not is_valid_subject(subject):
            raise ValueError(f"invalid subject {subject!r}")
        sub = Subscription(subject, queue, b"", None, account, callback)
        sub.raw = raw
        # Inside the subjects the server acts on, every subscriber is clients_only whatever
        # its caller said: a handler added there later cannot forget it.
        sub.clients_only = clients_only or subject.startswith(_ACTING_PREFIXES)
        account.add_sub(sub)
        return sub

    def unsubscribe_internal(self, sub: Subscription) -> None:
        sub.account.sublist.remove(sub)

    def publish(self, account: Account, subject: str, reply: str, hdr: bytes | None, payload: bytes) -> int:
        subject_b = subject.encode()
        reply_b = reply.encode() if reply else b""
        if hdr:
            body = hdr + payload + b"\r\n"
            hdr_len = len(hdr)
        else:
            body = payload + b"\r\n"
            hdr_len = 0
        return self.route(account, subject, subject_b, reply_b, hdr_len, b"%d" % (len(body) - 2), body, None)

    def respond(self, account: Account, subject: str, hdr: bytes | None, payload: bytes) -> int:
        """A reply the server sends for a client's request (API responses, PubAcks, ack
        confirmations). Only client subscriptions get it; no internal subscriber (a stream
        capturing the subject, an API handler) takes it: the requester chose the subject and
        may not be allowed to publish there, so a stream on `payroll.>` must not store a PubAck
        sent to reply `payroll.x`. Advisories and deliveries still use publish()."""
        body = hdr + payload + b"\r\n" if hdr else payload + b"\r\n"
        return self.route(account, subject, subject.encode(), b"", len(hdr) if hdr else 0,
                          b"%d" % (len(body) - 2), body, None, internal=False)

    def has_interest(self, account: Account, subject: str) -> bool:
        return account.sublist.has_interest(subject)

    def watch_interest(self, account: Account, subject: str, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a subscription matching the literal `subject` is added."""
        account.watch(subject, callback)

    def unwatch_interest(self, account: Account, subject: str, callback: Callable[[], None]) -> None:
        account.unwatch(subject, callback)

    # ------------------------------------------------------------------ stats
    def totals(self) -> dict[str, int]:
        """Server-wide message counters since start (closed connections included), as /varz."""
        t = dict(self._closed_totals)
        for c in self.clients.values():
            t["in_msgs"] += c.in_msgs
            t["in_bytes"] += c.in_bytes
            t["out_msgs"] += c.out_msgs
            t["out_bytes"] += c.out_bytes
        return t
