"""One client connection: the asyncio Protocol around the sans-IO parser.

Owns its parser, its outbound buffer, its subscriptions by sid, its ping and auth timers and
its CONNECT options. Only it writes to its transport. Routing of a message to other
connections is the Server's job; a connection hands every PUB to `server.route`.
Output is collected per loop iteration and written with one join and one write; a peer whose
unsent bytes exceed max_pending is a slow consumer and is closed without harming others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Sized
from typing import Any, Protocol

from pyjetstream import loopstats
from pyjetstream.protocol.parser import (
    ERR_MAX_PAYLOAD,
    OP_CONNECT,
    OP_ERR,
    OP_HPUB,
    OP_PING,
    OP_PONG,
    OP_PUB,
    OP_SUB,
    OP_UNSUB,
    Parser,
    ProtocolError,
)
from pyjetstream.server.auth import Authenticator, AuthResult, PermissionChecker, SlowCheck, bcrypt_matches
from pyjetstream.server.options import AccountConfig, ServerOptions
from pyjetstream.server.tls import PeerCert, RateCounter, TLSEngine, cipher_name, version_name
from pyjetstream.subjects import (
    SubjectIndex,
    has_wildcard,
    is_valid_literal_subject,
    is_valid_queue_name,
    is_valid_subject,
)

log = logging.getLogger("pyjetstream.server")

FIRST_PING = 2.0
PONG = b"PONG\r\n"
PING = b"PING\r\n"
OK = b"+OK\r\n"
# Fast producers wait while a subscriber they feed has this much output the kernel would not
# take (nats-server stalls producers the same way, at half of max_pending): what a subscriber
# cannot read yet then waits in the producer's socket, not in this process's memory.
STALL_BYTES = 2 * 1024 * 1024
FLUSH_BYTES = 256 * 1024
STALL_MAX = 0.1  # seconds a producer waits at most per stall (nats-server's minimum stall)
# Bytes one connection's input may bring between two turns of the loop. uvloop reads a busy
# socket up to 32 times in one pass (256 KiB each), so a client flooding PUBs could hold the loop
# for 8 MB of parsing and routing (over 300 ms); after this many bytes its reading pauses until
# the next pass, and every other connection gets its turn in between.
READ_BUDGET = 256 * 1024


def err_line(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


# CONNECT fields and the JSON types nats-server's decoder accepts for them (null is fine).
_CONNECT_TYPES: dict[str, type | tuple[type, ...]] = {
    "verbose": bool, "pedantic": bool, "tls_required": bool, "echo": bool, "headers": bool,
    "no_responders": bool, "auth_token": str, "user": str, "pass": str, "name": str, "lang": str,
    "version": str, "nkey": str, "jwt": str, "sig": str, "account": str, "new_account": bool,
    "protocol": int,
}


# Reply subjects no client may set: the server publishes to a message's reply subject on the
# client's behalf (API replies, PubAcks, pull deliveries), and those must never land where the
# server acts on messages (jetstream.schemas.RESERVED_SUBJECTS). nats-server 2.9 refuses
# `$JS.ACK.` only; the API, flow-control and system prefixes are refused here as well (clients
# answer flow control by publishing TO a `$JS.FC.` subject, never with one as their reply).
RESERVED_REPLY_PREFIXES = (b"$JS.API.", b"$JS.ACK.", b"$JS.FC.", b"$SYS.")

# Credentials in a traced CONNECT, as nats-server redacts them
_SECRET_FIELDS = re.compile(rb'("(?:pass|auth_token|sig|jwt)"\s*:\s*)"(?:[^"\\]|\\.)*"')


def redact(data: bytes) -> bytes:
    return _SECRET_FIELDS.sub(rb'\1"[REDACTED]"', data)


def _connect_types_ok(opts: dict[str, Any]) -> bool:
    for key, typ in _CONNECT_TYPES.items():
        v = opts.get(key)
        if v is not None and (not isinstance(v, typ) or (typ is int and isinstance(v, bool))):
            return False
    return True


def _literal_tokens(subject: str) -> bool:
    """nats-server's pedantic publish test: no empty token, no wildcard token. Unlike
    is_valid_literal_subject it lets CR and FF inside a token; asked only when that says no."""
    tokens = subject.split(".")
    return all(tokens) and "*" not in tokens and ">" not in tokens


def _opt_bool(opts: dict[str, Any], key: str, default: bool) -> bool:
    v = opts.get(key)
    return default if v is None else v


class Subscription:
    """A client's SUB or an internal subscription (callback set, client None for internal)."""

    __slots__ = ("subject", "queue", "sid", "sid_s", "client", "callback", "raw", "clients_only", "max",
                 "delivered", "account", "_pre_subj", "_pre")

    def __init__(self, subject: str, queue: str | None, sid: bytes, client: ClientConnection | None,
                 account: Account, callback: Any = None) -> None:
        self.subject = subject
        self.queue = queue
        self.sid = sid
        # the sid as text for framing JetStream deliveries (None: not ASCII, frame as bytes)
        self.sid_s = sid.decode() if sid.isascii() else None
        self.client = client
        self.callback = callback
        # internal only: the callback takes (subject, reply bytes, header length, body + CRLF)
        self.raw = False
        # internal only: take messages that a client published, never the server's own (API
        # replies, PubAcks, deliveries, advisories), whatever subject a client chose for them
        self.clients_only = False
        self.max = 0
        self.delivered = 0
        self.account = account
        # `MSG <subject> <sid> ` for the last subject delivered: most subscriptions see one
        # subject over and over, and reusing the prefix saves building it per message
        self._pre_subj = b""
        self._pre = b""


class Account:
    """An account's subscriptions and connections. It lives here, not in server.py, so that a
    connection can name it without importing the server that imports the connection."""

    __slots__ = ("name", "sublist", "config", "clients", "interest_watchers", "_wild_check")

    def __init__(self, name: str, config: AccountConfig | None = None) -> None:
        self.name = name
        self.sublist: SubjectIndex[Subscription] = SubjectIndex()
        self.config = config or AccountConfig(name)
        self.clients: set[ClientConnection] = set()
        # literal subject -> callbacks told when a subscription that matches it arrives (push
        # consumers waiting for their deliver subject's subscriber, as nats-server's interest
        # notifications); empty on almost every account, so a SUB pays one truth test
        self.interest_watchers: dict[str, list[Callable[[], None]]] = {}
        self._wild_check = False

    def add_sub(self, sub: Subscription) -> None:
        """Index a subscription (client or internal) and tell whoever watches its subject."""
        self.sublist.insert(sub)
        if self.interest_watchers:
            self._subscribed(sub.subject)

    def watch(self, subject: str, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a subscription matching the literal `subject` is added."""
        self.interest_watchers.setdefault(subject, []).append(callback)

    def unwatch(self, subject: str, callback: Callable[[], None]) -> None:
        cbs = self.interest_watchers.get(subject)
        if cbs is None or callback not in cbs:
            return
        cbs.remove(callback)
        if not cbs:
            del self.interest_watchers[subject]

    def _subscribed(self, subject: str) -> None:
        """A subscription on `subject` was added: wake whoever watches a subject it matches.
        A wildcard could match any watched subject: they are looked up once per loop pass
        however many wildcard SUBs arrived in it, so a flood of them costs one pass over the
        watchers, not one per SUB."""
        if not has_wildcard(subject):
            for cb in list(self.interest_watchers.get(subject, ())):
                cb()
        elif not self._wild_check:
            self._wild_check = True
            try:
                asyncio.get_running_loop().call_soon(self._check_watchers)
            except RuntimeError:  # no loop (tools, tests): at once
                self._check_watchers()

    def _check_watchers(self) -> None:
        self._wild_check = False
        has_interest = self.sublist.has_interest
        woken = [cb for key, cbs in self.interest_watchers.items() if has_interest(key) for cb in cbs]
        for cb in woken:
            cb()


class ConnectionHost(Protocol):
    """What a connection needs of the server that accepted it (server.Server is the one
    implementation). Declared here so this module never imports server.py, which imports it."""

    opts: ServerOptions
    loop: asyncio.AbstractEventLoop
    auth: Authenticator
    ssl_context: ssl.SSLContext | None
    tls_rate: RateCounter | None
    slow_consumers: int
    stale_connections: int

    @property
    def clients(self) -> Sized: ...
    @property
    def global_account(self) -> Account: ...
    def lookup_account(self, name: str) -> Account: ...
    def move_client(self, client: ClientConnection, account: Account) -> None: ...
    def register_client(self, c: ClientConnection) -> None: ...
    def unregister_client(self, c: ClientConnection, reason: str) -> None: ...
    def info_line(self, c: ClientConnection, ldm: bool = False) -> bytes: ...
    def mark_dirty(self, c: ClientConnection) -> None: ...
    def sole_subscriber(self, account: Account, subject: str) -> Subscription | None: ...
    def route(self, account: Account, subject: str, subject_b: bytes, reply_b: bytes, hdr_len: int,
              size_tok: bytes, body: bytes, origin: ClientConnection | None, internal: bool = True) -> int: ...


class ClientConnection(asyncio.Protocol):
    def __init__(self, server: ConnectionHost, cid: int) -> None:
        self.server = server
        self.cid = cid
        opts = server.opts
        self.parser = Parser(opts.max_payload, opts.max_control_line)
        # Output is handed to the transport once this much is queued, not only at the end of
        # the loop pass: uvloop reads a busy socket many times per pass, and the stall check
        # (flush) must see the backlog before megabytes pile up in `out`.
        self._max_pending = min(opts.max_pending, FLUSH_BYTES)
        # -V: the raw bytes of each read and each write (one check per batch, not per message)
        self.trace = opts.trace
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.out_size = 0
        self.dirty = False
        self.closed = False
        self.subs: dict[bytes, Subscription] = {}
        self.account: Account = server.global_account
        self.perms: PermissionChecker | None = None
        self.connected = False  # CONNECT accepted
        # nats-server's defaults before CONNECT: verbose and pedantic on, echo on
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.name = ""
        self.lang = ""
        self.version = ""
        self.protocol = 0  # 1: accepts asynchronous INFO (lame duck)
        self.user = ""
        self.host = ""
        self.port = 0
        self.start = time.time()
        self.last_activity = self.start
        self.pings_out = 0
        self.ponged = False  # has answered a PING of ours
        self.active = False  # has sent anything since the last ping tick
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.rtt = 0.0
        self._ping_handle: asyncio.TimerHandle | None = None
        self._auth_handle: asyncio.TimerHandle | None = None
        self._write_handle: asyncio.TimerHandle | None = None  # armed while the transport is paused
        # as a subscriber: the producers stalled on this connection's backlog, None when none is
        # over the stall mark; as a producer: when its own stall ends
        self.stalling: list[ClientConnection] | None = None
        self._stall_at = max(min(STALL_BYTES, opts.max_pending // 2), 1)
        self._stall_handle: asyncio.TimerHandle | None = None
        # TLS: the engine (None on a plain connection), its timers, what the handshake gave
        self._tls: TLSEngine | None = None
        self._tls_handles: list[asyncio.TimerHandle] = []
        self._info_sent = False
        self.tls_version = ""
        self.tls_cipher = ""
        self.peer_cert: PeerCert | None = None
        # parsed operations waiting for a bcrypt check of the CONNECT before them (None: none running)
        self._held: list[Any] | None = None
        self._trace_tail = b""
        self._read_since_yield = 0  # input bytes since reading last paused for a turn of the loop
        self._yielding = False  # reading paused until the next pass (READ_BUDGET)

    # ---------------------------------------------------------------- lifecycle
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence no isinstance check
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.host, self.port = peer[0], peer[1]
        server = self.server
        limit = server.opts.max_connections
        if 0 < limit <= len(server.clients):
            # as nats-server: INFO (none yet under handshake_first), then the error, and the
            # connection is not counted
            if server.ssl_context is None or not server.opts.tls_handshake_first:
                self.send_now(server.info_line(self))
            self.fail("maximum connections exceeded", "Maximum Connections Exceeded")
            return
        server.register_client(self)
        if server.ssl_context is not None:
            self._start_tls(server.ssl_context)
            return
        self.send_now(server.info_line(self))
        self._start_timers()

    def _start_timers(self) -> None:
        loop = self.server.loop
        opts = self.server.opts
        if self.server.auth.required:
            self._auth_handle = loop.call_later(opts.auth_timeout, self._auth_timeout)
        # nats-server pings a new client early (after at most 2 s) to learn its round trip,
        # then every ping_interval.
        self._ping_handle = loop.call_later(min(opts.ping_interval, FIRST_PING), self._ping_timer)

    # ---------------------------------------------------------------- TLS
    def _start_tls(self, ctx: ssl.SSLContext) -> None:
        """As nats-server: INFO in plaintext, then every byte read is handshake (with
        handshake_first: the handshake first, INFO after it). The authentication and ping
        timers start once the handshake is done, so neither writes into it."""
        server = self.server
        opts = server.opts
        if not opts.tls_handshake_first:
            self._write_info_plain()
        limiter = server.tls_rate
        if limiter is not None and not limiter.allow(time.monotonic()):
            log.debug("cid=%d TLS connection rate limit reached", self.cid)
            self.fail("Connection throttling is active. Please try again later.", "Maximum Connections Exceeded")
            return
        self._tls = TLSEngine(ctx)
        loop = server.loop
        timeout = opts.tls_timeout
        if opts.tls_handshake_first and opts.tls_first_fallback > 0:
            # "auto": a client that says nothing for this long is not doing TLS first
            self._tls_handles.append(loop.call_later(opts.tls_first_fallback, self._tls_fallback))
            timeout += opts.tls_first_fallback
        self._tls_handles.append(loop.call_later(timeout, self._tls_timed_out))

    def _write_info_plain(self) -> None:
        assert self.transport is not None
        self._info_sent = True
        self.transport.write(self.server.info_line(self))

    def _tls_fallback(self) -> None:
        if not self.closed and self._tls is not None and not self._tls.started:
            self._write_info_plain()

    def _tls_timed_out(self) -> None:
        if not self.closed and self._tls is not None and not self._tls.established:
            log.debug("cid=%d TLS handshake timeout", self.cid)
            self.close("TLS Handshake Failure")

    def _tls_received(self, data: bytes) -> bytes:
        """Ciphertext in, the plaintext to process out (b"" when nothing is to be done)."""
        tls = self._tls
        assert tls is not None and self.transport is not None
        was_established = tls.established
        try:
            plain = tls.feed(data)
        except ssl.SSLZeroReturnError:  # the client's close_notify
            self.close("Client Closed")
            return b""
        except ssl.SSLError as e:
            alert = tls.take_output()
            if alert:
                self.transport.write(alert)
            if was_established:
                log.debug("cid=%d TLS read error: %s", self.cid, e)
                self.close("Read Error")
            else:
                log.debug("cid=%d TLS handshake error: %s", self.cid, e)
                self.close("TLS Handshake Failure")
            return b""
        out = tls.take_output()
        if out:
            self.transport.write(out)
        if not was_established and tls.established and not self._tls_handshake_done(tls):
            return b""
        if tls.peer_closed:
            # what came before the close_notify is still handled (and answered) first
            self.server.loop.call_soon(self.close, "Client Closed")
        return plain

    def _tls_handshake_done(self, tls: TLSEngine) -> bool:
        """The checks nats-server makes once the handshake is through (pinned_certs), then
        INFO (handshake_first) and the timers. False: the connection was closed."""
        for h in self._tls_handles:
            h.cancel()
        self._tls_handles.clear()
        opts = self.server.opts
        self.tls_version = version_name(tls.obj)
        self.tls_cipher = cipher_name(tls.obj)
        der = tls.peer_cert()
        if der:
            try:
                self.peer_cert = PeerCert(der)
            except (ValueError, IndexError):
                log.debug("cid=%d client certificate not readable", self.cid)
        pins = opts.tls_pinned_certs
        if pins is not None and (self.peer_cert is None or self.peer_cert.spki_sha256 not in pins):
            log.info("cid=%d TLS handshake error: certificate not pinned (%s)", self.cid,
                     self.peer_cert.spki_sha256 if self.peer_cert else "no certificate")
            self.close("TLS Handshake Failure")
            return False
        log.debug("cid=%d TLS handshake complete: TLS %s, cipher suite %s", self.cid, self.tls_version,
                  self.tls_cipher)
        if not self._info_sent:
            self._info_sent = True
            self.send_now(self.server.info_line(self))
        self._start_timers()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        # nats-server's reasons: a clean EOF is "Client Closed", a reset is "Read Error"
        self.close("Read Error" if exc is not None else None, lost=True)

    def close(self, reason: str | None = "Client Closed", lost: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.release_producers()
        for h in (self._ping_handle, self._auth_handle, self._write_handle, self._stall_handle,
                  *self._tls_handles):
            if h is not None:
                h.cancel()
        t = self.transport
        if t is not None and not lost:
            tls = self._tls
            if self.out:
                data = b"".join(self.out)
                self.out.clear()
                if tls is None:
                    t.write(data)
                elif tls.established:  # nothing in plaintext goes into a TLS stream
                    try:
                        t.write(tls.encrypt(data))
                    except ssl.SSLError:
                        pass
            if tls is not None and tls.established:
                t.write(tls.close_notify())
            t.close()
        self.server.unregister_client(self, reason or "Client Closed")

    # ---------------------------------------------------------------- output
    def send_now(self, data: bytes) -> None:
        """Queue bytes and flush at the end of this loop iteration."""
        self.out.append(data)
        self.out_size += len(data)
        if not self.dirty:
            self.dirty = True
            self.server.mark_dirty(self)

    def flush(self) -> None:
        self.dirty = False
        if self.closed or not self.out:
            return
        t = self.transport
        assert t is not None
        tls = self._tls
        if tls is not None and not tls.established:
            return  # kept until the handshake is done; never written into it
        data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
        self.out.clear()
        self.out_size = 0
        if self.trace:
            log.debug("%s:%d - cid:%d - ->> %r", self.host, self.port, self.cid, data)
        if tls is not None:
            try:
                data = tls.encrypt(data)
            except ssl.SSLError as e:
                log.debug("cid=%d TLS write error: %s", self.cid, e)
                t.abort()
                self.close("Write Error", lost=True)
                return
        t.write(data)
        size = t.get_write_buffer_size()
        if size > self.server.opts.max_pending:
            self.server.slow_consumers += 1
            log.warning("cid=%d Slow Consumer Detected: MaxPending of %d Exceeded (%d bytes pending)",
                        self.cid, self.server.opts.max_pending, size)
            t.abort()
            self.close("Slow Consumer (Pending Bytes)", lost=True)
        elif size > self._stall_at:
            if self.stalling is None:
                self.stalling = []
        elif self.stalling is not None:
            self.release_producers()

    @property
    def pending_bytes(self) -> int:
        t = self.transport
        return self.out_size + (t.get_write_buffer_size() if t is not None and not self.closed else 0)

    def send_err(self, text: str) -> None:
        self.send_now(err_line(text))

    def fail(self, text: str | None, reason: str) -> None:
        if text is not None:
            self.send_now(err_line(text))
        self.close(reason)

    # ---------------------------------------------------------------- flow control
    def pause_writing(self) -> None:
        """The transport's buffer passed its high-water mark. A peer that has not drained it
        within write_deadline is a slow consumer (nats-server's "Write Deadline" case); the
        pending-bytes limit in flush() catches the fast-growing case earlier."""
        if not self.closed and self._write_handle is None:
            self._write_handle = self.server.loop.call_later(self.server.opts.write_deadline,
                                                             self._write_deadline_passed)

    def resume_writing(self) -> None:
        if self._write_handle is not None:
            self._write_handle.cancel()
            self._write_handle = None
        self.release_producers()

    def stall_producer(self, producer: ClientConnection) -> None:
        """`producer` just routed a message to this connection while its backlog is over the
        stall mark: it stops being read until the backlog drains or STALL_MAX passes."""
        t = self.transport
        if t is None or self.closed or t.get_write_buffer_size() <= self._stall_at:
            self.release_producers()  # drained without a resume_writing (a mark below the high-water)
            return
        if producer is self or producer._stall_handle is not None or producer.closed:
            return
        pt = producer.transport
        if pt is None:
            return
        pt.pause_reading()
        producer._stall_handle = self.server.loop.call_later(STALL_MAX, producer.unstall)
        stalling = self.stalling
        if stalling is not None:
            stalling.append(producer)

    def release_producers(self) -> None:
        stalling, self.stalling = self.stalling, None
        if stalling:
            for p in stalling:
                p.unstall()

    def unstall(self) -> None:
        h = self._stall_handle
        if h is None:
            return
        h.cancel()
        self._stall_handle = None
        # a held connection (a long request or a bcrypt check in progress) stays paused for that
        if not self.closed and self.transport is not None and self._held is None:
            self.transport.resume_reading()

    def _write_deadline_passed(self) -> None:
        self._write_handle = None
        if self.closed or self.transport is None:
            return
        self.server.slow_consumers += 1
        log.warning("cid=%d Slow Consumer Detected: WriteDeadline of %gs exceeded with %d bytes pending",
                    self.cid, self.server.opts.write_deadline, self.pending_bytes)
        self.transport.abort()
        self.close("Slow Consumer (Write Deadline)", lost=True)

    # ---------------------------------------------------------------- timers
    def _auth_timeout(self) -> None:
        if not self.connected and not self.closed:
            self.fail("Authentication Timeout", "Authentication Timeout")

    def _ping_timer(self) -> None:
        if self.closed:
            return
        opts = self.server.opts
        # Like nats-server, no PING to a peer that has already answered one and has been
        # sending since the last tick: it is evidently alive, and a busy peer's PONG may
        # queue behind its own data.
        if self.active and self.ponged:
            self.active = False
        else:
            if self.pings_out + 1 > opts.ping_max:
                self.server.stale_connections += 1
                self.fail("Stale Connection", "Stale Connection")
                return
            self.pings_out += 1
            self.send_now(PING)
        self._ping_handle = self.server.loop.call_later(opts.ping_interval, self._ping_timer)

    # ---------------------------------------------------------------- input
    def data_received(self, data: bytes) -> None:
        loopstats.reads += 1
        n = self._read_since_yield + len(data)
        if n >= READ_BUDGET and not self._yielding and self.transport is not None:
            # paused before the handling so that a close or a hold during it wins over the resume
            n = 0
            self._yielding = True
            self.transport.pause_reading()
            self.server.loop.call_soon(self._end_yield)
        self._read_since_yield = n
        if self._tls is not None:
            if self.closed:
                return
            data = self._tls_received(data)
            if not data:
                return
        if self.trace:
            self._trace_in(data)
        events = self.parser.feed(data)
        self.last_activity = time.time()
        self.active = True
        if self._held is not None:
            # a bcrypt check of this client's CONNECT is running: nothing after it may act yet
            self._held.extend(events)
            return
        self._handle(events)

    def _end_yield(self) -> None:
        self._yielding = False
        # a stall or a hold that began meanwhile resumes reading itself when it ends
        if (not self.closed and self.transport is not None and self._held is None
                and self._stall_handle is None):
            self.transport.resume_reading()

    def _trace_in(self, data: bytes) -> None:
        """Log whole lines only, redacted: a CONNECT split over two reads must not leak its
        password from the half that the pattern could not see."""
        buf = self._trace_tail + data
        cut = buf.rfind(b"\n") + 1
        self._trace_tail = buf[cut:]
        if cut:
            log.debug("%s:%d - cid:%d - <<- %r", self.host, self.port, self.cid, redact(buf[:cut]))

    def _handle(self, events: list[Any]) -> None:
        server = self.server
        # The plain case (connected, no pedantic/verbose/permissions) is routed inline: a
        # method call per message is a measurable share of the relay cost.
        plain = self.connected and not (self.pedantic or self.verbose) and self.perms is None
        route = server.route
        account = self.account
        n_in = 0
        b_in = 0
        # the sole subscription of the last subject, while consecutive messages repeat it
        last_subj: bytes | None = None
        fast: Subscription | None = None
        looked = False
        it = iter(events)
        for ev in it:
            if self.closed:
                break
            op = ev[0]
            if op == OP_PUB:
                if plain:
                    body = ev[4]
                    n_in += 1
                    b_in += len(body) - 2
                    subject_b = ev[1]
                    reply_b = ev[2]
                    if reply_b[:1] == b"$" and reply_b.startswith(RESERVED_REPLY_PREFIXES):
                        self._reply_violation(reply_b)
                        continue
                    if subject_b == last_subj and fast is not None:
                        fc = fast.client
                        if fc is not None and not fc.closed and fc.stalling is None:
                            fc.deliver(fast, subject_b, reply_b, 0, ev[3], body)
                            fast.delivered += 1
                            continue
                    subject = subject_b.decode("utf-8", "surrogateescape")
                    route(account, subject, subject_b, reply_b, 0, ev[3], body, self)
                    if subject_b != last_subj:
                        last_subj = subject_b
                        fast = None
                        looked = False
                    elif not looked:
                        # A second message in a row on one subject: resolve its sole subscriber
                        # once; the next ones skip decoding, matching and route(). Nothing but
                        # client deliveries happens between them, so the answer stays true.
                        looked = True
                        fast = server.sole_subscriber(account, subject)
                        if fast is not None and fast.client is self and not self.echo:
                            fast = None
                else:
                    last_subj = fast = None
                    self._on_pub(ev[1], ev[2], 0, ev[3], ev[4])
                if self._held is not None:
                    # the message started a long JetStream request: the rest waits for it
                    self._held.extend(it)
                    break
                continue
            # any other operation may change subscriptions or this client's state
            last_subj = fast = None
            if op == OP_HPUB:
                if not self.headers:
                    # nats-server drops a client that sends HPUB without announcing headers
                    log.debug("cid=%d HPUB without headers in CONNECT", self.cid)
                    self.close("Protocol Violation")
                    break
                self._on_pub(ev[1], ev[2], ev[3], ev[4], ev[5])
                if self._held is not None:
                    self._held.extend(it)
                    break
            elif op == OP_SUB:
                self._on_sub(ev[1], ev[2], ev[3])
            elif op == OP_UNSUB:
                self._on_unsub(ev[1], ev[2])
            elif op == OP_PING:
                if not self.connected and not self._require_connect():
                    break
                self.send_now(PONG)
            elif op == OP_PONG:
                self.pings_out = 0
                self.ponged = True
            elif op == OP_CONNECT:
                self._on_connect(ev[1])
                if self._held is not None:
                    self._held.extend(it)
                    break
                plain = self.connected and not (self.pedantic or self.verbose) and self.perms is None
                account = self.account
            elif op == OP_ERR:
                e: ProtocolError = ev[1]
                log.debug("cid=%d protocol error: %s", self.cid, e)
                # the close reasons /connz shows, worded as nats-server's
                self.fail(e.err, "Maximum Message Payload Exceeded" if e.err == ERR_MAX_PAYLOAD
                          else "Protocol Violation")
                break
        self.in_msgs += n_in
        self.in_bytes += b_in

    def _require_connect(self) -> bool:
        """An operation before CONNECT. Where credentials are required it ends the connection;
        with a no_auth_user the client becomes that user (its account and permissions) on its
        first operation, as nats-server binds it, so skipping CONNECT never skips permissions."""
        auth = self.server.auth
        if auth.expect_connect:
            self.fail("Authorization Violation", "Authorization Violation")
            return False
        if auth.required:
            nobody = auth.no_auth()
            if nobody is not None:
                self._bind(nobody)
        return True

    def _bind(self, result: AuthResult) -> None:
        server = self.server
        self.user = result.user
        if result.account != self.account.name:
            server.move_client(self, server.lookup_account(result.account))
        self.perms = PermissionChecker(result.permissions) if result.permissions is not None else None
        self.connected = True
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None

    def _reply_violation(self, reply_b: bytes) -> None:
        reply = reply_b.decode("utf-8", "surrogateescape")
        self.send_err(f'Permissions Violation for Publish with Reply of "{reply}"')
        log.info("cid=%d publish with reserved reply subject %s refused", self.cid, reply)

    def _on_connect(self, raw: bytes) -> None:
        try:
            opts: dict[str, Any] = json.loads(raw)
        except ValueError:
            opts = None  # type: ignore[assignment]
        if not isinstance(opts, dict) or not _connect_types_ok(opts):
            # nats-server closes without a word when CONNECT does not unmarshal
            self.close("Protocol Violation")
            return
        server = self.server
        proto = opts.get("protocol")
        if proto is not None and (proto < 0 or proto > 1):
            self.fail("invalid client protocol", "Bad Client Protocol Version")
            return
        self.protocol = proto or 0
        self.verbose = _opt_bool(opts, "verbose", self.verbose)
        self.pedantic = _opt_bool(opts, "pedantic", self.pedantic)
        self.echo = _opt_bool(opts, "echo", True)
        self.headers = _opt_bool(opts, "headers", False)
        self.no_responders = _opt_bool(opts, "no_responders", False)
        self.name = opts.get("name") or ""
        self.lang = opts.get("lang") or ""
        self.version = opts.get("version") or ""
        if self.no_responders and not self.headers:
            self.fail("no responders requires headers support", "No Responders Requires Headers")
            return
        # Every CONNECT is checked, not only the first: nats-server rejects a later CONNECT
        # with bad credentials too.
        result = server.auth.check(opts, self.peer_cert)
        if isinstance(result, SlowCheck):
            self._check_slowly(result, opts.get("user", ""))
            return
        self._connect_checked(result, opts.get("user", ""))

    def _connect_checked(self, result: AuthResult, user: Any) -> None:
        if not result.ok:
            log.info("cid=%d authentication error for user %r", self.cid, user)
            self.fail("Authorization Violation", "Authentication Failure")
            return
        self._bind(result)
        if self.verbose:
            self.send_now(OK)

    def hold_until(self, fut: asyncio.Future[Any]) -> None:
        """Until `fut` is done (a long JetStream request of this client's, run in slices), its
        later operations wait, in order, and reading pauses: as behind nats-server's per-client
        read loop. Other clients go on meanwhile."""
        if self.closed or fut.done():
            return
        self._held = self._held if self._held is not None else []
        if self.transport is not None:
            self.transport.pause_reading()

        def done(_f: asyncio.Future[Any]) -> None:
            held, self._held = self._held or [], None
            if self.closed:
                return
            if self.transport is not None:
                self.transport.resume_reading()
            if held:
                self._handle(held)

        fut.add_done_callback(done)

    def _check_slowly(self, check: SlowCheck, user: Any) -> None:
        """Compare a bcrypt password in a worker thread; until it answers, this client's later
        operations wait in order (and reading pauses), other clients go on."""
        self._held = []
        if self.transport is not None:
            self.transport.pause_reading()
        fut = self.server.loop.run_in_executor(None, bcrypt_matches, check.given, check.hashed)

        def done(f: asyncio.Future[bool]) -> None:
            held, self._held = self._held or [], None
            if self.closed:
                return
            ok = not f.cancelled() and f.exception() is None and f.result()
            self._connect_checked(check.result if ok else AuthResult(False), user)
            if self.closed:
                return
            if self.transport is not None:
                self.transport.resume_reading()
            if held:
                self._handle(held)

        fut.add_done_callback(done)

    def _on_pub(self, subject_b: bytes, reply_b: bytes, hdr_len: int, size_tok: bytes, body: bytes) -> None:
        if not self.connected and not self._require_connect():
            return
        # surrogateescape keeps invalid UTF-8 distinct (nats-server compares raw bytes); "replace"
        # would fold every bad byte into U+FFFD and deliver across unrelated subjects
        subject = subject_b.decode("utf-8", "surrogateescape")
        self.in_msgs += 1
        self.in_bytes += len(body) - 2
        # nats-server answers +OK before any delivery of the message, even to this client.
        # A pedantic complaint about the subject is only a warning: the message is still
        # routed (nats-server 2.9 does so); a permission violation drops it without +OK.
        if self.pedantic and not is_valid_literal_subject(subject) and not _literal_tokens(subject):
            self.send_err("Invalid Publish Subject")
        if self.perms is not None and not self.perms.can_publish(subject):
            self.send_err(f'Permissions Violation for Publish to "{subject}"')
            log.info("cid=%d publish violation on %s", self.cid, subject)
            return
        if reply_b[:1] == b"$" and reply_b.startswith(RESERVED_REPLY_PREFIXES):
            self._reply_violation(reply_b)
            return
        if self.verbose:
            self.send_now(OK)
        self.server.route(self.account, subject, subject_b, reply_b, hdr_len, size_tok, body, self)

    def _on_sub(self, subject_b: bytes, queue_b: bytes, sid: bytes) -> None:
        if not self.connected and not self._require_connect():
            return
        subject = subject_b.decode("utf-8", "surrogateescape")
        queue = queue_b.decode("utf-8", "surrogateescape") if queue_b else None
        # nats-server's order: the subscription limit before anything, even a sid in use
        limit = self.server.opts.max_subs
        if limit > 0 and len(self.subs) >= limit:
            self.send_err("maximum subscriptions exceeded")
            log.warning("cid=%d maximum subscriptions exceeded", self.cid)
            return
        # then permissions; a sid already in use is then a silent no-op,
        # and only a new subscription's subject is validated (by inserting it).
        # `_sys_` is nats-server's reserved queue group: refused to every client, as there.
        if (self.perms is not None and not self.perms.can_subscribe(subject, queue)) or queue == "_sys_":
            if queue:
                self.send_err(f'Permissions Violation for Subscription to "{subject}" using queue "{queue}"')
            else:
                self.send_err(f'Permissions Violation for Subscription to "{subject}"')
            return
        if sid not in self.subs:
            # Deliberately stricter than nats-server, whose index takes a subject with a form
            # feed in a token: ours refuses such a subject (-ERR 'Invalid Subject').
            if not is_valid_subject(subject) or (queue is not None and not is_valid_queue_name(queue)):
                self.send_err("Invalid Subject")
                return
            sub = Subscription(subject, queue, sid, self, self.account)
            self.subs[sid] = sub
            self.account.add_sub(sub)
        if self.verbose:
            self.send_now(OK)

    def _on_unsub(self, sid: bytes, max_msgs: int) -> None:
        if not self.connected and not self._require_connect():
            return
        sub = self.subs.get(sid)
        if sub is not None:
            if max_msgs > 0 and sub.delivered < max_msgs:
                sub.max = max_msgs
            else:
                self.remove_sub(sub)
        if self.verbose:
            self.send_now(OK)

    def remove_sub(self, sub: Subscription) -> None:
        if self.subs.pop(sub.sid, None) is not None:
            sub.account.sublist.remove(sub)

    # ---------------------------------------------------------------- delivery
    def deliver(self, sub: Subscription, subject_b: bytes, reply_b: bytes, hdr_len: int,
                size_tok: bytes, body: bytes) -> None:
        """Frame one message for this client. `body` is headers + payload + CRLF."""
        if hdr_len:
            if self.headers:
                line = b"HMSG %s %s %s%d %s\r\n" % (subject_b, sub.sid, reply_b + b" " if reply_b else b"",
                                                   hdr_len, size_tok)
            else:
                # A client without header support gets the payload only, as nats-server does.
                body = body[hdr_len:]
                line = b"MSG %s %s %s%d\r\n" % (subject_b, sub.sid, reply_b + b" " if reply_b else b"",
                                               len(body) - 2)
        else:
            if subject_b == sub._pre_subj:
                pre = sub._pre
            else:
                pre = sub._pre = b"MSG " + subject_b + b" " + sub.sid + b" "
                sub._pre_subj = subject_b
            line = pre + reply_b + b" " + size_tok + b"\r\n" if reply_b else pre + size_tok + b"\r\n"
        out = self.out
        out.append(line)
        out.append(body)
        self.out_size += len(line) + len(body)
        self.out_msgs += 1
        self.out_bytes += len(body) - 2
        if not self.dirty:
            self.dirty = True
            self.server.mark_dirty(self)
        if self.out_size > self._max_pending:
            self.flush()

    def deliver_stored(self, sub: Subscription, subject: str, reply: str, hdr: bytes | None,
                       payload: bytes) -> None:
        """Frame a JetStream delivery: the same bytes as deliver(), built from the consumer's
        own values (one str format and one encode instead of a routed body and four encodes).
        The caller checked sub.sid_s is set and reply is not empty."""
        if hdr and self.headers:
            hl = len(hdr)
            n = hl + len(payload)
            line = f"HMSG {subject} {sub.sid_s} {reply} {hl} {n}\r\n".encode()
            self.out += (line, hdr, payload, b"\r\n")
        else:
            n = len(payload)
            line = f"MSG {subject} {sub.sid_s} {reply} {n}\r\n".encode()
            self.out += (line, payload, b"\r\n")
        self.out_size += len(line) + n + 2
        self.out_msgs += 1
        self.out_bytes += n
        if not self.dirty:
            self.dirty = True
            self.server.mark_dirty(self)
        if self.out_size > self._max_pending:
            self.flush()
