"""Fuzz every `$JS.API.*` subject with random JSON bodies over nats-py (hypothesis).

Every JSON reply must be an object with a `type` and either a success shape or an `error` whose
code is under 500, or one of the err_codes nats-server itself answers with a 5xx (never the
generic "internal error" a crashed handler gives). Pull requests and direct gets answer with
status headers; those must not be 5xx JSON either. Afterwards the server log holds no traceback
and the server still answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from servers import ServerProc, start_server

from pyjetstream.jetstream.errors import _TABLE

pytestmark = pytest.mark.timeout(600)

# err_codes nats-server answers with a 5xx for a request it refuses (invalid config, ...)
SERVER_5XX = {err_code for code, err_code, _ in _TABLE.values() if code >= 500}

STREAM_FIELDS = ["name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes",
                 "max_age", "max_msgs_per_subject", "max_msg_size", "discard", "storage", "num_replicas",
                 "no_ack", "duplicate_window", "placement", "mirror", "sources", "compression", "first_seq",
                 "subject_transform", "republish", "allow_direct", "mirror_direct", "sealed", "deny_delete",
                 "deny_purge", "allow_rollup_hdrs", "consumer_limits", "allow_msg_ttl",
                 "subject_delete_marker_ttl", "metadata", "discard_new_per_subject"]
CONSUMER_FIELDS = ["durable_name", "name", "description", "deliver_policy", "opt_start_seq", "opt_start_time",
                   "ack_policy", "ack_wait", "max_deliver", "backoff", "filter_subject", "filter_subjects",
                   "replay_policy", "rate_limit_bps", "sample_freq", "max_waiting", "max_ack_pending",
                   "idle_heartbeat", "flow_control", "headers_only", "max_batch", "max_expires", "max_bytes",
                   "deliver_subject", "deliver_group", "inactive_threshold", "num_replicas", "mem_storage",
                   "direct", "metadata", "pause_until", "priority_groups", "priority_policy", "priority_timeout"]
REQUEST_FIELDS = ["offset", "subject", "seq", "keep", "filter", "last_by_subj", "next_by_subj", "no_erase",
                  "deleted_details", "subjects_filter", "batch", "expires", "max_bytes", "no_wait",
                  "idle_heartbeat", "multi_last", "start_time", "up_to_seq", "up_to_time", "no_hdr",
                  "stream_name", "config", "action", "pause_until", "group", "min_pending", "min_ack_pending",
                  "id", "priority"]

# raw tokens json.dumps cannot produce; swapped in after dumping
RAW = {"__1e400__": "1e400", "__-1e400__": "-1e400", "__nan__": "NaN", "__inf__": "Infinity", "__1e3__": "1e3",
       "__huge__": "9" * 400}

scalars = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
                     2**64 - 1, 2**64, 10**30, -(10**30)]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(list(RAW)),
    st.sampled_from(["", "x", "F", "C", "a.b", "*", ">", "a/b", "..", "\x00", "%" * 255, "é" * 200,
                     "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1s", "s2",
                     "limits", "workqueue", "interest", "memory", "file", "new", "old", "explicit", "all", "none",
                     "by_start_sequence", "by_start_time", "last_per_subject", "create", "update",
                     "overflow", "pinned_client", "prioritized", "A"]),
    st.text(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(STREAM_FIELDS + CONSUMER_FIELDS + ["src", "dest",
                                                                                              "tags"]),
                                                 inner, max_size=4)), max_leaves=8)


def objects(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(fields), values, max_size=6)


stream_cfg = st.builds(lambda extra: {"name": "X", "subjects": ["x.>"], **extra}, objects(STREAM_FIELDS))
consumer_req = st.builds(lambda cfg, extra: {"stream_name": "F", "config": cfg, **extra},
                         st.one_of(objects(CONSUMER_FIELDS), values), objects(["action", "stream_name"]))
bodies = st.one_of(stream_cfg, consumer_req, objects(REQUEST_FIELDS), values,
                   st.sampled_from(["", "{", "[]", "null", "{}", " ", "\xff"]))

SUBJECTS = [
    "$JS.API.INFO", "$JS.API.STREAM.CREATE.X", "$JS.API.STREAM.UPDATE.X", "$JS.API.STREAM.UPDATE.F",
    "$JS.API.STREAM.INFO.F", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.PURGE.X",
    "$JS.API.STREAM.MSG.GET.F", "$JS.API.STREAM.MSG.DELETE.X", "$JS.API.DIRECT.GET.F", "$JS.API.DIRECT.GET.F.f.1",
    "$JS.API.STREAM.DELETE.X", "$JS.API.CONSUMER.CREATE.F", "$JS.API.CONSUMER.CREATE.F.C",
    "$JS.API.CONSUMER.CREATE.F.C.f.>", "$JS.API.CONSUMER.DURABLE.CREATE.F.C", "$JS.API.CONSUMER.INFO.F.C",
    "$JS.API.CONSUMER.NAMES.F", "$JS.API.CONSUMER.LIST.F", "$JS.API.CONSUMER.DELETE.F.C",
    "$JS.API.CONSUMER.MSG.NEXT.F.P", "$JS.API.STREAM.LEADER.STEPDOWN.F", "$JS.API.CONSUMER.PAUSE.F.C",
    "$JS.API.CONSUMER.UNPIN.F.C",
]


def encode(body: Any) -> bytes:
    if isinstance(body, str) and body in ("", "{", "[]", "null", "{}", " ", "\xff"):
        return body.encode("latin-1")
    text = json.dumps(body)
    for token, raw in RAW.items():
        text = text.replace(json.dumps(token), raw)
    return text.encode()


class Driver:
    """One nats-py connection on a loop in its own thread, so hypothesis' sync tests can use it."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nc: Any = self.run(nats.connect(url))

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _ask(self, subject: str, payload: bytes, timeout: float) -> Any:
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        try:
            await self.nc.publish(subject, payload, reply=inbox)
            return await sub.next_msg(timeout)
        except nats.errors.TimeoutError:
            return None
        finally:
            await sub.unsubscribe()

    def ask(self, subject: str, payload: bytes, timeout: float = 5.0) -> Any:
        return self.run(self._ask(subject, payload, timeout))

    def close(self) -> None:
        self.run(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, Driver]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    srv = start_server("pyjetstream", tmp, "-js", "-sd", str(tmp / "store"))
    drv = Driver(srv.url)
    try:
        setup = [
            ("$JS.API.STREAM.CREATE.F", {"name": "F", "subjects": ["f.>"], "allow_direct": True}),
            ("f.1", "one"), ("f.2", "two"),
            ("$JS.API.CONSUMER.DURABLE.CREATE.F.P", {"stream_name": "F", "config": {"durable_name": "P",
                                                                                  "ack_policy": "explicit"}}),
        ]
        for subject, body in setup:
            assert drv.ask(subject, body.encode() if isinstance(body, str) else json.dumps(body).encode())
        yield srv, drv
    finally:
        drv.close()
        srv.stop()


def check_reply(subject: str, payload: bytes, m: Any) -> None:
    if m is None:
        # only a pull request may wait (for messages, or until it expires)
        assert subject.startswith("$JS.API.CONSUMER.MSG.NEXT."), (subject, payload)
        return
    if m.headers and m.headers.get("Status"):
        assert int(m.headers["Status"]) < 500 or m.headers["Status"] == "503", (subject, payload, m.headers)
        return
    if subject.startswith(("$JS.API.CONSUMER.MSG.NEXT.", "$JS.API.DIRECT.GET.")):
        return  # a stored message
    doc = json.loads(m.data)
    assert isinstance(doc, dict) and doc.get("type", "").startswith("io.nats.jetstream.api.v1."), doc
    e = doc.get("error")
    if e is None:
        return
    assert isinstance(e.get("code"), int) and isinstance(e.get("err_code"), int), doc
    assert e.get("description") != "internal error", (subject, payload, doc)
    if e["code"] >= 500:
        assert e["err_code"] in SERVER_5XX, (subject, payload, doc)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(subject=st.sampled_from(SUBJECTS), body=bodies)
# the cases that once answered "internal error", always tried first
@example(subject="$JS.API.CONSUMER.MSG.NEXT.F.P", body={"batch": "__1e400__"})
@example(subject="$JS.API.CONSUMER.MSG.NEXT.F.P", body={"batch": [1]})
@example(subject="$JS.API.CONSUMER.MSG.NEXT.F.P", body={"expires": "__1e400__"})
@example(subject="$JS.API.STREAM.CREATE.X", body={"name": "X", "subjects": ["x.>"], "first_seq": 2**64 - 1})
@example(subject="$JS.API.STREAM.PURGE.X", body={"seq": 2**64 - 1})
@example(subject="$JS.API.STREAM.CREATE.X", body={"name": "X", "subjects": ["x.>"], "max_bytes": 2**64})
@example(subject="$JS.API.DIRECT.GET.F", body={"seq": "__1e400__"})
@example(subject="$JS.API.DIRECT.GET.F", body={"batch": "__inf__", "seq": 1})
@example(subject="$JS.API.CONSUMER.CREATE.F.C", body={"stream_name": "F", "config": {"backoff": ["__1e400__"]}})
def test_api_fuzz(server: tuple[ServerProc, Driver], subject: str, body: Any) -> None:
    srv, drv = server
    payload = encode(body)
    seen = len(srv.log())
    timeout = 0.05 if subject.startswith("$JS.API.CONSUMER.MSG.NEXT.") else 5.0
    m = drv.ask(subject, payload, timeout)
    check_reply(subject, payload, m)
    log = srv.log()[seen:]
    assert "Traceback" not in log and "handler failed" not in log, (subject, payload, log[-3000:])


def test_server_still_answers_after_fuzz(server: tuple[ServerProc, Driver]) -> None:
    srv, drv = server
    m = drv.ask("$JS.API.INFO", b"")
    assert m is not None and "error" not in json.loads(m.data)
    m = drv.ask("$JS.API.STREAM.INFO.F", b"")
    assert m is not None and json.loads(m.data)["config"]["name"] == "F"
    assert "Traceback" not in srv.log()
