"""The dispatcher's HTTP client (eventing/sinkclient.py) against raw-socket sinks that answer
well and badly: keep-alive, limits, chunked and read-until-close bodies, malformed heads,
conflicting lengths, floods, disconnects, cancellation, header injection, the egress guard.
Every scenario runs on asyncio's loop and on uvloop (the eventing command's loop)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
import uvloop
from servers import have_openssl, self_signed_cert
from yarl import URL

from pyjetstream.eventing.dispatcher import _cause
from pyjetstream.eventing.egress import GuardedResolver, SinkPolicy, SinkRefused
from pyjetstream.eventing.sinkclient import (
    MAX_HEAD,
    SinkClient,
    SinkDisconnected,
    SinkProtocolError,
)

from .test_trust import StaticResolver

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RUNNERS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(RUNNERS))
def run(request):
    return RUNNERS[request.param]


class RawSink:
    """A TCP (or TLS) server whose every connection runs the handler `make(self)` gives;
    counts connections."""

    def __init__(self, make: Callable[[RawSink], Handler], tls: ssl.SSLContext | None = None) -> None:
        self.handler = make(self)
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawSink:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> URL:
        return URL(f"http://127.0.0.1:{self.port}/sink?x=1")

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return head + body


def answering(*answers: bytes, then_close: bool = False) -> Callable[[RawSink], Handler]:
    """Each request on a connection gets the next answer (the last one repeats)."""
    def make(sink: RawSink) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            n = 0
            while True:
                await sink.read_request(reader)
                writer.write(answers[min(n, len(answers) - 1)])
                await writer.drain()
                n += 1
                if then_close:
                    return
        return handler
    return make


async def with_sink(make: Callable[[RawSink], Handler], body: Callable[[RawSink, SinkClient], Awaitable[None]],
                    limit: int = 10) -> RawSink:
    sink = RawSink(make)
    client = SinkClient(GuardedResolver(SinkPolicy()), limit_per_host=limit)
    async with sink:
        try:
            await body(sink, client)
        finally:
            await client.close()
    return sink


def test_keep_alive_reuses_one_connection_and_frames_the_request(run):
    async def body(sink, client):
        for i in range(3):
            answer = await client.post(sink.url, {"ce-id": str(i), "Content-Type": "application/json"}, b'{"a":1}')
            assert answer.status == 204 and answer.body == b""
        assert sink.connections == 1
        first = sink.requests[0]
        assert first.startswith(b"POST /sink?x=1 HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nce-id: 0\r\n" in first and first.endswith(b'\r\n\r\n{"a":1}')
        assert b"Cookie" not in first
    run(with_sink(answering(b"HTTP/1.1 204 No Content\r\nSet-Cookie: a=b\r\n\r\n"), body))


def test_a_body_over_the_limit_is_cut_and_the_connection_closed(run):
    big = b"x" * 5000

    async def body(sink, client):
        answer = await client.post(sink.url, {}, b"")
        assert answer.status == 500 and answer.body == big[:1024]
        assert client.open_connections() == 0
        answer = await client.post(sink.url, {}, b"")
        assert sink.connections == 2
    run(with_sink(answering(b"HTTP/1.1 500 Oops\r\nContent-Length: 5000\r\n\r\n" + big), body))


def test_a_small_body_is_read_whole_and_the_connection_kept(run):
    async def body(sink, client):
        for _ in range(2):
            answer = await client.post(sink.url, {}, b"")
            assert (answer.status, answer.body, answer.headers["retry-after"]) == (503, b"busy", "7")
        assert sink.connections == 1
    run(with_sink(answering(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy"), body))


def test_chunked_answers_are_decoded_and_not_kept(run):
    async def body(sink, client):
        answer = await client.post(sink.url, {}, b"")
        assert (answer.status, answer.body) == (400, b"hello world")
        await client.post(sink.url, {}, b"")
        assert sink.connections == 2
    run(with_sink(answering(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), body))


def test_an_answer_read_until_close_and_an_endless_one(run):
    def endless(sink):
        async def handler(reader, writer):
            await sink.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
            for _ in range(100_000):  # 6.5 GB if nobody stopped it
                writer.write(b"\0" * 65536)
                await writer.drain()
        return handler

    async def body(sink, client):
        answer = await asyncio.wait_for(client.post(sink.url, {}, b""), 30)
        assert answer.status == 200 and len(answer.body) == 1024
        assert client.open_connections() == 0
    run(with_sink(endless, body))

    async def until_close(sink, client):  # no length: the body ends when the sink closes
        answer = await asyncio.wait_for(client.post(sink.url, {}, b""), 30)
        assert (answer.status, answer.body) == (400, b"short body")
        assert client.open_connections() == 0
    run(with_sink(answering(b"HTTP/1.1 400 Bad\r\n\r\nshort body", then_close=True), until_close))


@pytest.mark.parametrize(("answer", "what"), [
    (b"HTTP/2 200\r\n\r\n", "status line"),
    (b"200 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "CRLF"),
    (b"HTTP/1.1 101 Switching\r\n\r\n", "switched"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD + 10), "longer than"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 100_000, "interim"),
])
def test_malformed_answers_are_errors_and_close_the_connection(run, answer, what):
    async def body(sink, client):
        with pytest.raises(SinkProtocolError, match=what):
            await asyncio.wait_for(client.post(sink.url, {}, b""), 30)
        assert client.open_connections() == 0
    run(with_sink(answering(answer), body))


def test_interim_answers_are_skipped(run):
    async def body(sink, client):
        assert (await client.post(sink.url, {}, b"")).status == 202
    run(with_sink(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Hints\r\nLink: x\r\n\r\n"
                            b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"), body))


def test_closing_without_an_answer_and_a_stale_kept_connection(run):
    async def body(sink, client):
        # the first answer says keep-alive, then the sink closes: the next POST finds the stale
        # connection, and is sent once more on a new one
        assert (await client.post(sink.url, {}, b"")).status == 204
        await asyncio.sleep(0)  # (a real wait: the sink's close must reach the client)
        answer = await client.post(sink.url, {"ce-id": "2"}, b"")
        assert answer.status == 204 and sink.connections == 2
    run(with_sink(answering(b"HTTP/1.1 204 No Content\r\n\r\n", then_close=True), body))

    def silent(sink):
        async def handler(reader, writer):
            await sink.read_request(reader)  # and close without a word
        return handler

    async def body2(sink, client):
        with pytest.raises(SinkDisconnected):
            await client.post(sink.url, {}, b"")
    run(with_sink(silent, body2))


def test_extra_bytes_after_an_answer_close_the_connection(run):
    async def body(sink, client):
        assert (await client.post(sink.url, {}, b"")).status == 204
        assert (await client.post(sink.url, {}, b"")).status == 204
        assert sink.connections == 2
    run(with_sink(answering(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), body))


@pytest.mark.parametrize("headers", [{"ce-id": "a\r\nX-Injected: 1"}, {"ce-id": "a\nb"}, {"ce-id": "a\0"},
                                     {"bad name": "x"}, {"X-Injected: 1\r\nce-id": "x"}, {"": "x"}])
def test_header_injection_is_refused_before_anything_is_sent(run, headers):
    async def body(sink, client):
        with pytest.raises(ValueError):
            await client.post(sink.url, headers, b"")
        assert sink.requests == [] and sink.connections == 0
    run(with_sink(answering(b"HTTP/1.1 204 No Content\r\n\r\n"), body))


def test_connections_per_host_are_limited_and_cancelled_requests_free_theirs(run):
    def slow(sink):
        async def handler(reader, writer):
            await sink.read_request(reader)
            await asyncio.sleep(3600)  # never answers; the test cancels
        return handler

    async def body(sink, client):
        tasks = [asyncio.create_task(client.post(sink.url, {}, b"")) for _ in range(6)]
        while len(sink.requests) < 2:
            await asyncio.sleep(0.01)
        for _ in range(20):
            await asyncio.sleep(0)  # room for a (wrong) third connection to be made
        assert sink.connections == 2 and client.open_connections() == 2
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert client.open_connections() == 0  # the cancelled requests' connections are closed

    run(with_sink(slow, body, limit=2))


def test_the_egress_guard_is_asked_at_every_connect(run):
    async def main():
        resolver = StaticResolver({"meta.test": "169.254.169.254", "ok.test": "127.0.0.1"})
        client = SinkClient(GuardedResolver(SinkPolicy(), resolver), limit_per_host=2)
        async with RawSink(answering(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")) as sink:
            port = sink.port
            with pytest.raises(SinkRefused, match="169.254.169.254"):
                await client.post(URL(f"http://meta.test:{port}/"), {}, b"")
            assert sink.connections == 0
            for _ in range(2):  # Connection: close, so each POST connects (and resolves) again
                assert (await client.post(URL(f"http://ok.test:{port}/"), {}, b"")).status == 204
            assert resolver.lookups["ok.test"] == 2 and sink.connections == 2
        await client.close()
    run(main())


@pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")
def test_https_sinks_are_verified(run, tmp_path):
    """TLS to a sink: the certificate is verified against the trust store and the URL's host
    name, as aiohttp's default did; an untrusted one fails the connect (an OSError)."""
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def main():
        async with RawSink(answering(b"HTTP/1.1 204 No Content\r\n\r\n"), tls=server_ctx) as sink:
            trusting = ssl.create_default_context(cafile=cert)
            for host in ("localhost", "127.0.0.1"):
                client = SinkClient(GuardedResolver(SinkPolicy()), limit_per_host=2, ssl_context=trusting)
                for _ in range(2):
                    assert (await client.post(URL(f"https://{host}:{sink.port}/"), {}, b"x")).status == 204
                await client.close()
            default = SinkClient(GuardedResolver(SinkPolicy()), limit_per_host=2)
            with pytest.raises(ssl.SSLCertVerificationError) as refused:
                await default.post(URL(f"https://localhost:{sink.port}/"), {}, b"x")
            # what a Subscription's status shows (not strerror of OpenSSL's code: "operation not permitted")
            assert _cause(refused.value) == "tls: certificate verify failed"
            await default.close()
        assert sink.connections == 2  # one per host name, kept alive for the second POST
    run(main())

