"""Liveness and overload through `pyjetstream server`: server PINGs and `Stale Connection`,
slow consumers cut off without slowing others, and a server that stays up while one client
sends random bytes and another keeps working. Waits are deadlines, never assertions on time."""

from __future__ import annotations

import socket
import time

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import RawClient, ServerProc, flushed, start_server

CONNECT = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> ServerProc:
    conf = 'ping_interval: "100ms"\nping_max: 2\nmax_payload: 2048\n'
    s = start_server("pyjetstream", tmp_path_factory.mktemp("live"), "-m", "-1", config=conf)
    yield s
    s.stop()


SLOW_CONFIGS = {
    # default pings: a peer that never reads must be cut off as slow, not as stale
    "Slow Consumer (Pending Bytes)": "max_pending: 262144\nmax_payload: 4096\n",
    "Slow Consumer (Write Deadline)": 'write_deadline: "1s"\n',
}


@pytest.fixture(scope="module", params=list(SLOW_CONFIGS))
def slow_srv(request, tmp_path_factory) -> tuple[ServerProc, str]:
    s = start_server("pyjetstream", tmp_path_factory.mktemp("slow"), "-m", "-1", config=SLOW_CONFIGS[request.param])
    yield s, request.param
    s.stop()


def test_server_pings_and_declares_stale_connection(srv: ServerProc) -> None:
    before = srv.get_json("/varz")["stale_connections"]
    raw = RawClient(srv.port)
    try:
        raw.send(CONNECT)
        # never answering: two pings out (ping_max), then the third tick gives up
        assert raw.read_until_closed() == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    finally:
        raw.close()
    # counted in /varz as nats-server 2.12 does (the -ERR is sent after the count)
    varz = srv.get_json("/varz")
    assert varz["stale_connections"] == before + 1
    assert varz["stale_connection_stats"]["clients"] == before + 1


def test_client_that_answers_pings_stays_connected(srv: ServerProc) -> None:
    raw = RawClient(srv.port)
    try:
        raw.send(CONNECT)
        for _ in range(5):
            assert raw.read_until(b"\r\n") == b"PING\r\n"
            raw.send(b"PONG\r\n")
        assert raw.sync() == b"" and not raw.closed
    finally:
        raw.close()


async def test_slow_consumer_is_cut_off_without_hurting_others(slow_srv: tuple[ServerProc, str]) -> None:
    srv, reason = slow_srv
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a tiny window
    slow.connect(("127.0.0.1", srv.port))
    slow.settimeout(10)
    slow.recv(4096)  # INFO
    slow.sendall(CONNECT + b"SUB flood 1\r\nPING\r\n")
    assert slow.recv(4096).endswith(b"PONG\r\n")
    pub = await nats.connect(srv.url)
    fast = await nats.connect(srv.url)
    try:
        sub = await fast.subscribe("flood", pending_msgs_limit=100_000, pending_bytes_limit=-1)
        await flushed(fast)
        # ~6 MB in paced batches: more than the kernel buffers toward the slow peer, while
        # the healthy subscriber (which reads) never has more than a batch outstanding
        batches, per, payload = 60, 100, b"x" * 1024
        n = batches * per
        got = 0
        for _ in range(batches):
            for _ in range(per):
                await pub.publish("flood", payload)
            await flushed(pub)
            for _ in range(per):
                await sub.next_msg(timeout=10)
                got += 1
        assert got == n  # the healthy subscriber got everything
        deadline = time.monotonic() + 10
        while srv.get_json("/varz")["slow_consumers"] < 1:
            assert time.monotonic() < deadline, "slow consumer never detected"
            time.sleep(0.05)
        closed = srv.get_json("/connz?state=closed")["connections"]
        assert [c["reason"] for c in closed if c["reason"].startswith("Slow")] == [reason]
        # the slow peer finds its connection gone once it reads what the kernel held
        received = 0
        while True:
            try:
                chunk = slow.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
        assert received < n * len(payload)
    finally:
        slow.close()
        await pub.close()
        await fast.close()


_TOKENS = [b"PUB foo 3\r\nabc\r\n", b"SUB foo 1\r\n", b"UNSUB 1\r\n", b"PING\r\n", b"PONG\r\n", CONNECT,
           b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", b"\r\n", b" ", b"PUB ", b"SUB ", b"9999999999",
           b"CONNECT {", b"\xff\x00", b"-ERR ", b"+OK\r\n"]
_noise = st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=16)), max_size=24).map(b"".join)


@pytest.fixture(scope="module")
def noise_srv(tmp_path_factory) -> ServerProc:
    """Default pings: with `srv`'s 100 ms ones the watcher, which reads only between examples,
    was cut off as stale whenever a loaded machine held one example for 300 ms (seen in CI)."""
    s = start_server("pyjetstream", tmp_path_factory.mktemp("noise"), "-m", "-1", config="max_payload: 2048\n")
    yield s
    s.stop()


def test_random_bytes_never_take_the_server_down(noise_srv: ServerProc) -> None:
    srv = noise_srv
    watcher = RawClient(srv.port)
    watcher.send(CONNECT + b"SUB watch 1\r\n")

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(noise=_noise)
    def one(noise: bytes) -> None:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.recv(4096)
            try:
                s.sendall(noise)
            except (ConnectionResetError, BrokenPipeError):
                pass  # the server may already have closed it: that is allowed
        watcher.send(b"PUB watch 2\r\nok\r\n")
        out = watcher.sync()
        assert not watcher.closed, out
        assert out == b"MSG watch 1 2\r\nok\r\n"

    try:
        one()
    finally:
        watcher.close()
    assert srv.proc is not None and srv.proc.poll() is None
