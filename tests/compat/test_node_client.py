"""Wire compatibility with the official JavaScript clients (@nats-io/transport-node,
@nats-io/jetstream with its consumer API, @nats-io/kv; versions pinned in node/package.json).

Each scenario of tests/compat/node/natscompat.mjs runs against pyjetstream, nats-server
2.9.10 and, when NATS_SERVER_NEW names it, nats-server 2.15 at the same time; our JSON report
must be identical to each reference's, apart from the paths in SKIPPED (each with its own
test). A few facts per scenario are asserted on every report, so that a behaviour all servers
share but the client does not expect would still fail. The npm install is cached under /tmp by the hash of package.json; without
node/npm or registry access the tests skip and say why.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .compare import (
    assert_documented_differences_are_real,
    assert_scenario_matches,
)
from .conftest import REFERENCES, ClientRun, RunBoth

SCENARIOS = ("core", "js", "consume", "fetch", "push", "heartbeat", "restart", "kv", "newer")
# Features the client itself switches on by the server's version (2.10, 2.11): against 2.9.10
# it refuses them before sending anything (test_node_gates_newer_features_on_the_version), so
# these are compared with the newer nats-server only.
VERSION_GATED = ("newer",)

# Paths left out of the comparison with one reference, each with the reason and its own test.
# We advertise 2.12.4: where 2.9.10 and 2.15 differ, we should answer as 2.12.4 does.
_FILTER_END_29 = ("a filtered consumer whose stream ends in a message it does not take (c49, seq 50): "
                  "2.9.10 reports delivered and ack floor as the next stream sequence to look at - 1, which "
                  "the filtered scan moved to the stream's end (50); 2.10+ (2.12.4 and 2.15.1 here), and "
                  "pyjetstream, report them from the consumer store's state: the last message delivered (49)")
SKIPPED: dict[str, dict[str, dict[str, str]]] = {
    "nats-server": {
        "consume": {"after.delivered.stream_seq": _FILTER_END_29, "after.ack_floor.stream_seq": _FILTER_END_29},
    },
    "nats-server-new": {},
}


@cache
def _runs(run_both: RunBoth, script: Path, scenario: str) -> dict[str, ClientRun]:
    return run_both(f"node-{scenario}", ["node", str(script), "{url}", scenario],
                    restart_marker="RESTART" if scenario == "restart" else None)


@pytest.fixture
def reports(run_both: RunBoth, node_client: Path) -> Callable[[str, str], dict[str, Any]]:
    """One server kind's report for a scenario, run once per session."""
    def one(scenario: str, kind: str = "pyjetstream") -> dict[str, Any]:
        runs = _runs(run_both, node_client, scenario)
        if kind not in runs:
            pytest.skip(f"{kind} not available (NATS_SERVER_NEW not set)")
        return runs[kind].json()
    return one


def _check_core(r: dict[str, Any]) -> None:
    assert [m["subject"] for m in r["messages"]] == ["ncompat.one", "ncompat.two.deep", "ncompat.three"]
    assert r["messages"][1]["headers"] == {"X-Multi": ["a", "b"], "X-One": ["1"]}
    assert r["messages"][1]["reply"] == "ncompat.reply"
    assert r["messages"][2] == {"subject": "ncompat.three", "reply": "", "data": "",
                                "headers": {"Only": ["headers"]}}
    assert r["sub_closed_after_max"] is True
    assert r["queue"] == {"distinct": 60, "deliveries": 60, "duplicates": 0}
    assert r["request"] == {"data": "PING", "headers": {"X-Echo": ["hello-header"]}}
    assert r["request_nomux"] == "NO MUX"
    assert "no responders" in r["no_responders"]["message"]
    assert r["server_headers"] is True


def _check_js(r: dict[str, Any]) -> None:
    acks = r["acks"]
    assert [a.get("seq") for a in acks[:6]] == [1, 2, 3, 4, 5, 5]
    assert acks[5]["duplicate"] is True
    assert acks[6]["error"]["api"]["err_code"] == 10071
    assert acks[8]["error"]["api"]["err_code"] == 10060
    assert acks[10]["error"]["api"]["err_code"] == 10071
    assert acks[11]["error"]["api"]["err_code"] == 10070
    assert r["concurrent"] == {"acked": 200, "first": 8, "last": 207, "contiguous": True}
    assert r["get_4"] == {"subject": "njs.h", "seq": 4, "data": "has header", "headers": {"X-Key": ["v"]}}
    assert r["get_missing"] is None
    assert r["purge_filtered"]["purged"] == 29
    assert r["after_purge"]["messages"] == 177
    assert r["info_missing"]["api"]["err_code"] == 10059
    assert r["find"] == "NCOMPAT" and r["find_missing"]["api"]["err_code"] == 10059
    assert r["update_max_msgs"]["messages"] == 50
    assert r["update_storage"]["api"]["err_code"] == 10052
    assert r["direct_seq_2"] == {"subject": "ndirect.0", "seq": 2, "data": "d2"}
    assert r["direct_last_1"] == {"subject": "ndirect.1", "seq": 3, "data": "d3"}
    assert r["direct_next_0"] == {"subject": "ndirect.0", "seq": 2, "data": "d2"}
    assert r["direct_missing"] is None
    assert r["account"] == {"streams": 1, "consumers": 0}


def _check_consume(r: dict[str, Any]) -> None:
    assert r["delivery_seqs"] == list(range(1, 27))
    assert [m["data"] for m in r["first"]] == [f"c{i}" for i in range(0, 50, 2)]
    assert [m["pending"] for m in r["first"]] == list(range(24, -1, -1))
    assert r["redelivered"] == [["c8", 9, 2]]
    assert r["after"]["num_ack_pending"] == 0
    # the filter skipped 50: the floor is the last delivered message (2.10+; 2.9.10 said 50)
    assert r["after"]["ack_floor"] == {"consumer_seq": 26, "stream_seq": 49}
    assert r["ordered"] == {"count": 50, "in_order": True}
    assert r["update"] == {"max_ack_pending": 20, "description": "changed"}
    assert r["update_ack_policy"]["api"]["err_code"] == 10012


def _check_fetch(r: dict[str, Any]) -> None:
    assert [m["data"] for m in r["fetch_4"]] == ["f1", "f2", "f3", "f4"]
    # the nak'd f5 comes back inside the same, still open, pull request
    assert [(m["data"], m["delivered"]) for m in r["fetch_7"]] == [
        ("f5", 1), ("f6", 1), ("f7", 1), ("f8", 1), ("f9", 1), ("f10", 1), ("f5", 2)]
    assert r["fetch_empty"] == []
    assert r["next_waiting"]["data"] == "late" and r["next_empty"] is None
    assert r["final"]["ack_floor"] == {"consumer_seq": 12, "stream_seq": 11}
    assert r["final"]["num_ack_pending"] == 0
    assert r["get_missing"]["api"]["err_code"] == 10014


def _check_push(r: dict[str, Any]) -> None:
    assert r["created"]["num_pending"] == 0 and r["created"]["delivered"] == {"consumer_seq": 0, "stream_seq": 0}
    assert r["received"] == 300 and r["in_order"] is True
    assert r["flow_control_seen"] is True and r["heartbeats_missed"] == 0
    assert r["heartbeat_after_all"] == {"lastStreamSequence": 300, "lastConsumerSequence": 300}
    assert r["after"] == {"ack_floor": 300, "delivered": 300, "num_ack_pending": 0}


def _check_heartbeat(r: dict[str, Any]) -> None:
    assert r == {"heartbeats_seen": True, "heartbeats_missed": 0, "got": ["after idle"]}


def _check_restart(r: dict[str, Any]) -> None:
    assert r["got"] == [f"r{i:02d}#1" for i in range(10)] + [f"r{i}#1" for i in range(10, 20)]
    assert r["final"] == {"ack_floor": 20, "num_pending": 0, "num_ack_pending": 0}


def _check_kv(r: dict[str, Any]) -> None:
    w = r["writes"]
    assert (w["put_a1"], w["put_bc"], w["put_a2"], w["update_ok"]) == (1, 2, 3, {"ok": 4})
    assert w["update_stale"]["error"]["api"]["err_code"] == 10071
    assert w["create_existing"]["error"]["api"]["err_code"] == 10071
    assert w["create_new"] == {"ok": 5}
    assert r["get_a"]["value"] == "3" and r["get_a_rev1"]["value"] == "1" and r["get_missing"] is None
    assert r["get_deleted"]["operation"] == "DEL" and r["create_after_delete"] == {"ok": 7}
    assert r["keys"] == ["a", "b.c", "new"]
    assert [e["value"] for e in r["history_a"]] == ["1", "2", "3"]
    assert [(e["key"], e["revision"], e["operation"]) for e in r["watch_live"]] == [
        ("a", 1, "PUT"), ("b.c", 2, "PUT"), ("a", 3, "PUT"), ("a", 4, "PUT"), ("new", 5, "PUT"),
        ("b.c", 6, "DEL"), ("b.c", 7, "PUT")]
    assert [(e["value"], e["revision"]) for e in r["watch_a"]] == [("3", 4), ("after watch", 8)]
    assert [e["operation"] for e in r["history_a_after_purge"]] == ["PURGE"]
    assert [(e["key"], e["revision"]) for e in r["watch_history"]] == [
        ("b.c", 2), ("new", 5), ("b.c", 6), ("b.c", 7), ("a", 9)]
    assert [(e["key"], e["revision"]) for e in r["watch_ignore_deletes"]] == [("b.c", 7)]
    assert r["watch_updates_only"] == []
    # purgeDeletes in this client purges every key that has a marker anywhere in its history
    # (b.c included, though its latest value is a put); the servers only carry out the purges
    assert r["keys_after_purge_deletes"] == ["new"]
    assert r["status"]["history"] == 5 and r["destroyed"] is True
    assert r["read_destroyed"]["api"]["err_code"] == 10059


def _check_newer(r: dict[str, Any]) -> None:
    assert r["stream_metadata_keys"] == ["_nats.level", "_nats.req.level", "_nats.ver", "owner"]
    assert r["stream_req_level"] == "0"
    assert r["multi_filter"] == {"filter_subjects": ["nnew.a.>", "nnew.b.>"], "num_pending": 4}
    assert r["multi_fetched"] == [["nnew.b.1", 1], ["nnew.a.3", 3], ["nnew.b.4", 4], ["nnew.a.6", 6]]
    assert [m["seq"] for m in r["direct_batch"]] == [2, 3, 4]
    assert [m["subject"] for m in r["direct_multi_last"]] == ["nnew.c.2", "nnew.a.3", "nnew.c.5", "nnew.a.6"]
    assert r["priority_consumer"] == {"priority_policy": "overflow", "priority_groups": ["g"]}
    assert r["priority_fetched"] == [["nnew.b.1", 1], ["nnew.c.2", 2]]


CHECKS = {"core": _check_core, "js": _check_js, "consume": _check_consume, "fetch": _check_fetch,
          "push": _check_push, "heartbeat": _check_heartbeat, "restart": _check_restart,
          "kv": _check_kv, "newer": _check_newer}
COMPARED = [(s, r) for s in SCENARIOS for r in REFERENCES if not (s in VERSION_GATED and r == "nats-server")]


@pytest.mark.parametrize(("scenario", "reference"), COMPARED)
def test_node_scenario_matches_nats_server(reports, scenario: str, reference: str) -> None:
    assert_scenario_matches(reports, scenario, reference, SKIPPED, CHECKS[scenario],
                            "the JavaScript client")


def test_node_documented_differences_are_real(reports) -> None:
    assert_documented_differences_are_real(reports, SKIPPED)


def test_node_filtered_consumer_at_stream_end_as_2_12(reports) -> None:
    """c49 (seq 50) is not for the filtered durable: once all is acked, we report delivered and
    the ack floor at the last message delivered (49), as 2.12.4 and 2.15.1 do; 2.9.10 said 50,
    the filtered scan's position (docs/compat.md)."""
    after = reports("consume")["after"]
    assert after["delivered"] == {"consumer_seq": 26, "stream_seq": 49}
    assert after["ack_floor"] == {"consumer_seq": 26, "stream_seq": 49}
    try:
        old = reports("consume", "nats-server")["after"]
    except pytest.skip.Exception:
        return
    assert old["delivered"] == {"consumer_seq": 26, "stream_seq": 50}
    assert old["ack_floor"] == {"consumer_seq": 26, "stream_seq": 50}


def test_node_gates_newer_features_on_the_version(reports) -> None:
    """Told 2.9.10, the client refuses 2.10/2.11 features itself; told 2.12.4 (us) it uses
    them, so the advertised version is what switches them on."""
    old = reports("newer", "nats-server")
    assert old["stream_metadata_keys"]["message"] == "stream 'metadata' requires server 2.10.0"
    assert old["multi_filter"]["message"] == "'filter_subjects' requires server 2.10.0"
    assert old["direct_batch"]["message"] == old["direct_multi_last"]["message"] == "batch direct require server 2.11.0"
    assert old["priority_consumer"]["message"] == "priority_groups require server 2.11.0"
    _check_newer(reports("newer"))
