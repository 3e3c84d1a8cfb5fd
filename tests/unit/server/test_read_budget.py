"""One connection's input may bring at most READ_BUDGET bytes between two turns of the loop:
then its reading pauses and resumes on the next pass, so a client flooding PUBs cannot hold
the loop for megabytes of parsing (uvloop reads a busy socket many times in one pass). A stall
or a hold that begins during the pause keeps reading paused until it ends itself."""

from __future__ import annotations

from test_producer_stall import conn, setup
from test_server_connection import make_server

from pyjetstream.server import client as client_mod


def flood(size: int) -> bytes:
    one = b"PUB flood 2\r\nhi\r\n"
    return one * (size // len(one) + 1)


def test_reading_pauses_after_the_budget_and_resumes_on_the_next_pass() -> None:
    server, loop = make_server()
    c, t = conn(server, loop)
    c.data_received(flood(client_mod.READ_BUDGET // 2))
    assert t.reading  # under the budget: no turn given up
    c.data_received(flood(client_mod.READ_BUDGET // 2))
    assert not t.reading and t.pauses == 1
    assert c.in_msgs > 0  # what arrived is still handled, nothing is dropped
    loop.run_soon()  # the next pass of the loop
    assert t.reading
    c.data_received(flood(client_mod.READ_BUDGET // 4))
    assert t.reading and t.pauses == 1  # the count started again after the pause


def test_every_message_of_a_flood_is_handled_across_the_pauses() -> None:
    server, loop = make_server()
    sub, st = conn(server, loop)
    sub.data_received(b"SUB flood 1\r\n")
    producer, pt = conn(server, loop)
    one = b"PUB flood 2\r\nhi\r\n"
    n = 3 * client_mod.READ_BUDGET // len(one)
    data = one * n
    for i in range(0, len(data), 65536):
        producer.data_received(data[i:i + 65536])
        if not pt.reading:
            loop.run_soon()
    loop.run_soon()
    assert pt.pauses >= 2 and pt.reading
    assert st.take().count(b"MSG flood 1 2\r\n") == n


def test_a_stall_begun_during_the_pause_keeps_reading_paused() -> None:
    _server, loop, sub, st, producer, pt = setup()
    st.backlog = client_mod.STALL_BYTES + 1
    producer.data_received(b"PUB feed 2\r\nhi\r\n")  # this flush finds the backlog
    producer.data_received(flood(client_mod.READ_BUDGET).replace(b"flood", b"feed"))
    assert not pt.reading and producer._stall_handle is not None
    loop.run_soon()  # the turn ends, the stall does not
    assert not pt.reading
    loop.fire("unstall", producer)
    assert pt.reading


def test_a_closed_connection_is_not_resumed() -> None:
    server, loop = make_server()
    c, t = conn(server, loop)
    c.data_received(flood(client_mod.READ_BUDGET))
    assert not t.reading
    c.close("Client Closed")
    loop.run_soon()
    assert not t.reading

