"""Regressions found by running nats.py's own test suite against pyjetstream (docs/compat.md,
"nats.py's own test suite"): each test repeats, with nats-py over real sockets, the steps of
the nats.py test that failed, and runs them against nats-server too where it has the feature.

Owns only these regressions; the suite runner itself is test_natspy_suite.py.
"""

from __future__ import annotations

from pathlib import Path

import nats
import nats.js.api
import pytest
from nats.js.errors import BadRequestError, NotFoundError
from servers import have_nats_server, have_newer_nats_server, start_server


async def _api_counts(url: str) -> list[tuple[int, int]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out = []
    try:
        info = await js.account_info()
        out.append((info.api.total, info.api.errors))
        with pytest.raises(NotFoundError):
            await js.stream_info("MISSING")
        await js.add_stream(name="S", subjects=["s"])
        await js.stream_info("S")
        info = await js.account_info()
        out.append((info.api.total, info.api.errors))
        info = await js.account_info()
        out.append((info.api.total, info.api.errors))
    finally:
        await nc.close()
    return out


@pytest.mark.parametrize("kind", ["pyjetstream", "nats-server", "nats-server-new"])
async def test_account_info_does_not_count_itself(tmp_path: Path, kind: str) -> None:
    # nats.py AccountLimitsTest.test_account_limits: api.total is 4 after three creates and a
    # stream info; nats-server counts a request when it sends the answer, so the account info
    # request is not in its own answer (the next one sees it)
    if kind == "nats-server" and not have_nats_server():
        pytest.skip("nats-server 2.9.10 not installed")
    if kind == "nats-server-new" and not have_newer_nats_server():
        pytest.skip("NATS_SERVER_NEW not set")
    srv = start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "store"))
    try:
        counts = await _api_counts(srv.url)
    finally:
        srv.stop()
    assert counts == [(0, 0), (4, 1), (5, 1)]


async def _transform_filters(url: str) -> list[object]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out: list[object] = []
    try:
        await js.add_stream(name="T", subjects=["test", "foo"],
                            subject_transform=nats.js.api.SubjectTransform(src=">", dest="transformed.>"))
        await js.add_stream(name="W", subjects=["a.*"],
                            subject_transform=nats.js.api.SubjectTransform(src="a.*", dest="b.$1.x"))
        for i in range(3):
            await js.publish("test", str(i).encode())
        await js.publish("a.q", b"w")
        # a filter on the configured subject: valid, but nothing is stored under it
        psub = await js.pull_subscribe("test", stream="T")
        out.append((await psub.consumer_info()).num_pending)
        psub = await js.pull_subscribe("transformed.test", stream="T")
        out.append((await psub.consumer_info()).num_pending)
        msgs = await psub.fetch(3, timeout=2)
        out.append([(m.subject, m.data) for m in msgs])
        psub = await js.pull_subscribe("b.*.x", stream="W")
        msgs = await psub.fetch(1, timeout=2)
        out.append([(m.subject, m.data) for m in msgs])
    finally:
        await nc.close()
    return out


@pytest.mark.parametrize("kind", ["pyjetstream", "nats-server-new"])
async def test_consumer_filter_on_transformed_subjects(tmp_path: Path, kind: str) -> None:
    # nats.py V210FeaturesTest.test_subject_transforms: a filter on a stream transform's
    # destination subjects was refused with 10093 (not a subset of the stream's subjects)
    if kind == "nats-server-new" and not have_newer_nats_server():
        pytest.skip("NATS_SERVER_NEW not set")
    srv = start_server(kind, tmp_path, "-js", "-sd", str(tmp_path / "store"))
    try:
        got = await _transform_filters(srv.url)
    finally:
        srv.stop()
    assert got == [0, 3, [("transformed.test", str(i).encode()) for i in range(3)], [("b.q.x", b"w")]]


async def test_filter_outside_stream_and_transform_space_still_refused(tmp_path: Path) -> None:
    # the 2.9.10 subset check stays for everything else: neither the configured subjects nor
    # the transform's destination ("b.*.x", one token per reference) cover these filters
    srv = start_server("pyjetstream", tmp_path, "-js", "-sd", str(tmp_path / "store"))
    nc = await nats.connect(srv.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="W", subjects=["a.*"],
                            subject_transform=nats.js.api.SubjectTransform(src="a.*", dest="b.$1.x"))
        for bad in ("c.q", "b.q.y", "b.q", "b.q.x.z"):
            with pytest.raises(BadRequestError) as err:
                await js.add_consumer("W", nats.js.api.ConsumerConfig(filter_subject=bad))
            assert (err.value.err_code, err.value.description) == (
                10093, "consumer filter subject is not a valid subset of the interest subjects"), bad
        ok = await js.add_consumer("W", nats.js.api.ConsumerConfig(filter_subject="b.>"))
        assert ok.config.filter_subject == "b.>"
    finally:
        await nc.close()
        srv.stop()


# nats.py's tests/conf/ws.conf opens its block on the line after the key; nats-server's lexer
# allows any space, newlines included, between a key and its separator or value
_NEWLINE_CONFIG = """
jetstream
{
    max_mem: 1MB
}
authorization
{
  user
    : "u"
  password
  = "p"
}
"""


@pytest.mark.parametrize("kind", ["pyjetstream", "nats-server"])
async def test_config_block_opened_on_the_next_line(tmp_path: Path, kind: str) -> None:
    if kind == "nats-server" and not have_nats_server():
        pytest.skip("nats-server 2.9.10 not installed")
    srv = start_server(kind, tmp_path, "-sd", str(tmp_path / "store"), config=_NEWLINE_CONFIG)
    try:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(srv.url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
        nc = await nats.connect(srv.url.replace("nats://", "nats://u:p@"))
        try:
            # JetStream is on only because the block was read
            info = await nc.jetstream().account_info()
            assert (info.streams, info.api.total) == (0, 0)
        finally:
            await nc.close()
    finally:
        srv.stop()
