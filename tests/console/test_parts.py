"""The console's pure parts (charts, delivery counters, masking) and its command lines."""

from __future__ import annotations

import asyncio
import os

import aiohttp
from eventing.conftest import VENV_BIN
from servers import free_port

from pyjetstream.cli import up
from pyjetstream.console import charts, data
from pyjetstream.console.sampler import DeliveryCounters
from pyjetstream.console.settings import ConsoleAuth, ConsoleSettings
from pyjetstream.eventing.testing import wait_until


def test_chart_is_escaped_svg_with_a_readable_axis():
    svg = charts.line_chart("<b>rate</b>", [charts.Series("in<script>", [(100.0, 1.0), (160.0, 7.0)]),
                                            charts.Series("out", [])], now=160.0, window=600.0, unit="/s")
    assert "<b>" not in svg and "&lt;b&gt;rate&lt;/b&gt;" in svg and "in&lt;script&gt;" in svg
    assert svg.count("<polyline") == 1 and ">10</text>" in svg  # 7 rounds up to a 10 axis
    assert charts.nice_max(0) == 1 and charts.nice_max(3) == 5 and charts.nice_max(120) == 200
    assert charts.fmt_number(1500) == "1.5k" and charts.fmt_number(0.25) == "0.25"


METRICS_OLD = """# TYPE eventing_ec_nats_delivery_per_subscription counter
eventing_ec_nats_delivery_per_subscription_total{subscription_name="default/a",event_type="t",sink="http://s",response_code="204",consumer_name="c"} 3
eventing_ec_nats_delivery_per_subscription_total{subscription_name="default/a",event_type="t",sink="http://s",response_code="error",consumer_name="c"} %d
"""
METRICS_KYMA = """# TYPE eventing_ec_nats_delivery_per_subscription counter
eventing_ec_nats_delivery_per_subscription_total{subscription_name="a",subscription_namespace="ns",event_type="t",sink="http://s",response_code="200",consumer_name="c"} 2
eventing_ec_nats_delivery_per_subscription_total{subscription_name="a",subscription_namespace="ns",event_type="t",sink="http://s",response_code="500",consumer_name="c"} %d
# TYPE pyjetstream_eventing_delivery_errors counter
pyjetstream_eventing_delivery_errors_total{subscription_name="a",subscription_namespace="ns",consumer_name="c",reason="connection"} %d
"""


class FakeCounters(DeliveryCounters):
    def __init__(self) -> None:
        super().__init__(ConsoleSettings())
        self.text = ""

    async def _text(self) -> str:
        return self.text


async def test_delivery_counters_in_both_metric_shapes():
    c = FakeCounters()
    c.text = METRICS_OLD % 0
    await c.read()
    assert c.ok == {"default/a": 3} and c.failed == {"default/a": 0} and c.last_failure == {}
    c.text = METRICS_OLD % 2
    await c.read()
    failure = c.last_failure["default/a"]
    assert failure.at is not None and failure.count == 2 and "no HTTP answer from http://s" in failure.text

    k = FakeCounters()
    k.text = METRICS_KYMA % (1, 1)
    await k.read()  # failures that happened before the console started
    assert k.last_failure["ns/a"].at is None and "connection" in k.last_failure["ns/a"].text
    k.text = METRICS_KYMA % (1, 1)
    await k.read()
    assert k.last_failure["ns/a"].at is None  # nothing new
    k.text = METRICS_KYMA % (2, 1)
    await k.read()  # a 500 without a new connection error: an HTTP answer
    assert k.last_failure["ns/a"].text == "HTTP 500 from http://s" and k.last_failure["ns/a"].at is not None
    assert k.ok == {"ns/a": 2} and k.failed == {"ns/a": 2}


def test_masking_and_userinfo():
    doc = {"spec": {"config": {"clientSecret": "x", "maxInFlightMessages": "5", "tokenUrl": "",
                               "nested": [{"password": "p"}]}}}
    out = data.masked(doc)
    assert out["spec"]["config"]["clientSecret"] == data.MASK and out["spec"]["config"]["maxInFlightMessages"] == "5"
    assert out["spec"]["config"]["nested"][0]["password"] == data.MASK and out["spec"]["config"]["tokenUrl"] == ""
    assert data.strip_userinfo("nats://u:p@127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert data.strip_userinfo("http://tok@[::1]:80/x") == "http://[::1]:80/x"
    assert data.strip_userinfo("nats://h:4222") == "nats://h:4222"


def test_message_payload_display():
    m = data.Message(1, "s", 0, data=b'{"a": "<b>"}')
    assert m.text == '{\n  "a": "<b>"\n}' and not m.binary
    assert data.Message(1, "s", 0, data=b"\xff\x00").binary
    big = data.Message(1, "s", 0, data=b"x" * (data.PAYLOAD_SHOWN + 1))
    assert big.truncated and len(big.text) == data.PAYLOAD_SHOWN


def test_auth_sources():
    assert ConsoleAuth.from_options("t", {"user": "u", "password": "p"}).source == "console-token"
    assert ConsoleAuth.from_options(None, {"user": "u", "password": "p"}).mode == "user"
    assert ConsoleAuth.from_options(None, {"token": "nt"}).source == "nats-token"
    assert not ConsoleAuth.from_options(None, {}).required
    assert "p" not in repr(ConsoleAuth.from_options(None, {"user": "u", "password": "p"}))


def test_up_routes_console_flags():
    server, eventing = up.split_argv(["-p", "1", "--console-port", "0", "--console-token", "t", "-m", "2"])
    assert server == ["-p", "1", "-m", "2"] and eventing == ["--console-port", "0", "--console-token", "t"]


async def _run(*args: str, timeout: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(str(VENV_BIN / "pyjetstream"), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def test_console_command(nats_server):
    code, out = await _run("console", "-s", nats_server.url, "--host", "0.0.0.0")
    assert code == 2 and "without any access control" in out
    code, out = await _run("console", "-s", "nats://127.0.0.1:1", "--port", "0", "--timeout", "1")
    assert code == 1 and "could not connect" in out
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "pyjetstream"), "console", "-s", nats_server.url, "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("pyjetstream console:"):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the console exited"
        assert line.startswith(f"pyjetstream console: http://127.0.0.1:{port} (NATS nats://127.0.0.1:")

        async def answers() -> bool:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/streams") as r:
                return r.status == 200
        await wait_until(answers, timeout=10, what="the console to answer")
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
