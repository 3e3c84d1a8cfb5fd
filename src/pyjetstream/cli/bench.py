"""`pyjetstream bench SUBJECT`: publish and consume load, with progress bars and a summary table.

Owns the benchmark client: N publisher and M subscriber connections (core NATS, or JetStream
with a throwaway stream and pull consumers), live rich progress bars on stderr when it is a
terminal, and a rounded summary table (or JSON) on stdout. It measures what a nats-py client
sees; it must not reach into server internals.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

from pyjetstream.cli import common as c


@dataclass
class Sample:
    """What one client did: messages and payload bytes over a span of wall time."""

    role: str
    client: int
    msgs: int
    size: int
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 1) / 1e9

    @property
    def rate(self) -> float:
        return self.msgs / self.seconds

    @property
    def throughput(self) -> float:
        return self.msgs * self.size / self.seconds


def aggregate(role: str, samples: list[Sample]) -> Sample | None:
    """The group's rate spans from the first start to the last end, as the nats CLI reports it."""
    mine = [s for s in samples if s.role == role]
    if not mine:
        return None
    return Sample(role, 0, sum(s.msgs for s in mine), mine[0].size,
                  min(s.start_ns for s in mine), max(s.end_ns for s in mine))


def render_summary(samples: list[Sample], title: str) -> str:
    table = c.Table(title, ["Role", "Client", "Messages", "Msg Size", "Duration", "Msgs/sec", "Throughput"],
                    right_align=frozenset({2, 3, 4, 5, 6}))
    for role in ("Publish", "Subscribe"):
        group = sorted((s for s in samples if s.role == role), key=lambda s: s.client)
        rows = group + ([aggregate(role, group)] if len(group) > 1 else [])
        for s in rows:
            if s is None:
                continue
            table.add_row(role, "all" if s.client == 0 else f"#{s.client}", c.fmt_int(s.msgs), c.human_bytes(s.size),
                          c.human_duration(s.end_ns - s.start_ns), c.fmt_int(round(s.rate)),
                          f"{c.human_bytes(s.throughput)}/s")
    return table.render()


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class _Progress:
    """rich progress bars on stderr when it is a terminal; silent otherwise (scripts, tests)."""

    def __init__(self, enabled: bool) -> None:
        self._bars: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True), transient=False)

    def __enter__(self) -> _Progress:
        if self._bars is not None:
            self._bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(*exc)

    def add(self, label: str, total: int) -> Any:
        return self._bars.add_task(label, total=total) if self._bars is not None else None

    def advance(self, task: Any, n: int) -> None:
        if self._bars is not None and task is not None:
            self._bars.advance(task, n)


async def _connect_many(args: argparse.Namespace, n: int, role: str) -> list[Any]:
    return [await c.connect(args, name=f"pyjetstream bench {role} #{i + 1}") for i in range(n)]


async def run_bench(args: argparse.Namespace, progress: _Progress) -> list[Sample]:
    payload = b"x" * args.size
    pubs = await _connect_many(args, args.pub, "pub")
    subs = await _connect_many(args, args.sub, "sub")
    admin = pubs[0] if pubs else subs[0] if subs else await c.connect(args)
    samples: list[Sample] = []
    stream = args.stream
    pub_tasks: list[asyncio.Task[Sample]] = []
    try:
        # With no publishers, JetStream consumers read a stream an earlier `--keep` run left.
        if args.js and args.pub:
            cfg = {"name": stream, "subjects": [args.subject], "storage": args.storage, "retention": "limits"}
            try:
                await c.api_request(admin, f"STREAM.DELETE.{stream}", None, args.timeout)
            except c.APIError:
                pass  # nothing left over from an earlier run
            await c.api_request(admin, f"STREAM.CREATE.{stream}", cfg, args.timeout,
                                context="could not create the benchmark stream")

        # Core subscribers must be listening before anyone publishes.
        core_waiters: list[asyncio.Future[None]] = []
        sub_samples: list[Sample] = []
        if not args.js:
            for i, nc in enumerate(subs, 1):
                core_waiters.append(await _core_subscriber(nc, args, i, progress, sub_samples))
            for nc in subs:
                await c.flushed(nc, args.timeout)

        pub_tasks += [asyncio.create_task(_publisher(nc, args, i, n, payload, progress))
                     for i, (nc, n) in enumerate(zip(pubs, _split(args.msgs, max(args.pub, 1)), strict=False), 1)]
        pub_samples = list(await asyncio.gather(*pub_tasks))
        samples += pub_samples

        if args.js:
            sub_samples += await asyncio.gather(*[_js_consumer(nc, args, i, progress)
                                                   for i, nc in enumerate(subs, 1)])
        else:
            await asyncio.wait_for(asyncio.gather(*core_waiters), args.timeout + args.msgs / 1000)
        samples += sub_samples
    finally:
        # One failed publisher makes gather() raise while the others still run: stop them
        # before their connections close under them (and collect what they raised).
        for task in pub_tasks:
            task.cancel()
        await asyncio.gather(*pub_tasks, return_exceptions=True)
        if args.js and args.pub and not args.keep:
            try:
                await c.api_request(admin, f"STREAM.DELETE.{stream}", None, args.timeout)
            except c.CLIError:
                pass  # best effort: the run's result matters more than the cleanup
        for nc in {id(x): x for x in [*pubs, *subs, admin]}.values():
            if not nc.is_closed:
                await nc.close()
    return samples


async def _publisher(nc: Any, args: argparse.Namespace, client: int, count: int, payload: bytes,
                     progress: _Progress) -> Sample:
    task = progress.add(f"Pub #{client}", count)
    start = time.perf_counter_ns()
    if args.js:
        js = nc.jetstream(timeout=args.timeout)
        window = max(1, args.window)
        sent = 0
        while sent < count:
            batch = min(window, count - sent)
            await asyncio.gather(*[js.publish(args.subject, payload) for _ in range(batch)])
            sent += batch
            progress.advance(task, batch)
    else:
        step = 1000
        for i in range(count):
            await nc.publish(args.subject, payload)
            if (i + 1) % step == 0:
                progress.advance(task, step)
        await nc.flush(timeout=args.timeout + count / 10000)
        progress.advance(task, count % step)
    return Sample("Publish", client, count, len(payload), start, time.perf_counter_ns())


async def _core_subscriber(nc: Any, args: argparse.Namespace, client: int, progress: _Progress,
                           out: list[Sample]) -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = progress.add(f"Sub #{client}", args.msgs)
    state = {"n": 0, "start": 0}

    async def on_msg(msg: Any) -> None:
        if state["n"] == 0:
            state["start"] = time.perf_counter_ns()
        state["n"] += 1
        if state["n"] % 1000 == 0:
            progress.advance(task, 1000)
        if state["n"] == args.msgs and not done.done():
            progress.advance(task, args.msgs % 1000)
            out.append(Sample("Subscribe", client, state["n"], len(msg.data), state["start"], time.perf_counter_ns()))
            done.set_result(None)

    await nc.subscribe(args.subject, cb=on_msg, pending_msgs_limit=max(65536, args.msgs + 1))
    return done


async def _js_consumer(nc: Any, args: argparse.Namespace, client: int, progress: _Progress) -> Sample:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    js = nc.jetstream(timeout=args.timeout)
    ack = AckPolicy.EXPLICIT if args.ack else AckPolicy.NONE
    psub = await js.pull_subscribe(args.subject, stream=args.stream,
                                   config=ConsumerConfig(ack_policy=ack, deliver_policy=DeliverPolicy.ALL))
    task = progress.add(f"Sub #{client}", args.msgs)
    received, size = 0, args.size
    start = time.perf_counter_ns()
    try:
        while received < args.msgs:
            batch = await psub.fetch(min(args.batch, args.msgs - received), timeout=args.timeout)
            for msg in batch:
                if args.ack:
                    await msg.ack()
                size = len(msg.data)
            received += len(batch)
            progress.advance(task, len(batch))
    finally:
        await psub.unsubscribe()
    return Sample("Subscribe", client, received, size, start, time.perf_counter_ns())


def cmd_bench(args: argparse.Namespace) -> int:
    import sys

    async def body(_nc: Any) -> None:
        if args.pub < 0 or args.sub < 0 or args.pub + args.sub == 0:
            raise c.CLIError("need at least one publisher or subscriber", c.EXIT_USAGE)
        show = sys.stderr.isatty() and not args.no_progress
        with _Progress(show) as progress:
            samples = await run_bench(args, progress)
        kind = "JetStream" if args.js else "NATS"
        if args.json:
            c.print_json([{**s.__dict__, "msgs_per_sec": s.rate, "bytes_per_sec": s.throughput} for s in samples])
            return
        c.out(render_summary(samples, f"{kind} benchmark: {c.fmt_int(args.msgs)} msgs of "
                                      f"{c.human_bytes(args.size)} on {args.subject}"))
        for role, label in (("Publish", "Pub"), ("Subscribe", "Sub")):
            agg = aggregate(role, samples)
            if agg is not None:
                c.out(f"{label} stats: {c.fmt_int(round(agg.rate))} msgs/sec ~ {c.human_bytes(agg.throughput)}/sec")

    return c.run(args, body, connect_first=False)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parent = c.option_parent(common)
    p = subparsers.add_parser("bench", parents=[parent], help="publish/consume benchmark")
    p.add_argument("subject")
    p.add_argument("--pub", type=int, default=1, help="publisher connections")
    p.add_argument("--sub", type=int, default=0, help="subscriber connections")
    p.add_argument("--msgs", type=int, default=100_000, help="messages to publish (split over publishers)")
    p.add_argument("--size", type=int, default=128, help="payload bytes")
    p.add_argument("--js", action="store_true", help="use JetStream: a stream, acked publishes, pull consumers")
    p.add_argument("--stream", default="benchstream", help="JetStream stream to (re)create")
    p.add_argument("--storage", choices=("file", "memory"), default="file")
    p.add_argument("--window", type=int, default=256, help="JetStream publishes in flight per publisher")
    p.add_argument("--batch", type=int, default=500, help="JetStream fetch batch size")
    p.add_argument("--ack", action="store_true", help="JetStream consumers acknowledge every message")
    p.add_argument("--keep", action="store_true", help="keep the JetStream stream afterwards")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.add_json_flag(p)
    p.set_defaults(func=cmd_bench)
