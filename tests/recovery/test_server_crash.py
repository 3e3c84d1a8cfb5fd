"""Crash durability of a real server process: SIGKILL at random moments, then check what was acked.

Owns the server-level proof that a PubAck (and an ack-sync'd consumer ack) outlives `kill -9`:
a `pyjetstream server` subprocess takes pipelined nats-py publishes, is killed while hundreds
are in flight, restarts on the same store directory, and must hold every acknowledged message
at the acknowledged sequence, in publish order, with no gap or duplicate sequence. It must not
reach into the store files: everything is observed through the NATS API, as a client would.

The randomness is seeded (`CRASH_SEED` overrides it); a failure message names the seed and the
cycle so that a run can be repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import TooManyStalledMsgsError
from servers import ServerProc

from pyjetstream.jetstream.store.file import records_end

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CRASH_SEED", "20261126"))
STREAM = "CRASH"
N_SUBJECTS = 7


def server(tmp: Path, port: int | None = None, sync_interval: str | None = None) -> ServerProc:
    """Our server with JetStream and its default durability (fsync before PubAck), or with
    `sync_interval` (PubAck once the OS has the data). CRASH_KIND=nats-server runs the same
    checks on the reference, to check the expectations."""
    kind = os.environ.get("CRASH_KIND", "pyjetstream")
    store = str(tmp / "store")
    config = None if sync_interval is None else f'jetstream {{ store_dir: "{store}", sync_interval: "{sync_interval}" }}'
    return ServerProc(kind, tmp / "run", ["-js", "-sd", store], port=port, config=config)


def payload(i: int) -> bytes:
    # the id first, then filler of varying length so that records straddle write batches unevenly
    return b"%09d|" % i + bytes([65 + i % 26]) * (i * 7919 % 180)


def subject(i: int) -> str:
    return f"crash.{i % N_SUBJECTS}"


def payload_id(data: bytes) -> int:
    return int(data[:9])


async def connect(srv: ServerProc) -> Any:
    return await nats.connect(srv.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5)


async def api(nc: Any, subj: str, req: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps(req).encode() if req is not None else b""
    msg = await nc.request(f"$JS.API.{subj}", body, timeout=10)
    return json.loads(msg.data)


async def read_stream(js: Any, last_seq: int) -> list[tuple[int, str, bytes]]:
    """Every message of the stream through an ephemeral pull consumer: (stream seq, subject, data)."""
    out: list[tuple[int, str, bytes]] = []
    if last_seq == 0:
        return out
    psub = await js.pull_subscribe("crash.>", stream=STREAM,
                                   config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30))
    try:
        while not out or out[-1][0] < last_seq:
            try:
                msgs = await psub.fetch(1000, timeout=5)
            except nats.errors.TimeoutError:
                break
            out.extend((m.metadata.sequence.stream, m.subject, m.data) for m in msgs)
    finally:
        with contextlib.suppress(nats.errors.Error):
            await psub.unsubscribe()
    return out


async def verify(nc: Any, acked: dict[int, int], where: str, conns: int = 1) -> int:
    """Check the restarted server against every PubAck seen so far; returns the highest payload id
    stored. `conns`: how many connections published (ids rise per connection, id % conns)."""
    js = nc.jetstream(timeout=10)
    info = await api(nc, f"STREAM.INFO.{STREAM}")
    assert "error" not in info, (where, info)
    st = info["state"]
    top_acked = max(acked.values(), default=0)
    assert st["last_seq"] >= top_acked, (where, st, top_acked)
    # nothing is ever deleted here, so the stream must be one unbroken run from seq 1
    assert st["first_seq"] == 1 or st["messages"] == 0, (where, st)
    assert st["messages"] == st["last_seq"], (where, st)
    assert not st.get("num_deleted"), (where, st)
    lost = (st.get("lost") or {}).get("msgs") or []
    assert all(s > top_acked for s in lost), (where, "recovery dropped an acked message", lost, top_acked)

    msgs = await read_stream(js, st["last_seq"])
    seqs = [m[0] for m in msgs]
    assert seqs == list(range(1, st["last_seq"] + 1)), (where, "gap, duplicate or reorder", len(seqs))
    ids = [payload_id(m[2]) for m in msgs]
    assert len(set(ids)) == len(ids), (where, "a message was stored twice")
    # each connection's ids were published in increasing order: the stream keeps that order
    for k in range(conns):
        own = [i for i in ids if i % conns == k]
        assert all(a < b for a, b in zip(own, own[1:], strict=False)), (where, f"connection {k} reordered")
    for seq, subj, data in msgs:
        i = payload_id(data)
        assert (subj, data) == (subject(i), payload(i)), (where, seq, "damaged message")
    by_seq = {m[0]: payload_id(m[2]) for m in msgs}
    missing = {i: s for i, s in acked.items() if by_seq.get(s) != i}
    assert not missing, (where, f"{len(missing)} acked messages missing or moved", sorted(missing.items())[:10])

    # the direct read path too, on a few acked messages
    rng = random.Random(len(acked))
    for i, s in rng.sample(sorted(acked.items()), min(20, len(acked))):
        m = await js.get_msg(STREAM, s)
        assert (m.seq, m.subject, m.data) == (s, subject(i), payload(i)), (where, s)
    return max(ids, default=-1)


async def publish_until_killed(ncs: list[Any], srv: ServerProc, rng: random.Random, base: int,
                               acked: dict[int, int]) -> int:
    """Pipeline publishes from every connection (a random window of hundreds in flight on each)
    until the server is SIGKILLed at a random moment: after a random number of acks, or at a
    random wall-clock instant from a timer thread. Connection k publishes ids base + k, base + k + C,
    ... (C connections), so each connection's ids rise. Returns the next unused base."""
    conns = len(ncs)
    base = -(-base // conns) * conns  # a multiple of conns, so that id % conns names the connection
    kill_after_acks = rng.randint(50, 2500)
    by_timer = rng.random() < 0.4
    killed = threading.Event()

    def kill() -> None:
        if not killed.is_set():
            killed.set()
            srv.send_signal(signal.SIGKILL)

    timer = threading.Timer(rng.uniform(0.02, 0.6), kill) if by_timer else None
    acked_now = 0
    futures: list[asyncio.Future[Any]] = []
    next_ids = [base + k for k in range(conns)]

    def on_ack(i: int, fut: asyncio.Future[Any]) -> None:
        nonlocal acked_now
        if fut.cancelled() or fut.exception() is not None:
            return
        ack = fut.result()
        assert ack.stream == STREAM and not ack.duplicate, ack
        assert i not in acked
        acked[i] = ack.seq
        acked_now += 1
        if not by_timer and acked_now >= kill_after_acks:
            kill()

    async def publisher(k: int, nc: Any) -> None:
        js = nc.jetstream(timeout=10, publish_async_max_pending=rng.randint(200, 900))
        i = next_ids[k]
        try:
            while not killed.is_set() and len(futures) < 20_000:
                try:
                    fut = await js.publish_async(subject(i), payload(i), wait_stall=0.5)
                except (TooManyStalledMsgsError, nats.errors.Error, OSError):
                    break
                fut.add_done_callback(lambda f, i=i: on_ack(i, f))
                futures.append(fut)
                i += conns
        finally:
            next_ids[k] = i

    if timer is not None:
        timer.start()
    try:
        await asyncio.gather(*(publisher(k, nc) for k, nc in enumerate(ncs)))
        if not killed.is_set():
            kill()  # the safety cap on one cycle was reached
        srv.wait(10)
        # Give acks already read from the socket a chance to run their callbacks; whatever is
        # still pending now has an unknown fate and is simply not counted as acknowledged.
        await asyncio.sleep(0)
    finally:
        if timer is not None:
            timer.cancel()
        for f in futures:
            f.cancel()
        for nc in ncs:
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(nc.close(), 5)
    return max(next_ids)


@pytest.mark.parametrize(("sync_interval", "cycles", "conns"), [(None, 10, 2), ("2m", 3, 1)],
                         ids=["fsync", "sync_interval"])
async def test_acked_publishes_survive_repeated_kill_9(tmp_path: Path, sync_interval: str | None, cycles: int,
                                                       conns: int) -> None:
    """With the default, an acked message is on disk before its PubAck; with `sync_interval` it is
    at least with the OS, which a process crash does not lose either (power loss could). With two
    connections, one group commit mixes both connections' messages."""
    rng = random.Random(SEED)
    srv = server(tmp_path, sync_interval=sync_interval).start()
    port = srv.port
    acked: dict[int, int] = {}  # payload id -> acked stream seq
    next_id = 0
    try:
        nc = await connect(srv)
        created = await api(nc, f"STREAM.CREATE.{STREAM}",
                            StreamConfig(name=STREAM, subjects=["crash.>"]).as_dict())
        assert "error" not in created, created
        for cycle in range(cycles):
            where = f"seed={SEED} cycle={cycle}"
            before = len(acked)
            ncs = [nc] + [await connect(srv) for _ in range(conns - 1)]
            next_id = await publish_until_killed(ncs, srv, rng, next_id, acked)
            assert len(acked) > before, (where, "no publish was acknowledged before the kill")
            srv = server(tmp_path, port=port, sync_interval=sync_interval).start()
            nc = await connect(srv)
            top = await verify(nc, acked, where, conns)
            # ids the dead server stored but never acked are in the stream now: skip past them
            next_id = max(next_id, top + 1)
        await nc.close()
        # and a clean stop after all those crashes keeps everything too
        assert srv.stop() in (0, 1)  # it exits by itself (nats-server, under CRASH_KIND, exits 1)
        srv = server(tmp_path, port=port, sync_interval=sync_interval).start()
        nc = await connect(srv)
        await verify(nc, acked, f"seed={SEED} clean restart", conns)
        await nc.close()
    finally:
        srv.stop(signal.SIGKILL)


async def test_consumer_acks_and_pending_survive_kill_9(tmp_path: Path) -> None:
    """A durable pull consumer: what was ack-sync'd is never delivered again after kill -9, and
    nothing unacknowledged is forgotten (it comes again, at the latest after ack_wait)."""
    rng = random.Random(SEED + 1)
    n = 400
    srv = server(tmp_path).start()
    port = srv.port
    try:
        nc = await connect(srv)
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name=STREAM, subjects=["crash.>"]))
        futs = [await js.publish_async(subject(i), payload(i)) for i in range(n)]
        assert [a.seq for a in await asyncio.gather(*futs)] == list(range(1, n + 1))
        await js.add_consumer(STREAM, ConsumerConfig(durable_name="worker", ack_policy=AckPolicy.EXPLICIT,
                                                     ack_wait=1.0, max_ack_pending=-1))
        acked: set[int] = set()        # ack-sync'd: the server promised it is durable
        maybe: set[int] = set()        # fire-and-forget acks: either fate is allowed
        seen_unacked: set[int] = set()  # delivered, deliberately left pending

        async def consume(nc: Any, batches: int, ack_share: float, where: str) -> None:
            js = nc.jetstream(timeout=10)
            psub = await js.pull_subscribe_bind("worker", stream=STREAM)
            for _ in range(batches):
                try:
                    msgs = await psub.fetch(rng.randint(20, 120), timeout=3)
                except nats.errors.TimeoutError:
                    continue
                for m in msgs:
                    seq = m.metadata.sequence.stream
                    assert seq not in acked, (where, f"seq {seq} was ack-sync'd and is delivered again",
                                              m.metadata)
                    assert m.data == payload(seq - 1), (where, seq)
                    maybe.discard(seq)
                    r = rng.random()
                    if r < ack_share:
                        await m.ack_sync(timeout=5)
                        acked.add(seq)
                        seen_unacked.discard(seq)
                    elif r < ack_share + 0.15:
                        await m.ack()
                        maybe.add(seq)
                        seen_unacked.discard(seq)
                    else:
                        seen_unacked.add(seq)

        for cycle in range(4):
            where = f"seed={SEED + 1} cycle={cycle}"
            await consume(nc, rng.randint(2, 4), 0.6, where)
            srv.send_signal(signal.SIGKILL)
            srv.wait(10)
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(nc.close(), 5)
            srv = server(tmp_path, port=port).start()
            nc = await connect(srv)
            info = await api(nc, f"CONSUMER.INFO.{STREAM}.worker")
            assert "error" not in info, (where, info)
            floor = info["ack_floor"]["stream_seq"]
            certain_floor = next(s for s in range(1, n + 2) if s not in acked) - 1
            possible_floor = next(s for s in range(1, n + 2) if s not in acked and s not in maybe) - 1
            assert certain_floor <= floor <= possible_floor, (where, floor, certain_floor, possible_floor)
            # pending (delivered, unacked) survives: the left-over messages are still owed
            owed = seen_unacked - acked
            assert info["num_ack_pending"] + info["num_pending"] >= len(owed - set(range(1, floor + 1))), (
                where, info)

        # Drain: everything never acknowledged must come (again); fire-and-forget acks may or may
        # not have been kept, so those may come again too. Done when the consumer owes nothing.
        where = f"seed={SEED + 1} drain"
        js = nc.jetstream(timeout=10)
        psub = await js.pull_subscribe_bind("worker", stream=STREAM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        everything = set(range(1, n + 1))
        while loop.time() < deadline:
            info = await api(nc, f"CONSUMER.INFO.{STREAM}.worker")
            if not everything - acked - maybe and info["num_ack_pending"] == 0 and info["num_pending"] == 0:
                break
            try:
                msgs = await psub.fetch(200, timeout=1.5)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                seq = m.metadata.sequence.stream
                assert seq not in acked, (where, f"seq {seq} was ack-sync'd and is delivered again")
                await m.ack_sync(timeout=5)
                acked.add(seq)
                maybe.discard(seq)
        assert not everything - acked - maybe, (where, "never delivered again", sorted(everything - acked - maybe)[:20])
        info = await api(nc, f"CONSUMER.INFO.{STREAM}.worker")
        assert (info["ack_floor"]["stream_seq"], info["num_ack_pending"], info["num_pending"]) == (n, 0, 0), info

        # a last kill -9 keeps the fully acked state
        srv.send_signal(signal.SIGKILL)
        srv.wait(10)
        with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(nc.close(), 5)
        srv = server(tmp_path, port=port).start()
        nc = await connect(srv)
        info = await api(nc, f"CONSUMER.INFO.{STREAM}.worker")
        assert (info["ack_floor"]["stream_seq"], info["num_ack_pending"], info["num_pending"]) == (n, 0, 0), info
        await nc.close()
    finally:
        srv.stop(signal.SIGKILL)



async def test_acknowledged_api_changes_survive_kill_9(tmp_path: Path) -> None:
    """Every JetStream API change answered with success is still there after a kill -9 that
    follows the answers immediately: stream update (limits applied), message delete with and
    without erase, purges (filter, keep, seq, all), rollup, consumer create and delete, removal
    by ack on an interest stream, stream delete. One stream per change, one crash for all, and
    every lost change is listed."""
    srv = server(tmp_path).start()
    port = srv.port
    nc = await connect(srv)

    async def ok(subj: str, req: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await api(nc, subj, req)
        assert "error" not in r, (subj, r)
        return r

    def cfg(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "subjects": [f"{name.lower()}.>"], "storage": "file", "num_replicas": 1, **extra}

    try:
        js = nc.jetstream(timeout=10)
        names = ["UPD", "DNE", "DER", "PF", "PK", "PS", "PA", "RU", "CC", "CD", "INT", "SD"]
        for name in names:
            extra: dict[str, Any] = {"allow_rollup_hdrs": True} if name == "RU" else {}
            if name == "INT":
                extra["retention"] = "interest"
            await ok(f"STREAM.CREATE.{name}", cfg(name, **extra))
            if name in ("CD", "INT"):
                await ok(f"CONSUMER.DURABLE.CREATE.{name}.dur", {"stream_name": name, "config": {
                    "durable_name": "dur", "ack_policy": "explicit"}})
            for i in range(20):
                await js.publish(f"{name.lower()}.{i % 3}", b"%d" % i)
        psub = await js.pull_subscribe_bind("dur", stream="INT")
        fetched = await psub.fetch(3, timeout=5)

        # The changes, back to back, each acknowledged by the server; then kill -9 at once.
        await ok("STREAM.UPDATE.UPD", cfg("UPD", max_msgs=15))
        await ok("STREAM.MSG.DELETE.DNE", {"seq": 10, "no_erase": True})
        await ok("STREAM.MSG.DELETE.DER", {"seq": 10})
        await ok("STREAM.PURGE.PF", {"filter": "pf.1"})
        await ok("STREAM.PURGE.PK", {"filter": "pk.1", "keep": 2})
        await ok("STREAM.PURGE.PS", {"seq": 8})
        await ok("STREAM.PURGE.PA", {})
        rolled = await js.publish("ru.2", b"rolled", headers={"Nats-Rollup": "sub"})
        await ok("CONSUMER.DURABLE.CREATE.CC.dur", {"stream_name": "CC", "config": {
            "durable_name": "dur", "ack_policy": "explicit", "filter_subject": "cc.0"}})
        await ok("CONSUMER.DELETE.CD.dur")
        for m in fetched:
            await m.ack_sync()
        await ok("STREAM.DELETE.SD")

        srv.send_signal(signal.SIGKILL)
        srv.wait(10)
        with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(nc.close(), 5)
        srv = server(tmp_path, port=port).start()
        nc = await connect(srv)

        async def state(name: str) -> dict[str, Any]:
            info = await api(nc, f"STREAM.INFO.{name}", {"deleted_details": True, "subjects_filter": ">"})
            return info.get("state") or info

        def every(step: int, skip: int) -> list[int]:
            return [s for s in range(1, 21) if (s - 1) % 3 == skip][:step]

        lost: list[str] = []

        def expect(what: str, got: Any, want: Any) -> None:
            if got != want:
                lost.append(f"{what}: got {got!r}, want {want!r}")

        def seqs(st: dict[str, Any]) -> tuple[Any, ...]:
            return st.get("messages"), st.get("first_seq"), st.get("last_seq"), sorted(st.get("deleted") or [])

        expect("update max_msgs=15 (limit applied)", seqs(await state("UPD")), (15, 6, 20, []))
        expect("delete seq 10, no_erase", seqs(await state("DNE")), (19, 1, 20, [10]))
        expect("delete seq 10, erase", seqs(await state("DER")), (19, 1, 20, [10]))
        expect("purge filter pf.1", seqs(await state("PF")), (13, 1, 20, every(7, 1)))
        expect("purge filter pk.1 keep 2", seqs(await state("PK")), (15, 1, 20, every(5, 1)))
        expect("purge up to seq 8", seqs(await state("PS")), (13, 8, 20, []))
        expect("purge all", seqs(await state("PA")), (0, 21, 20, []))
        ru = await state("RU")
        expect("rollup on ru.2", (ru.get("subjects") or {}).get("ru.2"), 1)
        expect("rollup kept the rollup message", (ru.get("last_seq"), ru.get("messages")), (rolled.seq, 15))
        cc = await api(nc, "CONSUMER.INFO.CC.dur")
        expect("consumer create", (cc.get("config") or {}).get("filter_subject"), "cc.0")
        cd = await api(nc, "CONSUMER.INFO.CD.dur")
        expect("consumer delete", (cd.get("error") or {}).get("err_code"), 10014)
        expect("interest removal by ack", seqs(await state("INT"))[:2], (17, 4))
        ci = await api(nc, "CONSUMER.INFO.INT.dur")
        expect("interest consumer ack floor", (ci.get("ack_floor") or {}).get("stream_seq"), 3)
        sd = await api(nc, "STREAM.INFO.SD")
        expect("stream delete", (sd.get("error") or {}).get("err_code"), 10059)
        assert not lost, "acknowledged changes lost by kill -9:\n" + "\n".join(lost)
        await nc.close()
    finally:
        srv.stop(signal.SIGKILL)


def segment_files(tmp: Path, stream: str) -> list[Path]:
    # the layout is the JetStream manager's (docs in manager.py); the account directory's name
    # is escaped on disk, so it is matched rather than spelled
    return sorted((tmp / "store" / "jetstream").glob(f"*/streams/{stream}/msgs/*.seg"))


async def test_torn_tail_and_flipped_byte_are_reported_not_fatal(tmp_path: Path) -> None:
    """After kill -9, damage the log the way a crash or a bad disk would: cut the last record
    short, and flip one byte inside an older record. The server must still start, drop exactly
    those two messages, say so in the stream state (`lost`) and its log, and never serve the
    damaged bytes."""
    if os.environ.get("CRASH_KIND", "pyjetstream") != "pyjetstream":
        pytest.skip("looks at our store layout")
    srv = server(tmp_path).start()
    port = srv.port
    try:
        nc = await connect(srv)
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="TORN", subjects=["torn.>"]))
        futs = [await js.publish_async(f"torn.{i % 3}", payload(i)) for i in range(50)]
        assert [a.seq for a in await asyncio.gather(*futs)] == list(range(1, 51))
        srv.send_signal(signal.SIGKILL)
        srv.wait(10)
        with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(nc.close(), 5)

        segs = segment_files(tmp_path, "TORN")
        assert segs, "no segment file where the manager's layout says"
        raw = bytearray(segs[0].read_bytes())
        at = raw.index(payload(24)) + 12  # inside seq 25's payload, past its id
        raw[at] ^= 0x55
        segs[0].write_bytes(bytes(raw))
        last = segs[-1]
        os.truncate(last, records_end(str(last)) - 5)  # seq 50 is now a torn write

        srv = server(tmp_path, port=port).start()
        nc = await connect(srv)
        js = nc.jetstream(timeout=10)
        served: dict[int, bytes] = {}
        for seq in range(1, 51):
            try:
                served[seq] = (await js.get_msg("TORN", seq)).data
            except nats.js.errors.NotFoundError:
                pass
        assert {s: d for s, d in served.items() if d != payload(s - 1)} == {}, "damaged bytes were served"
        assert sorted(set(range(1, 51)) - set(served)) == [25, 50]
        info = await api(nc, "STREAM.INFO.TORN")
        st = info["state"]
        assert (st["messages"], st["last_seq"]) == (48, 49), st
        assert sorted((st.get("lost") or {}).get("msgs") or []) == [25, 50], st
        assert "lost" in srv.log()
        # the stream goes on from the last good sequence
        assert (await js.publish("torn.0", b"after")).seq == 50
        await nc.close()
    finally:
        srv.stop(signal.SIGKILL)
