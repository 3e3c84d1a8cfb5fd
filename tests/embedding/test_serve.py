"""pyjetstream.serve / serve_in_thread / eventing.serve: the server and eventing as a library."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

import aiohttp
import nats
import nats.errors
import pytest
from servers import flushed

import pyjetstream
from pyjetstream.embed import OptionsError, ServerThread, server_options
from pyjetstream.eventing.testing import FlakySink, wait_until

NATS_SERVER = "/usr/sbin/nats-server"


async def test_serve_runs_jetstream_and_removes_its_memory_store():
    async with pyjetstream.serve(jetstream=True) as srv:
        assert srv.url == f"nats://127.0.0.1:{srv.port}"
        scratch = srv.store_dir
        assert os.path.isdir(scratch)
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        ack = await js.publish("s.1", b"hello")
        assert (ack.stream, ack.seq) == ("S", 1)
        assert (await js.get_msg("S", 1)).data == b"hello"
        await nc.close()
    assert not os.path.exists(scratch)
    # the port is closed once the block ends
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


async def test_store_path_survives_a_restart(tmp_path):
    store = tmp_path / "js"
    async with pyjetstream.serve(jetstream=True, store=store) as srv:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["k"])
        await js.publish("k", b"1")
        await nc.close()
    assert store.is_dir()
    async with pyjetstream.serve(jetstream=True, store=store) as srv:
        nc = await nats.connect(srv.url)
        info = await nc.jetstream().stream_info("KEEP")
        assert info.state.messages == 1
        await nc.close()


async def test_several_servers_in_one_process_are_isolated():
    async with pyjetstream.serve(jetstream=True) as a, pyjetstream.serve(jetstream=True) as b:
        assert a.port != b.port and a.store_dir != b.store_dir
        nca, ncb = await nats.connect(a.url), await nats.connect(b.url)
        await nca.jetstream().add_stream(name="ONLY_A", subjects=["x"])
        assert [s.config.name for s in await nca.jetstream().streams_info()] == ["ONLY_A"]
        assert await ncb.jetstream().streams_info() == []
        # core traffic does not cross either
        sub = await ncb.subscribe("x")
        await flushed(ncb)
        await nca.publish("x", b"for a")
        await flushed(nca)
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.2)
        await nca.close()
        await ncb.close()


async def test_config_mapping_and_client_url_carry_the_credentials():
    async with pyjetstream.serve(jetstream=True, authorization={"user": "app", "password": "s3cret"}) as srv:
        assert "s3cret" not in srv.url
        nc = await nats.connect(srv.client_url)
        assert nc.is_connected
        await nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(srv.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_credentials_that_cannot_travel_in_a_url():
    async with pyjetstream.serve(authorization={"user": "app", "password": "p@ss:w/rd"}) as srv:
        with pytest.raises(ValueError, match="URL delimiters"):
            _ = srv.client_url
        nc = await nats.connect(srv.url, **srv.credentials)
        assert nc.is_connected
        await nc.close()
    async with pyjetstream.serve(authorization={"token": "tok"}) as srv:
        assert srv.client_url == f"nats://tok@127.0.0.1:{srv.port}"
        nc = await nats.connect(srv.client_url)
        await nc.close()


async def test_config_file_as_nats_server_reads_it(tmp_path):
    conf = tmp_path / "server.conf"
    conf.write_text('max_payload: 2KB\naccounts { A { jetstream: enabled, users: [{user: a, password: a}] } }\n')
    async with pyjetstream.serve(config=conf, jetstream=True) as srv:
        nc = await nats.connect(f"nats://a:a@127.0.0.1:{srv.port}")
        assert nc.max_payload == 2048
        await nc.jetstream().add_stream(name="INA", subjects=["ina"])
        await nc.close()


def test_bad_options_are_refused_with_the_key_named():
    with pytest.raises(OptionsError, match="bogus_setting"):
        server_options(bogus_setting=1)
    with pytest.raises(OptionsError):
        server_options(max_payload="lots")
    with pytest.raises(OptionsError):
        server_options(config={"authorization": {"token": "t", "users": [{"user": "u", "password": "p"}]}})


async def test_port_in_use_raises_and_leaves_nothing_behind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        before = threading.active_count()
        with pytest.raises(OSError):
            async with pyjetstream.serve(jetstream=True, port=s.getsockname()[1]):
                pass
        assert threading.active_count() == before


async def test_nothing_left_running_after_the_block():
    before = set(asyncio.all_tasks())
    async with pyjetstream.serve(jetstream=True, http_port=-1) as srv:  # -1: a free port, as nats-server
        assert srv.monitor_url is not None
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t"])
        psub = await js.pull_subscribe("t", durable="d")
        await js.publish("t", b"1")
        [m] = await psub.fetch(1, timeout=2)
        await m.ack()
        async with aiohttp.ClientSession() as http, http.get(f"{srv.monitor_url}/varz") as r:
            assert (await r.json())["port"] == srv.port
        await nc.close()
    await asyncio.sleep(0)  # let tasks cancelled by shutdown finish unwinding
    left = {t for t in asyncio.all_tasks() if t not in before and not t.done()}
    assert left == set()


async def test_quiet_by_default_and_logs_under_pyjetstream(capfd, caplog):
    caplog.set_level(logging.INFO, logger="pyjetstream")
    async with pyjetstream.serve(jetstream=True) as srv:
        nc = await nats.connect(srv.url)
        await nc.close()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert caplog.records, "the server logs start-up at INFO through the logging module"
    assert all(r.name.startswith("pyjetstream") for r in caplog.records if r.levelno >= logging.INFO)


def test_serve_in_thread_for_synchronous_code():
    with pyjetstream.serve_in_thread(jetstream=True) as srv:
        async def echo(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        async def roundtrip() -> bytes:
            nc = await nats.connect(srv.url)
            sub = await nc.subscribe("echo", cb=echo)
            reply = await nc.request("echo", b"ping", timeout=2)
            await sub.unsubscribe()
            await nc.close()
            return reply.data
        assert asyncio.run(roundtrip()) == b"ping"
        thread_names = {t.name for t in threading.enumerate()}
        assert "pyjetstream-server" in thread_names
    assert "pyjetstream-server" not in {t.name for t in threading.enumerate()}


def test_server_thread_start_error_surfaces():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            ServerThread(port=s.getsockname()[1]).start()


async def test_eventing_serve_delivers_to_a_sink():
    sink = await FlakySink().start()
    try:
        async with pyjetstream.serve(jetstream=True) as srv, pyjetstream.eventing.serve(nats_url=srv.url) as ev:
            await ev.apply({"apiVersion": "eventing.kyma-project.io/v1alpha2", "kind": "Subscription",
                            "metadata": {"name": "s1", "namespace": "default"},
                            "spec": {"sink": sink.url, "source": "app", "types": ["thing.done.v1"]}})
            status = await ev.wait_ready("s1")
            assert status["ready"] is True
            headers = {"ce-specversion": "1.0", "ce-id": "E1", "ce-type": "thing.done.v1", "ce-source": "app",
                       "content-type": "application/json"}
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{ev.url}/publish", data=b'{"n": 1}', headers=headers) as r:
                assert r.status == 204, await r.text()
            await wait_until(lambda: sink.ids()["E1"] == 1, what="event E1 at the sink")
    finally:
        await sink.stop()


async def test_eventing_serve_refuses_unknown_settings():
    async with pyjetstream.serve(jetstream=True) as srv:
        with pytest.raises(TypeError):
            async with pyjetstream.eventing.serve(nats_url=srv.url, no_such_setting=1):
                pass


@pytest.mark.skipif(not os.access(NATS_SERVER, os.X_OK), reason="needs the reference nats-server")
async def test_eventing_serve_runs_on_nats_server_too(tmp_path):
    from pyjetstream.pytest_plugin import ExternalServer

    srv = ExternalServer(NATS_SERVER, str(tmp_path / "ns")).start()
    try:
        async with pyjetstream.eventing.serve(nats_url=srv.url) as ev:
            async with aiohttp.ClientSession() as http, http.get(f"{ev.url}/healthz") as r:
                assert r.status == 200
    finally:
        srv.stop()
