"""The release we advertise (nats-server 2.12.4, JetStream API level 2) in what clients and
tools read first: INFO and /varz (`--version`: tests/integration/core/test_core_process.py), compared with the newer nats-server
(NATS_SERVER_NEW, 2.15.1 here) and with 2.9.10. docs/design.md says why 2.12.4; docs/compat.md
lists the fields we leave out."""

from __future__ import annotations

import pytest
from servers import RawClient, ServerProc, have_nats_server, have_newer_nats_server, start_server

ADVERTISED, API_LEVEL = "2.12.4", 2

# INFO fields nats-server 2.12+ sends that we leave out, and why (docs/compat.md)
INFO_LEFT_OUT = {
    "xkey": "the server's x25519 key, for auth callout, which we do not implement",
    "git_commit": "no nats-server build commit to name",
}
# /varz fields 2.12.4's Varz always sends and 2.9.10's did not (monitor.go, no omitempty; the
# stale-connection stats are a pointer that is always set), plus the API level in the
# JetStream stats and `strict` in its config (2.12 decodes API requests strictly by default);
# 2.14+ added more (in_client_msgs, feature_flags, ...) that we do not claim
VARZ_212 = ("stale_connections", "stalled_clients", "config_digest", "slow_consumer_stats.clients",
            "slow_consumer_stats.routes", "slow_consumer_stats.gateways", "slow_consumer_stats.leafs",
            "stale_connection_stats.clients", "stale_connection_stats.routes",
            "stale_connection_stats.gateways", "stale_connection_stats.leafs", "jetstream.stats.api.level",
            "jetstream.config.strict")

CONFIG = 'jetstream { store_dir: "%s", domain: "hub" }\n'


def _info(srv: ServerProc) -> dict:
    c = RawClient(srv.port)
    try:
        return c.info
    finally:
        c.close()


def _has(doc: dict, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> dict[str, ServerProc]:
    kinds = ["pyjetstream"] + (["nats-server"] if have_nats_server() else []) + (
        ["nats-server-new"] if have_newer_nats_server() else [])
    started: dict[str, ServerProc] = {}
    try:
        for kind in kinds:
            d = tmp_path_factory.mktemp(kind)
            started[kind] = start_server(kind, d, "-m", "-1", config=CONFIG % (d / "store"))
        yield started
    finally:
        for srv in started.values():
            srv.stop()


def test_info_names_the_release_and_api_level(servers) -> None:
    info = _info(servers["pyjetstream"])
    assert (info["version"], info["api_lvl"], info["domain"], info["jetstream"]) == (ADVERTISED, API_LEVEL, "hub", True)


def test_info_domain_as_nats_server(servers) -> None:
    """Both references name the configured JetStream domain in INFO."""
    for kind in ("nats-server", "nats-server-new"):
        if kind in servers:
            assert _info(servers[kind])["domain"] == "hub", kind


def test_info_has_the_newer_servers_fields(servers) -> None:
    if "nats-server-new" not in servers:
        pytest.skip("NATS_SERVER_NEW not set")
    ref, ours = _info(servers["nats-server-new"]), _info(servers["pyjetstream"])
    assert set(ref) - set(ours) == set(INFO_LEFT_OUT)
    assert set(ours) <= set(ref)
    same = ("proto", "headers", "max_payload", "host", "client_ip", "jetstream", "domain")
    assert {k: ours[k] for k in same} == {k: ref[k] for k in same}
    assert ref["api_lvl"] >= API_LEVEL  # 2.15.1 says 5


def test_info_api_level_without_jetstream(tmp_path) -> None:
    """2.12 sets api_lvl in INFO whether JetStream is on or not."""
    with start_server("pyjetstream", tmp_path) as srv:
        info = _info(srv)
    assert info["api_lvl"] == API_LEVEL and "jetstream" not in info and "domain" not in info


@pytest.mark.parametrize("path", VARZ_212)
def test_varz_has_the_212_fields(servers, path: str) -> None:
    assert _has(servers["pyjetstream"].get_json("/varz"), path)
    if "nats-server-new" in servers:
        assert _has(servers["nats-server-new"].get_json("/varz"), path)
    if "nats-server" in servers:  # they are new since 2.9.10
        assert not _has(servers["nats-server"].get_json("/varz"), path)


def test_varz_release_values(servers) -> None:
    varz = servers["pyjetstream"].get_json("/varz")
    assert varz["version"] == ADVERTISED
    assert varz["jetstream"]["stats"]["api"]["level"] == API_LEVEL
    assert varz["jetstream"]["config"]["domain"] == "hub"
    zero = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
    assert (varz["slow_consumer_stats"], varz["stale_connection_stats"]) == (zero, zero)
    assert (varz["stale_connections"], varz["stalled_clients"]) == (0, 0)


def test_jsz_api_level(servers) -> None:
    assert servers["pyjetstream"].get_json("/jsz")["api"]["level"] == API_LEVEL
    if "nats-server-new" in servers:
        assert "level" in servers["nats-server-new"].get_json("/jsz")["api"]



def _after_connect(srv: ServerProc) -> bytes:
    c = RawClient(srv.port)
    try:
        c.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        got = c.read_until(b"PONG\r\n")
        c.send(b"PING\r\n")
        return got + c.read_until(b"PONG\r\n")
    finally:
        c.close()


def test_no_connect_info_after_the_first_ping(servers) -> None:
    """A documented difference (docs/compat.md): 2.12.0+ answers a protocol-1 client's first
    PING with PONG and then an INFO carrying connect_info, remote_account and acc_is_sys. We
    send the PONG only, as 2.9.10 does; no client we test reads those fields."""
    assert _after_connect(servers["pyjetstream"]) == b"PONG\r\nPONG\r\n"
    if "nats-server" in servers:
        assert _after_connect(servers["nats-server"]) == b"PONG\r\nPONG\r\n"
    if "nats-server-new" in servers:
        got = _after_connect(servers["nats-server-new"])
        assert got.startswith(b"PONG\r\nINFO {") and b'"connect_info":true' in got
