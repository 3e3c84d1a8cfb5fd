"""Consecutive PUBs on one subject with a sole plain subscriber skip route() after the second
(ClientConnection._handle): every other case must still be routed exactly as route() does,
within one read as much as across reads."""

from __future__ import annotations

from test_producer_stall import conn
from test_server_connection import make_server


def pubs(subject: bytes, n: int, start: int = 0) -> bytes:
    return b"".join(b"PUB %s %d\r\n%d\r\n" % (subject, len(b"%d" % i), i) for i in range(start, start + n))


def test_repeats_are_delivered_in_order_and_counted() -> None:
    server, loop = make_server()
    sub, st = conn(server, loop)
    producer, _pt = conn(server, loop)
    sub.data_received(b"SUB s 7\r\n")
    producer.data_received(pubs(b"s", 50) + b"PUB s r.1 2\r\nhi\r\n")
    loop.run_soon()
    want = b"".join(b"MSG s 7 %d\r\n%d\r\n" % (len(b"%d" % i), i) for i in range(50)) + b"MSG s 7 r.1 2\r\nhi\r\n"
    assert st.take() == want
    assert sub.subs[b"7"].delivered == 51 and sub.out_msgs == 51
    assert producer.in_msgs == 51 and producer.in_bytes == sum(len(b"%d" % i) for i in range(50)) + 2


def test_subscription_added_in_the_same_read_gets_the_later_messages() -> None:
    server, loop = make_server()
    a, at = conn(server, loop)
    a.data_received(b"SUB s 1\r\n")
    # the producer subscribes itself between two runs of the same subject, in one read
    producer, pt = conn(server, loop)
    producer.data_received(pubs(b"s", 3) + b"SUB s 9\r\n" + pubs(b"s", 3, 3))
    loop.run_soon()
    assert at.take().count(b"MSG s 1 ") == 6
    assert pt.take().count(b"MSG s 9 ") == 3


def test_unsubscribe_in_the_same_read_stops_delivery() -> None:
    server, loop = make_server()
    producer, pt = conn(server, loop)
    producer.data_received(b"SUB s 1\r\n" + pubs(b"s", 3) + b"UNSUB 1\r\n" + pubs(b"s", 3, 3))
    loop.run_soon()
    assert pt.take().count(b"MSG s 1 ") == 3


def test_auto_unsubscribe_max_holds_inside_one_read() -> None:
    server, loop = make_server()
    sub, st = conn(server, loop)
    sub.data_received(b"SUB s 1\r\nUNSUB 1 2\r\n")
    producer, _pt = conn(server, loop)
    producer.data_received(pubs(b"s", 6))
    loop.run_soon()
    assert st.take().count(b"MSG s 1 ") == 2 and b"1" not in sub.subs


def test_no_echo_to_itself_inside_one_read() -> None:
    server, loop = make_server()
    c, t = conn(server, loop, echo=False)
    other, ot = conn(server, loop)
    c.data_received(b"SUB s 1\r\n" + pubs(b"s", 4))
    loop.run_soon()
    assert t.take() == b""
    other.data_received(pubs(b"s", 2))
    loop.run_soon()
    assert t.take().count(b"MSG s 1 ") == 2 and ot.take() == b""


def test_queue_group_members_still_share_a_run() -> None:
    server, loop = make_server()
    q1, t1 = conn(server, loop)
    q2, t2 = conn(server, loop)
    q1.data_received(b"SUB s g 1\r\n")
    q2.data_received(b"SUB s g 1\r\n")
    producer, _pt = conn(server, loop)
    producer.data_received(pubs(b"s", 200))
    loop.run_soon()
    n1, n2 = t1.take().count(b"MSG s 1 "), t2.take().count(b"MSG s 1 ")
    assert n1 + n2 == 200 and n1 > 0 and n2 > 0


def test_second_subscriber_and_wildcard_are_routed() -> None:
    server, loop = make_server()
    a, at = conn(server, loop)
    b, bt = conn(server, loop)
    a.data_received(b"SUB s 1\r\n")
    b.data_received(b"SUB > 2\r\n")
    producer, _pt = conn(server, loop)
    producer.data_received(pubs(b"s", 5) + pubs(b"t", 2) + pubs(b"s", 5))
    loop.run_soon()
    assert at.take().count(b"MSG s 1 ") == 10
    out = bt.take()
    assert out.count(b"MSG s 2 ") == 10 and out.count(b"MSG t 2 ") == 2


def test_subscriber_cut_as_slow_consumer_mid_run_gets_nothing_more() -> None:
    server, loop = make_server(max_pending=64 * 1024)
    sub, st = conn(server, loop)
    sub.data_received(b"SUB s 1\r\n")
    producer, _pt = conn(server, loop)
    st.backlog = 64 * 1024 + 1  # stuck peer: the first flush cuts it
    big = b"x" * 60_000
    producer.data_received(b"".join(b"PUB s %d\r\n%s\r\n" % (len(big), big) for _ in range(12)))
    loop.run_soon()
    assert sub.closed and server.slow_consumers == 1 and not producer.closed
    written = st.take()
    assert written.count(b"MSG s 1 ") < 12
