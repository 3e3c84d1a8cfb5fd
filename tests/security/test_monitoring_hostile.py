"""Monitoring under hostile input: nothing a client sends, and no query string, may make a
monitoring endpoint answer 500, drop the request or emit text that is not valid Unicode; and
/connz and /subsz paging follows nats-server 2.9.10's rules.

Clients put bytes that are not UTF-8 into sids, subjects, queue groups and (as JSON escapes
for lone surrogates, or raw bytes) CONNECT fields; the monitor must render them as nats-server
does: each invalid byte as U+FFFD. Paging expectations were read in nats-server's monitor.go
(Connz, Subsz, decodeInt) and checked against the 2.9.10 binary; the same table runs against
both servers. nats-server itself drops the HTTP connection (a Go panic) when offset+limit
overflows int64; ours answers those, so they are checked on ours only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase
from servers import KINDS, RawClient, ServerProc, have_nats_server, start_server

from pyjetstream.monitoring.http import safe_text

REPLACEMENT = "\ufffd"

# Every endpoint we serve, and nats-server's others, which we answer 404: absent, not broken.
ENDPOINTS = ("/", "/varz", "/connz", "/subsz", "/subscriptionsz", "/healthz", "/jsz", "/metrics",
             "/routez", "/gatewayz", "/leafz", "/accountz", "/accstatz")
# The query options nats-server reads on each endpoint (each may be given a hostile value);
# "x" stands for an option nobody reads
ENDPOINT_OPTIONS: dict[str, tuple[str, ...]] = {
    "/connz": ("offset", "limit", "subs", "auth", "sort", "state", "cid", "user", "acc", "mqtt_client"),
    "/subsz": ("subs", "offset", "limit", "test", "acc"),
    "/subscriptionsz": ("subs", "offset", "limit"),
    "/jsz": ("accounts", "streams", "consumers", "config", "offset", "limit", "leader-only", "acc"),
    "/healthz": ("js-enabled", "js-enabled-only", "js-server-only"),
    "/routez": ("subs",), "/accountz": ("acc",), "/leafz": ("subs", "acc"), "/gatewayz": ("accs",),
}
OPTIONS = tuple(sorted({o for opts in ENDPOINT_OPTIONS.values() for o in opts}))
HOSTILE_VALUES = ("-1", "0", "-9223372036854775808", "9223372036854775807", "99999999999999999999",
                  "abc", "%ff", "%00", "%EF%BC%91", "1_0", "+1", "%201", "0x10", "1e3", "detail", "DETAIL",
                  "true", "yes", "", "%F0%9F%98%80", "%ED%A0%80", "..", "*", ">", "$G", "A" * 2000)


def _kinds() -> list[object]:
    return [pytest.param(k, marks=[pytest.mark.nats_server,
                                   pytest.mark.skipif(not have_nats_server(), reason="nats-server binary not installed")])
            if k == "nats-server" else k for k in KINDS]


def fetch(srv: ServerProc, path: str) -> tuple[int, bytes]:
    """GET without raising on HTTP errors: (status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.http_port}{path}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def strings_in(doc: object) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from strings_in(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings_in(v)


def assert_clean_json(body: bytes) -> dict:
    """Valid UTF-8 JSON whose strings are valid Unicode (no lone surrogates from \\u escapes)."""
    doc = json.loads(body.decode("utf-8"))  # strict: a bad byte would raise here
    for s in strings_in(doc):
        s.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    return doc


@pytest.fixture(params=_kinds())
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def srv(kind: str, tmp_path: Path) -> Iterator[ServerProc]:
    s = start_server(kind, tmp_path, "-m", "-1", "-js", "-sd", str(tmp_path / "js"))
    try:
        yield s
    finally:
        s.stop()


def test_unit_safe_text() -> None:
    assert safe_text(b"f\xffo") == f"f{REPLACEMENT}o"
    assert safe_text(b"\xff\xfe") == REPLACEMENT * 2
    assert safe_text(b"f\xffo".decode("utf-8", "surrogateescape")) == f"f{REPLACEMENT}o"
    assert safe_text("\ud800x") == f"{REPLACEMENT}x"  # a lone surrogate from a JSON escape
    assert safe_text("h\u00e9llo \U0001f600") == "h\u00e9llo \U0001f600"
    assert safe_text(5) == "5"


def test_non_utf8_client_input_renders(kind: str, srv: ServerProc) -> None:
    """Sids, subjects and queue groups that are not UTF-8 and CONNECT names with invalid bytes
    or lone-surrogate escapes: every document answers 200 and shows U+FFFD for each bad byte."""
    held = []
    c = RawClient(srv.port)
    c.send(b'CONNECT {"verbose":false,"name":"ok"}\r\nSUB foo \xff\xfe\r\nSUB f\xffo 2\r\nSUB q.x g\xff 3\r\n'
           b"PUB foo 2\r\nhi\r\n")
    c.sync()
    held.append(c)
    # A JSON escape for a lone surrogate is valid JSON for both servers
    c = RawClient(srv.port)
    c.send(b'CONNECT {"verbose":false,"name":"s\\ud800","lang":"\\udcff","version":"v\\u0000"}\r\nSUB a 1\r\n')
    c.sync()
    held.append(c)
    # Raw invalid UTF-8 in CONNECT: nats-server takes it; whether a server keeps or drops the
    # connection, the monitor must not break
    c = RawClient(srv.port)
    c.send(b'CONNECT {"verbose":false,"name":"bad\xff\xfe"}\r\nSUB b \xc3\r\n')
    try:
        c.sync()
    except TimeoutError:
        pass
    held.append(c)

    for path in ("/connz", "/connz?subs=1", "/connz?subs=detail", "/connz?auth=1&subs=detail",
                 "/connz?state=any&subs=detail", "/subsz", "/subsz?subs=1", "/subscriptionsz?subs=1",
                 "/varz", "/jsz?accounts=1&streams=1&consumers=1&config=1", "/healthz"):
        status, body = fetch(srv, path)
        assert status == 200, (path, status, body[:300])
        assert_clean_json(body)

    doc = assert_clean_json(fetch(srv, "/connz?subs=detail")[1])
    by_name = {ci.get("name"): ci for ci in doc["connections"]}
    details = {d["subject"]: d for d in by_name["ok"]["subscriptions_list_detail"]}
    assert details["foo"]["sid"] == REPLACEMENT * 2
    assert details["foo"]["msgs"] == 1
    assert f"f{REPLACEMENT}o" in details
    assert details["q.x"]["qgroup"] == f"g{REPLACEMENT}"
    assert f"s{REPLACEMENT}" in by_name  # the surrogate escape, as Go's decoder renders it
    assert by_name[f"s{REPLACEMENT}"]["lang"] == REPLACEMENT

    subs = assert_clean_json(fetch(srv, "/subsz?subs=1")[1])["subscriptions_list"]
    assert {"subject": "foo", "sid": REPLACEMENT * 2} in [{"subject": d["subject"], "sid": d["sid"]} for d in subs]

    # the closed connection keeps its subscriptions (and their bad bytes) for ?state=closed
    held[0].close()
    for _ in range(100):
        closed = assert_clean_json(fetch(srv, "/connz?state=closed&subs=detail")[1])["connections"]
        if any(ci.get("name") == "ok" for ci in closed):
            break
        held[1].sync()  # a round trip instead of a sleep; the close is asynchronous
    else:
        pytest.fail("the closed connection never showed in /connz?state=closed")
    ok = next(ci for ci in closed if ci.get("name") == "ok")
    assert REPLACEMENT * 2 in [d["sid"] for d in ok.get("subscriptions_list_detail", [])]
    for c in held:
        c.close()


# (query, status, expected fields) for /connz with five open client connections; checked
# against nats-server 2.9.10, whose rules these are (monitor.go Connz + decodeInt)
CONNZ_PAGING = [
    ("", 200, {"offset": 0, "limit": 1024, "num_connections": 5, "total": 5}),
    ("offset=-1", 200, {"offset": 0, "limit": 1024, "num_connections": 5, "total": 5}),
    ("offset=-9223372036854775808", 200, {"offset": 0, "limit": 1024, "num_connections": 5}),
    ("limit=-1", 200, {"offset": 0, "limit": 1024, "num_connections": 5}),
    ("limit=0", 200, {"offset": 0, "limit": 1024, "num_connections": 5}),
    ("limit=2", 200, {"offset": 0, "limit": 2, "num_connections": 2, "total": 5}),
    ("limit=02", 200, {"limit": 2, "num_connections": 2}),
    ("offset=2&limit=2", 200, {"offset": 2, "limit": 2, "num_connections": 2, "total": 5}),
    ("offset=4&limit=2", 200, {"offset": 4, "limit": 2, "num_connections": 1, "total": 5}),
    ("offset=100", 200, {"offset": 100, "limit": 1024, "num_connections": 0, "total": 5}),
    ("offset=-5&limit=-5", 200, {"offset": 0, "limit": 1024, "num_connections": 5}),
    ("limit=9223372036854775807", 200, {"offset": 0, "limit": 9223372036854775807, "num_connections": 5}),
    ("limit=99999999999999999999", 400, "Error decoding int for 'limit': strconv.Atoi: parsing "
                                         '"99999999999999999999": value out of range'),
    ("offset=abc", 400, "Error decoding int for 'offset': strconv.Atoi: parsing \"abc\": invalid syntax"),
    ("limit=%201", 400, "Error decoding int for 'limit': strconv.Atoi: parsing \" 1\": invalid syntax"),
    ("limit=+1", 400, None),  # '+' in a query is a space
    ("limit=%2B1", 200, {"limit": 1, "num_connections": 1}),  # an explicit sign is fine
    ("limit=1_0", 400, None),
    ("limit=0x10", 400, None),
    ("limit=%EF%BC%91", 400, None),  # a fullwidth digit: Python's int() would take it
    ("offset=", 200, {"offset": 0, "limit": 1024}),
    ("sort=bogus", 400, "invalid sorting option: bogus"),
    ("sort=stop", 400, "sort by stop only valid on closed connections"),
    ("sort=reason", 400, "sort by reason only valid on closed connections"),
    ("state=bogus", 400, "Error decoding state for bogus"),
    ("subs=yes", 400, "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"yes\": invalid syntax"),
    ("auth=2", 400, None),
    ("cid=-1", 400, None),
    ("subs=DETAIL&limit=1", 200, {"limit": 1, "num_connections": 1}),
    ("user=nobody", 200, {"num_connections": 0, "total": 5}),
    ("acc=nobody", 200, {"num_connections": 0, "total": 0}),
]

# The same for /subsz?subs=1&test=page.x (five client subscriptions match page.x). nats-server
# shows `total`, `offset`, `limit` and the list only when the page is not empty, and its
# `total` is the size of the page.
SUBSZ_PAGING = [
    ("", 200, {"offset": 0, "limit": 1024, "total": 5, "n": 5}),
    ("&offset=-1", 200, {"offset": 0, "limit": 1024, "total": 5, "n": 5}),
    ("&limit=0", 200, {"offset": 0, "limit": 1024, "n": 5}),
    ("&limit=-7", 200, {"offset": 0, "limit": 1024, "n": 5}),
    ("&offset=1&limit=3", 200, {"offset": 1, "limit": 3, "total": 3, "n": 3}),
    ("&offset=3&limit=3", 200, {"offset": 3, "limit": 3, "total": 2, "n": 2}),
    ("&offset=5", 200, {"n": 0}),
    ("&limit=99999999999999999999", 400, None),
    ("&offset=abc", 400, None),
    ("&offset=%2B1&limit=1", 200, {"offset": 1, "limit": 1, "total": 1, "n": 1}),
]


def _page_clients(srv: ServerProc) -> list[RawClient]:
    clients = []
    for i, subject in enumerate((b"page.x", b"page.*", b"page.>", b">", b"page.x")):
        c = RawClient(srv.port)
        queue = b" grp" if i == 4 else b""
        c.send(b'CONNECT {"verbose":false,"name":"p%d"}\r\nSUB %s%s %d\r\nSUB other.%d 99\r\n' % (i, subject, queue, i, i))
        c.sync()
        clients.append(c)
    return clients


def test_connz_paging(kind: str, srv: ServerProc) -> None:
    clients = _page_clients(srv)
    try:
        for query, status, want in CONNZ_PAGING:
            got_status, body = fetch(srv, f"/connz?{query}")
            assert got_status == status, (kind, query, got_status, body[:200])
            if status != 200:
                if isinstance(want, str):
                    assert body.decode() == want, (kind, query)
                continue
            doc = assert_clean_json(body)
            assert doc["num_connections"] == len(doc["connections"] or []), (kind, query)
            for k, v in want.items():
                assert doc[k] == v, (kind, query, k, doc[k])
        # the pages tile the sorted list with neither gaps nor repeats
        whole = [ci["cid"] for ci in assert_clean_json(fetch(srv, "/connz")[1])["connections"]]
        paged = [ci["cid"] for off in range(0, 6, 2)
                 for ci in assert_clean_json(fetch(srv, f"/connz?offset={off}&limit=2")[1])["connections"]]
        assert paged == whole == sorted(whole)
    finally:
        for c in clients:
            c.close()


def test_subsz_paging(kind: str, srv: ServerProc) -> None:
    clients = _page_clients(srv)
    try:
        for query, status, want in SUBSZ_PAGING:
            got_status, body = fetch(srv, f"/subsz?subs=1&test=page.x{query}")
            assert got_status == status, (kind, query, got_status, body[:200])
            if status != 200:
                continue
            doc = assert_clean_json(body)
            assert len(doc.get("subscriptions_list", [])) == want["n"], (kind, query)
            for k, v in want.items():
                if k != "n":
                    assert doc[k] == v, (kind, query, k, doc[k])
            if not want["n"]:
                assert "subscriptions_list" not in doc and "total" not in doc, (kind, query)
        assert fetch(srv, "/subsz?subs=1&test=page.*")[0] == 400  # a test subject must be literal
    finally:
        for c in clients:
            c.close()


def test_hostile_query_options(kind: str, srv: ServerProc) -> None:
    """Every endpoint, every option, every hostile value: an answer (never a 500 or a dropped
    request), and JSON documents stay clean."""
    c = RawClient(srv.port)
    c.send(b'CONNECT {"verbose":false}\r\nSUB x \xff\r\n')
    c.sync()
    try:
        for endpoint in ENDPOINTS:
            for option in (*ENDPOINT_OPTIONS.get(endpoint, ()), "x"):
                for value in HOSTILE_VALUES:
                    path = f"{endpoint}?{option}={value}"
                    try:
                        status, body = fetch(srv, path)
                    except (urllib.error.URLError, ConnectionError) as exc:
                        # nats-server 2.9.10 panics on offset+limit overflow; ours must answer
                        if kind == "nats-server" and value.startswith(("-9223", "9223")):
                            continue
                        raise AssertionError(f"{kind} {path}: {exc!r}") from exc
                    assert status in (200, 400, 404), (kind, path, status, body[:200])
                    if status == 200 and endpoint not in ("/", "/metrics"):
                        assert_clean_json(body)
    finally:
        c.close()


def test_overflowing_pages_answer(tmp_path: Path) -> None:
    """offset+limit beyond int64: nats-server drops the request (a Go slice panic); ours answers
    with an empty or full page, as the clamping rules say."""
    with start_server("pyjetstream", tmp_path, "-m", "-1") as srv:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false}\r\nSUB a 1\r\n')
        c.sync()
        status, body = fetch(srv, "/connz?offset=9223372036854775807&limit=9223372036854775807")
        assert status == 200 and json.loads(body)["num_connections"] == 0
        status, body = fetch(srv, "/connz?offset=0&limit=9223372036854775807")
        assert status == 200 and json.loads(body)["num_connections"] == 1
        status, body = fetch(srv, "/subsz?subs=1&offset=1&limit=9223372036854775807")
        assert status == 200 and "subscriptions_list" not in json.loads(body)
        status, body = fetch(srv, "/jsz?accounts=1&offset=-1&limit=-1")
        assert status == 200
        c.close()


@pytest.fixture(scope="module")
def shared_pyjetstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    d = tmp_path_factory.mktemp("hostile")
    s = start_server("pyjetstream", d, "-m", "-1", "-js", "-sd", str(d / "js"))
    c = RawClient(s.port)
    c.send(b'CONNECT {"verbose":false,"name":"\\udfff"}\r\nSUB x.\xfe q\xff \xff\r\n')
    c.sync()
    try:
        yield s
    finally:
        c.close()
        s.stop()


@settings(max_examples=150, deadline=None, database=InMemoryExampleDatabase(),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS),
       params=st.lists(st.tuples(st.sampled_from(OPTIONS) | st.text(max_size=8),
                                 st.sampled_from(HOSTILE_VALUES) | st.text(max_size=30)
                                 | st.integers().map(str)), max_size=5))
def test_fuzzed_queries_never_500(shared_pyjetstream: ServerProc, endpoint: str,
                                  params: list[tuple[str, str]]) -> None:
    query = urllib.parse.urlencode([(safe_text(k), safe_text(v)) for k, v in params])
    status, body = fetch(shared_pyjetstream, f"{endpoint}?{query}")
    assert status in (200, 400, 404), (endpoint, query, status, body[:200])
    if status == 200 and endpoint not in ("/", "/metrics"):
        assert_clean_json(body)
