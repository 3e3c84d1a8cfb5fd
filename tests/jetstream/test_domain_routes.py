"""The JetStream domain prefix (jetstream/domain.py): the mapping table, and hostile uses of
`$JS.<domain>.API.` that must not act: server-published messages there (a republish, a push
consumer's deliveries, a reply to a client's request) are never executed as API calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig, RePublish, StreamConfig
from servers import flushed

from pyjetstream.jetstream.domain import mapped_subject
from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server


@pytest.mark.parametrize(("subject", "target"), [
    ("$JS.hub.API.INFO", "$JS.API.INFO"),
    ("$JS.hub.API.STREAM.CREATE.S", "$JS.API.STREAM.CREATE.S"),
    ("$JS.hub.API.CONSUMER.MSG.NEXT.S.d", "$JS.API.CONSUMER.MSG.NEXT.S.d"),
    ("$JS.hub.API.DIRECT.GET.S", "$JS.API.DIRECT.GET.S"),
    ("$JS.hub.API.META.LEADER.STEPDOWN", "$JS.API.META.LEADER.STEPDOWN"),
    ("$JS.hub.API.SERVER.REMOVE", "$JS.API.SERVER.REMOVE"),
    ("$JS.hub.API.ACCOUNT.PURGE.A", "$JS.API.ACCOUNT.PURGE.A"),
    ("$JS.hub.API.$KV.b.k", "$KV.b.k"),
    ("$JS.hub.API.$OBJ.b.c", "$OBJ.b.c"),
    ("$JS.hub.API.STREAM", None),  # the tails need a token after them
    ("$JS.hub.API.INFO.x", None),
    ("$JS.hub.API.NOPE.x", None),
    ("$JS.hub.API.$KVX.b", None),
    ("$JS.other.API.INFO", None),
    ("$JS.API.INFO", None),
    ("$JS.hubx.API.INFO", None),
])
def test_mapping_table(subject: str, target: str | None) -> None:
    assert mapped_subject("hub", subject) == target
    assert mapped_subject("", subject) is None


@pytest.fixture
async def hub(tmp_path: Path):  # -> Server
    srv = Server(ServerOptions(host="127.0.0.1", port=0, jetstream=JetStreamOptions(
        enabled=True, store_dir=str(tmp_path / "js"), domain="hub")))
    await srv.start()
    yield srv
    await srv.shutdown()


async def test_server_published_messages_on_the_domain_prefix_do_not_act(hub: Server) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{hub.port}")
    try:
        js = nc.jetstream(domain="hub")
        await js.add_stream(StreamConfig(name="VICTIM", subjects=["victim"], storage="memory"))
        # (a republish into `$JS.` is refused at create: 10052 republish not valid)
        with pytest.raises(nats.js.errors.APIError):
            await js.add_stream(StreamConfig(name="RP", subjects=["rp.>"], storage="memory",
                                             republish=RePublish(src="rp.>", dest="$JS.hub.API.STREAM.DELETE.VICTIM")))
        # a push consumer delivering onto the domain prefix: the server publishes there
        await js.add_stream(StreamConfig(name="SRC", subjects=["src.>"], storage="memory"))
        await js.add_consumer("SRC", ConsumerConfig(durable_name="p", ack_policy="none",
                                                    deliver_subject="$JS.hub.API.STREAM.PURGE.VICTIM"))
        await js.publish("victim", b"keep me")
        await js.publish("src.a", b"x")
        # a request whose reply subject is the domain API: the answer must not act either
        await nc.publish("$JS.API.INFO", b"", reply="$JS.hub.API.STREAM.DELETE.VICTIM")
        # and anything else the server publishes itself (advisories, system messages)
        hub.publish(hub.global_account, "$JS.hub.API.STREAM.DELETE.VICTIM", "", None, b"")
        await flushed(nc)
        await asyncio.sleep(0.2)  # let any (wrong) action happen before looking
        info = await js.stream_info("VICTIM")
        assert info.state.messages == 1
    finally:
        await nc.close()


async def test_domain_prefix_answers_as_the_plain_api(hub: Server) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{hub.port}")
    try:
        plain = json.loads((await nc.request("$JS.API.INFO", b"", timeout=2)).data)
        via = json.loads((await nc.request("$JS.hub.API.INFO", b"", timeout=2)).data)
        assert plain["domain"] == via["domain"] == "hub"
        assert via["type"] == "io.nats.jetstream.api.v1.account_info_response"
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("$JS.hub.API.STREAM", b"", timeout=2)
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("$JS.nothub.API.INFO", b"", timeout=2)
    finally:
        await nc.close()
