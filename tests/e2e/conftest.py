"""Fixtures for the end-to-end eventing tests: the same as tests/eventing (a real NATS server
process per server command, a real HTTP sink, the service), imported rather than copied."""

from eventing.conftest import (  # noqa: F401  (fixtures are found by name)
    VENV_BIN,
    fast_config,
    make_service,
    nats_server,
    server_kind,
    sink,
)

from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import wait_until


async def subscribe_ready(nc, sink_url: str, name: str = "orders") -> None:
    """Apply a Subscription for order.received.v1 to `sink_url` and wait until it is ready."""

    store = await SubscriptionStore.open(nc)
    await store.apply(Subscription.from_manifest({
        "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
        "metadata": {"name": name},
        "spec": {"sink": sink_url, "source": "myapp", "types": ["order.received.v1"]}}))

    async def ready():
        return bool(((await store.get_status("default", name)) or {}).get("ready"))
    await wait_until(ready, timeout=20, what="subscription ready")
