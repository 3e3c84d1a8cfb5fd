"""The subscription manager: keeps streams and consumers in line with stored Subscriptions.

Owns the `sap` stream (ensured at start and after every reconnect, updated when its
settings drift; a start refuses to go on when the update is impossible), the dead-letter
stream, one durable push consumer per subscription type with Kyma's name and settings,
removal at start of consumers no stored Subscription owns, the sink egress check before a
subscription is served, and the status it writes back. It never delivers events itself:
it tells the dispatcher what to serve.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy, StreamConfig

from . import subscriptions as subs
from . import types as t
from .config import EventingConfig
from .dispatcher import Binding, Dispatcher, deliver_subject
from .metrics import EventingMetrics
from .retry import PROFILE_KYMA

log = logging.getLogger("pyjetstream.eventing.manager")

# Stream fields Kyma compares before deciding to update (max_msgs_per_subject is not among them).
_COMPARED = ("storage", "num_replicas", "retention", "max_msgs", "max_bytes", "discard", "subjects")
# Room above the retry policy's last attempt so a failed dead-letter publish can be retried.
DEAD_LETTER_SLACK = 5
# A sink check resolves the sink's name; a DNS server that does not answer must not hold
# the reconcile lock for long (the dispatcher checks again at every connect anyway).
SINK_CHECK_TIMEOUT = 5.0


class StreamConfigError(RuntimeError):
    """The stream exists with settings that differ from the configuration and cannot be updated."""


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def stream_differences(current: StreamConfig, desired: dict[str, Any]) -> list[str]:
    """`field: have -> want` for every compared field that differs."""
    out: list[str] = []
    for name in _COMPARED:
        have = _enum_value(getattr(current, name, None))
        want = desired[name]
        if name == "subjects":
            have, want = sorted(have or []), sorted(want)
        if have != want:
            out.append(f"{name}: {have} -> {want}")
    return out


def stream_needs_update(current: StreamConfig, desired: dict[str, Any]) -> bool:
    return bool(stream_differences(current, desired))


def _raise_if_cancelled(exc: BaseException) -> None:
    """nats-py turns a cancelled wait (next_msg, request) into its own TimeoutError, so a
    loop that retries on that error would swallow the cancel of stop(): end it here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class EventingManager:
    def __init__(self, nc: Any, config: EventingConfig, dispatcher: Dispatcher, store: subs.SubscriptionStore,
                 metrics: EventingMetrics | None = None, resync_interval: float = 30.0) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=max(5.0, config.publish_timeout))
        self.config = config
        self.dispatcher = dispatcher
        self.store = store
        self.metrics = metrics or dispatcher.metrics
        self.resync_interval = resync_interval
        self._subs: dict[str, subs.Subscription] = {}
        self._lock = asyncio.Lock()  # one reconcile at a time: they share the dispatcher's maps
        self._tasks: list[asyncio.Task[None]] = []
        self._rechecking: set[str] = set()
        self.synced = asyncio.Event()
        dispatcher.on_refused = self._sink_refused
        # The dispatcher's last delivery failures go into the statuses, at most one write per
        # Subscription per interval (delivery_status.WRITE_INTERVAL).
        self._delivery_changed = asyncio.Event()
        dispatcher.delivery_status.on_change = self._delivery_changed.set

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.ensure_streams()
        if self.metrics is not None:
            self.metrics.dispatcher_started()
        self._tasks.append(asyncio.create_task(self._watch_loop(), name="eventing-watch"))
        self._tasks.append(asyncio.create_task(self._resync_loop(), name="eventing-resync"))
        self._tasks.append(asyncio.create_task(self._delivery_status_loop(), name="eventing-delivery-status"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        # return_exceptions: a reconnect task that failed long ago must not make stop() raise
        # and leave the other tasks unawaited.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def subscriptions(self) -> list[subs.Subscription]:
        return list(self._subs.values())

    def on_reconnect(self) -> None:
        """nats-py reconnected callback: re-ensure the stream and every consumer."""
        # Finished reconnect tasks are dropped here, else every reconnect would keep one.
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(self._after_reconnect(), name="eventing-reconnect"))

    async def _after_reconnect(self) -> None:
        try:
            await self.ensure_streams()
            await self.resync()
        except StreamConfigError as exc:
            # As Kyma's reconnect handler: a running service reports it and keeps serving.
            log.error("%s", exc)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("re-sync after reconnect failed (the periodic re-sync retries): %s", exc)

    # -- streams ------------------------------------------------------------------------------
    async def ensure_streams(self) -> None:
        """Create or update the stream; raises StreamConfigError when it cannot be updated.

        Like Kyma's eventing-manager (its Initialize fails on ErrUpdateStreamConfig): serving
        from a stream whose retention or storage is not the configured one would silently
        break the promises the configuration makes (interest retention frees acked events).
        """
        desired = self.config.stream.config_dict()
        try:
            info = await self.js.stream_info(desired["name"])
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(**desired)
            log.info("created stream %s", desired["name"])
        else:
            differences = stream_differences(info.config, desired)
            if differences:
                try:
                    await self.js.update_stream(**desired)
                    log.info("updated stream %s (%s)", desired["name"], "; ".join(differences))
                except nats.js.errors.APIError as exc:
                    raise StreamConfigError(
                        f"stream {desired['name']} differs from the configuration "
                        f"({'; '.join(differences)}) and cannot be updated: {exc.description or exc}; "
                        "change the settings to match the stream, or delete the stream "
                        "(its events are lost)") from exc
        dl = self.config.dead_letter
        if dl.enabled:
            dl_cfg = {"name": dl.stream, "subjects": [f"{dl.subject_prefix}.>"], "storage": dl.storage,
                      "num_replicas": dl.replicas, "retention": "limits", "max_age": dl.max_age,
                      "duplicate_window": 120.0}
            try:
                await self.js.stream_info(dl.stream)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(**dl_cfg)

    # -- reconcile ----------------------------------------------------------------------------
    async def _watch_loop(self) -> None:
        while True:
            try:
                initial: list[subs.WatchEvent] = []
                live = False
                async for event in self.store.watch():
                    if event is None:
                        if not live:
                            live = True
                            await self._initial_sync(initial)
                        continue
                    if not live:
                        initial.append(event)
                    else:
                        await self._apply(event)
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, TimeoutError) as exc:
                _raise_if_cancelled(exc)
                log.warning("subscription watch ended (%s); restarting", exc)
            except Exception:  # noqa: BLE001 - task boundary: log and keep the manager alive
                log.exception("subscription watch crashed; restarting")
            await asyncio.sleep(1.0)

    async def _initial_sync(self, events: list[subs.WatchEvent]) -> None:
        for event in events:
            if event.subscription is not None:
                await self._apply(event)
        await self.delete_orphans()
        self.synced.set()

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            try:
                await self.resync()
            except (nats.errors.Error, TimeoutError) as exc:
                _raise_if_cancelled(exc)
                log.warning("periodic re-sync failed: %s", exc)
            except Exception:  # noqa: BLE001 - task boundary: one bad pass must not end re-syncing
                log.exception("periodic re-sync crashed")

    async def _delivery_status_loop(self) -> None:
        book = self.dispatcher.delivery_status
        while True:
            # No await between clear() and due(): a failure recorded meanwhile sets it again.
            self._delivery_changed.clear()
            due, wait = book.due()
            if not due:
                try:
                    await asyncio.wait_for(self._delivery_changed.wait(), wait)
                except TimeoutError:
                    pass
                continue
            try:
                await self.write_delivery_status(due)
            except (nats.errors.Error, TimeoutError) as exc:
                _raise_if_cancelled(exc)
                log.warning("writing delivery errors into Subscription statuses failed: %s", exc)
                await asyncio.sleep(book.interval)
            except Exception:  # noqa: BLE001 - task boundary: one bad write must not end the writer
                log.exception("writing delivery errors into Subscription statuses crashed")
                await asyncio.sleep(book.interval)

    async def write_delivery_status(self, due: list[tuple[str, dict[str, Any]]]) -> None:
        """Merge each record into its Subscription's stored status (compare-and-set on the KV
        revision, under the reconcile lock, so neither overwrites the other's fields)."""
        book = self.dispatcher.delivery_status
        async with self._lock:
            now = subs.now_rfc3339()
            for key, fields in due:
                if key not in self._subs:
                    book.forget(key)
                    continue
                ns, name = key.split("/", 1)
                try:
                    ok = await self.store.update_status(ns, name, functools.partial(subs.with_delivery, fields=fields,
                                                                                     now=now))
                except BaseException:
                    book.written(key, None)
                    raise
                book.written(key, fields if ok else None)

    async def resync(self) -> None:
        stored = await self.store.list()
        keys = {s.key for s in stored}
        for key in [k for k in self._subs if k not in keys]:
            ns, name = key.split("/", 1)
            # A listing can come back short while a bucket recovers; deleting consumers
            # drops their backlog, so only a direct read may confirm the deletion.
            if await self.store.get(ns, name) is None:
                await self._apply(subs.WatchEvent(ns, name, None))
        for sub in stored:
            await self._apply(subs.WatchEvent(sub.namespace, sub.name, sub), force=True)

    async def _apply(self, event: subs.WatchEvent, force: bool = False) -> None:
        async with self._lock:
            if event.subscription is None:
                await self._remove(event.namespace, event.name)
            else:
                await self._reconcile(event.subscription, force)

    async def delete_orphans(self) -> None:
        """Kyma's start-up cleanup: delete consumers no stored Subscription owns, unless push-bound.

        Every stored Subscription keeps its consumers, valid or not: one that became invalid
        (a stricter sink policy, a changed type prefix) keeps its backlog until it is valid
        again or deleted. Ownership is the computed name (as Kyma), the consumer names in its
        status, or our description `<ns>/<name>/<subject>` (beyond Kyma: it survives a
        changed subject prefix too).
        """
        wanted: set[str] = set()
        owners: set[str] = set()
        for sub in self._subs.values():
            wanted.update(sub.consumers(self.config.stream.subject_prefix))
            for entry in ((sub.status or {}).get("backend") or {}).get("types", []) or []:
                if isinstance(entry, dict) and entry.get("consumerName"):
                    wanted.add(str(entry["consumerName"]))
            owners.add(f"{sub.namespace}/{sub.name}/")
        try:
            infos = await self.js.consumers_info(self.config.stream.name)
        except nats.js.errors.NotFoundError:
            return
        for info in infos:
            description = getattr(info.config, "description", None) or ""
            if info.name in wanted or info.push_bound or \
                    any(description.startswith(owner) for owner in owners):
                continue
            try:
                await self.js.delete_consumer(self.config.stream.name, info.name)
                log.info("deleted orphaned consumer %s", info.name)
            except nats.js.errors.NotFoundError:
                pass

    def _consumer_config(self, sub: subs.Subscription, name: str, subject: str) -> ConsumerConfig:
        cc = self.config.consumer
        policy = self.config.delivery_policy(sub.config)
        if policy.profile == PROFILE_KYMA:
            ack_wait = self.config.kyma_delivery.ack_wait  # Kyma's, whatever the sink takes
        else:
            # ack_wait must outlast the HTTP delivery timeout, or a slow sink gets duplicates.
            ack_wait = max(cc.ack_wait, policy.delivery_timeout + 10.0)
        dead_letter = self.config.dead_letter.enabled and policy.dead_letter
        max_in_flight = sub.max_in_flight(cc.max_in_flight)
        return ConsumerConfig(
            durable_name=name,
            description=t.consumer_description(sub.namespace, sub.name, subject),
            deliver_subject=deliver_subject(self.config.stream.name, name),
            deliver_group=name,
            deliver_policy=DeliverPolicy(cc.deliver_policy),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=policy.max_deliveries + (DEAD_LETTER_SLACK if dead_letter else 0),
            max_ack_pending=max_in_flight if max_in_flight > 0 else None,
            filter_subject=subject,
            replay_policy=ReplayPolicy.INSTANT,
            flow_control=cc.flow_control,
            idle_heartbeat=cc.idle_heartbeat or None,
        )

    async def _ensure_consumer(self, sub: subs.Subscription, name: str, subject: str) -> None:
        wanted = self._consumer_config(sub, name, subject)
        stream = self.config.stream.name
        try:
            info = await self.js.consumer_info(stream, name)
        except nats.js.errors.NotFoundError:
            await self.js.add_consumer(stream, wanted)
            return
        have = info.config
        if (have.max_ack_pending != wanted.max_ack_pending and wanted.max_ack_pending is not None) \
                or have.ack_wait != wanted.ack_wait or have.max_deliver != wanted.max_deliver \
                or have.deliver_subject != wanted.deliver_subject:
            # nats-server updates a durable in place when only mutable fields change.
            await self.js.add_consumer(stream, wanted)

    async def _reconcile(self, sub: subs.Subscription, force: bool = False) -> None:
        key = sub.key
        previous = self._subs.get(key)
        if previous is not None and not force and previous.same_spec(sub) and previous.generation == sub.generation:
            return
        self._subs[key] = sub
        prefix = self.config.stream.subject_prefix
        stored_status = await self.store.get_status(sub.namespace, sub.name)
        sub.status = stored_status
        errors = subs.validate(sub, self.config.strict_sinks, self.config.legacy_type_prefix)
        now = subs.now_rfc3339()
        if errors:
            # Like Kyma on a failed sink check: stop serving, keep the consumers and their backlog.
            for name in self.dispatcher.bindings_of(key):
                await self.dispatcher.unbind(name)
            self.dispatcher.remove_sink(key)
            status = subs.status_invalid(sub, errors, now)
        else:
            desired = sub.consumers(prefix)
            for name in self.dispatcher.bindings_of(key) - set(desired):
                await self.dispatcher.unbind(name)
                await self._delete_consumer(name)
            if previous is not None:
                for name in set(previous.consumers(prefix)) - set(desired):
                    await self._delete_consumer(name)
            refusal = await self._sink_refusal(sub.sink)
            if refusal is None:
                self.dispatcher.set_sink(key, sub.sink)
            else:
                # The consumers are still created so events wait in them; nothing is served
                # (and nothing dead-lettered) until the sink is allowed.
                for name in self.dispatcher.bindings_of(key):
                    await self.dispatcher.unbind(name)
                self.dispatcher.remove_sink(key)
            error = None
            policy = self.config.delivery_policy(sub.config)
            try:
                for name, (ty, subject) in desired.items():
                    await self._ensure_consumer(sub, name, subject)
                    if refusal is None:
                        await self.dispatcher.bind(Binding(name, key, ty, deliver_subject(self.config.stream.name,
                                                                                          name), name, policy))
            except (nats.errors.Error, TimeoutError) as exc:
                error = f"failed to add a consumer: {exc}"
                log.warning("subscription %s not active: %s", key, error)
            if refusal is not None:
                error = f"sink refused by the egress policy: {refusal}"
                log.warning("subscription %s not served: %s", key, error)
            status = subs.status_synced(sub, now, error, prefix, self._dead_letter_info(desired))
            status = subs.carry_delivery(status, stored_status)
        self._record_status(sub, previous, status)
        if subs.without_timestamps(status) != subs.without_timestamps(stored_status):
            await self.store.put_status(sub.namespace, sub.name, status)
        sub.status = status

    def _record_status(self, sub: subs.Subscription, previous: subs.Subscription | None,
                       status: dict[str, Any]) -> None:
        """Kyma's eventing_ec_subscription_status: one series per consumer of the Subscription."""
        if self.metrics is None:
            return
        prefix, stream = self.config.stream.subject_prefix, self.config.stream.name
        consumers = list(sub.consumers(prefix))
        if previous is not None:
            gone = [name for name in previous.consumers(prefix) if name not in consumers]
            self.metrics.remove_subscription_status(sub.name, sub.namespace, gone, stream)
        self.metrics.record_subscription_status(sub.name, sub.namespace, consumers, stream, bool(status["ready"]))

    async def _sink_refusal(self, sink: str) -> str | None:
        try:
            return await asyncio.wait_for(self.dispatcher.sink_refusal(sink), SINK_CHECK_TIMEOUT)
        except TimeoutError:
            return None  # not a verdict; the connect-time check still applies

    def _sink_refused(self, key: str, reason: str) -> None:
        """Dispatcher callback: a delivery was refused at connect time (say, DNS now answers
        with a metadata address). Re-check the subscription, which takes it out of service."""
        if key in self._rechecking:
            return
        self._rechecking.add(key)
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(self._recheck(key), name=f"eventing-recheck-{key}"))

    async def _recheck(self, key: str) -> None:
        try:
            sub = self._subs.get(key)
            if sub is not None:
                await self._apply(subs.WatchEvent(sub.namespace, sub.name, sub), force=True)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("re-checking %s after a refused delivery failed (the periodic re-sync retries): %s",
                        key, exc)
        except Exception:  # noqa: BLE001 - task boundary: log with context, keep the manager alive
            log.exception("re-checking %s after a refused delivery crashed", key)
        finally:
            self._rechecking.discard(key)

    def _dead_letter_info(self, desired: dict[str, tuple[str, str]]) -> dict[str, Any] | None:
        dl = self.config.dead_letter
        if not dl.enabled:
            return None
        return {"stream": dl.stream, "subjects": [f"{dl.subject_prefix}.{name}" for name in sorted(desired)]}

    async def _delete_consumer(self, name: str) -> None:
        try:
            await self.js.delete_consumer(self.config.stream.name, name)
        except nats.js.errors.NotFoundError:
            pass

    async def _remove(self, namespace: str, name: str) -> None:
        key = f"{namespace}/{name}"
        known = self._subs.pop(key, None)
        names = self.dispatcher.bindings_of(key)
        if known is not None:
            names |= set(known.consumers(self.config.stream.subject_prefix))
        status = await self.store.get_status(namespace, name)
        for entry in ((status or {}).get("backend") or {}).get("types", []) or []:
            if entry.get("consumerName"):
                names.add(entry["consumerName"])
        for consumer in names:
            await self.dispatcher.unbind(consumer)
            await self._delete_consumer(consumer)
        self.dispatcher.remove_sink(key)
        self.dispatcher.delivery_status.forget(key)
        if self.metrics is not None:
            self.metrics.remove_subscription_status(name, namespace, sorted(names), self.config.stream.name)
        try:
            await self.store.delete_status(namespace, name)
        except nats.js.errors.KeyNotFoundError:
            pass
        log.info("subscription %s deleted with its %d consumer(s)", key, len(names))
