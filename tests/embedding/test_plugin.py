"""The pytest plugin as a user meets it: fixtures in a fresh pytest session (pytester)."""

from __future__ import annotations

import os

import pytest

NATS_SERVER = "/usr/sbin/nats-server"

USER_TESTS = '''
import asyncio, json, urllib.request
import nats, pytest

async def _roundtrip(url):
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s"])
    ack = await js.publish("s", b"x")
    runtime = nc._server_info.get("go", "")  # "python3.x" for ours, "go1.x" for nats-server
    await nc.close()
    return ack.seq, runtime

def test_nats_server_is_fresh_each_time(nats_server):
    seq, ver = asyncio.run(_roundtrip(nats_server.url))
    assert seq == 1
    print("SERVER-RUNTIME", ver)

def test_nats_server_again_fresh(nats_server):
    assert asyncio.run(_roundtrip(nats_server.url))[0] == 1

def test_jetstream_server_keeps_files_in_tmp_path(jetstream_server, tmp_path):
    asyncio.run(_roundtrip(jetstream_server.url))
    assert str(tmp_path) in jetstream_server.store_dir
    assert os.listdir(jetstream_server.store_dir)

def test_session_server_is_shared(nats_server_session, request):
    nc_seq = asyncio.run(_roundtrip(nats_server_session.url)) if not hasattr(request.config, "_seen") else None
    request.config._seen = True
    assert nc_seq is None or nc_seq[0] == 1
'''
USER_TESTS = "import os\n" + USER_TESTS


def test_fixtures_in_a_users_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=4)
    # no binary involved: the server ran inside the test process
    result.stdout.fnmatch_lines(["*SERVER-RUNTIME python3.*"])


def test_eventing_and_recording_sink_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_events='''
import json, urllib.request, urllib.error

SUB = """
apiVersion: eventing.kyma-project.io/v1alpha2
kind: Subscription
metadata: {{name: s, namespace: default}}
spec: {{sink: "{sink}", source: app, types: [a.b.v1]}}
"""

def post(url, eid):
    req = urllib.request.Request(url + "/publish", data=b"{}", method="POST", headers={
        "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": eid,
        "ce-type": "a.b.v1", "ce-source": "app"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status

def test_fail_then_recover(eventing, recording_sink):
    eventing.apply(SUB.format(sink=recording_sink.url))
    eventing.wait_ready("s")
    recording_sink.fail(500)
    assert post(eventing.url, "1") == 204
    recording_sink.wait_attempts("1", 1)
    assert recording_sink.events == []
    recording_sink.recover()
    assert [e.id for e in recording_sink.wait_for(1, timeout=30)] == ["1"]

def test_vanish_then_recover(eventing, recording_sink):
    eventing.apply(SUB.format(sink=recording_sink.url))
    eventing.wait_ready("s")
    recording_sink.vanish()
    assert post(eventing.url, "2") == 204
    recording_sink.recover()
    assert [e.id for e in recording_sink.wait_for(1, timeout=30)] == ["2"]

def test_hang_then_recover(eventing, recording_sink):
    eventing.apply(SUB.format(sink=recording_sink.url))
    eventing.wait_ready("s")
    recording_sink.hang()
    assert post(eventing.url, "3") == 204
    recording_sink.wait_attempts("3", 1)
    recording_sink.recover()
    assert "3" in [e.id for e in recording_sink.wait_for(1, timeout=60)]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_parallel_workers_do_not_collide(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many="\n".join(f'''
def test_{i}(nats_server):
    import socket
    socket.create_connection(("127.0.0.1", nats_server.port), timeout=5).close()
''' for i in range(8)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=8)


def test_bad_nats_server_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(nats_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nats-server=/nonexistent/nats-server")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--nats-server: no executable nats-server at*"])


@pytest.mark.skipif(not os.access(NATS_SERVER, os.X_OK), reason="needs the reference nats-server")
def test_same_tests_against_a_real_nats_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", f"--nats-server={NATS_SERVER}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*SERVER-RUNTIME go1.*"])
