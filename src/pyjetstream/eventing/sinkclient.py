"""The dispatcher's HTTP/1.1 client: one POST per delivery, over kept-alive connections to sinks.

Owns the connections to sinks (a pool per scheme, host and port, at most `limit_per_host`
each, idle ones closed after `keepalive` seconds), the request's framing and the reading of the
answer: status line, headers, and at most `read_limit` bytes of the body. A connection is used
again only after a complete, well-formed answer whose body was read whole (a Content-Length
within the limit, or no body at all); after anything else (chunked, read-until-close, longer
than the limit, malformed, cancelled) it is closed. Connects only to the addresses the egress
resolver returns, at every connect, so DNS rebinding cannot pass. Follows no redirects, keeps no
cookies, decompresses nothing. Must not retry, classify outcomes or know about events: the
dispatcher does.

Why not aiohttp's client, which the rest of the project uses: per POST it cost 54-80 µs of CPU,
the largest single cost of a delivery, against 10-15 µs here (`bench/aiohttp_client_bench.py
--sink-client`; issue 14). The answers it must read are small and their handling is narrow.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from yarl import URL

from .egress import is_ip_literal

MAX_HEAD = 64 * 1024  # status line and headers; a longer head is a protocol error
MAX_INTERIM = 8       # 1xx answers before the final one; a sink streaming them is refused
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_USER_AGENT = b"pyjetstream-eventing"


class SinkClientError(Exception):
    """The sink's answer could not be read (besides OS-level errors, raised as OSError)."""


class SinkDisconnected(SinkClientError):
    """The sink closed the connection without answering."""

    def __init__(self) -> None:
        super().__init__("the sink closed the connection without an answer")


class SinkProtocolError(SinkClientError):
    """The answer is not HTTP/1.x as this client reads it."""


class SinkResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes              # at most read_limit bytes


class _Conn(asyncio.Protocol):
    """One connection; at most one request in flight on it."""

    def __init__(self, read_limit: int) -> None:
        self.read_limit = read_limit
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[SinkResponse] | None = None
        self._headers: dict[str, str] = {}
        self._minor = 1
        self._new_answer()

    def _new_answer(self) -> None:
        """The state of the answer to read next: status and headers, then the body."""
        self._got_bytes = False
        self.reusable = False
        self._status = 0
        self._interim = 0        # 1xx answers skipped so far
        self._mode = ""          # "length", "chunked", "close" or "none" once the head is read
        self._left = 0           # body bytes still to come ("length"), or of this chunk
        self._crlf = False       # a chunk's data was read; its CRLF comes next
        self._body = bytearray()

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # bytes nobody asked for: the connection can never be trusted again
            self.close()
            return
        self._got_bytes = True
        self._buf += data
        try:
            self._advance()
        except SinkProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # let the transport close: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._mode in ("close", "chunked") and self._status:
            self._finish(reuse=False)  # a body read until the close (or what came of it)
        elif not self._got_bytes:
            waiter.set_exception(exc if isinstance(exc, OSError) else SinkDisconnected())
        else:
            waiter.set_exception(SinkProtocolError("the connection closed in the middle of the answer"))

    # ------------------------------------------------------------------ request
    def send(self, request: bytes) -> asyncio.Future[SinkResponse]:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if self.transport is None or self.closed:  # closed by the sink right after the connect
            self._waiter.set_exception(SinkDisconnected())
            return self._waiter
        self._new_answer()
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ answer
    def _advance(self) -> None:
        while not self._status:
            end = self._buf.find(b"\r\n\r\n")
            if end > MAX_HEAD or (end < 0 and len(self._buf) > MAX_HEAD):
                raise SinkProtocolError(f"the answer's head is longer than {MAX_HEAD} bytes")
            if end < 0:
                return
            head = bytes(self._buf[:end])
            del self._buf[:end + 4]
            self._read_head(head)
        if self._mode == "length":
            take = min(self._left, len(self._buf), self.read_limit - len(self._body))
            self._body += self._buf[:take]
            del self._buf[:take]
            self._left -= take
            if self._left == 0:
                self._finish(reuse=not self._buf and self._keep_alive())
            elif len(self._body) >= self.read_limit:
                self._finish(reuse=False)
        elif self._mode == "chunked":
            self._read_chunks()
        elif self._mode == "close":
            take = min(len(self._buf), self.read_limit - len(self._body))
            self._body += self._buf[:take]
            del self._buf[:take]
            if len(self._body) >= self.read_limit:
                self._finish(reuse=False)
        else:  # "none"
            self._finish(reuse=not self._buf and self._keep_alive())

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        m = _STATUS_LINE.fullmatch(lines[0])
        if m is None:
            raise SinkProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(m.group(2))
        headers: dict[str, str] = {}
        lengths: set[str] = set()
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                raise SinkProtocolError(f"malformed header line: {line[:80]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip(b" \t").decode("latin-1")
            if key == "content-length":
                lengths.add(text)
            headers[key] = text
        if 100 <= status < 200:
            if status == 101:
                raise SinkProtocolError("the sink switched protocols")
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise SinkProtocolError(f"more than {MAX_INTERIM} interim (1xx) answers")
            return  # an interim answer (100 Continue, 103): the real one follows
        self._status = status
        self._headers = headers
        self._minor = int(m.group(1))
        if status in (204, 304):
            self._mode = "none"
        elif "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower() != "chunked":
                raise SinkProtocolError(f"unsupported Transfer-Encoding {headers['transfer-encoding'][:40]!r}")
            self._mode = "chunked"
        elif lengths:
            if len(lengths) > 1:
                raise SinkProtocolError("conflicting Content-Length headers")
            length = lengths.pop()
            if not length.isdigit() or len(length) > 18:
                raise SinkProtocolError(f"bad Content-Length {length[:40]!r}")
            self._left = int(length)
            self._mode = "length" if self._left else "none"
        else:
            self._mode = "close"

    def _read_chunks(self) -> None:
        # Only the data is kept, up to the limit; a chunked answer never leaves the connection
        # reusable (its trailers are not read), so the terminal chunk ends it.
        while len(self._body) < self.read_limit:
            if self._left == 0:
                if self._crlf:  # the CRLF after a chunk's data
                    if len(self._buf) < 2:
                        return
                    if self._buf[:2] != b"\r\n":
                        raise SinkProtocolError("chunk data not followed by CRLF")
                    del self._buf[:2]
                    self._crlf = False
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > 1024:
                        raise SinkProtocolError("a chunk size line longer than 1024 bytes")
                    return
                size = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                try:
                    n = int(size, 16) if 0 < len(size) <= 16 else -1
                except ValueError:
                    n = -1
                if n < 0:
                    raise SinkProtocolError(f"bad chunk size {size[:20]!r}")
                del self._buf[:end + 2]
                if n == 0:
                    self._finish(reuse=False)
                    return
                self._left = n
            take = min(self._left, len(self._buf), self.read_limit - len(self._body))
            if take == 0:
                return
            self._body += self._buf[:take]
            del self._buf[:take]
            self._left -= take
            if self._left == 0:
                self._crlf = True
        self._finish(reuse=False)

    def _keep_alive(self) -> bool:
        conn = self._headers.get("connection", "").lower()
        return self._minor == 1 and "close" not in conn

    def _finish(self, reuse: bool) -> None:
        waiter = self._waiter
        self.reusable = reuse and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result(SinkResponse(self._status, self._headers, bytes(self._body[:self.read_limit])))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()


@dataclass
class _Pool:
    idle: list[_Conn] = field(default_factory=list)
    open: int = 0  # connections in use or idle
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class SinkClient:
    """POSTs to sinks; `resolver` is the egress-guarded resolver (aiohttp's resolver interface,
    so tests can map names): every connect resolves through it and connects to what it returned."""

    def __init__(self, resolver: Any, limit_per_host: int = 100, keepalive: float = 10.0, read_limit: int = 1024,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.resolver = resolver
        self.limit_per_host = max(1, limit_per_host)
        self.keepalive = keepalive
        self.read_limit = read_limit
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> SinkResponse:
        """Raises ValueError (a header that cannot be sent), SinkRefused / OSError (connect),
        SinkClientError (the answer)."""
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise ValueError(f"not an http(s) URL: {str(url)[:200]}")
        request = self._frame(url, headers, body)
        key = (url.scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        for fresh in (False, True):
            conn, reused = await self._acquire(key, fresh=fresh)
            try:
                answer = await conn.send(request)
            except (SinkDisconnected, ConnectionError):
                # (both only when not one byte of an answer came)
                self._release(key, conn)
                if reused:
                    # A kept-alive connection the sink had closed (or reset) meanwhile: once
                    # more on a new one, as the request may never have reached it.
                    continue
                raise
            except BaseException:
                conn.abort()
                self._release(key, conn)
                raise
            self._release(key, conn)
            return answer
        raise AssertionError("unreachable: the second try is on a new connection")

    def _frame(self, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
        host = url.raw_host or ""
        if ":" in host:
            host = f"[{host}]"
        if url.explicit_port:
            host = f"{host}:{url.port}"
        lines = [f"POST {url.raw_path_qs or '/'} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: "
                 f"{_USER_AGENT.decode()}\r\nContent-Length: {len(body)}\r\n"]
        if url.user is not None:
            creds = f"{url.user}:{url.password or ''}".encode()
            lines.append(f"Authorization: Basic {base64.b64encode(creds).decode()}\r\n")
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"invalid header name {name[:40]!r}")
            value = str(value)
            if _BAD_VALUE.search(value):
                raise ValueError(f"invalid header value for {name}: {value[:40]!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("utf-8") + body

    async def _acquire(self, key: tuple[str, str, int], fresh: bool = False) -> tuple[_Conn, bool]:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
        loop = asyncio.get_running_loop()
        while True:
            if not fresh:
                while pool.idle:
                    conn = pool.idle.pop()
                    if not conn.closed and loop.time() - conn.idle_since < self.keepalive:
                        return conn, True
                    conn.close()
                    pool.open -= 1
            if pool.open < self.limit_per_host:
                pool.open += 1
                try:
                    return await self._connect(key), False
                except BaseException:
                    pool.open -= 1
                    self._wake(pool)
                    raise
            waiter: asyncio.Future[None] = loop.create_future()
            pool.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in pool.waiters:
                    pool.waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake(pool)  # pass the turn on
                raise

    def _release(self, key: tuple[str, str, int], conn: _Conn) -> None:
        pool = self._pools[key]
        if conn.reusable and not conn.closed and not self._closed:
            conn.reusable = False
            conn.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(conn)
            self._arm_sweeper()
        else:
            conn.close()
            pool.open -= 1
        self._wake(pool)

    @staticmethod
    def _wake(pool: _Pool) -> None:
        while pool.waiters:
            waiter = pool.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        if is_ip_literal(host):
            addresses = [(host, port)]  # the dispatcher checked the literal against the policy
        else:
            infos = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
            addresses = [(info["host"], info["port"]) for info in infos]
        tls = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        last: OSError | None = None
        for address, aport in addresses:
            try:
                _, conn = await loop.create_connection(lambda: _Conn(self.read_limit), address, aport, ssl=tls,
                                                       server_hostname=host if tls else None)
            except OSError as exc:
                last = exc
                continue
            sock = conn.transport.get_extra_info("socket") if conn.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        raise last or OSError(f"no address for {host}")

    def _arm_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.keepalive, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        left = False
        for pool in self._pools.values():
            keep = []
            for conn in pool.idle:
                if conn.closed or now - conn.idle_since >= self.keepalive:
                    conn.close()
                    pool.open -= 1
                else:
                    keep.append(conn)
            pool.idle = keep
            left = left or bool(keep)
        for key in [k for k, p in self._pools.items() if not p.open and not p.waiters]:
            del self._pools[key]
        if left:
            self._arm_sweeper()

    def open_connections(self) -> int:
        return sum(p.open for p in self._pools.values())

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.close()
                pool.open -= 1
            pool.idle = []
