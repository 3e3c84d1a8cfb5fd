"""Prometheus /metrics on the monitoring port of our server (a subprocess, scraped over real
HTTP): server figures agree with /varz, and every per-stream and per-consumer gauge equals
what stream info and consumer info say over the JetStream API (nats-py). `pyjetstream up`
also exposes the eventing figures there, equal to the publisher proxy's own /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from prometheus_client.parser import text_string_to_metric_families
from servers import flushed, free_port, start_server

from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore
from pyjetstream.eventing.testing import FlakySink, wait_until


def scrape(http_port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one /metrics scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def lbl(**kw: str) -> tuple:
    return tuple(sorted(kw.items()))


async def test_stream_and_consumer_gauges_equal_their_info(tmp_path) -> None:
    with start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "js"), "-m", "-1") as srv:
        nc = await nats.connect(srv.url)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
            await js.add_stream(StreamConfig(name="LIMITED", subjects=["lim.*"], max_msgs=3, storage="memory"))
            for i in range(7):
                await js.publish(f"orders.{i % 3}", b"o" * (i + 1))
                await js.publish(f"lim.{i}", b"l" * 5)
            await js.add_consumer("ORDERS", ConsumerConfig(durable_name="worker", ack_policy=AckPolicy.EXPLICIT,
                                                           ack_wait=30))
            await js.add_consumer("ORDERS", ConsumerConfig(durable_name="idle", ack_policy=AckPolicy.EXPLICIT,
                                                           deliver_policy=DeliverPolicy.NEW))
            sub = await js.pull_subscribe("orders.>", durable="worker", stream="ORDERS")
            msgs = await sub.fetch(4)
            await msgs[0].ack_sync()
            await msgs[1].ack_sync()
            await msgs[2].nak()
            redelivered = await sub.fetch(1)
            assert redelivered[0].metadata.num_delivered == 2
            # an outstanding pull request (no reply expected for 20 s) shows as num_waiting
            pull_waiter = await nc.subscribe("_INBOX.waiter")
            await nc.publish("$JS.API.CONSUMER.MSG.NEXT.ORDERS.idle", b'{"batch":1,"expires":20000000000}',
                             reply="_INBOX.waiter")
            await flushed(nc)

            metrics = scrape(srv.http_port)
            varz = srv.get_json("/varz")
            assert metrics["nats_connections"][()] == varz["connections"] >= 1
            assert metrics["nats_subscriptions"][()] == varz["subscriptions"]
            assert metrics["nats_total_connections_total"][()] >= 1

            for name in ("ORDERS", "LIMITED"):
                st = (await js.stream_info(name)).state
                key = lbl(account="$G", stream=name)
                assert metrics["pyjetstream_stream_messages"][key] == st.messages
                assert metrics["pyjetstream_stream_bytes"][key] == st.bytes
                assert metrics["pyjetstream_stream_first_seq"][key] == st.first_seq
                assert metrics["pyjetstream_stream_last_seq"][key] == st.last_seq
                assert metrics["pyjetstream_stream_consumers"][key] == st.consumer_count
            assert metrics["pyjetstream_stream_first_seq"][lbl(account="$G", stream="LIMITED")] == 5

            for cname in ("worker", "idle"):
                ci = await js.consumer_info("ORDERS", cname)
                key = lbl(account="$G", stream="ORDERS", consumer=cname)
                assert metrics["pyjetstream_consumer_num_pending"][key] == ci.num_pending
                assert metrics["pyjetstream_consumer_num_ack_pending"][key] == ci.num_ack_pending
                assert metrics["pyjetstream_consumer_num_redelivered"][key] == ci.num_redelivered
                assert metrics["pyjetstream_consumer_delivered_stream_seq"][key] == ci.delivered.stream_seq
                assert metrics["pyjetstream_consumer_ack_floor_stream_seq"][key] == ci.ack_floor.stream_seq
                assert metrics["pyjetstream_consumer_num_waiting"][key] == ci.num_waiting
            worker = lbl(account="$G", stream="ORDERS", consumer="worker")
            assert (metrics["pyjetstream_consumer_num_redelivered"][worker],
                    metrics["pyjetstream_consumer_ack_floor_stream_seq"][worker]) == (1, 2)
            assert metrics["pyjetstream_consumer_num_waiting"][lbl(account="$G", stream="ORDERS",
                                                                    consumer="idle")] == 1
            await pull_waiter.unsubscribe()

            # live state, not a snapshot: a deleted consumer and new messages show at the next scrape
            await js.delete_consumer("ORDERS", "idle")
            await js.publish("orders.9", b"later")
            again = scrape(srv.http_port)
            assert lbl(account="$G", stream="ORDERS", consumer="idle") not in again["pyjetstream_consumer_num_pending"]
            assert again["pyjetstream_stream_messages"][lbl(account="$G", stream="ORDERS")] == 8
            assert again["pyjetstream_stream_consumers"][lbl(account="$G", stream="ORDERS")] == 1
        finally:
            await nc.close()


async def test_metrics_without_jetstream_has_server_figures_only(tmp_path) -> None:
    with start_server("pyjetstream", tmp_path, "-m", "-1") as srv:
        metrics = scrape(srv.http_port)
        assert metrics["nats_connections"][()] == 0
        assert not any(name.startswith("pyjetstream_stream_") for name in metrics)


TUTORIAL = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
            "ce-eventtypeversion": "v1", "content-type": "application/json"}


async def test_up_exposes_eventing_figures_on_the_monitoring_port(tmp_path) -> None:
    port, mon, proxy = free_port(), free_port(), free_port()
    cli = str(Path(sys.executable).parent / "pyjetstream")
    log = open(tmp_path / "up.out", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([cli, "up", "-a", "127.0.0.1", "-p", str(port), "-m", str(mon),
                             "-sd", str(tmp_path / "data"), "--publish-port", str(proxy),
                             "--publish-host", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sink = await FlakySink().start()
    try:
        async def proxy_ready() -> bool:
            assert proc.poll() is None, (tmp_path / "up.out").read_text()
            try:
                async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{proxy}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False
        await wait_until(proxy_ready, timeout=20, interval=0.1, what="publisher proxy ready")
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        try:
            store = await SubscriptionStore.open(nc)
            await store.apply(Subscription.from_manifest({
                "apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
                "metadata": {"name": "orders"},
                "spec": {"sink": sink.url, "source": "myapp", "types": ["order.received.v1"]}}))

            async def ready() -> bool:
                return bool(((await store.get_status("default", "orders")) or {}).get("ready"))
            await wait_until(ready, timeout=20, what="subscription ready")
        finally:
            await nc.close()
        async with aiohttp.ClientSession() as http:
            for i in range(3):
                async with http.post(f"http://127.0.0.1:{proxy}/publish", headers={**TUTORIAL, "ce-id": f"e{i}"},
                                     data=b'{"orderCode":"1"}') as r:
                    assert r.status == 204, await r.text()
        await wait_until(lambda: len(sink.received) == 3, timeout=20, what="three deliveries")

        def delivered_count(m: dict) -> float:
            return sum(m.get("eventing_ec_nats_delivery_per_subscription_total", {}).values())
        # the dispatcher counts a delivery after the sink answered: poll the figure, not the sink
        await wait_until(lambda: delivered_count(scrape(mon)) == 3, timeout=10, what="deliveries counted")
        ours = scrape(mon)
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/metrics", timeout=5) as r:
            theirs_text = r.read().decode()
        theirs: dict[str, dict[tuple, float]] = {}
        for fam in text_string_to_metric_families(theirs_text):
            for s in fam.samples:
                theirs.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        published = ours["eventing_epp_event_type_published_total"]
        assert sum(published.values()) == 3
        assert {dict(k)["code"] for k in published} == {"204"}
        assert published == theirs["eventing_epp_event_type_published_total"]
        assert ours["eventing_ec_nats_delivery_per_subscription_total"] == \
            theirs["eventing_ec_nats_delivery_per_subscription_total"]
        assert sum(ours["eventing_ec_nats_subscriber_dispatch_duration_seconds_count"].values()) == 3
        # and the server's own figures for the eventing stream sit beside them
        # (an interest stream: acknowledged events are gone, their sequence numbers stay)
        assert ours["pyjetstream_stream_last_seq"][lbl(account="$G", stream="sap")] == 3
        # exactly one family per name: nothing is exposed twice
        names = [f.name for f in text_string_to_metric_families(
            urllib.request.urlopen(f"http://127.0.0.1:{mon}/metrics", timeout=5).read().decode())]
        assert len(names) == len(set(names))
    finally:
        await sink.stop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
    assert proc.returncode == 0, (tmp_path / "up.out").read_text()
