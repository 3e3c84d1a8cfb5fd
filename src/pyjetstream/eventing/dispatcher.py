"""The dispatcher: JetStream push consumers -> HTTP sinks, at least once.

Owns the NATS subscriptions on the consumers' deliver subjects (queue groups, so several
dispatcher processes share the work), the HTTP client (`sinkclient.SinkClient`: no redirects,
at most 1 KiB of any answer read, connections only where the egress policy allows), and the per-message
decision: ack on 2xx, NAK with a computed delay otherwise, copy to the dead-letter stream
and TERM when the retry policy gives up or the event can never be sent. Every delivery
ends settled (ack, NAK, TERM or dead letter); a delivery's state lives only in its
consumer: nothing here is a second queue. Creating consumers is the manager's job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from aiohttp.abc import AbstractResolver
from nats.aio.msg import Msg
from yarl import URL

from . import cloudevents as ce
from . import types as t
from . import wire
from .config import EventingConfig
from .delivery_status import DeliveryStatusBook
from .egress import GuardedResolver, SinkRefused, is_ip_literal
from .metrics import EventingMetrics
from .retry import PROFILE_KYMA, Outcome, RetryPolicy, classify, next_delay, parse_retry_after
from .sinkclient import SinkClient, SinkClientError, SinkDisconnected

log = logging.getLogger("pyjetstream.eventing.dispatcher")

# Dead-letter headers; the names follow Knative's error extensions in spirit.
H_REASON = "Eventing-Dead-Letter-Reason"
H_CODE = "Eventing-Last-Status"
H_ERROR = "Eventing-Last-Error"
H_SUBSCRIPTION = "Eventing-Subscription"
H_CONSUMER = "Eventing-Consumer"
H_SINK = "Eventing-Sink"
H_DELIVERIES = "Eventing-Deliveries"
H_SEQUENCE = "Eventing-Stream-Sequence"
ERROR_TEXT_LIMIT = 1024
# What a dead-letter copy keeps when all its headers would take it past max_payload.
DEAD_LETTER_MINIMAL = (H_REASON, H_CONSUMER, H_SEQUENCE, "Nats-Msg-Id")
# Never read more of a sink's answer than this: a sink streaming gigabytes with its 200 must
# not cost memory or time. The connection of an answer not read to its end is closed.
RESPONSE_READ_LIMIT = 1024
# Errors that mean the request for this event can never be built or sent (a header value
# the sink client refuses, say): retrying cannot help, so the event is dead-lettered at once.
_UNSENDABLE = (ValueError, TypeError, UnicodeError, LookupError)
# A message for a consumer no longer served comes back after this; a short delay keeps it
# from bouncing while the unsubscribe reaches the server.
UNBOUND_NAK_DELAY = 1.0
# Acks of successful deliveries are held this long and sent together: one write (and one
# read on the server) for many instead of one each, which cost the dispatcher more CPU than
# any other step of a delivery (issue 14). The event has reached its sink by then; a crash
# inside the window means those events are delivered again (at least once, as always).
ACK_BATCH_WINDOW = 0.002
# Delivery timeouts are enforced by one watchdog per dispatcher instead of a timer per
# request (~5 us of CPU per delivery with aiohttp's timers, issue 14); it looks this often, at most, so a
# timeout fires up to this much late (and a tenth of the timeout at most).
WATCHDOG_PERIOD = 0.25


@dataclass
class Binding:
    """One consumer as the dispatcher serves it."""

    consumer: str
    subscription: str          # "<namespace>/<name>"
    event_type: str            # original type, for metrics
    deliver_subject: str
    group: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class DeliveryResult:
    status: int | None         # None: no HTTP answer
    error: str = ""
    retry_after: float | None = None
    permanent: bool = False    # the request cannot be sent for this event, ever
    refused: bool = False      # the egress policy refused the sink's address; events wait
    cause: str = ""            # without an HTTP answer: why, in a few words ("connection refused")

    @property
    def reason(self) -> str:
        """Why there is no HTTP answer, as a metric label (a small fixed set)."""
        if self.refused:
            return "refused"
        if self.permanent:
            return "unsendable"
        return "timeout" if self.error.startswith("no answer within") else "connection"

    def describe(self) -> str:
        """The failure as a Subscription's status shows it: "HTTP 503: <the sink's text>",
        "connection refused", "sink refused by policy: ...", "no answer within ..."."""
        if self.refused:
            return f"sink refused by policy: {self.error}"
        if self.status is not None:
            text = " ".join(self.error.split())
            return f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"
        return self.cause or self.error


def deliver_subject(stream: str, consumer: str) -> str:
    """Stable across processes, so every dispatcher instance joins the same queue group."""
    return f"_EVENTING.{stream}.{consumer}"


@functools.lru_cache(maxsize=16)
def dead_letter_reserve(stream: str) -> int:
    """The most the fewest dead-letter headers take (reasons are at most 32 characters, consumer
    names 32, sequences 20 digits). The publisher keeps that much of max_payload free beside
    every event, so that each one it stores can also be dead-lettered."""
    return len(wire.header_block({H_REASON: "r" * 32, H_CONSUMER: "c" * 32, H_SEQUENCE: "9" * 20,
                                  "Nats-Msg-Id": f"{stream}-{'9' * 20}"}))


def dead_letter_subject(prefix: str, consumer: str) -> str:
    return f"{prefix}.{consumer}"


class Dispatcher:
    def __init__(self, nc: Any, config: EventingConfig, metrics: EventingMetrics | None = None,
                 rng: random.Random | None = None, resolver: AbstractResolver | None = None) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=config.publish_timeout)
        self.config = config
        self.metrics = metrics or EventingMetrics()
        self.rng = rng or random.Random()
        self._bindings: dict[str, Binding] = {}
        self._subs: dict[str, Any] = {}
        self._sinks: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: SinkClient | None = None
        self._closing = False
        # Deliveries with a timeout: task -> deadline (loop time); the watchdog cancels a task
        # past its deadline and marks it in _expired, so that send() tells it from other cancels.
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._urls: dict[str, URL] = {}
        # Names go through the guarded resolver at connect time; IP literals never reach a
        # resolver, so their (fixed) verdict is cached here per sink URL.
        self.resolver = GuardedResolver(config.sink_policy, resolver)
        self._literal_refusals: dict[str, str | None] = {}
        # Told when a delivery was refused by the egress policy: (subscription, reason).
        self.on_refused: Callable[[str, str], None] | None = None
        # 0 acks every delivery at once.
        self.ack_batch_window = ACK_BATCH_WINDOW
        self._acks: list[Any] = []
        self._ack_timer: asyncio.TimerHandle | None = None
        # The last failed delivery per Subscription; the manager writes it into the status.
        self.delivery_status = DeliveryStatusBook()

    async def start(self) -> None:
        # Connections are kept alive (10 s idle), at most http_max_connections per sink host. No
        # cookie jar: a sink's Set-Cookie must not travel with the next delivery to that host
        # (another Subscription's, too), as Kyma's Go client without a jar.
        self._client = SinkClient(self.resolver, limit_per_host=self.config.http_max_connections, keepalive=10.0,
                                  read_limit=RESPONSE_READ_LIMIT)

    async def sink_refusal(self, sink: str) -> str | None:
        """Why the egress policy refuses `sink` now (resolving its name); None if it may be used.

        A name that does not resolve is not refused: deliveries fail and retry as for any
        unreachable sink. The dispatcher checks again at every connect.
        """
        try:
            url = URL(sink)
            host, port = url.host or "", url.port or 0
        except ValueError:
            return None  # the subscription validator reports a malformed sink
        reason = self._literal_refusal(sink)
        if reason is not None or not host or is_ip_literal(host):
            return reason
        try:
            await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        except SinkRefused as exc:
            return exc.reason
        except OSError:
            return None
        return None

    def _literal_refusal(self, sink: str) -> str | None:
        try:
            return self._literal_refusals[sink]
        except KeyError:
            pass
        try:
            host = URL(sink).host or ""
        except ValueError:
            host = ""
        reason = self.config.sink_policy.refusal(host) if host else None
        self._literal_refusals[sink] = reason
        return reason

    # -- what the manager calls --------------------------------------------------------------
    def set_sink(self, subscription: str, sink: str) -> None:
        self._sinks[subscription] = sink

    def remove_sink(self, subscription: str) -> None:
        self._sinks.pop(subscription, None)

    def bound(self) -> set[str]:
        return set(self._bindings)

    def bindings_of(self, subscription: str) -> set[str]:
        return {name for name, b in self._bindings.items() if b.subscription == subscription}

    async def bind(self, binding: Binding) -> None:
        current = self._bindings.get(binding.consumer)
        self._bindings[binding.consumer] = binding
        if current is not None and current.deliver_subject == binding.deliver_subject \
                and binding.consumer in self._subs:
            return  # policy updates take effect through the stored binding

        async def on_msg(msg: Any) -> None:
            await self._on_msg(binding.consumer, msg)

        if binding.consumer in self._subs:
            await self._subs.pop(binding.consumer).unsubscribe()
        direct = getattr(self.nc, "direct", None)
        if isinstance(direct, dict):
            # EventingService's connection hands the deliveries over as the parser reads them
            # (no Msg parsing of headers, no per-subscription queue and task; issue 14). The
            # SUB is written by the flusher after this returns, so nothing arrives before the
            # handler is in place.
            sub = await self.nc.subscribe(binding.deliver_subject, queue=binding.group)
            direct[sub._id] = functools.partial(self._on_raw, binding.consumer, sub._id)
        else:
            sub = await self.nc.subscribe(binding.deliver_subject, queue=binding.group, cb=on_msg,
                                          pending_msgs_limit=-1, pending_bytes_limit=-1)
        self._subs[binding.consumer] = sub
        # Kyma counts a type as subscribed each time its NATS subscription is made.
        self.metrics.record_subscribed(binding.subscription, binding.event_type, binding.consumer)

    async def unbind(self, consumer: str) -> None:
        self._bindings.pop(consumer, None)
        sub = self._subs.pop(consumer, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as exc:
                log.debug("unsubscribe of %s failed: %s", consumer, exc)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking messages, let running deliveries finish for `grace` seconds.

        Subscriptions are drained rather than dropped: messages already on their way are
        handed back with an immediate NAK, so another dispatcher (or this one after a
        restart) gets them at once instead of after the ack wait.
        """
        self._closing = True
        subs, self._subs = self._subs, {}

        async def drain(name: str, sub: Any) -> None:
            try:
                await asyncio.wait_for(sub.drain(), grace)
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("draining %s: %s", name, exc)

        # All at once: against a server that stopped answering, one by one would take
        # `grace` per subscription.
        await asyncio.gather(*(drain(name, sub) for name, sub in subs.items()))
        self._bindings.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()  # not acked: JetStream redelivers after ack_wait
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        acks, self._acks = self._acks, []
        await self._send_acks(acks)
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.resolver.close()

    # -- per message --------------------------------------------------------------------------
    async def _on_msg(self, consumer: str, msg: Any) -> None:
        headers = msg.headers or {}
        if headers.get("Status") == "100":
            # Flow-control requests carry a reply subject; a stalled heartbeat names one.
            reply = msg.reply or headers.get("Nats-Consumer-Stalled")
            if reply:
                await self.nc.publish(reply, b"")
            return
        self._dispatch(consumer, msg)

    def _on_raw(self, consumer: str, sid: int, subject: bytes, reply: bytes, data: bytes,
                headers: bytes | None) -> None:
        """A delivery as nats-py's parser hands it over (see bind)."""
        if headers is not None and headers.startswith(b"NATS/1.0 100"):
            # Flow-control requests carry a reply subject; a stalled heartbeat names one.
            to = reply.decode() or _raw_header(headers, b"Nats-Consumer-Stalled")
            if to:
                self._spawn(self.nc.publish(to, b""))
            return
        self._dispatch(consumer, Msg(_client=self.nc, subject=subject.decode(), reply=reply.decode(), data=data,
                                     _sid=sid))

    def _dispatch(self, consumer: str, msg: Any) -> None:
        """An event for `consumer`, from either path: delivered in a task of its own, or handed
        back while closing (now; see stop()) or when the consumer was unbound meanwhile
        (deleted, invalid, sink refused: delivered once a dispatcher serves it again)."""
        if self._closing:
            self._spawn(self._settle_unsettled_any(msg, 0.0))
            return
        binding = self._bindings.get(consumer)
        if binding is None:
            self._spawn(self._settle_unsettled_any(msg, UNBOUND_NAK_DELAY))
            return
        self._spawn(self._deliver_task(binding, msg))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_unsettled_any(self, msg: Any, delay: float) -> None:
        try:
            await msg.nak(delay=delay) if delay else await msg.nak()
        except (nats.errors.Error, OSError) as exc:
            log.debug("handing back an event failed (redelivered after ack_wait): %s", exc)

    async def _deliver_task(self, binding: Binding, msg: Any) -> None:
        try:
            await self._deliver(binding, msg)
        except asyncio.CancelledError:
            # Stopping past the grace period: hand the event back now rather than holding an
            # in-flight slot until ack_wait.
            await self._settle_unsettled(binding, msg, 0.0)
            raise
        except (nats.errors.Error, OSError) as exc:
            # Ack/nak could not be sent: the consumer redelivers after ack_wait.
            log.warning("delivery bookkeeping for %s failed: %s", binding.consumer, exc)
        except Exception:  # noqa: BLE001 - task boundary: log, settle, never kill the dispatcher
            log.exception("delivery task for %s crashed; the event is handed back", binding.consumer)
            await self._settle_unsettled(binding, msg, binding.policy.max_delay)

    async def _settle_unsettled(self, binding: Binding, msg: Any, delay: float) -> None:
        """NAK a message whose delivery ended without ack/NAK/TERM (a no-op when it was settled)."""
        try:
            await msg.nak(delay=delay) if delay else await msg.nak()
        except nats.errors.MsgAlreadyAckdError:
            pass
        except (nats.errors.Error, OSError) as exc:
            log.warning("handing back an event of %s failed (redelivered after ack_wait): %s",
                        binding.consumer, exc)

    async def _deliver(self, binding: Binding, msg: Any) -> None:
        policy = binding.policy
        num_delivered = _num_delivered(msg)
        sink = self._sinks.get(binding.subscription)
        if sink is None:
            await msg.nak(delay=next_delay(num_delivered, policy, rng=self.rng))
            return
        try:
            event = ce.parse_structured(msg.data)
        except ce.CloudEventError as exc:
            # Beyond Kyma: a poison message cannot get better; dead-letter it at once.
            self.delivery_status.failed(binding.subscription, f"invalid CloudEvent in the stream: {exc}", None,
                                        num_delivered, binding.consumer)
            await self._give_up(binding, msg, sink, "InvalidCloudEvent", DeliveryResult(None, str(exc)))
            return
        started = time.perf_counter()
        result = await self.send(sink, event, policy.delivery_timeout)
        # As Kyma: a delivery without an HTTP answer counts as 500; ours says why.
        self.metrics.record_delivery(binding.subscription, binding.event_type, sink,
                                     500 if result.status is None else result.status, binding.consumer,
                                     time.perf_counter() - started)
        if result.status is None:
            self.metrics.record_delivery_error(binding.subscription, binding.consumer, result.reason)
        outcome = classify(result.status, policy, num_delivered)
        if outcome is Outcome.ACK and not result.refused and not result.permanent:
            if self.delivery_status.failing:
                self.delivery_status.succeeded(binding.subscription)
        else:
            self.delivery_status.failed(binding.subscription, result.describe(), result.status, num_delivered,
                                        binding.consumer)
        if result.refused:
            # Not the event's fault: it waits (never dead-lettered) while the manager takes the
            # subscription out of service until the sink is allowed again.
            log.warning("delivery of %s refused: %s", binding.consumer, result.error)
            await msg.nak(delay=policy.max_delay)
            if self.on_refused is not None:
                self.on_refused(binding.subscription, result.error)
            return
        if result.permanent:
            await self._give_up(binding, msg, sink, "UnsendableEvent", result)
            return
        if outcome is Outcome.ACK:
            if self.ack_batch_window > 0:
                self._ack_soon(msg)
            else:
                await msg.ack()
        elif outcome is Outcome.RETRY:
            retry_after = result.retry_after if result.status in (429, 503) else None
            delay = next_delay(num_delivered, policy, retry_after, rng=self.rng)
            log.info("delivery %d of %s to %s failed (%s); retry in %.1fs", num_delivered,
                     binding.consumer, sink, result.error or result.status, delay)
            await msg.nak(delay=delay)
        else:
            reason = "MaxDeliveryAttemptsExceeded" if num_delivered >= policy.max_deliveries \
                else "NonRetryableStatus"
            await self._give_up(binding, msg, sink, reason, result)

    def _ack_soon(self, msg: Any) -> None:
        self._acks.append(msg)
        if self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(self.ack_batch_window, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_timer = None
        acks, self._acks = self._acks, []
        self._spawn(self._send_acks(acks))

    async def _send_acks(self, acks: list[Any]) -> None:
        # nats-py queues each ack behind the first one's flush request, so the flusher writes
        # them all at once.
        for msg in acks:
            try:
                await msg.ack()
            except nats.errors.MsgAlreadyAckdError:
                pass
            except (nats.errors.Error, OSError) as exc:
                # Delivered, but the consumer redelivers it after ack_wait.
                log.warning("acking a delivered event failed: %s", exc)

    async def send(self, sink: str, event: ce.CloudEvent, timeout: float) -> DeliveryResult:
        """POST one event in binary mode with the original type and tracing headers restored.

        Never raises for anything the event or the sink does: every outcome is a result the
        caller can classify (transient, permanent, refused).
        """
        refusal = self._literal_refusal(sink)
        if refusal is not None:
            return DeliveryResult(None, refusal, refused=True)
        try:
            out = event.copy()
            out.attributes["type"] = t.restore_original_type(out.type, out.source, out.get("originaltype"),
                                                             self.config.stream.subject_prefix)
            trace = {header: str(out.attributes.pop(ext)) for ext, header in ce.TRACING_EXTENSIONS.items()
                     if ext in out.attributes}
            headers = out.to_binary_headers()
            headers.update(trace)
        except _UNSENDABLE as exc:
            return DeliveryResult(None, f"cannot build the request: {type(exc).__name__}: {exc}", permanent=True)
        assert self._client is not None, "Dispatcher.start() was not called"
        url = self._url(sink)
        if isinstance(url, str):
            return DeliveryResult(None, f"InvalidURL: {sink[:200]}")
        task = asyncio.current_task() if timeout > 0 else None   # 0: no timeout (the kyma profile)
        if task is not None:
            self._watch(task, timeout)
        try:
            resp = await self._client.post(url, headers, out.data or b"")
            status = resp.status
            if 200 <= status < 300:
                return DeliveryResult(status)
            text = resp.body.decode("utf-8", "replace")
            if 300 <= status < 400:
                text = f"redirect to {resp.headers.get('location', '?')} not followed; {text}"
            return DeliveryResult(status, text, parse_retry_after(resp.headers.get("retry-after")))
        except asyncio.CancelledError:
            if task is None or task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            return DeliveryResult(None, f"no answer within the delivery timeout of {timeout:g}s")
        except TimeoutError:
            return DeliveryResult(None, f"no answer within the delivery timeout of {timeout:g}s")
        except SinkRefused as exc:
            return DeliveryResult(None, exc.reason, refused=True)
        except (SinkClientError, OSError) as exc:
            return DeliveryResult(None, f"{type(exc).__name__}: {exc}", cause=_cause(exc))
        except _UNSENDABLE as exc:
            # a header name or value that cannot go on the wire (CR, LF, NUL)
            return DeliveryResult(None, f"cannot send the request: {type(exc).__name__}: {exc}", permanent=True)
        finally:
            if task is not None:
                self._deadlines.pop(task, None)
                if task in self._expired:
                    # Cancelled too late to interrupt anything: the answer above stands.
                    self._expired.discard(task)
                    task.uncancel()

    def _watch(self, task: asyncio.Task[Any], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadlines[task] = loop.time() + timeout
        if self._watchdog is None:
            self._watchdog = loop.call_later(min(WATCHDOG_PERIOD, timeout / 10), self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        if not self._deadlines:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._deadlines.items()):
            if deadline <= now and task not in self._expired:
                del self._deadlines[task]
                self._expired.add(task)
                task.cancel()
        if self._deadlines:
            nearest = min(self._deadlines.values())
            self._watchdog = loop.call_later(min(WATCHDOG_PERIOD, max(0.01, nearest - now)), self._check_deadlines)

    def _url(self, sink: str) -> URL | str:
        """The sink's URL parsed once, not at every request (~5 us each); a sink yarl cannot
        parse stays a string, which send() reports as an invalid URL."""
        url = self._urls.get(sink)
        if url is None:
            try:
                url = URL(sink)
            except ValueError:
                return sink
            if len(self._urls) >= 1024:  # sinks come from Subscriptions; stale ones drop out
                self._urls.clear()
            self._urls[sink] = url
        return url

    def _fitting_headers(self, subject: str, headers: dict[str, str], data: bytes) -> dict[str, str] | None:
        """The dead-letter headers, fewer of them when the copy would not fit the server's
        max_payload: nats-py checks the payload alone, and the server answers a message over
        the limit with -ERR and closes the connection, which every part of the eventing shares.
        None when even the fewest do not fit."""
        for attempt in (headers, {k: v for k, v in headers.items() if k not in (H_ERROR, H_SINK)},
                        {k: v for k, v in headers.items() if k in DEAD_LETTER_MINIMAL}):
            try:
                wire.check_publish(subject, attempt, data, max_payload=int(self.nc.max_payload))
            except wire.Refused:
                continue
            return attempt
        return None

    async def _give_up(self, binding: Binding, msg: Any, sink: str, reason: str, result: DeliveryResult) -> None:
        if binding.policy.profile == PROFILE_KYMA:
            # Kyma's dispatcher removes nothing: an event it cannot deliver (or parse) comes
            # back after its fixed delay until max_deliver, then stays in the stream.
            await msg.nak(delay=binding.policy.max_delay)
            return
        dl = self.config.dead_letter
        if not dl.enabled or not binding.policy.dead_letter:
            await msg.term()
            return
        meta = msg.metadata
        headers = {
            H_REASON: reason,
            H_CODE: "" if result.status is None else str(result.status),
            H_ERROR: " ".join(result.error.split())[:ERROR_TEXT_LIMIT],
            H_SUBSCRIPTION: binding.subscription,
            H_CONSUMER: binding.consumer,
            H_SINK: sink,
            H_DELIVERIES: str(meta.num_delivered),
            H_SEQUENCE: str(meta.sequence.stream),
            # Dead-lettering the same delivery twice (e.g. after a lost TERM) stores it once.
            "Nats-Msg-Id": f"{meta.stream}-{meta.sequence.stream}",
        }
        subject = dead_letter_subject(dl.subject_prefix, binding.consumer)
        fitting = self._fitting_headers(subject, headers, msg.data)
        if fitting is None:
            log.error("event seq %d of %s cannot be dead-lettered: with any dead-letter headers it is larger "
                      "than the server's max_payload; dropped (%s)", meta.sequence.stream, binding.subscription,
                      reason)
            await msg.term()
            return
        try:
            await self.js.publish(subject, msg.data, headers=fitting)
        except (nats.errors.Error, TimeoutError) as exc:
            log.error("dead-lettering seq %d of %s failed (%s); will retry", meta.sequence.stream,
                      binding.consumer, exc)
            await msg.nak(delay=binding.policy.max_delay)
            return
        self.metrics.record_dead_letter(binding.subscription, binding.consumer, reason)
        log.warning("event seq %d of %s dead-lettered: %s", meta.sequence.stream, binding.subscription, reason)
        await msg.term()


def _num_delivered(msg: Any) -> int:
    """The delivery count from the ack subject, without building nats-py's Metadata (a third
    of nats-py's cost per delivery): `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...` (9
    tokens) or with domain and account hash (11 or more)."""
    tokens = msg.reply.split(".") if isinstance(msg.reply, str) else []
    try:
        if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
            return int(tokens[4])
        if len(tokens) >= 11 and tokens[0] == "$JS" and tokens[1] == "ACK":
            return int(tokens[6])
    except ValueError:
        pass
    return int(msg.metadata.num_delivered)


def _raw_header(block: bytes, name: bytes) -> str:
    """One header's value from a raw NATS header block ("" when absent)."""
    wanted = name.lower()
    for line in block.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == wanted:
            return value.strip().decode("utf-8", "replace")
    return ""


def _cause(exc: BaseException) -> str:
    """A connection failure in a few words: the OS's text for its errno ("connection refused",
    "connection reset by peer"), else what the client says."""
    if isinstance(exc, SinkDisconnected):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        # its errno is OpenSSL's code, not the OS's: strerror would say "operation not permitted"
        return f"TLS: {exc.reason or type(exc).__name__}".replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
