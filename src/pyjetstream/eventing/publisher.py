"""The publisher proxy: CloudEvents over HTTP in, JetStream publishes out (aiohttp).

Owns the HTTP API Kyma's publisher offers (`/publish`, the legacy `/{app}/v1/events`, the
`/subscribed` listing, health and metrics) and the mapping of JetStream errors to Kyma's
status codes. A 2xx is answered only after the JetStream PubAck; a request is validated
completely (including every attribute that becomes an HTTP header at dispatch) before
anything is stored, and stores all its copies or none. It never creates streams or
consumers (that is `manager`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from aiohttp import web
from nats.js.api import PubAck

from pyjetstream.httpd import add_fallback, add_routes, is_unmatched

from . import cloudevents as ce
from . import types as t
from . import wire
from .config import EventingConfig
from .dispatcher import dead_letter_reserve
from .metrics import EventingMetrics
from .subscriptions import Subscription

log = logging.getLogger("pyjetstream.eventing.publisher")

ERR_STREAM_FULL = 10077
_UUID = re.compile(r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$")
_ALNUM = re.compile(r"[a-zA-Z0-9]+")
_TRACE_REQUEST_HEADERS = {v.lower(): k for k, v in ce.TRACING_EXTENSIONS.items()}


class BackendError(Exception):
    """Publishing failed; `status` is the HTTP code Kyma answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def message_id(source: str, event_id: str) -> str:
    """Nats-Msg-Id for de-duplication: CloudEvents defines source+id as the event's identity."""
    return hashlib.sha256(f"{source}\n{event_id}".encode()).hexdigest()[:40]


def stored_event(event: ce.CloudEvent, target: t.PublishTarget) -> ce.CloudEvent:
    out = event.copy()
    out.attributes["type"] = target.event_type
    if target.original_type is not None:
        out.attributes["originaltype"] = target.original_type
    return out


@dataclass(slots=True)
class Outgoing:
    """One checked message: where it goes, the stored event and the NATS headers."""

    target: t.PublishTarget
    payload: bytes
    headers: dict[str, str]
    block: bytes | None = None   # the NATS header block of `headers`, as wire.check_publish built it


class EventPublisher:
    """Publishes CloudEvents to JetStream through a nats-py connection."""

    # The server's max_control_line (INFO does not announce it); set lower to match a server
    # configured below nats-server's default.
    max_control_line: int = wire.MAX_CONTROL_LINE

    def __init__(self, nc: Any, config: EventingConfig, metrics: EventingMetrics | None = None) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=config.publish_timeout)
        self.config = config
        self.metrics = metrics
        self._destination_url: Any = None
        self._destination = "nats"
        # PubAcks come to one wildcard inbox and find their waiter by the reply's last token
        # (as nats-py's request() does, without its per-request random token, asyncio.wait_for
        # task and PubAck.from_response: a third of the proxy's NATS-side CPU; issue 14).
        self._ack_prefix = ""
        self._ack_prefix_bytes = b""
        self._ack_waiters: dict[int, asyncio.Future[tuple[bytes, bool]]] = {}
        self._ack_tokens = itertools.count()
        self._ack_sub: asyncio.Future[None] | None = None
        # The connection of EventingService frames the HPUB from the header block we built
        # and hands PubAcks over without nats-py's Msg objects; any other client works through
        # nats-py's public API.
        self._framed = hasattr(nc, "publish_framed") and hasattr(nc, "direct")
        inbox = getattr(nc, "_inbox_prefix", None)
        self._reply_prefix_len = len(inbox) if isinstance(inbox, (bytes, bytearray)) else len("_INBOX")
        self._reserve = dead_letter_reserve(config.stream.name) if config.dead_letter.enabled else 0
        self._targets: dict[tuple[str, str], t.PublishTarget] = {}

    def target(self, event: ce.CloudEvent) -> t.PublishTarget:
        # Sources and types repeat from event to event: their targets are kept (bounded).
        key = (event.source, event.type)
        found = self._targets.get(key)
        if found is None:
            found = t.publish_target(event.source, event.type, self.config.legacy_type_prefix,
                                     self.config.stream.subject_prefix, self.config.application_types)
            if len(self._targets) >= 4096:
                self._targets.clear()
            self._targets[key] = found
        return found

    def prepare(self, event: ce.CloudEvent, target: t.PublishTarget | None = None) -> Outgoing:
        """Everything checked before a message is sent: the type (unless `target` is given),
        the stored form, and the limits a NATS server enforces by closing the connection.

        Raises EventTypeError or wire.Refused.
        """
        target = target or self.target(event)
        final = stored_event(event, target)
        headers: dict[str, str] = {}
        if self.config.dedupe:
            # First in the block: nats-server reads a header at its first occurrence, so a
            # ce-id or ce-type holding "Nats-Msg-Id" must not come before the real one.
            headers["Nats-Msg-Id"] = message_id(final.source, final.id)
        headers.update({"ce-specversion": str(final.get("specversion")), "ce-type": final.type,
                        "ce-source": final.source, "ce-id": final.id})
        if final.datacontenttype:
            headers["Content-Type"] = final.datacontenttype
        payload = wire.encode_event(final)
        block = wire.check_publish(target.subject, headers, payload, max_payload=int(self.nc.max_payload),
                                   max_control_line=self.max_control_line, reply_prefix_len=self._reply_prefix_len,
                                   reserve=self._reserve)
        return Outgoing(target, payload, headers, block)

    async def publish(self, event: ce.CloudEvent, target: t.PublishTarget | None = None,
                      outgoing: Outgoing | None = None) -> tuple[t.PublishTarget, Any]:
        """Prepare (unless `outgoing` is given), publish, wait for the PubAck.

        Raises EventTypeError, wire.Refused or BackendError.
        """
        out = outgoing or self.prepare(event, target)
        started = time.perf_counter()
        code = 204
        try:
            ack = await self._send(out.target.subject, out.payload, out.headers, out.block)
        except BackendError as exc:
            code = exc.status
            raise
        finally:
            if self.metrics is not None:
                self.metrics.record_backend(code, self.destination(), (time.perf_counter() - started) * 1000)
        return out.target, ack

    def destination(self) -> str:
        """The NATS server the events go to, as Kyma's `destination_service` label names it
        (its sender's URL); without credentials, and stable across a reconnect to the same one."""
        url = getattr(self.nc, "connected_url", None)
        if url is None:
            return "nats"
        if url is not self._destination_url:
            self._destination_url = url
            self._destination = f"{url.scheme or 'nats'}://{url.hostname or ''}:{url.port or 4222}"
        return self._destination

    async def _subscribe_acks(self) -> None:
        """The PubAck inbox, subscribed once (concurrent first publishes wait for the one
        subscribe); nats-py replays it after a reconnect like any subscription."""
        if self._ack_sub is None:
            self._ack_sub = asyncio.get_running_loop().create_future()
            try:
                prefix = f"{self.nc.new_inbox()}."
                if self._framed:
                    sub = await self.nc.subscribe(f"{prefix}*")
                    self.nc.direct[sub._id] = self._on_ack_direct
                else:
                    await self.nc.subscribe(f"{prefix}*", cb=self._on_ack)
            except BaseException as exc:
                self._ack_sub.set_exception(exc)
                self._ack_sub.exception()  # retrieved: later callers see it through await
                self._ack_sub = None
                raise
            self._ack_prefix = prefix
            self._ack_prefix_bytes = prefix.encode()
            self._ack_sub.set_result(None)
        else:
            await asyncio.shield(self._ack_sub)

    def _answered(self, token: bytes | str, data: bytes, no_responders: bool) -> None:
        try:
            waiter = self._ack_waiters.pop(int(token), None)
        except ValueError:
            return
        if waiter is not None and not waiter.done():
            waiter.set_result((data, no_responders))

    async def _on_ack(self, msg: Any) -> None:
        self._answered(msg.subject[len(self._ack_prefix):], msg.data,
                       bool(msg.headers) and msg.headers.get("Status") == "503")

    def _on_ack_direct(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        # A no-responders answer is a bare status line: "NATS/1.0 503\r\n\r\n".
        self._answered(subject[len(self._ack_prefix_bytes):], data,
                       headers is not None and headers[9:12] == b"503")

    async def _publish_acked(self, subject: str, payload: bytes, headers: dict[str, str],
                             block: bytes | None = None) -> PubAck:
        """js.publish's contract: the PubAck, or NoStreamResponseError (no stream takes the
        subject), APIError (the stream refused), nats.errors.TimeoutError (no answer)."""
        if not self._ack_prefix:
            await self._subscribe_acks()
        token = next(self._ack_tokens)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[bytes, bool]] = loop.create_future()
        self._ack_waiters[token] = waiter
        timer = None
        try:
            if self._framed and block is not None:
                await self.nc.publish_framed(subject.encode(), self._ack_prefix_bytes + b"%d" % token, block,
                                             payload)
            else:
                await self.nc.publish(subject, payload, reply=self._ack_prefix + str(token), headers=headers)
            timer = loop.call_later(self.config.publish_timeout, _expire, waiter)
            data, no_responders = await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._ack_waiters.pop(token, None)
        if no_responders:
            raise nats.js.errors.NoStreamResponseError
        resp = json.loads(data)
        if "error" in resp:
            raise nats.js.errors.APIError.from_error(resp["error"])
        return PubAck(stream=resp["stream"], seq=resp["seq"], domain=resp.get("domain"),
                      duplicate=resp.get("duplicate"))

    async def _send(self, subject: str, payload: bytes, headers: dict[str, str], block: bytes | None = None) -> Any:
        if not self.nc.is_connected:
            raise BackendError(502, "no connection to NATS JetStream server")
        try:
            return await self._publish_acked(subject, payload, headers, block)
        except nats.js.errors.NoStreamResponseError as exc:
            raise BackendError(504, f"cannot send to stream: {exc}") from exc
        except nats.js.errors.APIError as exc:
            text = str(exc.description or "")
            if exc.err_code == ERR_STREAM_FULL or "no space left on device" in text or "maximum bytes" in text:
                raise BackendError(507, f"insufficient resources on target stream: {text}") from exc
            status = exc.code if isinstance(exc.code, int) and 400 <= exc.code < 600 else 500
            raise BackendError(status, f"JetStream error: {text}") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.NoServersError) as exc:
            raise BackendError(502, "no connection to NATS JetStream server") from exc
        except nats.errors.MaxPayloadError as exc:  # refused by nats-py before writing: no -ERR
            raise BackendError(413, "the event is larger than the NATS server's max_payload") from exc
        except nats.errors.BadSubjectError as exc:
            raise BackendError(400, f"not a NATS subject: {subject!r}") from exc
        except (TimeoutError, nats.errors.Error) as exc:
            raise BackendError(500, f"internal error on backend: {exc!r}") from exc


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(nats.errors.TimeoutError())


# -- HTTP ----------------------------------------------------------------------------------

# The Subscriptions `/subscribed` lists: a manager's in-memory view (sync) or, in a
# publisher-only process, a read of the store (async).
SubscriptionsProvider = Callable[[], Iterable[Subscription] | Awaitable[Iterable[Subscription]]]
# Paths that stay open when publish tokens are configured: probes and scrapes carry no token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def create_app(publisher: EventPublisher, subscriptions: SubscriptionsProvider | None = None,
               metrics: EventingMetrics | None = None) -> web.Application:
    config = publisher.config
    metrics = metrics or publisher.metrics or EventingMetrics()
    middlewares = [_metrics_middleware(metrics)]
    if config.publish_tokens:
        middlewares.append(_token_middleware(config.publish_tokens))
    app = web.Application(client_max_size=config.max_request_size, middlewares=middlewares)
    metrics.publisher_started()
    handlers = _Handlers(publisher, subscriptions or (lambda: ()), metrics)
    add_routes(app.router, [("POST", "/publish", handlers.publish),
                            ("POST", "/{application}/v1/events", handlers.legacy),
                            ("GET", "/{application}/v1/events/subscribed", handlers.subscribed),
                            ("*", "/healthz", handlers.healthz), ("*", "/readyz", handlers.readyz),
                            ("GET", "/metrics", handlers.render_metrics)])
    add_fallback(app.router)
    return app


def _metrics_middleware(metrics: EventingMetrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/metrics":
            # Kyma serves its figures on a port of their own, so scrapes are not requests.
            return await handler(request)
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            # The route's template, never the raw path: `/{application}/v1/events` is one series.
            route = request.match_info.route.resource
            path = "unknown" if route is None or is_unmatched(request) else route.canonical
            metrics.record_request(request.method, code, path, time.perf_counter() - started)
    return middleware


def _token_middleware(tokens: Iterable[str]) -> Any:
    """Bearer-token check for every path but OPEN_PATHS (RFC 6750). Tokens are compared as
    SHA-256 digests with `hmac.compare_digest`, against every configured token without an
    early exit, so neither a token's content nor its length shows in the answer time."""
    digests = [hashlib.sha256(token.encode()).digest() for token in tokens]

    def valid(given: str) -> bool:
        mine = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        ok = False
        for digest in digests:
            ok |= hmac.compare_digest(mine, digest)
        return ok

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return _unauthorized(request, "missing bearer token: send 'Authorization: Bearer <token>'", "")
        if not valid(given):
            return _unauthorized(request, "invalid bearer token", ' error="invalid_token"')
        return await handler(request)
    return middleware


def _unauthorized(request: web.Request, reason: str, error: str) -> web.Response:
    challenge = {"WWW-Authenticate": f'Bearer realm="pyjetstream-eventing"{error}'}
    if request.path.endswith(("/v1/events", "/v1/events/subscribed")):
        # The legacy API's clients read its JSON error shape.
        return web.json_response({"status": 401, "type": "unauthorized", "message": reason}, status=401,
                                 headers=challenge)
    return web.Response(status=401, text=f"{reason}\n", headers=challenge)


def _legacy_error(status: int, type_: str, message: str, **extra: Any) -> web.Response:
    body = {"status": status, "type": type_, "message": message, **extra}
    return web.json_response(body, status=status)


def _field_error(kind: str, field: str, message: str) -> web.Response:
    title = "Missing field" if kind == "missing_field" else "Invalid field"
    return _legacy_error(400, "validation_violation", title,
                         details=[{"field": field, "type": kind, "message": message}])


class _Handlers:
    def __init__(self, publisher: EventPublisher, subscriptions: SubscriptionsProvider,
                 metrics: EventingMetrics) -> None:
        self.publisher = publisher
        self.subscriptions = subscriptions
        self.metrics = metrics
        self.config = publisher.config

    def _count(self, event: ce.CloudEvent, code: int) -> None:
        # Kyma counts a type as published only once it is stored (always with 204, also for
        # the legacy endpoint's 200); failures show in the request and backend figures.
        if 200 <= code < 300:
            etype = event.get("originaltype") or event.type
            self.metrics.record_published(str(etype), event.source, 204)

    async def publish(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            # Kyma surfaces the size limit through the CloudEvent reader, hence 400.
            return web.Response(status=400, text="http: request body too large\n")
        try:
            event = ce.parse_http(request.headers, body)
        except ce.CloudEventError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        _add_tracing(event, request)
        problems = ce.header_attribute_problems(event.attributes)
        if problems:
            return web.Response(status=400, text="\n".join(problems) + "\n")
        try:
            await self.publisher.publish(event)
        except t.EventTypeError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except wire.Refused as exc:
            return web.Response(status=exc.status, text=f"{exc.message}\n")
        except BackendError as exc:
            log.warning("publish failed with %d: %s", exc.status, exc.message)
            self._count(event, exc.status)
            return web.Response(status=exc.status)
        self._count(event, 204)
        return web.Response(status=204)

    async def legacy(self, request: web.Request) -> web.Response:
        app_name = request.match_info["application"]
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _legacy_error(413, "request_body_too_large", "Request body too large",
                                 moreInfo="http: request body too large")
        if not body:
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax", moreInfo="EOF")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax", moreInfo=str(exc))
        except RecursionError:
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax", moreInfo="nested too deeply")
        if not isinstance(doc, dict):
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax",
                                 moreInfo="the body must be a JSON object")
        problem = _check_legacy(doc)
        if problem is not None:
            return problem
        event_id = doc.get("event-id") or str(uuid.uuid4())
        version = str(doc["event-type-version"])
        try:
            data = json.dumps(doc["data"], separators=(",", ":")).encode()
        except RecursionError:
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax", moreInfo="data nested too deeply")
        event = ce.CloudEvent({"specversion": "1.0", "id": event_id, "source": app_name,
                               "type": f"{doc['event-type']}.{version}", "datacontenttype": "application/json",
                               "time": doc["event-time"], "eventtypeversion": version}, data)
        _add_tracing(event, request)
        # Everything is checked before the first copy is stored: a request that would fail
        # on its second copy must not leave the first behind for the client's retry to repeat.
        try:
            ce.validate(event)
            planned = [(event, self.publisher.prepare(event))]
            if self.config.legacy_double_publish:
                second = self._legacy_v1alpha1(event, app_name, str(doc["event-type"]), version)
                ce.validate(second)
                planned.append((second, self.publisher.prepare(second, self._legacy_v1alpha1_target(second))))
        except (ce.CloudEventError, t.EventTypeError) as exc:
            return _legacy_error(400, "bad_payload_syntax", "Bad payload syntax", moreInfo=str(exc))
        except wire.Refused as exc:
            if exc.status == 413:
                return _legacy_error(413, "request_body_too_large", "Request body too large", moreInfo=exc.message)
            return _legacy_error(exc.status, "bad_payload_syntax", "Bad payload syntax", moreInfo=exc.message)
        stored: list[Any] = []
        for ev, outgoing in planned:
            try:
                _, ack = await self.publisher.publish(ev, outgoing=outgoing)
            except BackendError as exc:
                self._count(ev, exc.status)
                await self._roll_back(stored)
                return web.json_response({"status": exc.status, "message": exc.message}, status=exc.status)
            stored.append(ack)
        self._count(event, 200)
        return web.json_response({"event-id": event_id, "status": "", "reason": ""}, status=200)

    def _legacy_v1alpha1_target(self, event: ce.CloudEvent) -> t.PublishTarget:
        """Kyma sends the second copy to `<prefix>.<type>` as built, without the legacy type
        parser's four-segment rule (so `created` + `v1` is fine); only empty segments fail."""
        subject = f"{self.config.stream.subject_prefix}.{event.type}"
        if any(seg == "" for seg in subject.split(".")):
            raise t.EventTypeError(f"event type cannot have empty segments after cleaning: {subject}")
        return t.PublishTarget(event.type, subject, None)

    async def _roll_back(self, acks: list[Any]) -> None:
        """Remove the copies a failed request already stored (best effort: a dispatcher may
        have delivered one in the meantime, which at-least-once allows)."""
        for ack in acks:
            try:
                await self.publisher.js.delete_msg(ack.stream, ack.seq)
            except (nats.errors.Error, TimeoutError) as exc:
                log.error("a failed legacy publish left seq %d in %s behind: %s", ack.seq, ack.stream, exc)

    def _legacy_v1alpha1(self, event: ce.CloudEvent, app_name: str, event_type: str, version: str) -> ce.CloudEvent:
        """Kyma's second publish for exact-matching and old subscriptions: prefixed, alnum-only type."""
        parts = event_type.split(".")
        combined = ".".join(["".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else event_type
        app = t.clean_application_name(self.config.application_type(app_name))  # Kyma's application-type
        full = re.sub(r"[^a-zA-Z0-9.]", "", f"{app}.{combined}.{version}")
        legacy = event.copy()
        legacy.attributes["type"] = f"{self.config.legacy_type_prefix}.{full}"
        legacy.attributes["source"] = self.config.legacy_namespace
        return legacy

    async def subscribed(self, request: web.Request) -> web.Response:
        app_name = request.match_info["application"]
        seen: dict[tuple[str, str], None] = {}
        prefix = f"{self.config.legacy_type_prefix}.{app_name}."
        listed = self.subscriptions()
        if inspect.isawaitable(listed):
            try:
                listed = await listed
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("listing the Subscriptions failed: %s", exc)
                return web.json_response({"status": 503, "message": "cannot read the Subscriptions now"},
                                         status=503)
        for sub in listed:
            for ty in sub.unique_types():
                if sub.type_matching == t.EXACT:
                    if not ty.startswith(prefix):
                        continue
                    ty = ty[len(prefix):]
                elif sub.source != app_name:
                    continue
                pair = t.split_name_version(ty)
                if pair is not None:
                    seen.setdefault(pair, None)
        return web.json_response({"eventsInfo": [{"name": n, "version": v} for n, v in seen]})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def readyz(self, request: web.Request) -> web.Response:
        nc = self.publisher.nc
        ok = bool(nc.is_connected)
        self.metrics.health.set(1 if ok else 0)
        if ok:
            return web.Response(status=200)
        # 503 with the reason: a probe (or an operator) sees why, and load balancers and
        # Kubernetes treat it as "not ready" like any non-2xx.
        state = "closed" if nc.is_closed else "reconnecting" if nc.is_reconnecting else "connecting" \
            if nc.is_connecting else "disconnected"
        return web.Response(status=503, text=f"not ready: the NATS connection is {state}\n")

    async def render_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


def _add_tracing(event: ce.CloudEvent, request: web.Request) -> None:
    for header, value in request.headers.items():
        ext = _TRACE_REQUEST_HEADERS.get(header.lower())
        if ext is not None and value:
            event.attributes[ext] = value


def _check_legacy(doc: dict[str, Any]) -> web.Response | None:
    if not doc.get("event-type"):
        return _field_error("missing_field", "event-type", "field is required")
    if not isinstance(doc["event-type"], str):  # it becomes part of a NATS subject
        return _field_error("invalid_field", "event-type", "should be a string")
    version = doc.get("event-type-version")
    if not version:
        return _field_error("missing_field", "event-type-version", "field is required")
    if not isinstance(version, str) or not _ALNUM.search(version):
        return _field_error("invalid_field", "event-type-version", "should be alphanumeric")
    when = doc.get("event-time")
    if not when:
        return _field_error("missing_field", "event-time", "field is required")
    if not isinstance(when, str) or not ce.is_rfc3339(when):
        return _field_error("invalid_field", "event-time", "should be RFC3339 format")
    event_id = doc.get("event-id")
    if event_id is not None and event_id != "" and (not isinstance(event_id, str) or not _UUID.match(event_id)):
        return _field_error("invalid_field", "event-id", "should be UUID")
    if doc.get("data") is None or doc.get("data") == "":
        return _field_error("missing_field", "data", "field is required")
    return None
