"""A user may not make the server publish where it may not publish itself (issue 17, item 2
follow-up). A push consumer's deliver subject and a stream's (or KV bucket's) republish
destination are subjects the server publishes to, and a stream capturing them stores what
arrives: a user allowed the JetStream API but denied `$KV.eventing-subscriptions.>` could
otherwise have the server write the eventing's Subscriptions bucket for it. Such requests are
refused (10112 / 10052 with the permission in the reason) unless the requester may publish to
every subject the target can produce; a pull request's reply subject, and every reply, reaches
client subscriptions only. nats-server 2.9.10 takes all of it: the differential cases show the
bucket changing there. Real nats-py clients with narrow permissions over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, KeyValueConfig, RePublish
from servers import KINDS, RawClient, ServerProc, flushed, have_nats_server, start_server

from pyjetstream.jetstream.schemas import republish_pattern
from pyjetstream.server.auth import PermissionChecker
from pyjetstream.server.options import Permissions, ResponsePermission

BUCKET = "eventing-subscriptions"
KV_STREAM = f"KV_{BUCKET}"
DENIED = f"$KV.{BUCKET}"

CONF = """
accounts {
  A: {
    jetstream: enabled
    users: [
      {user: admin, password: p},
      # the JetStream API and its own data (a bucket `mine2` too); nothing of the bucket
      {user: narrow, password: p, permissions: {
        publish: {allow: ["$JS.API.>", "data.>", "mine.>", "$KV.mine2.>"], deny: ["DENIED.>"]},
        subscribe: ">"}},
      # everything but the bucket's keys and secret.>
      {user: denyonly, password: p, permissions: {publish: {deny: ["DENIED.>", "secret.>"]}}},
      # a typical JetStream client's grant, plus publish on its inboxes (push subscriptions)
      {user: inboxer, password: p, permissions: {publish: ["$JS.API.>", "$JS.ACK.>", "_INBOX.>"],
                                                 subscribe: "_INBOX.>"}},
      # may write the bucket: may also aim the server there
      {user: writer, password: p, permissions: {
        publish: ["$JS.API.>", "rr.>", "DENIED.>"], subscribe: ">"}}
    ]
  }
}
""".replace("DENIED", DENIED)


def _kinds() -> list[str]:
    return [k for k in KINDS if k == "pyjetstream" or have_nats_server()]


@pytest.fixture(params=_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _start(kind: str, tmp_path: Path) -> ServerProc:
    return start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "js"), config=CONF)


async def _connect(srv: ServerProc, user: str) -> Client:
    return await nats.connect(srv.url, user=user, password="p")


async def _setup(srv: ServerProc) -> None:
    """As admin: the Subscriptions bucket with one key, and the narrow user's stream D."""
    nc = await _connect(srv, "admin")
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket=BUCKET, history=5))
    await kv.put("a", b"sink-a")
    await js.add_stream(name="D", subjects=["data.>"])
    await js.publish("data.1", b"{}")
    await nc.close()


async def _bucket(srv: ServerProc) -> tuple[int, int, bytes]:
    nc = await _connect(srv, "admin")
    js = nc.jetstream()
    st = (await js.stream_info(KV_STREAM)).state
    kv = await js.key_value(BUCKET)
    value = (await kv.get("a")).value or b""
    await nc.close()
    return st.messages, st.last_seq, value


async def _refused(coro: Awaitable[Any]) -> tuple[int, str]:
    with pytest.raises(nats.js.errors.APIError) as e:
        await coro
    assert e.value.err_code is not None
    return e.value.err_code, e.value.description or ""


async def _request(nc: Client, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    msg = await nc.request(subject, json.dumps(body).encode(), timeout=5)
    doc: dict[str, Any] = json.loads(msg.data)
    return doc


def _deliver_refusal(subject: str) -> tuple[int, str]:
    return 10112, f'invalid push consumer deliver subject: Permissions Violation for Publish to "{subject}"'


def _republish_refusal(dest: str) -> tuple[int, str]:
    return 10052, f'stream configuration for republish destination: Permissions Violation for Publish to "{dest}"'


# ------------------------------------------------------------------ the rule itself
@pytest.mark.parametrize(("perms", "pattern", "ok"), [
    (Permissions(pub_allow=["a.>"]), "a.b", True),
    (Permissions(pub_allow=["a.>"]), "a.*", True),
    (Permissions(pub_allow=["a.>"]), "a.>", True),
    (Permissions(pub_allow=["a.*"]), "a.>", False),  # a.b.c could be produced
    (Permissions(pub_allow=["a.*"]), "a.*.c", False),
    (Permissions(pub_allow=["a.x", "a.y"]), "a.*", False),  # no single entry covers a.z
    (Permissions(pub_allow=[">"], pub_deny=["a.secret"]), "a.*", False),  # a.secret could be produced
    (Permissions(pub_allow=[">"], pub_deny=["a.secret"]), "a.public", True),
    (Permissions(pub_deny=["$KV.b.>"]), "*.*.x", False),  # `$KV.b.x` fits
    (Permissions(pub_deny=["$KV.b.>"]), "*.x", True),  # two tokens never reach `$KV.b.>`
    (Permissions(pub_deny=["$KV.b.>"]), "$KV.c.>", True),
    (Permissions(sub_allow=["x"]), "anything.>", True),  # no publish lists: no limit
    # allow_responses alone: replies are not a standing right to aim the server anywhere
    (Permissions(responses=ResponsePermission()), "_INBOX.x", False),
])
def test_may_publish_all(perms: Permissions, pattern: str, ok: bool) -> None:
    assert PermissionChecker(perms).may_publish_all(pattern) is ok


@pytest.mark.parametrize(("dest", "pattern"), [
    ("a.b", "a.b"), ("a.$1", "a.*"), ("a.{{wildcard(1)}}.>", "a.*.>"), ("{{ wildcard( 2 ) }}.$1", "*.*"),
    ("a.$x", "a.$x"), ("a.{{partition(1,1)}}", "a.{{partition(1,1)}}"),
])
def test_republish_pattern(dest: str, pattern: str) -> None:
    assert republish_pattern(dest) == pattern


# ------------------------------------------------------------------ push consumers
@pytest.mark.parametrize("deliver", [f"{DENIED}.x", "other.x", "_INBOX.notmine"])
def test_narrow_user_cannot_aim_a_push_consumer_where_it_may_not_publish(tmp_path: Path, deliver: str) -> None:
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        cfg = ConsumerConfig(durable_name="P", deliver_subject=deliver, ack_policy="none")
        assert await _refused(js.add_consumer("D", cfg)) == _deliver_refusal(deliver)
        # the same through every create subject: named, with a filter, legacy durable, ephemeral
        body = {"stream_name": "D", "config": {"durable_name": "P", "deliver_subject": deliver,
                                               "ack_policy": "none", "filter_subject": "data.1"}}
        for subject in ("$JS.API.CONSUMER.CREATE.D.P", "$JS.API.CONSUMER.CREATE.D.P.data.1",
                        "$JS.API.CONSUMER.DURABLE.CREATE.D.P"):
            err = (await _request(nc, subject, body))["error"]
            assert (err["err_code"], err["description"]) == _deliver_refusal(deliver), subject
        eph = {"stream_name": "D", "config": {"deliver_subject": deliver, "ack_policy": "none"}}
        err = (await _request(nc, "$JS.API.CONSUMER.CREATE.D", eph))["error"]
        assert (err["err_code"], err["description"]) == _deliver_refusal(deliver)
        assert await js.consumers_info("D") == []
        await nc.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_narrow_user_cannot_update_a_push_consumer_to_a_denied_subject(tmp_path: Path) -> None:
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        sub = await nc.subscribe("mine.q")
        await js.add_consumer("D", ConsumerConfig(durable_name="Q", deliver_subject="mine.q", ack_policy="none"))
        assert (await sub.next_msg(timeout=5)).data == b"{}"  # its own subject works
        update = ConsumerConfig(durable_name="Q", deliver_subject=f"{DENIED}.q", ack_policy="none")
        assert await _refused(js.add_consumer("D", update)) == _deliver_refusal(f"{DENIED}.q")
        assert (await js.consumer_info("D", "Q")).config.deliver_subject == "mine.q"
        # the explicit update action too
        body = {"stream_name": "D", "action": "update",
                "config": {"durable_name": "Q", "deliver_subject": f"{DENIED}.q", "ack_policy": "none"}}
        err = (await _request(nc, "$JS.API.CONSUMER.CREATE.D.Q", body))["error"]
        assert (err["err_code"], err["description"]) == _deliver_refusal(f"{DENIED}.q")
        await js.publish("data.2", b"{}")
        await nc.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_unchanged_deliver_subject_needs_no_permission(tmp_path: Path) -> None:
    """An administrator aimed the consumer at a subject the narrow user may not publish to; the
    narrow user may still change other fields (it aims the server nowhere new), not the subject."""
    async def run() -> None:
        await _setup(srv)
        admin = await _connect(srv, "admin")
        await admin.jetstream().add_consumer("D", ConsumerConfig(durable_name="A", deliver_subject="audit.x",
                                                                 ack_policy="none"))
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        info = await js.add_consumer("D", ConsumerConfig(durable_name="A", deliver_subject="audit.x",
                                                         ack_policy="none", description="changed"))
        assert info.config.description == "changed"
        assert await _refused(js.add_consumer("D", ConsumerConfig(
            durable_name="A", deliver_subject="audit.y", ack_policy="none"))) == _deliver_refusal("audit.y")
        await nc.close()
        await admin.close()

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


@pytest.mark.parametrize(("user", "deliver"), [("narrow", "mine.ok"), ("denyonly", "anything.ok"),
                                               ("writer", f"{DENIED}.w"), ("admin", f"{DENIED}.w")])
def test_allowed_users_aim_push_consumers_where_they_may_publish(tmp_path: Path, user: str,
                                                                 deliver: str) -> None:
    async def run() -> None:
        await _setup(srv)
        nc = await _connect(srv, user)
        js = nc.jetstream()
        sub = await nc.subscribe(deliver)
        await js.add_consumer("D", ConsumerConfig(durable_name="OK", deliver_subject=deliver, ack_policy="none"))
        msg = await sub.next_msg(timeout=5)
        assert (msg.subject, msg.data) == ("data.1", b"{}")
        await nc.close()

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_client_push_subscriptions_need_publish_on_the_inbox(tmp_path: Path) -> None:
    """The price of the rule: nats-py's push subscribe delivers to a fresh `_INBOX.` subject,
    so a restricted user needs publish permission there (`_INBOX.>`); pull consumers, whose
    deliveries are replies, need none."""
    async def run() -> None:
        await _setup(srv)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        with pytest.raises(nats.js.errors.APIError) as e:
            await js.subscribe("data.>")
        assert e.value.err_code == 10112
        assert (e.value.description or "").startswith('invalid push consumer deliver subject: '
                                                      'Permissions Violation for Publish to "_INBOX.')
        psub = await js.pull_subscribe("data.>", durable="PD")
        [msg] = await psub.fetch(1, timeout=5)
        assert msg.data == b"{}"
        await nc.close()
        nc = await _connect(srv, "inboxer")
        sub = await nc.jetstream().subscribe("data.>")
        msg = await sub.next_msg(timeout=5)
        await msg.ack()
        assert msg.data == b"{}"
        await nc.close()

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_deny_only_user_is_refused_the_denied_subjects(tmp_path: Path) -> None:
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        nc = await _connect(srv, "denyonly")
        js = nc.jetstream()
        for deliver in (f"{DENIED}.x", "secret.x"):
            cfg = ConsumerConfig(durable_name="P", deliver_subject=deliver, ack_policy="none")
            assert await _refused(js.add_consumer("D", cfg)) == _deliver_refusal(deliver)
        await nc.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ republish
# (src, dest): literal, wildcard reference in either spelling, trailing `>`, and a destination
# led by references, which lets a publisher of `data.$KV.eventing-subscriptions` pick the bucket
REPUBLISH = [
    ("data.1", f"{DENIED}.fixed"),
    ("data.*", f"{DENIED}.{{{{wildcard(1)}}}}"),
    ("data.*", f"{DENIED}.$1"),
    ("data.>", f"{DENIED}.>"),
    ("data.*.*", "{{wildcard(1)}}.{{wildcard(2)}}.copy"),
    ("data.*", "other.{{wildcard(1)}}"),
]


@pytest.mark.parametrize(("src", "dest"), REPUBLISH)
def test_narrow_user_cannot_republish_where_it_may_not_publish(tmp_path: Path, src: str, dest: str) -> None:
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        rsrc = src.replace("data", "rr")
        create = js.add_stream(name="R", subjects=[rsrc], republish=RePublish(src=rsrc, dest=dest))
        assert await _refused(create) == _republish_refusal(dest)
        # update: a stream without republish gains one
        await js.add_stream(name="U", subjects=["uu.>"])
        update = js.update_stream(name="U", subjects=["uu.>"], republish=RePublish(src=src.replace("data", "uu"),
                                                                                   dest=dest))
        assert await _refused(update) == _republish_refusal(dest)
        assert (await js.stream_info("U")).config.republish is None
        for subject in ("rr.1", "uu.1", f"uu.{DENIED}.x", "uu.$KV.eventing-subscriptions"):
            await nc.publish(subject, b"x")
        await flushed(nc)
        await nc.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_invalid_targets_get_the_same_answer_for_restricted_users(tmp_path: Path) -> None:
    """A target that is not a valid subject is the configuration check's to refuse: a narrow
    user gets the very answer an unrestricted one gets, not a permission error."""
    async def run() -> None:
        await _setup(srv)
        answers: dict[str, list[tuple[int, str]]] = {}
        for user in ("admin", "narrow"):
            nc = await _connect(srv, user)
            js = nc.jetstream()
            got = answers.setdefault(user, [])
            for dest in (f"{DENIED}..x", f"{DENIED}.x y", ""):
                got.append(await _refused(js.add_stream(name="R", subjects=["rr.*"],
                                                        republish=RePublish(src="rr.*", dest=dest))))
            for deliver in ("mine.*", f"{DENIED}.>"):
                got.append(await _refused(js.add_consumer("D", ConsumerConfig(
                    durable_name="P", deliver_subject=deliver, ack_policy="none"))))
            await nc.close()
        assert answers["narrow"][:3] == answers["admin"][:3]
        assert answers["narrow"][3] == answers["admin"][3] == (10079, "consumer deliver subject has wildcards")
        # a wildcard target the user may not publish to: refused either way, on permission first
        assert answers["admin"][4][0] == 10079
        assert answers["narrow"][4] == _deliver_refusal(f"{DENIED}.>")

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_republish_update_keeping_or_changing_an_admins_destination(tmp_path: Path) -> None:
    async def run() -> None:
        await _setup(srv)
        admin = await _connect(srv, "admin")
        await admin.jetstream().add_stream(name="W", subjects=["w.>"],
                                           republish=RePublish(src="w.*", dest="audit.{{wildcard(1)}}"))
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        # the destination stays: the narrow user may change the rest
        info = await js.update_stream(name="W", subjects=["w.>"], max_msgs=10,
                                      republish=RePublish(src="w.*", dest="audit.{{wildcard(1)}}"))
        assert info.config.max_msgs == 10
        # re-creating with the same config (idempotent) is fine too
        await js.add_stream(name="W", subjects=["w.>"], max_msgs=10,
                            republish=RePublish(src="w.*", dest="audit.{{wildcard(1)}}"))
        assert await _refused(js.update_stream(name="W", subjects=["w.>"], max_msgs=10, republish=RePublish(
            src="w.*", dest=f"{DENIED}.{{{{wildcard(1)}}}}"))) == _republish_refusal(f"{DENIED}.{{{{wildcard(1)}}}}")
        # removing the republish aims the server nowhere
        info = await js.update_stream(name="W", subjects=["w.>"], max_msgs=10)
        assert info.config.republish is None
        await nc.close()
        await admin.close()

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


def test_kv_bucket_with_republish_into_denied_subject_is_refused(tmp_path: Path) -> None:
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        dest = f"{DENIED}.>"
        assert await _refused(js.create_key_value(KeyValueConfig(
            bucket="mine", republish=RePublish(src=">", dest=dest)))) == _republish_refusal(dest)
        kv = await js.create_key_value(KeyValueConfig(bucket="mine2", republish=RePublish(src=">", dest="mine.>")))
        copies = await nc.subscribe("mine.>")
        await kv.put("k", b"v")
        assert (await copies.next_msg(timeout=5)).subject == "mine.$KV.mine2.k"
        await nc.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


@pytest.mark.parametrize("user", ["writer", "admin"])
def test_users_allowed_the_subject_may_republish_there(tmp_path: Path, user: str) -> None:
    async def run() -> None:
        await _setup(srv)
        nc = await _connect(srv, user)
        js = nc.jetstream()
        await js.add_stream(name="R", subjects=["rr.*"],
                            republish=RePublish(src="rr.*", dest=f"{DENIED}.{{{{wildcard(1)}}}}"))
        await js.publish("rr.b", b"sink-b")
        await nc.close()
        # the server wrote the bucket on the user's behalf: it may do that itself
        nc = await _connect(srv, "admin")
        kv = await nc.jetstream().key_value(BUCKET)
        entry = await kv.get("b")
        assert entry.value == b"sink-b"
        await nc.close()

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ differential: nats-server takes it
def test_nats_server_lets_a_narrow_user_write_the_bucket_through_the_server(kind: str, tmp_path: Path) -> None:
    """What we refuse, nats-server 2.9.10 accepts, and the bucket's stream grows there: a push
    consumer delivering into it (once anyone listens there), a stream republishing into it (a
    real key), a pull request replying into it. nats-server stores a delivery under the
    message's own subject (`data.1`), so those two land in the stream beside the keys."""
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        admin = await _connect(srv, "admin")
        listener = await admin.subscribe(f"{DENIED}.pushed")  # push consumers deliver on interest
        await flushed(admin)
        nc = await _connect(srv, "narrow")
        js = nc.jetstream()
        push = js.add_consumer("D", ConsumerConfig(durable_name="P", deliver_subject=f"{DENIED}.pushed",
                                                   ack_policy="none"))
        repub = js.add_stream(name="R", subjects=["mine.r.*"],
                              republish=RePublish(src="mine.r.*", dest=f"{DENIED}.{{{{wildcard(1)}}}}"))
        if kind == "pyjetstream":
            assert (await _refused(push))[0] == 10112
            assert (await _refused(repub))[0] == 10052
            await js.add_stream(name="R", subjects=["mine.r.*"])
        else:
            await push
            await repub
            assert (await listener.next_msg(timeout=5)).data == b"{}"
        await js.publish("mine.r.republished", b"x")
        await js.add_consumer("D", ConsumerConfig(durable_name="PULL", ack_policy="none"))
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.D.PULL", b'{"batch":1}', reply=f"{DENIED}.pulled")
        await flushed(nc)
        await nc.close()
        ajs = admin.jetstream()
        for _ in range(100):  # the pull is served (the consumer moved on), then looked at
            if (await ajs.consumer_info("D", "PULL")).delivered.consumer_seq == 1:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the pull request was not served")
        if kind == "pyjetstream":
            await admin.close()
            assert await _bucket(srv) == before
            return
        for _ in range(100):
            if (await ajs.stream_info(KV_STREAM)).state.messages == before[0] + 3:
                break
            await asyncio.sleep(0.05)
        assert (await ajs.stream_info(KV_STREAM)).state.messages == before[0] + 3
        assert (await (await ajs.key_value(BUCKET)).get("republished")).value == b"x"
        await admin.close()

    with _start(kind, tmp_path) as srv:
        asyncio.run(run())


def test_pull_deliveries_reach_client_subscribers_only(tmp_path: Path) -> None:
    """The requester's reply subject is its own business: a client listening there gets the
    message (and the 408 that ends a request), no stream stores either."""
    async def run() -> None:
        await _setup(srv)
        before = await _bucket(srv)
        admin = await _connect(srv, "admin")
        watch = await admin.subscribe(f"{DENIED}.>")
        await flushed(admin)
        nc = await _connect(srv, "narrow")
        await nc.jetstream().add_consumer("D", ConsumerConfig(durable_name="PULL", ack_policy="explicit"))
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.D.PULL", b'{"batch":2,"expires":200000000}',
                         reply=f"{DENIED}.pulled")
        got = await watch.next_msg(timeout=5)
        assert (got.subject, got.data) == ("data.1", b"{}")
        status = await watch.next_msg(timeout=5)
        assert status.headers is not None and status.headers.get("Status") == "408"
        await nc.close()
        await admin.close()
        assert await _bucket(srv) == before

    with _start("pyjetstream", tmp_path) as srv:
        asyncio.run(run())


# ------------------------------------------------------------------ reserved reply prefixes
@pytest.mark.parametrize("reply", [b"$JS.FC.D.P.x", b"$SYS.REQ.SERVER.PING", b"$JS.API.INFO", b"$JS.ACK.D.P.1.1.1.0.0"])
def test_reserved_reply_subjects_are_refused(kind: str, tmp_path: Path, reply: bytes) -> None:
    with _start(kind, tmp_path) as srv:
        asyncio.run(_setup(srv))
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"narrow","pass":"p"}\r\n')
        c.send(b"PUB data.2 %s 2\r\n{}\r\n" % reply)
        out = c.sync()
        c.close()
        refused = b'Permissions Violation for Publish with Reply of "%s"' % reply in out
        # nats-server 2.9.10 refuses $JS.ACK. replies only; we refuse every reserved prefix
        assert refused == (kind == "pyjetstream" or reply.startswith(b"$JS.ACK."))


@pytest.mark.parametrize("reply", [b"$JS.FCX.x", b"$SYSTEM.x", b"$JS.EVENT.x", b"_INBOX.x"])
def test_near_miss_reply_subjects_pass(tmp_path: Path, reply: bytes) -> None:
    with _start("pyjetstream", tmp_path) as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"pedantic":false,"user":"admin","pass":"p"}\r\n')
        c.send(b"SUB x 1\r\nPUB x %s 0\r\n\r\n" % reply)
        out = c.sync()
        c.close()
        assert b"MSG x 1 %s 0\r\n" % reply in out
        assert b"-ERR" not in out
