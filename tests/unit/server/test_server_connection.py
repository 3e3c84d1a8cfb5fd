"""ClientConnection and Server routing in-process, with a fake transport and a fake loop whose
timers the test fires by hand: ping/stale logic, slow consumers, UNSUB max, queue groups with
an injected random source, no-responders framing, and the internal seam JetStream uses."""

from __future__ import annotations

import random
from typing import Any

from pyjetstream.server.client import ClientConnection
from pyjetstream.server.options import Permissions, ServerOptions, User
from pyjetstream.server.server import Server


class FakeLoop:
    def __init__(self) -> None:
        self.soon: list[Any] = []
        self.timers: list[tuple[float, Any]] = []

    def call_soon(self, cb: Any, *args: Any) -> None:
        self.soon.append((cb, args))

    def call_later(self, delay: float, cb: Any, *args: Any) -> Any:
        entry = (delay, cb)
        self.timers.append(entry)
        loop = self

        class Handle:
            def cancel(self) -> None:
                if entry in loop.timers:
                    loop.timers.remove(entry)
        return Handle()

    def run_soon(self) -> None:
        while self.soon:
            cb, args = self.soon.pop(0)
            cb(*args)

    def fire(self, cb_name: str, conn: ClientConnection) -> None:
        """Fire the pending timer `cb_name` of one connection."""
        for entry in list(self.timers):
            cb = entry[1]
            if getattr(cb, "__name__", "") == cb_name and getattr(cb, "__self__", None) is conn:
                self.timers.remove(entry)
                cb()
                return
        raise AssertionError(f"no pending {cb_name} timer")


class FakeTransport:
    def __init__(self) -> None:
        self.data = b""
        self.backlog = 0  # what a stuck peer leaves in our write buffer
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def take(self) -> bytes:
        out, self.data = self.data, b""
        return out


def make_server(**kw: Any) -> tuple[Server, FakeLoop]:
    server = Server(ServerOptions(**kw), rng=random.Random(1))
    loop = FakeLoop()
    server.loop = loop  # type: ignore[assignment]
    server._info_base = {"server_id": server.server_id}
    return server, loop


def connect(server: Server, loop: FakeLoop, connect_json: bytes = b'{"verbose":false,"headers":true}') -> tuple[
        ClientConnection, FakeTransport]:
    c = server._new_client()
    t = FakeTransport()
    c.connection_made(t)  # type: ignore[arg-type]
    c.data_received(b"CONNECT " + connect_json + b"\r\n")
    loop.run_soon()
    assert t.take().startswith(b"INFO ")
    return c, t


def send(c: ClientConnection, loop: FakeLoop, data: bytes) -> None:
    c.data_received(data)
    loop.run_soon()


def test_pings_then_stale_for_a_silent_peer() -> None:
    server, loop = make_server(ping_max=2)
    c, t = connect(server, loop)
    loop.fire("_ping_timer", c)
    loop.fire("_ping_timer", c)
    loop.run_soon()
    assert t.take() == b"PING\r\nPING\r\n"
    loop.fire("_ping_timer", c)
    loop.run_soon()
    assert t.take() == b"-ERR 'Stale Connection'\r\n" and t.closed and c.closed


def test_no_ping_to_a_busy_peer_that_has_answered_before() -> None:
    server, loop = make_server(ping_max=1)
    c, t = connect(server, loop)
    loop.fire("_ping_timer", c)
    loop.run_soon()
    assert t.take() == b"PING\r\n"
    send(c, loop, b"PONG\r\n")
    for _ in range(5):  # it keeps publishing, never answering again: still alive
        send(c, loop, b"PUB x 1\r\na\r\n")
        loop.fire("_ping_timer", c)
        loop.run_soon()
    assert t.take() == b"" and not c.closed
    loop.fire("_ping_timer", c)  # quiet for a whole interval: pinged again
    loop.run_soon()
    assert t.take() == b"PING\r\n"


def test_slow_consumer_is_aborted_alone() -> None:
    server, loop = make_server(max_pending=1000)
    slow, st = connect(server, loop)
    fast, ft = connect(server, loop)
    pub, _ = connect(server, loop)
    send(slow, loop, b"SUB s 1\r\n")
    send(fast, loop, b"SUB s 1\r\n")
    st.backlog = 5000  # the peer stopped reading
    send(pub, loop, b"PUB s 3\r\nabc\r\n")
    assert st.aborted and slow.closed and server.slow_consumers == 1
    assert ft.take() == b"MSG s 1 3\r\nabc\r\n" and not fast.closed
    send(pub, loop, b"PUB s 3\r\ndef\r\n")  # its subscription is gone with it
    assert ft.take() == b"MSG s 1 3\r\ndef\r\n" and server.slow_consumers == 1


def test_unsub_max_counts_earlier_deliveries() -> None:
    server, loop = make_server()
    c, t = connect(server, loop)
    send(c, loop, b"SUB a 1\r\nPUB a 1\r\n1\r\nUNSUB 1 2\r\nPUB a 1\r\n2\r\nPUB a 1\r\n3\r\n")
    assert t.take() == b"MSG a 1 1\r\n1\r\nMSG a 1 1\r\n2\r\n"
    assert not c.subs and server.global_account.sublist.count == 0


def test_queue_group_picks_one_member_per_message() -> None:
    server, loop = make_server()
    members = [connect(server, loop) for _ in range(3)]
    for c, _ in members:
        send(c, loop, b"SUB q g 7\r\n")
    pub, _ = connect(server, loop)
    for _ in range(60):
        send(pub, loop, b"PUB q 1\r\nx\r\n")
    counts = [t.take().count(b"MSG q 7 1\r\n") for _, t in members]
    assert sum(counts) == 60 and all(counts)  # seeded rng: every member got some


def test_no_responders_status_goes_to_the_requester_only() -> None:
    server, loop = make_server()
    c, t = connect(server, loop, b'{"verbose":false,"headers":true,"no_responders":true}')
    other, ot = connect(server, loop)
    send(other, loop, b"SUB _INBOX.> 5\r\n")
    send(c, loop, b"SUB _INBOX.c.* 9\r\nPUB svc _INBOX.c.1 0\r\n\r\n")
    assert t.take() == b"HMSG _INBOX.c.1 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    assert ot.take() == b""


def test_header_message_to_a_client_without_headers_drops_the_headers() -> None:
    server, loop = make_server()
    old, t = connect(server, loop, b'{"verbose":false}')
    send(old, loop, b"SUB h 1\r\n")
    pub, _ = connect(server, loop)
    send(pub, loop, b"HPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    assert t.take() == b"MSG h 1 r 2\r\nhi\r\n"


def test_internal_seam() -> None:
    server, loop = make_server()
    got: list[tuple] = []
    acc = server.global_account
    sub = server.subscribe_internal(acc, "svc.*", lambda s, client, subj, reply, hdr, payload:
                                    got.append((client is not None, subj, reply, hdr, payload)))
    assert server.has_interest(acc, "svc.a") and not server.has_interest(acc, "other")
    c, t = connect(server, loop)
    send(c, loop, b"HPUB svc.a _R 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB svc.b 2\r\nyo\r\n")
    assert got == [(True, "svc.a", "_R", b"NATS/1.0\r\n\r\n", b"hi"), (True, "svc.b", "", None, b"yo")]
    send(c, loop, b"SUB _R 1\r\n")
    assert server.publish(acc, "_R", "", b"NATS/1.0\r\nK: v\r\n\r\n", b"ok") == 1
    loop.run_soon()
    assert t.take() == b"HMSG _R 1 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nok\r\n"
    assert server.publish(acc, "svc.c", "r", None, b"") == 1 and got[-1] == (False, "svc.c", "r", None, b"")
    server.unsubscribe_internal(sub)
    assert not server.has_interest(acc, "svc.a")


def test_accounts_are_separate_subject_spaces() -> None:
    users = [User("a", "pa", "A"), User("b", "pb", "B", Permissions(pub_allow=["x"], sub_allow=[]))]
    from pyjetstream.server.options import AccountConfig
    server, loop = make_server(users=users, accounts={"A": AccountConfig("A"), "B": AccountConfig("B")})
    a, at = connect(server, loop, b'{"verbose":false,"user":"a","pass":"pa"}')
    b, bt = connect(server, loop, b'{"verbose":false,"user":"b","pass":"pb"}')
    send(a, loop, b"SUB x 1\r\n")
    send(b, loop, b"SUB x 1\r\nPUB x 1\r\nb\r\n")
    send(a, loop, b"PUB x 1\r\na\r\n")
    assert at.take() == b"MSG x 1 1\r\na\r\n"
    assert bt.take() == b"MSG x 1 1\r\nb\r\n"  # `sub_allow=[]` restricts nothing, as in nats-server
    assert a.account is server.accounts["A"] and b.account is server.accounts["B"]


def test_a_failing_internal_subscriber_does_not_drop_the_publisher() -> None:
    server, loop = make_server()
    calls: list[str] = []

    def broken(sub, client, subject, reply, hdr, payload):
        calls.append(reply)
        raise RuntimeError("bug in another component")
    server.subscribe_internal(server.global_account, "jobs", broken)
    c, t = connect(server, loop)
    send(c, loop, b"SUB jobs 1\r\nPUB jobs r\xff 1\r\nx\r\nPING\r\n")
    assert t.take() == b"MSG jobs 1 r\xff 1\r\nx\r\nPONG\r\n" and not c.closed
    assert calls == ["r\ufffd"]  # an invalid UTF-8 reply reaches internal code decodable


def test_write_deadline_cuts_a_peer_that_stays_paused() -> None:
    server, loop = make_server(write_deadline=5.0)
    c, t = connect(server, loop)
    c.pause_writing()
    c.resume_writing()  # drained in time: nothing happens
    assert not any(getattr(cb, "__name__", "") == "_write_deadline_passed" for _, cb in loop.timers)
    c.pause_writing()
    loop.fire("_write_deadline_passed", c)
    assert t.aborted and c.closed and server.slow_consumers == 1
