"""The seams JetStream is typed against (jetstream/seams.py): the server and the test doubles
implement the same protocols, so the tests drive the production paths (route, sole_subscriber)
rather than fallbacks for doubles. mypy checks the server statically; these check at run time
that every member exists, on the server and on each double (the bus, and the client connection
an API request comes from)."""

from __future__ import annotations

import pytest

from pyjetstream.jetstream import fair
from pyjetstream.jetstream.seams import Account, ApiClient, MessageBus, PublishPermissions, Subscription
from pyjetstream.server.auth import PermissionChecker
from pyjetstream.server.client import ClientConnection
from pyjetstream.server.options import Permissions, ServerOptions
from pyjetstream.server.server import Server

from .conftest import FakeAccount, FakeClient, FakePerms, FakeServer, settle


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


def test_client_connection_and_fake_client_are_api_clients() -> None:
    srv = Server(ServerOptions(port=0))
    conn = ClientConnection(srv, 1)
    assert _missing(conn, ApiClient) == [] and isinstance(conn, ApiClient)
    assert _missing(FakeClient(), ApiClient) == [] and isinstance(FakeClient(), ApiClient)
    assert isinstance(FakePerms("x.>"), PublishPermissions)
    conn.perms = PermissionChecker(Permissions(pub_allow=["ok.>"]))
    assert isinstance(conn.perms, PublishPermissions)


async def test_the_api_reads_its_requester_through_the_seam(server: FakeServer, js: object,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What the API reads of the requesting connection: its permissions (a republish
    destination it may not publish to is refused), the audit advisory's client fields, and the
    hold on its later operations while its long request runs in slices."""
    client = FakeClient(cid=42, name="app", perms=FakePerms("secret.>"))
    cfg = {"name": "S", "subjects": ["s.>"], "storage": "memory"}
    r = (await server.request("$JS.API.STREAM.CREATE.S", {**cfg, "republish": {"src": ">", "dest": "secret.x"}},
                              client=client)).json()
    assert r["error"]["err_code"] == 10052 and "secret.x" in r["error"]["description"]
    server.listening.add("$JS.EVENT.ADVISORY.API")
    assert "error" not in (await server.request("$JS.API.STREAM.CREATE.S", cfg, client=client)).json()
    adv = [d.json() for d in server.outbox if d.subject == "$JS.EVENT.ADVISORY.API"][-1]
    assert adv["client"] == {"acc": "$G", "id": 42, "name": "app", "lang": "python3", "version": "0.0",
                             "host": "127.0.0.1"}
    assert client.held == []  # answered inline: nothing to wait for
    for i in range(3 * fair.SUBJECTS_CHUNK):
        server.publish(server.global_account, f"s.{i}", "", None, b"x")
    # subject details over more subjects than one slice lists, with slices of no time at all:
    # a job in slices, which the client waits for
    monkeypatch.setattr(fair, "SLICE_S", 0.0)
    inbox = server.new_inbox()
    server.publish(server.global_account, "$JS.API.STREAM.INFO.S", inbox, None, b'{"subjects_filter":">"}',
                   client=client)
    assert len(client.held) == 1 and not client.held[0].done() and server.replies(inbox) == []
    await client.held[0]
    await settle()
    (r,) = server.replies(inbox)
    assert len(r.json()["state"]["subjects"]) == 3 * fair.SUBJECTS_CHUNK
