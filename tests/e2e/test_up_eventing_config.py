"""`pyjetstream up --eventing-config FILE` as a real process: the file's stream settings, its
application mapping and its delivery profile all take effect (the tutorial flow, Kyma's way)."""

from __future__ import annotations

import json

import aiohttp
from servers import free_port

from pyjetstream.eventing import types as t
from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import wait_until

from .test_readme_scenario import CLI, Proc, wait_http


def _v(value):
    return getattr(value, "value", value)


async def test_up_reads_the_eventing_config_file(tmp_path, sink):
    import nats

    port, mon, proxy = free_port(), free_port(), free_port()
    config = tmp_path / "eventing.yaml"
    config.write_text(f"""
backend: {{natsStreamStorageType: Memory, natsStreamMaxSize: 16Mi, natsMaxMsgsPerTopic: 1000}}
publisher: {{port: {proxy}}}
applications: {{myapp: mytype}}
delivery: {{profile: kyma}}
""")
    up = await Proc(CLI, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon), "-sd", str(tmp_path / "data"),
                    "--eventing-config", str(config)).start()
    try:
        await wait_http(f"http://127.0.0.1:{proxy}/readyz")
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        try:
            js = nc.jetstream()
            stream = (await js.stream_info("sap")).config
            assert (_v(stream.storage), stream.max_bytes, stream.max_msgs_per_subject) == ("memory", 16 * 1024**2, 1000)
            store = await SubscriptionStore.open(nc)
            await store.apply(Subscription.from_manifest({
                "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
                "metadata": {"name": "by-type"},
                "spec": {"sink": sink.url, "source": "mytype", "types": ["order.created.v1"]}}))

            async def ready():
                return bool(((await store.get_status("default", "by-type")) or {}).get("ready"))
            await wait_until(ready, timeout=20, what="subscription ready")
            consumer = await js.consumer_info("sap", t.consumer_name("default", "by-type",
                                                                      "kyma.mytype.order.created.v1"))
            assert (consumer.config.max_deliver, consumer.config.ack_wait) == (100, 30)  # the kyma profile
        finally:
            await nc.close()
        doc = {"event-type": "order.created", "event-type-version": "v1", "event-time": "2024-01-02T03:04:05Z",
               "data": {"orderCode": "7"}}
        async with aiohttp.ClientSession() as http, \
                http.post(f"http://127.0.0.1:{proxy}/myapp/v1/events", json=doc) as r:
            assert r.status == 200, await r.text()
            event_id = json.loads(await r.read())["event-id"]
        await wait_until(lambda: event_id in sink.ids(), timeout=20, what="the mapped event delivered")
        assert sink.received[-1].type == "order.created.v1" and sink.received[-1].source == "myapp"
    finally:
        await up.stop()
    assert up.proc is not None and up.proc.returncode == 0, up.output()
