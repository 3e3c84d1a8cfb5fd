"""The seams JetStream is typed against (jetstream/seams.py): the server and the test doubles
implement the same protocols, so the tests drive the production paths (route, sole_subscriber)
rather than fallbacks for doubles. mypy checks the server statically; these check at run time
that every member exists, on the server and on each double."""

from __future__ import annotations

from pyjetstream.jetstream.seams import Account, MessageBus, Subscription
from pyjetstream.server.options import ServerOptions
from pyjetstream.server.server import Server

from .conftest import FakeAccount, FakeServer


def _missing(obj: object, proto: type) -> list[str]:
    members = [n for n in vars(proto) if not n.startswith("_")] + list(getattr(proto, "__annotations__", {}))
    return sorted({n for n in members if not hasattr(obj, n)})


def test_server_is_a_message_bus() -> None:
    srv = Server(ServerOptions(port=0))
    assert _missing(srv, MessageBus) == []
    assert isinstance(srv, MessageBus)
    assert isinstance(srv.global_account, Account)
    sub = srv.subscribe_internal(srv.global_account, "x.>", lambda *a: None)
    assert isinstance(sub, Subscription) and sub.account is srv.global_account


def test_fake_server_is_a_message_bus() -> None:
    fake = FakeServer()
    assert _missing(fake, MessageBus) == []
    assert isinstance(fake, MessageBus)
    assert isinstance(FakeAccount("A"), Account)


def test_fake_server_route_delivers_what_publish_would() -> None:
    fake = FakeServer()
    got: list[tuple[str, str, bytes | None, bytes]] = []
    fake.subscribe_internal(fake.global_account, "d.>", lambda s, c, subj, r, h, p: got.append((subj, r, h, p)))
    hdr = b"NATS/1.0\r\nA: b\r\n\r\n"
    body = hdr + b"data\r\n"
    n = fake.route(fake.global_account, "d.1", b"orig.subject", b"rep", len(hdr), b"%d" % (len(body) - 2), body, None)
    assert n == 1 and got == [("d.1", "rep", hdr, b"data")]
