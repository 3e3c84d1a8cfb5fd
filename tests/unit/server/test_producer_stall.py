"""Fast producers wait while a subscriber they feed has a backlog over the stall mark (as
nats-server stalls them): reading from the producer pauses, and resumes when the backlog
drains, the subscriber goes, or STALL_MAX passes. Only the producers that fed that subscriber
wait; a connection never waits on its own backlog."""

from __future__ import annotations

from typing import Any

from test_server_connection import FakeLoop, FakeTransport, make_server

from pyjetstream.server import client as client_mod
from pyjetstream.server.client import ClientConnection
from pyjetstream.server.server import Server


class PausableTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.reading = True
        self.pauses = 0

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True


def conn(server: Server, loop: FakeLoop, echo: bool = True) -> tuple[ClientConnection, PausableTransport]:
    c = server._new_client()
    t = PausableTransport()
    c.connection_made(t)  # type: ignore[arg-type]
    c.data_received(b'CONNECT {"verbose":false,"pedantic":false,"echo":%s}\r\n' % (b"true" if echo else b"false"))
    loop.run_soon()
    t.take()
    return c, t


def pub(c: ClientConnection, loop: FakeLoop, subject: bytes, n: int = 1) -> None:
    c.data_received(b"".join(b"PUB %s 2\r\nhi\r\n" % subject for _ in range(n)))
    loop.run_soon()


def setup(**kw: Any) -> tuple[Server, FakeLoop, ClientConnection, PausableTransport, ClientConnection,
                              PausableTransport]:
    server, loop = make_server(**kw)
    sub, st = conn(server, loop)
    sub.data_received(b"SUB feed 1\r\n")
    producer, pt = conn(server, loop)
    return server, loop, sub, st, producer, pt


def test_producer_waits_while_the_subscriber_backlog_is_over_the_mark() -> None:
    _server, loop, sub, st, producer, pt = setup()
    pub(producer, loop, b"feed")
    assert pt.reading and sub.stalling is None  # no backlog: nobody waits
    st.backlog = client_mod.STALL_BYTES + 1
    pub(producer, loop, b"feed")  # this flush finds the backlog
    assert pt.reading and sub.stalling == []
    pub(producer, loop, b"feed", 3)  # the next delivery stalls its producer, once
    assert not pt.reading and pt.pauses == 1 and sub.stalling == [producer]
    st.backlog = 0
    sub.resume_writing()  # the transport drained below its low-water mark
    assert pt.reading and sub.stalling is None
    assert not [e for e in loop.timers if getattr(e[1], "__name__", "") == "unstall"]  # timer cancelled


def test_a_stall_ends_after_stall_max_even_if_the_backlog_stays() -> None:
    _server, loop, sub, st, producer, pt = setup()
    st.backlog = client_mod.STALL_BYTES + 1
    pub(producer, loop, b"feed")
    pub(producer, loop, b"feed")
    assert not pt.reading
    (delay, _cb), = [e for e in loop.timers if getattr(e[1], "__name__", "") == "unstall"]
    assert delay == client_mod.STALL_MAX
    loop.fire("unstall", producer)
    assert pt.reading
    pub(producer, loop, b"feed")  # still over the mark: it waits again
    assert not pt.reading and pt.pauses == 2


def test_subscriber_that_goes_away_releases_its_producers() -> None:
    _server, loop, sub, st, producer, pt = setup()
    st.backlog = client_mod.STALL_BYTES + 1
    pub(producer, loop, b"feed", 2)
    pub(producer, loop, b"feed")
    assert not pt.reading
    sub.close("Client Closed")
    assert pt.reading and not producer.closed


def test_only_producers_of_the_backlogged_subscriber_wait() -> None:
    server, loop, sub, st, producer, pt = setup()
    other, ot = conn(server, loop)
    quiet, qt = conn(server, loop)
    quiet.data_received(b"SUB elsewhere 2\r\n")
    st.backlog = client_mod.STALL_BYTES + 1
    pub(producer, loop, b"feed")
    pub(producer, loop, b"feed")
    pub(other, loop, b"elsewhere", 5)
    assert not pt.reading and ot.reading and qt.reading
    assert qt.take().count(b"MSG elsewhere 2 2\r\n") == 5


def test_a_connection_never_waits_on_its_own_backlog() -> None:
    server, loop = make_server()
    c, t = conn(server, loop)
    c.data_received(b"SUB self 1\r\n")
    t.backlog = client_mod.STALL_BYTES + 1
    pub(c, loop, b"self", 3)
    pub(c, loop, b"self", 3)
    assert t.reading and t.pauses == 0


def test_backlog_drained_without_resume_writing_releases_on_next_delivery() -> None:
    # a small max_pending puts the mark under the transport's high-water mark, so
    # resume_writing may never come: the next delivery notices the drained buffer
    _server, loop, sub, st, producer, pt = setup(max_pending=64 * 1024)
    assert sub._stall_at == 32 * 1024
    st.backlog = 40 * 1024
    pub(producer, loop, b"feed")
    pub(producer, loop, b"feed")
    assert not pt.reading
    loop.fire("unstall", producer)
    st.backlog = 0
    pub(producer, loop, b"feed")
    assert pt.reading and sub.stalling is None and pt.pauses == 1


def test_slow_consumer_limit_still_cuts_a_subscriber_over_max_pending() -> None:
    server, loop, sub, st, producer, pt = setup(max_pending=64 * 1024)
    st.backlog = 64 * 1024 + 1
    pub(producer, loop, b"feed")
    assert sub.closed and st.aborted and server.slow_consumers == 1
    assert pt.reading  # nothing left to wait for


def test_held_producer_is_not_resumed_by_the_end_of_a_stall() -> None:
    _server, loop, sub, st, producer, pt = setup()
    st.backlog = client_mod.STALL_BYTES + 1
    pub(producer, loop, b"feed", 2)
    pub(producer, loop, b"feed")
    producer._held = []  # a long request of its own keeps it paused
    loop.fire("unstall", producer)
    assert not pt.reading
