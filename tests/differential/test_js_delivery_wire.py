"""Differential, byte level: how push consumers frame deliveries, against nats-server 2.9.10.

Raw-socket clients create a stream and push consumers through the API, then read what
arrives on each deliver subject: a client that announced headers, one that did not (it gets
the payload only), a non-ASCII sid, a queue group (deliver_group), and a deliver subject
that two connections share. Our server frames a lone subscriber's deliveries itself instead
of routing each one; these scenarios hold that path to the routed bytes. The ack reply's
timestamp token is the only thing normalized (and, for the queue group, which member got it).
"""

from __future__ import annotations

import json
import re
import time

import pytest
from servers import RawClient, have_nats_server, start_server

pytestmark = [pytest.mark.nats_server,
              pytest.mark.skipif(not have_nats_server(), reason="nats-server binary not installed")]

CH = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'
CN = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
HDR = b"NATS/1.0\r\nX-K: v\r\n\r\n"
MESSAGES = (b"PUB d.one 5\r\nhello\r\n"
            + b"HPUB d.two %d %d\r\n%sworld\r\n" % (len(HDR), len(HDR) + 5, HDR)
            + b"PUB d.empty 0\r\n\r\n")
N_MSGS = 3


def _frames(data: bytes) -> list[bytes]:
    """MSG/HMSG frames with the ack reply's timestamp token replaced."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\r\n", pos)
        if nl < 0:
            break
        args = data[pos:nl].split(b" ")
        pos = nl + 2
        if args[0] not in (b"MSG", b"HMSG"):
            continue
        size = int(args[-1])
        toks = args[3].split(b".") if len(args) > 4 else []
        if len(toks) == 9 and toks[:2] == [b"$JS", b"ACK"]:
            toks[7] = b"TS"
            args[3] = b".".join(toks)
        out.append(b" ".join(args) + b"\r\n" + data[pos:pos + size + 2])
        pos += size + 2
    return out


def _collect(clients: list[RawClient], want: int, timeout: float = 10.0) -> list[list[bytes]]:
    """What each client received once `want` frames arrived among them (PING/PONG rounds)."""
    got: list[bytes] = [b"" for _ in clients]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, c in enumerate(clients):
            got[i] += c.sync()
        if sum(len(_frames(g)) for g in got) >= want:
            break
    # one more round: a duplicate would show up here
    for i, c in enumerate(clients):
        got[i] += c.sync()
    return [_frames(g) for g in got]


def _api(c: RawClient, subject: str, body: dict) -> dict:
    raw = json.dumps(body).encode()
    c.send(b"PUB %s _R.api %d\r\n%s\r\n" % (subject.encode(), len(raw), raw))
    out = c.read_until(b"}\r\n")
    return json.loads(out[out.index(b"{"):])


def _scenario(port: int) -> dict[str, list[list[bytes]]]:
    admin = RawClient(port)
    admin.send(CH + b"SUB _R.api 1\r\n")
    assert "error" not in _api(admin, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["d.>"]})
    admin.send(MESSAGES)
    admin.sync()
    h, n, q1, q2, s2 = (RawClient(port) for _ in range(5))
    h.send(CH + b"SUB dlv.h 1\r\nSUB dlv.u s\xc3\xa4\r\n")
    n.send(CN + b"SUB dlv.n 2\r\n")
    q1.send(CH + b"SUB dlv.q grp 3\r\n")
    q2.send(CH + b"SUB dlv.q grp 4\r\n")
    s2.send(CH + b"SUB dlv.s 5\r\n")  # two connections on dlv.s: routed, not framed direct
    h.send(b"SUB dlv.s 6\r\n")
    for c in (h, n, q1, q2, s2):
        c.sync()
    results: dict[str, list[list[bytes]]] = {}
    for name, dlv, extra, clients in (
        ("headers", "dlv.h", {}, [h]),
        ("shared", "dlv.s", {}, [h, s2]),
        ("no-headers", "dlv.n", {}, [n]),
        ("non-ascii-sid", "dlv.u", {"headers_only": True}, [h]),
        ("queue", "dlv.q", {"deliver_group": "grp"}, [q1, q2]),
    ):
        cfg = {"durable_name": name.replace("-", "_").upper(), "deliver_subject": dlv,
               "ack_policy": "explicit", **extra}
        reply = _api(admin, "$JS.API.CONSUMER.DURABLE.CREATE.S." + cfg["durable_name"],
                     {"stream_name": "S", "config": cfg})
        assert "error" not in reply, reply
        want = N_MSGS * (2 if name == "shared" else 1)
        results[name] = _collect(clients, want)
    if results["queue"]:
        # which member of the group got each message is random: merge them, sids folded
        merged = sorted(f.replace(b" 3 ", b" Q ").replace(b" 4 ", b" Q ") for fs in results["queue"] for f in fs)
        results["queue"] = [merged]
    for c in (admin, h, n, q1, q2, s2):
        c.close()
    return results


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    ref = start_server("nats-server", tmp_path_factory.mktemp("ref"), "-js", "-sd",
                       str(tmp_path_factory.mktemp("ref-store")))
    ours = start_server("pyjetstream", tmp_path_factory.mktemp("ours"), "-js", "-sd",
                        str(tmp_path_factory.mktemp("ours-store")))
    try:
        yield _scenario(ref.port), _scenario(ours.port)
    finally:
        ref.stop()
        ours.stop()


@pytest.mark.parametrize("case", ["headers", "shared", "no-headers", "non-ascii-sid", "queue"])
def test_push_deliveries_are_framed_as_nats_server_does(both, case: str) -> None:
    ref, ours = both
    assert sum(len(fs) for fs in ref[case]) >= N_MSGS  # the scenario itself delivered
    assert ours[case] == ref[case]


def test_frames_carry_what_was_published(both) -> None:
    _ref, ours = both
    h_frames = ours["headers"][0]
    assert [f.split(b" ")[0] for f in h_frames] == [b"MSG", b"HMSG", b"MSG"]
    assert re.search(rb"X-K: v\r\n\r\nworld\r\n$", h_frames[1])
    # the client without headers gets the payload alone
    assert [f.split(b"\r\n", 1)[1] for f in ours["no-headers"][0]] == [b"hello\r\n", b"world\r\n", b"\r\n"]
