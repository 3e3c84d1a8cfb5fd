"""Who may write Subscriptions (issue 11 item 7): with examples/eventing-auth.conf, a restricted
user gets a permissions violation for every way of changing or deleting a Subscription (its KV
keys and its stream's write API), can still read them, and the eventing user can write; on
nats-server 2.9.10 and on our server. `up` applies the same deny list by itself
(tests/e2e/test_up_auth.py); its rules and the shipped file must not drift apart."""

from __future__ import annotations

from pathlib import Path

import nats
import nats.errors
import pytest

from pyjetstream.cli.up import subscription_write_denials
from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import wait_until
from pyjetstream.server.options import parse_server_args

from .conftest import start_nats

CONF = Path(__file__).resolve().parents[2] / "examples" / "eventing-auth.conf"
BUCKET = "eventing-subscriptions"
SPEC = "spec.default.orders"


def manifest(sink: str) -> Subscription:
    return Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription", "metadata": {"name": "orders"},
        "spec": {"sink": sink, "source": "myapp", "types": ["order.received.v1"]}})


@pytest.fixture
def auth_server(server_kind, tmp_path):
    with start_nats(server_kind, tmp_path, "-c", str(CONF)) as proc:
        yield proc


def test_shipped_config_denies_what_up_denies() -> None:
    opts, _ = parse_server_args(["-c", str(CONF)])
    users = {u.user: u for u in opts.users}
    assert users["eventing"].permissions is None
    assert users["app"].permissions is not None
    assert users["app"].permissions.pub_deny == subscription_write_denials(BUCKET)


async def test_restricted_user_cannot_change_a_subscription(auth_server):
    eventing = await nats.connect(auth_server.url, user="eventing", password="change-me")
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))
    app = await nats.connect(auth_server.url, user="app", password="change-me-too", error_cb=on_error)
    try:
        store = await SubscriptionStore.open(eventing)
        assert await store.apply(manifest("http://127.0.0.1:1")) == "created"
        before = await store.get("default", "orders")
        assert before is not None

        js = app.jetstream(timeout=1.0)
        kv = await js.key_value(BUCKET)  # reading is allowed
        assert (await kv.get(SPEC)).value
        theirs = await SubscriptionStore.open(app, BUCKET, create=False, timeout=1.0)
        assert (await theirs.get("default", "orders")).sink == "http://127.0.0.1:1"

        attempts = {
            f"$KV.{BUCKET}.{SPEC}": [lambda: kv.put(SPEC, b"{}"), lambda: kv.delete(SPEC), lambda: kv.purge(SPEC),
                                     lambda: theirs.apply(manifest("http://169.254.169.254/")),
                                     lambda: theirs.delete("default", "orders")],
            f"$JS.API.STREAM.DELETE.KV_{BUCKET}": [lambda: js.delete_stream(f"KV_{BUCKET}")],
            f"$JS.API.STREAM.PURGE.KV_{BUCKET}": [lambda: js.purge_stream(f"KV_{BUCKET}")],
            f"$JS.API.STREAM.MSG.DELETE.KV_{BUCKET}": [lambda: js.delete_msg(f"KV_{BUCKET}", 1)],
        }
        for subject, calls in attempts.items():
            for call in calls:
                errors.clear()
                with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
                    await call()
                await wait_until(lambda: errors, timeout=5, what=f"permissions violation for {subject}")
                assert any(f'permissions violation for publish to "{subject.lower()}"' in e.lower() for e in errors), errors
        assert app.is_connected  # a violation is reported, not a reason to drop the client

        after = await store.get("default", "orders")
        assert after is not None and after.sink == before.sink and after.generation == before.generation
        # the eventing user may change and delete it
        assert await store.apply(manifest("http://127.0.0.1:2")) == "configured"
        assert await store.delete("default", "orders")
        assert await store.get("default", "orders") is None
    finally:
        await app.close()
        await eventing.close()
