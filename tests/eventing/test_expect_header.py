"""The Expect header (issue 17 item 7): aiohttp's default handler put the value into its 417
text and answered 500 when the value was not UTF-8 (`Expect: \\x80`, from the fuzzer). The
proxy, the demo sink, the console and the server's monitoring port answer 417 with the value
escaped (one handler, pyjetstream.httpd), and the proxy goes on storing and delivering the next
good event. Raw sockets, real NATS server, real HTTP sink."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from eventing.test_dispatch import manifest, ready
from pyjetstream.eventing.sink import create_sink_app
from pyjetstream.eventing.testing import wait_until

GOOD = (b"ce-specversion: 1.0\r\nce-type: order.received.v1\r\nce-source: myapp\r\nce-eventtypeversion: v1\r\n"
        b"content-type: application/json\r\n")


async def raw_post(port: int, path: str, headers: bytes, body: bytes = b"{}",
                   method: bytes = b"POST") -> tuple[int, bytes]:
    """One request as raw bytes; (status, everything after the status line). 100 Continue
    interim answers are skipped."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    while data.startswith(b"HTTP/1.1 100"):
        data = data.split(b"\r\n\r\n", 1)[1]
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.mark.parametrize("value", [b"\x80", b"\xff\xfe", b"100-continue\x80", b"foo"])
async def test_bad_expect_is_417_and_the_next_event_is_delivered(make_service, sink, value):
    svc = await make_service()
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await ready(svc, sub)
    status, rest = await raw_post(svc.port, "/publish", GOOD + b"ce-id: bad-1\r\nExpect: " + value + b"\r\n")
    assert status == 417, rest
    assert b"unsupported Expect header" in rest and b"only 100-continue" in rest
    # The value is shown escaped, never as raw bytes.
    assert b"\"" + value.decode("ascii", "backslashreplace").encode() + b"\"" in rest
    # Nothing was stored for the refused request: the next good event is the first delivery.
    status, _ = await raw_post(svc.port, "/publish", GOOD + b"ce-id: good-1\r\n")
    assert status == 204
    await wait_until(lambda: "good-1" in sink.ids(), what="delivery of the good event")
    assert "bad-1" not in sink.attempts


async def test_100_continue_still_works(make_service, sink):
    svc = await make_service()
    sub = manifest(sink=sink.url)
    await svc.store.apply(sub)
    await ready(svc, sub)
    status, _ = await raw_post(svc.port, "/publish", GOOD + b"ce-id: cont-1\r\nExpect: 100-Continue\r\n")
    assert status == 204
    await wait_until(lambda: "cont-1" in sink.ids(), what="delivery")


async def test_demo_sink_answers_417_too():
    runner = web.AppRunner(create_sink_app(printer=lambda line: None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        status, rest = await raw_post(port, "/", GOOD + b"ce-id: x\r\nExpect: \x80\r\n")
        assert status == 417 and b'"\\x80"' in rest
        status, _ = await raw_post(port, "/", GOOD + b"ce-id: y\r\n")
        assert status == 204
    finally:
        await runner.cleanup()


async def test_monitoring_port_answers_417_too(tmp_path):
    from servers import start_in_process

    srv = await start_in_process(tmp_path, http_port=-1)
    try:
        port = srv.monitor.port
        status, rest = await raw_post(port, "/varz", b"Expect: \x80\r\n", b"", method=b"GET")
        assert status == 417 and b'"\\x80"' in rest
        status, rest = await raw_post(port, "/varz", b"", b"", method=b"GET")
        assert status == 200 and b'"server_id"' in rest
    finally:
        await srv.shutdown()


@pytest.mark.parametrize(("method", "path", "status", "allow"), [
    (b"POST", "/nowhere", 404, None),
    (b"GET", "/publish", 405, b"POST"),
    (b"DELETE", "/myapp/v1/events", 405, b"POST"),
    (b"OPTIONS", "*", 404, None),  # no path pattern matches `*`: the fallback is not one
])
async def test_paths_no_route_takes_answer_404_405_and_417(make_service, method, path, status, allow):
    """aiohttp's router answers these itself, with its default Expect handler: 500 for a value
    that is not UTF-8. The fallback route (httpd.add_fallback) answers 417 there too, and without
    the bad header the same 404 or 405 (with Allow) as before."""
    svc = await make_service()
    status_bad, rest = await raw_post(svc.port, path, b"Expect: \x80\r\n", b"", method=method)
    assert status_bad == 417 and b'"\\x80"' in rest
    got, rest = await raw_post(svc.port, path, b"", b"", method=method)
    assert got == status, rest
    if allow is not None:
        assert b"Allow: " + allow in rest
    # unknown paths are one series in the request metric, as before the fallback route
    _, metrics = await raw_post(svc.port, "/metrics", b"", b"", method=b"GET")
    assert b'path="' + path.encode() not in metrics and b'path="unknown"' in metrics


async def test_unmatched_paths_on_the_sink_and_monitoring_port(tmp_path):
    from servers import start_in_process

    runner = web.AppRunner(create_sink_app(printer=lambda line: None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv = await start_in_process(tmp_path, http_port=-1)
    try:
        sink_port = runner.addresses[0][1]
        assert (await raw_post(sink_port, "/", b"Expect: \x80\r\n", b"", method=b"GET"))[0] == 417
        status, rest = await raw_post(sink_port, "/", b"", b"", method=b"GET")
        assert status == 405 and b"Allow: POST" in rest
        port = srv.monitor.port
        assert (await raw_post(port, "/nothing", b"Expect: \x80\r\n", b"", method=b"GET"))[0] == 417
        assert (await raw_post(port, "/nothing", b"", b"", method=b"GET"))[0] == 404
        status, rest = await raw_post(port, "/varz", b"", b"", method=b"POST")
        assert status == 405 and b"Allow: GET" in rest
    finally:
        await srv.shutdown()
        await runner.cleanup()
