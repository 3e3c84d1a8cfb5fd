"""No single request, however expensive, holds the event loop: while clients flood the most
expensive JetStream API calls on a big stream (wildcard gets that must scan, subject details
over many subjects, filtered purges, consumer pending counts, a stream update that trims) and
the monitoring listings of a
connection with 20000 subscriptions, a bystander's request/reply pings stay fast.

The server runs in-process so that the test can also watch the loop itself: a task that
sleeps 1 ms at a time records the longest pass (the loop lag, in the loop thread's CPU time).
The bounds are generous (250 ms of loop time, 1 s of bystander wall time, for a loaded 2-core
machine; a sliced request holds the loop about 10 ms) and bound
the bystander, never the expensive work. Without slicing (fair.SLICE_S huge) a single one of
these requests holds the loop for hundreds of ms on this stream, and the test fails.

Both measures leave out the time the garbage collector held the process: its full passes stop
every thread whatever runs, request or not, and are a process-wide matter of their own, bounded
with the collector counted in by test_fairness_gc.py (docs/security.md, "Fairness").
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from servers import flushed, start_in_process

from pyjetstream.jetstream import fair
from pyjetstream.server.server import Server

from .loop_lag import GC, LoopLag

pytestmark = pytest.mark.timeout(180)

N_MSGS = 120_000
N_SUBJECTS = 30_000  # past the stores' subject-table limit: wildcard queries read records
BOUND_S = 0.250        # loop held (CPU time of the loop's thread)
PING_BOUND_S = 1.0     # bystander's wall-clock wait: also counts scheduling on a busy machine;
                       # unsliced, these requests make it wait 1.5-3.7 s


@pytest.fixture(params=["memory", "file"])
async def big(request: Any, tmp_path: Path) -> AsyncIterator[tuple[Server, str]]:
    srv: Server = await start_in_process(tmp_path / "js", http_port=-1)
    nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
    for name, subj in (("BIG", "o.>"), ("P", "p.>")):
        r = json.loads((await nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(
            {"name": name, "subjects": [subj], "storage": request.param, "allow_direct": True}).encode())).data)
        assert "error" not in r, r
    r = json.loads((await nc.request("$JS.API.CONSUMER.CREATE.BIG.W", json.dumps(EXPENSIVE[7][1]).encode())).data)
    assert "error" not in r, r
    await nc.close()
    # filled in-process: publishing 120k messages over a socket would only slow the test
    jsa = srv.jetstream.accounts["$G"]
    for name, prefix in (("BIG", "o"), ("P", "p")):
        stream = jsa.streams[name]
        for i in range(N_MSGS):
            stream.process_msg(f"{prefix}.{i % N_SUBJECTS}.x", "", None, b"v" * 32)
            if i % 4096 == 0:
                await asyncio.sleep(0)
    yield srv, request.param
    await srv.shutdown()


EXPENSIVE: list[tuple[str, dict[str, Any]]] = [
    ("STREAM.MSG.GET.BIG", {"seq": 1, "next_by_subj": "o.*.none"}),  # scans every message
    ("STREAM.MSG.GET.BIG", {"last_by_subj": "o.*.none"}),  # scans every message backwards
    ("DIRECT.GET.BIG", {"seq": 1, "next_by_subj": "o.*.none"}),
    ("DIRECT.GET.BIG", {"batch": 5, "seq": 1, "next_by_subj": "o.1.*"}),
    ("STREAM.INFO.BIG", {"subjects_filter": "o.*.x"}),  # 30k subjects, counted and encoded
    ("STREAM.INFO.BIG", {"subjects_filter": ">"}),
    # a consumer's num_pending with a wildcard filter reads every message
    ("CONSUMER.INFO.BIG.W", {}),
    ("CONSUMER.CREATE.BIG.W", {"stream_name": "BIG", "config": {
        "durable_name": "W", "filter_subject": "o.*.none", "ack_policy": "explicit"}}),
    ("CONSUMER.LIST.BIG", {}),
]


async def _clients(url: str, http: str) -> tuple[list[int], float]:
    """The flooders, the purger and the bystander (with its responder): real nats-py clients,
    on their own event loop in another thread, as clients in other processes would be; and
    a monitoring client listing a connection with 20000 subscriptions, in detail."""
    port = url.rsplit(":", 1)[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    await reader.readline()
    writer.write(b'CONNECT {"verbose":false}\r\n' + b"".join(b"SUB m.%d %d\r\n" % (i, i) for i in range(20_000))
                 + b"PING\r\n")
    await writer.drain()
    while await reader.readline() != b"PONG\r\n":
        pass
    flooders = [await nats.connect(url) for _ in range(2)]
    purger = await nats.connect(url)
    responder = await nats.connect(url)
    bystander = await nats.connect(url)

    async def pong(msg: Any) -> None:
        await msg.respond(b"pong")

    await responder.subscribe("ping", cb=pong)
    await flushed(responder)
    done = asyncio.Event()
    answered: list[int] = [0, 0]

    async def flood(nc: nats.NATS, k: int) -> None:
        i = k
        while not done.is_set():
            subject, body = EXPENSIVE[i % len(EXPENSIVE)]
            i += 1
            try:
                await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=60)
            except nats.errors.NoRespondersError:
                pass  # a direct get that finds nothing answers with a status
            answered[k] += 1

    async def purge_flood(nc: nats.NATS) -> None:
        # purges with filters over many messages, then one that keeps a few per subject
        for body in ({"filter": "p.*.x", "keep": 2}, {"filter": "p.1*.x"}, {"filter": "p.>", "seq": 100_000}):
            r = json.loads((await nc.request("$JS.API.STREAM.PURGE.P", json.dumps(body).encode(), timeout=60)).data)
            assert r.get("success") is True, r
        # then a limit lowered by an update, which trims the stream in slices before answering
        cfg = json.loads((await nc.request("$JS.API.STREAM.INFO.P", b"", timeout=60)).data)["config"]
        cfg["max_msgs_per_subject"] = 1
        r = json.loads((await nc.request("$JS.API.STREAM.UPDATE.P", json.dumps(cfg).encode(), timeout=60)).data)
        assert r["state"]["messages"] == r["state"]["num_subjects"], r["state"]

    async def monitor_flood() -> None:
        async with aiohttp.ClientSession() as session:
            i = 0
            while not done.is_set():
                path = ("/connz?subs=detail", "/subsz?subs=1&offset=15000", "/connz?subs=1")[i % 3]
                i += 1
                async with session.get(http + path) as resp:
                    assert resp.status == 200
                    # not parsed here: a C json.loads of megabytes would hold this process's
                    # GIL, and so the server's loop, for as long as it takes
                    body = await resp.read()
                answered[2] += 1
                if path == "/connz?subs=detail":
                    assert b'"subscriptions": 20000,' in body and b'"subject": "m.19999"' in body

    answered.append(0)
    tasks = [asyncio.create_task(flood(nc, k)) for k, nc in enumerate(flooders)]
    tasks.append(asyncio.create_task(monitor_flood()))
    purging = asyncio.create_task(purge_flood(purger))
    worst_ping = 0.0
    t_end = time.monotonic() + 4.0
    while time.monotonic() < t_end or not purging.done():
        t, g = time.perf_counter(), GC.total
        r = await bystander.request("ping", b"", timeout=10)
        assert r.data == b"pong"
        worst_ping = max(worst_ping, time.perf_counter() - t - (GC.total - g))
        await asyncio.sleep(0.01)
    done.set()
    await asyncio.gather(*tasks, purging)
    for nc in [*flooders, purger, responder, bystander]:
        await nc.close()
    writer.close()
    return answered, worst_ping


async def test_bystander_stays_fast_while_expensive_requests_flood(big: tuple[Server, str]) -> None:
    srv, _storage = big
    lag = LoopLag()
    gc.callbacks.append(GC)
    lag.start()
    try:
        answered, worst_ping = await asyncio.to_thread(
            asyncio.run, _clients(f"nats://127.0.0.1:{srv.port}", f"http://127.0.0.1:{srv.monitor.port}"))
    finally:
        await lag.stop()
        gc.callbacks.remove(GC)
    # the flood really ran: each client got answers to expensive requests all along
    assert min(answered) >= 2, answered
    assert lag.worst < BOUND_S, f"event loop held for {lag.worst * 1000:.0f} ms"
    assert worst_ping < PING_BOUND_S, f"bystander waited {worst_ping * 1000:.0f} ms"
    # what the purges removed is what nats-server's PurgeEx would: two kept per subject,
    # then the subjects 1, 10-19, 100-199, ... emptied, then everything below seq 100000
    st = srv.jetstream.accounts["$G"].streams["P"].store
    assert st.first_seq >= 100_000
    assert all(not n.startswith("p.1") for n in st.subject_names())


def _without_ts(doc: Any) -> Any:
    """An API answer without its `ts` fields (the time it was made)."""
    if isinstance(doc, dict):
        return {k: _without_ts(v) for k, v in doc.items() if k != "ts"}
    if isinstance(doc, list):
        return [_without_ts(v) for v in doc]
    return doc


async def test_the_answers_are_those_of_an_unsliced_run(big: tuple[Server, str], monkeypatch: Any) -> None:
    """Slicing changes when the work happens, not its result: every expensive request answers
    the same with slices of a few microseconds as with no slicing at all."""
    srv, _storage = big
    nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
    probes = [*EXPENSIVE, ("STREAM.MSG.GET.BIG", {"seq": 1, "next_by_subj": "o.29999.*"}),
              ("STREAM.MSG.GET.BIG", {"last_by_subj": "o.0.*"}),
              ("DIRECT.GET.BIG", {"last_by_subj": "o.*.x"})]

    async def answers() -> list[tuple[bytes, Any]]:
        out = []
        for subject, body in probes:
            m = await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=60)
            data = m.data
            if subject.startswith(("STREAM.INFO", "CONSUMER.")):
                data = json.dumps(_without_ts(json.loads(data)), sort_keys=True).encode()
            out.append((data, m.headers and {k: v for k, v in m.headers.items() if k != "Nats-Time-Stamp"}))
        return out

    monkeypatch.setattr(fair, "SLICE_S", 1000.0)
    whole = await answers()
    monkeypatch.setattr(fair, "SLICE_S", 0.000_01)
    monkeypatch.setattr(fair, "WINDOW", 97)
    sliced = await answers()
    assert sliced == whole
    info = json.loads(whole[4][0])
    assert info["total"] == N_SUBJECTS and len(info["state"]["subjects"]) == N_SUBJECTS
    assert json.loads(whole[6][0])["num_pending"] == 0
    assert json.loads(whole[8][0])["consumers"][0]["name"] == "W"
    await nc.close()
