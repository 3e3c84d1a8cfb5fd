"""The console's heartbeat: one sample of the system per interval, shared by every page.

Owns the latest `Snapshot` (account, streams, consumers, Subscriptions with their status,
dead-letter counts, eventing delivery counters), the chart history (last 10 minutes of
messages in/out, deliveries and failures per second, lag per consumer) and the tick that
wakes the live (server-sent events) streams. Subscriptions are followed with
`SubscriptionStore.watch` (no listing per tick) and their statuses read with direct gets.
Delivery counters come from the eventing metrics: the registry itself when the console runs
inside `pyjetstream up`, else the publisher proxy's `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats.errors

from pyjetstream.cli import common as c
from pyjetstream.console import data
from pyjetstream.console.settings import ConsoleSettings
from pyjetstream.eventing import dispatcher as d
from pyjetstream.eventing.subscriptions import Subscription, SubscriptionStore

log = logging.getLogger("pyjetstream.console")

MAX_STREAMS = 500          # streams whose consumers are sampled
MAX_TRACKED = 2000         # consumers with a lag history
SERIES = ("in", "out", "deliveries", "failures")


@dataclass
class Failure:
    """The latest failed delivery the console knows of for one Subscription."""

    text: str
    at: float | None            # wall time; None: before the console started
    count: int = 0              # failed deliveries counted so far
    attempt: int | None = None  # the event's delivery attempt that failed (from the status)
    recovered_at: float | None = None  # a delivery succeeded after it (from the status)
    code: int | None = None     # the sink's HTTP status, None without an answer


def status_failure(status: dict[str, Any] | None) -> Failure | None:
    """The dispatcher's last delivery failure as written into the Subscription's status
    (`backend.deliveryStatus`), or None when it wrote none."""
    fields = ((status or {}).get("backend") or {}).get("deliveryStatus")
    if not isinstance(fields, dict) or not fields.get("lastFailedDelivery"):
        return None
    attempt = fields.get("lastFailedDeliveryAttempt")
    code = fields.get("lastFailedDeliveryStatusCode")
    return Failure(str(fields.get("lastFailedDeliveryReason") or "delivery failed"),
                   _parse_time(fields.get("lastFailedDelivery")),
                   attempt=attempt if isinstance(attempt, int) else None,
                   recovered_at=_parse_time(fields.get("lastSuccessfulDelivery")),
                   code=code if isinstance(code, int) else None)


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class SubscriptionRow:
    sub: Subscription
    consumers: list[dict[str, Any]]       # {"name", "type", "subject", "info" (or None)}
    pending: int = 0                      # not yet acknowledged by the sink (unprocessed + in flight)
    ack_pending: int = 0
    redelivered: int = 0
    delivered: int | None = None          # 2xx answers (eventing metrics), None when unknown
    failed: int | None = None
    dead_letters: int = 0
    last_error: Failure | None = None

    @property
    def ready(self) -> bool:
        return bool((self.sub.status or {}).get("ready"))

    @property
    def key(self) -> str:
        return self.sub.key

    @property
    def conditions(self) -> list[dict[str, Any]]:
        return list((self.sub.status or {}).get("conditions") or [])

    @property
    def problem(self) -> str:
        """A condition that is not True, in one line (empty when all are)."""
        for cond in self.conditions:
            if cond.get("status") != "True":
                text = str(cond.get("reason") or cond.get("type") or "")
                if cond.get("message"):
                    text += f": {cond['message']}"
                return text
        return ""


@dataclass
class Snapshot:
    at: float = 0.0
    error: str | None = None
    server: dict[str, Any] = field(default_factory=dict)
    account: dict[str, Any] | None = None
    streams: list[dict[str, Any]] = field(default_factory=list)
    consumers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subscriptions: list[SubscriptionRow] = field(default_factory=list)
    subscriptions_error: str | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)    # consumer -> count
    metrics_error: str | None = None
    rates: dict[str, float] = field(default_factory=dict)

    def stream(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.streams if s["config"]["name"] == name), None)

    def consumer(self, stream: str, name: str) -> dict[str, Any] | None:
        return next((x for x in self.consumers.get(stream, []) if x.get("name") == name), None)

    def subscription(self, namespace: str, name: str) -> SubscriptionRow | None:
        return next((r for r in self.subscriptions
                     if r.sub.namespace == namespace and r.sub.name == name), None)


class SubscriptionWatcher:
    """Specs from `SubscriptionStore.watch`, kept current; statuses read per sample."""

    def __init__(self, nc: Any, bucket: str, timeout: float) -> None:
        self.nc = nc
        self.bucket = bucket
        self.timeout = timeout
        self.store: SubscriptionStore | None = None
        self.specs: dict[str, Subscription] = {}
        self.loaded = False
        self.error: str | None = None
        self.stopped = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopped = True
        await cancel(self._task, "subscription watcher")

    async def _run(self) -> None:
        import nats.js.errors as jse

        # The flag, not only the cancellation, ends the loop: a watcher iterator may end
        # normally when cancelled, which would swallow the CancelledError.
        while not self.stopped:
            try:
                self.store = await SubscriptionStore.open(self.nc, self.bucket, create=False,
                                                          timeout=self.timeout)
                self.error = None
                async for event in self.store.watch():
                    if event is None:
                        self.loaded = True
                    elif event.subscription is None:
                        self.specs.pop(f"{event.namespace}/{event.name}", None)
                    else:
                        self.specs[event.subscription.key] = event.subscription
            except jse.BucketNotFoundError:
                self.error = None
                self.loaded = True  # no bucket: no Subscriptions (yet)
                self.specs.clear()
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, OSError, ValueError) as exc:
                self.error = f"cannot read the Subscriptions: {exc or type(exc).__name__}"
            await asyncio.sleep(3.0)

    async def rows(self) -> list[Subscription]:
        """The Subscriptions with their current status, sorted by namespace and name."""
        out: list[Subscription] = []
        for key, sub in sorted(self.specs.items()):  # a copy: the watch may change specs meanwhile
            if self.store is not None:
                try:
                    sub.status = await self.store.get_status(sub.namespace, sub.name)
                except (nats.errors.Error, OSError, ValueError) as exc:
                    log.debug("status of %s: %s", key, exc)
            out.append(sub)
        return out


class DeliveryCounters:
    """Delivered/failed counts per Subscription from the eventing metrics, and the latest
    failure seen (a failed-delivery counter that went up between two reads)."""

    def __init__(self, settings: ConsoleSettings, registry: Any = None) -> None:
        self.settings = settings
        self.registry = registry
        self.ok: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.last_failure: dict[str, Failure] = {}
        self._seen: dict[tuple[str, str, str, str], float] = {}
        self._first = True
        self._session: Any = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _text(self) -> str:
        if self.registry is not None:
            from prometheus_client import generate_latest

            return generate_latest(self.registry).decode()
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        url = self.settings.publisher_url.rstrip("/") + "/metrics"
        async with self._session.get(url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise OSError(f"{data.strip_userinfo(url)} answered {resp.status}")
            return (await resp.content.read(4 * 1024 * 1024)).decode("utf-8", "replace")

    async def read(self) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        text = await self._text()
        ok: dict[str, int] = {}
        failed: dict[str, int] = {}
        increased: dict[str, str] = {}        # subscription -> what its newest failure was
        errors: list[tuple[str, str, float]] = []
        for family in text_string_to_metric_families(text):
            # Without a HELP line the parser keeps `_total` in the family name.
            name = family.name.removesuffix("_total")
            if name == DELIVERIES:
                for s in family.samples:
                    if not s.name.endswith("_total"):
                        continue
                    sub, code = subscription_key(s.labels), s.labels.get("response_code", "")
                    value = int(s.value)
                    if code.isdigit() and 200 <= int(code) < 300:
                        ok[sub] = ok.get(sub, 0) + value
                        continue
                    failed[sub] = failed.get(sub, 0) + value
                    if self._grew(("code", sub, code, s.labels.get("sink", "")), value):
                        increased[sub] = describe_failure(code, s.labels.get("sink", ""))
            elif name == DELIVERY_ERRORS:
                errors.extend((subscription_key(s.labels), s.labels.get("reason", ""), s.value)
                              for s in family.samples if s.name.endswith("_total"))
        # A delivery without an HTTP answer is counted as 500 by Kyma's metric; the error
        # counter says what happened instead, so it wins when it moved too.
        for sub, reason, count in errors:
            if self._grew(("error", sub, reason, ""), count):
                increased[sub] = f"no HTTP answer from the sink ({reason or 'error'})"
        at = None if self._first else time.time()   # None: it failed before the console started
        for sub, text_ in increased.items():
            self.last_failure[sub] = Failure(text_, at)
        for sub, failure in self.last_failure.items():
            failure.count = failed.get(sub, 0)
        self.ok, self.failed = ok, failed
        self._first = False

    def _grew(self, key: tuple[str, str, str, str], value: float) -> bool:
        # A series first seen started at 0; on the first read that means "before the console".
        before = self._seen.get(key, 0.0)
        self._seen[key] = value
        return value > before


DELIVERIES = "eventing_ec_nats_delivery_per_subscription"
DELIVERY_ERRORS = "pyjetstream_eventing_delivery_errors"


def subscription_key(labels: dict[str, str]) -> str:
    """`namespace/name` from Kyma's labels (name and namespace apart) or one `ns/name` label."""
    name = labels.get("subscription_name", "")
    namespace = labels.get("subscription_namespace")
    return f"{namespace}/{name}" if namespace else name


def describe_failure(code: str, sink: str) -> str:
    where = data.strip_userinfo(sink) or "the sink"
    if code == "error" or not code.isdigit():
        return f"no HTTP answer from {where} (connection refused, reset or timed out)"
    return f"HTTP {code} from {where}"


async def cancel(task: asyncio.Task[None] | None, what: str, grace: float = 3.0) -> None:
    """Cancel and wait a bounded time: a NATS call stuck in a finally must not hang a stop."""
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.warning("stopping the console's %s took longer than %.0fs; abandoned", what, grace)
    elif not task.cancelled() and task.exception() is not None:
        log.debug("console %s ended with %r", what, task.exception())


class Sampler:
    def __init__(self, nc: Any, settings: ConsoleSettings, registry: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.nc = nc
        self.settings = settings
        self.clock = clock
        self.snapshot = Snapshot()
        self.watcher = SubscriptionWatcher(nc, settings.eventing.kv_bucket, settings.timeout)
        self.counters = DeliveryCounters(settings, registry)
        points = max(2, int(settings.history / settings.interval) + 1)
        self.points = points
        self.series: dict[str, deque[tuple[float, float]]] = {k: deque(maxlen=points) for k in SERIES}
        self.lag: dict[str, deque[tuple[float, float]]] = {}
        self._prev: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()
        self._dlq_state: tuple[Any, ...] | None = None
        self._newest: dict[str, data.Message | None] = {}
        self.samples = 0
        self.stopped = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.watcher.start()
        await self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopped = True
        await cancel(self._task, "sampler")
        await self.watcher.stop()
        await self.counters.close()
        self._tick.set()

    async def _run(self) -> None:
        while not self.stopped:
            started = self.clock()
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the heartbeat must survive anything one sample does
                log.exception("console sample failed")
            await asyncio.sleep(max(0.05, self.settings.interval - (self.clock() - started)))

    def next_tick(self) -> asyncio.Event:
        """An event set at the end of the next sample."""
        return self._tick

    def _ticked(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # -- one sample ------------------------------------------------------------------------
    async def sample(self) -> Snapshot:
        s = self.settings
        snap = Snapshot(at=time.time())
        snap.server = self._server_info()
        try:
            try:
                snap.account = await data.account_info(self.nc, s.timeout)
            except c.APIError:
                snap.account = None
            snap.streams = await data.list_streams(self.nc, s.timeout)
            for info in snap.streams[:MAX_STREAMS]:
                name = info["config"]["name"]
                try:
                    snap.consumers[name] = await data.list_consumers(self.nc, name, s.timeout)
                except c.APIError:
                    snap.consumers[name] = []  # deleted meanwhile
            await self._dead_letters(snap)
        except (c.CLIError, nats.errors.Error, OSError, TimeoutError) as exc:
            snap.error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            snap.streams, snap.consumers = self.snapshot.streams, self.snapshot.consumers
        try:
            await self.counters.read()
        except Exception as exc:  # noqa: BLE001 - a proxy that is down or answers nonsense
            snap.metrics_error = f"no delivery counters ({type(exc).__name__}: {exc})"
        try:
            subs = await self.watcher.rows()
            snap.subscriptions = [self._row(sub, snap) for sub in subs]
        except (nats.errors.Error, OSError) as exc:
            snap.subscriptions_error = str(exc)
        snap.subscriptions_error = snap.subscriptions_error or self.watcher.error
        self._rates(snap)
        self.snapshot = snap
        self.samples += 1
        self._ticked()
        return snap

    def _server_info(self) -> dict[str, Any]:
        info = dict(getattr(self.nc, "_server_info", {}) or {})
        url = ""
        if getattr(self.nc, "connected_url", None) is not None:
            url = data.strip_userinfo(self.nc.connected_url.geturl())
        return {"name": info.get("server_name") or info.get("server_id", ""), "version": info.get("version", ""),
                "url": url, "jetstream": bool(info.get("jetstream")),
                "connected": bool(getattr(self.nc, "is_connected", False))}

    async def _dead_letters(self, snap: Snapshot) -> None:
        cfg = self.settings.eventing
        info = snap.stream(cfg.dead_letter.stream)
        if info is None:
            self._dlq_state, self._newest = None, {}
            return
        st = info.get("state") or {}
        state = (st.get("first_seq"), st.get("last_seq"), st.get("messages"))
        if state == self._dlq_state:
            snap.dead_letters = dict(self.snapshot.dead_letters)
            return
        snap.dead_letters = await data.dead_letter_counts(self.nc, cfg, self.settings.timeout)
        self._newest = {}
        for consumer in snap.dead_letters:
            self._newest[consumer] = await data.newest_dead_letter(self.nc, cfg, consumer, self.settings.timeout)
        self._dlq_state = state

    def _row(self, sub: Subscription, snap: Snapshot) -> SubscriptionRow:
        cfg = self.settings.eventing
        stream = cfg.stream.name
        wanted = sub.consumers(cfg.stream.subject_prefix)
        names: dict[str, tuple[str, str]] = dict(wanted)
        for entry in ((sub.status or {}).get("backend") or {}).get("types", []) or []:
            if isinstance(entry, dict) and entry.get("consumerName") and entry["consumerName"] not in names:
                names[str(entry["consumerName"])] = (str(entry.get("originalType", "")), "")
        row = SubscriptionRow(sub, [])
        for name, (etype, subject) in names.items():
            info = snap.consumer(stream, name)
            row.consumers.append({"name": name, "type": etype, "subject": subject, "info": info,
                                  "stream": stream})
            if info:
                row.pending += int(info.get("num_pending", 0)) + int(info.get("num_ack_pending", 0))
                row.ack_pending += int(info.get("num_ack_pending", 0))
                row.redelivered += int(info.get("num_redelivered", 0))
            row.dead_letters += snap.dead_letters.get(name, 0)
        if snap.metrics_error is None:
            row.delivered = self.counters.ok.get(sub.key, 0)
            row.failed = self.counters.failed.get(sub.key, 0)
        written = status_failure(sub.status)
        if written is not None:
            # The dispatcher's own record: the exact reason, cleared (recovered) by a success.
            written.count = self.counters.failed.get(sub.key, 0)
            row.last_error = written
            return row
        # A dispatcher that writes no delivery status (an older one): what the counters and
        # the dead letters tell.
        row.last_error = self.counters.last_failure.get(sub.key)
        newest = [m for name in names if (m := self._newest.get(name)) is not None]
        if newest:
            m = max(newest, key=lambda x: x.time_ns)
            at = m.time_ns / 1e9
            if row.last_error is None or row.last_error.at is None or at >= row.last_error.at:
                reason = m.header(d.H_REASON) or "dead-lettered"
                text = f"dead-lettered ({reason})"
                detail = m.header(d.H_ERROR) or (f"HTTP {m.header(d.H_CODE)}" if m.header(d.H_CODE) else "")
                row.last_error = Failure(f"{text}: {detail}" if detail else text, at,
                                         row.last_error.count if row.last_error else 0)
        return row

    def _rates(self, snap: Snapshot) -> None:
        now = self.clock()
        seqs = {i["config"]["name"]: int((i.get("state") or {}).get("last_seq", 0)) for i in snap.streams}
        delivered = {f"{stream}/{ci['name']}": int((ci.get("delivered") or {}).get("consumer_seq", 0))
                     for stream, infos in snap.consumers.items() for ci in infos}
        current = {"t": now, "seqs": seqs, "delivered": delivered, "ok": sum(self.counters.ok.values()),
                   "failed": sum(self.counters.failed.values()), "metrics": snap.metrics_error is None}
        prev, self._prev = self._prev, current
        for stream, infos in snap.consumers.items():
            for ci in infos:
                key = f"{stream}/{ci['name']}"
                if key not in self.lag:
                    if len(self.lag) >= MAX_TRACKED:
                        continue
                    self.lag[key] = deque(maxlen=self.points)
                self.lag[key].append((snap.at, float(int(ci.get("num_pending", 0)) + int(ci.get("num_ack_pending", 0)))))
        for key in [k for k in self.lag if k not in delivered]:
            del self.lag[key]
        if prev is None or snap.error is not None:
            return
        dt = max(now - prev["t"], 1e-3)

        def growth(before: dict[str, int], after: dict[str, int]) -> float:
            return sum(max(0, v - before.get(k, v)) for k, v in after.items()) / dt

        rates = {"in": growth(prev["seqs"], seqs), "out": growth(prev["delivered"], delivered)}
        if current["metrics"] and prev["metrics"]:
            rates["deliveries"] = max(0, current["ok"] - prev["ok"]) / dt
            rates["failures"] = max(0, current["failed"] - prev["failed"]) / dt
        snap.rates = rates
        for key, value in rates.items():
            self.series[key].append((snap.at, value))
