"""`pyjetstream up` with a config that lists users (issue 11 item 7): the embedded eventing runs
as its own user `eventing` (the config's, or one `up` adds), and only that user may write
Subscriptions; every other user of its account gets a permissions violation for the
Subscriptions bucket's keys and stream API, while events still flow."""

from __future__ import annotations

import nats
import nats.errors
import pytest
from servers import free_port

from pyjetstream.cli.up import (
    EVENTING_PASSWORD_ENV,
    embedded_user,
    eventing_identity,
    subscription_write_denials,
)
from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import wait_until
from pyjetstream.server.options import OptionsError, Permissions, ServerOptions, User

from .conftest import subscribe_ready
from .test_readme_scenario import CLI, Proc, wait_http
from .test_reliability import all_arrive, publish_many

BUCKET = "eventing-subscriptions"
DENIED = subscription_write_denials(BUCKET)
CONF = """
authorization {
  users = [
    { user: reader, password: r1, permissions: { publish: "_INBOX.>", subscribe: "reports.>" } }
    { user: ops, password: o1 }
    %s
  ]
}
"""
WITH_EVENTING = CONF % "{ user: eventing, password: e1 }"
WITHOUT_EVENTING = CONF % ""
HASH = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"  # bcrypt-shaped: is_bcrypt says yes


def test_embedded_user_choice() -> None:
    limited = User("a", "x", "$G", Permissions())
    free_other = User("b", "y", "ACC")
    free_global = User("c", "z", "$G")
    assert embedded_user([limited, free_other, free_global]) is free_global
    assert embedded_user([limited, free_other]) is free_other
    assert embedded_user([limited]) is limited


def test_configured_eventing_user_is_the_only_writer_of_its_account() -> None:
    shared = Permissions(pub_allow=["orders.>", "$JS.API.>"])
    opts = ServerOptions(users=[User("a", "x", "$G", shared), User("b", "y", "$G", shared), User("c", "z", "$G"),
                                User("eventing", "e1", "$G"), User("other", "w", "ACC")])
    assert eventing_identity(opts, BUCKET, env={}) == ("eventing", "e1")
    users = {u.user: u for u in opts.users}
    for name in ("a", "b", "c"):
        assert users[name].permissions is not None and users[name].permissions.pub_deny == DENIED, name
    assert users["a"].permissions.pub_allow == ["orders.>", "$JS.API.>"]  # allow lists are kept
    assert users["a"].permissions is not users["b"].permissions and shared.pub_deny == []  # no shared mutation
    assert users["eventing"].permissions is None
    assert users["other"].permissions is None  # another account cannot reach this bucket anyway
    eventing_identity(opts, BUCKET, env={})  # applying twice adds nothing twice
    assert users["a"].permissions.pub_deny == DENIED


def test_eventing_user_is_added_when_the_config_has_none() -> None:
    opts = ServerOptions(users=[User("guest", "g", "$G", Permissions(pub_allow=["x"])), User("ops", "o", "$G")],
                         no_auth_user="guest")
    name, password = eventing_identity(opts, BUCKET, env={})
    assert name == "eventing" and len(password) >= 32
    added = opts.users[-1]
    assert (added.user, added.password, added.account, added.permissions) == ("eventing", password, "$G", None)
    assert all(u.permissions.pub_deny == DENIED for u in opts.users[:2])  # the no_auth_user too
    assert eventing_identity(ServerOptions(users=[User("ops", "o")]), BUCKET, env={})[1] != password
    opts = ServerOptions(users=[User("ops", "o")])
    assert eventing_identity(opts, BUCKET, env={EVENTING_PASSWORD_ENV: "chosen"}) == ("eventing", "chosen")


def test_bcrypt_eventing_password_needs_its_plain_text() -> None:
    with pytest.raises(OptionsError, match=EVENTING_PASSWORD_ENV):
        eventing_identity(ServerOptions(users=[User("eventing", HASH)]), BUCKET, env={})
    opts = ServerOptions(users=[User("eventing", HASH)])
    assert eventing_identity(opts, BUCKET, env={EVENTING_PASSWORD_ENV: "e1"}) == ("eventing", "e1")


async def refused(nc, errors: list[str], action, subject: str) -> None:
    errors.clear()
    with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
        await action()
    await wait_until(lambda: errors, timeout=5, what=f"permissions violation for {subject}")
    assert any(f'permissions violation for publish to "{subject.lower()}"' in e.lower() for e in errors), errors


async def ordinary_user_cannot_write(port: int) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))
    ops = await nats.connect(f"nats://127.0.0.1:{port}", user="ops", password="o1", error_cb=on_error)
    try:
        js = ops.jetstream(timeout=1.0)
        store = await SubscriptionStore.open(ops, BUCKET, create=False, timeout=1.0)
        current = await store.get("default", "orders")
        assert current is not None  # reading is allowed
        evil = Subscription.from_manifest({**current.to_manifest(False), "spec": {
            **current.spec_dict(), "sink": "http://169.254.169.254/latest/meta-data/"}})
        await refused(ops, errors, lambda: store.apply(evil), f"$KV.{BUCKET}.spec.default.orders")
        await refused(ops, errors, lambda: store.delete("default", "orders"), f"$KV.{BUCKET}.spec.default.orders")
        await refused(ops, errors, lambda: js.delete_stream(f"KV_{BUCKET}"), f"$JS.API.STREAM.DELETE.KV_{BUCKET}")
        await refused(ops, errors, lambda: js.purge_stream(f"KV_{BUCKET}"), f"$JS.API.STREAM.PURGE.KV_{BUCKET}")
        assert (await store.get("default", "orders")).sink == current.sink
        # everything else of JetStream stays theirs
        await js.add_stream(name="OPS", subjects=["ops.>"])
        assert (await js.publish("ops.x", b"1")).seq == 1
    finally:
        await ops.close()


async def run_up_with(tmp_path, conf: str, sink, eventing_password: str) -> Proc:
    path = tmp_path / "users.conf"
    path.write_text(conf)
    port, mon, proxy = free_port(), free_port(), free_port()
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "-c", str(path), "--publish-port", str(proxy)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        assert any("connects as user eventing" in line for line in up.lines), up.output()
        nc = await nats.connect(f"nats://127.0.0.1:{port}", user="eventing", password=eventing_password)
        await subscribe_ready(nc, sink.url)
        await nc.close()
        await ordinary_user_cannot_write(port)
        accepted = await publish_many(lambda: proxy, [f"auth-{i}" for i in range(20)], 4)
        assert len(accepted) == 20
        await all_arrive(sink, accepted, timeout=30)
    finally:
        await up.stop()
    assert up.proc is not None and up.proc.returncode == 0, up.output()
    return up


async def test_up_runs_eventing_as_the_configured_user(tmp_path, sink):
    await run_up_with(tmp_path, WITH_EVENTING, sink, "e1")


async def test_up_adds_an_eventing_user_when_the_config_has_none(tmp_path, sink, monkeypatch):
    monkeypatch.setenv(EVENTING_PASSWORD_ENV, "chosen-secret")
    up = await run_up_with(tmp_path, WITHOUT_EVENTING, sink, "chosen-secret")
    assert any("user eventing added" in line for line in up.lines), up.output()
