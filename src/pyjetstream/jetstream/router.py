"""The JetStream API's routing: the one table from `$JS.API.*` subjects to the stream handlers
(api.py) and the consumer handlers (consumer_api.py), and dispatch.

Owns which operation a subject names (with its response `type` and argument count), the error
envelope, the API counters, the reply (after the stream's commit when a handler asks for it)
and the audit advisory. Knows nothing of what a handler does; handlers know nothing of routing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from pyjetstream.gotime import ZERO_TIME
from pyjetstream.jetstream import advisories, api, consumer_api, errors, fair, strict
from pyjetstream.jetstream.api import API_PREFIX, Handler
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.seams import ApiClient
from pyjetstream.jetstream.strict import Body

log = logging.getLogger("pyjetstream.jetstream.api")


@dataclass(frozen=True, slots=True)
class Route:
    key: str  # the subject tokens after $JS.API. that name the operation
    min_args: int  # tokens that follow the key
    max_args: int  # -1 = any number
    type_suffix: str
    handler: Handler
    body: Body | None = None  # the request struct the body decodes into (strict.py), if any
    # fields nats-server's response struct carries even on an error (no omitempty)
    error_fields: tuple[tuple[str, Any], ...] = ()


_PAGED_ERR = (("total", 0), ("offset", 0), ("limit", 0))

ROUTES: tuple[Route, ...] = (
    Route("INFO", 0, 0, "account_info_response", api.account_info),
    Route("STREAM.CREATE", 1, 1, "stream_create_response", api.stream_create, Body(strict.STREAM_CONFIG_REQUEST)),
    Route("STREAM.UPDATE", 1, 1, "stream_update_response", api.stream_update, Body(strict.STREAM_CONFIG_REQUEST)),
    Route("STREAM.INFO", 1, 1, "stream_info_response", api.stream_info,
          Body(strict.STREAM_INFO_REQUEST, optional=True), _PAGED_ERR),
    Route("STREAM.DELETE", 1, 1, "stream_delete_response", api.stream_delete),
    Route("STREAM.NAMES", 0, 0, "stream_names_response", api.stream_names,
          Body(strict.STREAM_NAMES_REQUEST, optional=True), (*_PAGED_ERR, ("streams", None))),
    Route("STREAM.LIST", 0, 0, "stream_list_response", api.stream_list,
          Body(strict.STREAM_LIST_REQUEST, optional=True), (*_PAGED_ERR, ("streams", []))),
    Route("STREAM.PURGE", 1, 1, "stream_purge_response", api.stream_purge,
          Body(strict.STREAM_PURGE_REQUEST, optional=True), (("purged", 0),)),
    Route("STREAM.MSG.GET", 1, 1, "stream_msg_get_response", api.stream_msg_get, Body(strict.MSG_GET_REQUEST)),
    Route("STREAM.MSG.DELETE", 1, 1, "stream_msg_delete_response", api.stream_msg_delete,
          Body(strict.MSG_DELETE_REQUEST)),
    Route("DIRECT.GET", 1, -1, "direct_get_response", api.direct_get),
    Route("STREAM.LEADER.STEPDOWN", 1, 1, "stream_leader_stepdown_response", api.cluster_required),
    Route("STREAM.PEER.REMOVE", 1, 1, "stream_remove_peer_response", api.cluster_required),
    Route("CONSUMER.CREATE", 1, -1, "consumer_create_response", consumer_api.consumer_create,
          Body(strict.CREATE_CONSUMER_REQUEST)),
    Route("CONSUMER.DURABLE.CREATE", 2, 2, "consumer_create_response", consumer_api.consumer_create,
          Body(strict.CREATE_CONSUMER_REQUEST)),
    Route("CONSUMER.INFO", 2, 2, "consumer_info_response", consumer_api.consumer_info),
    Route("CONSUMER.DELETE", 2, 2, "consumer_delete_response", consumer_api.consumer_delete),
    Route("CONSUMER.NAMES", 1, 1, "consumer_names_response", consumer_api.consumer_names,
          Body(strict.CONSUMERS_REQUEST, optional=True), (*_PAGED_ERR, ("consumers", []))),
    Route("CONSUMER.LIST", 1, 1, "consumer_list_response", consumer_api.consumer_list,
          Body(strict.CONSUMERS_REQUEST, optional=True), (*_PAGED_ERR, ("consumers", []))),
    Route("CONSUMER.MSG.NEXT", 2, 2, "consumer_getnext_response", consumer_api.consumer_msg_next),
    Route("CONSUMER.PAUSE", 2, 2, "consumer_pause_response", consumer_api.consumer_pause,
          Body(strict.CONSUMER_PAUSE_REQUEST, optional=True),
          (("paused", False), ("pause_until", ZERO_TIME))),
    Route("CONSUMER.UNPIN", 2, 2, "consumer_unpin_response", consumer_api.consumer_unpin,
          Body(strict.CONSUMER_UNPIN_REQUEST, strict=False)),
    Route("CONSUMER.RESET", 2, 2, "system_response", api.not_implemented),
    Route("CONSUMER.LEADER.STEPDOWN", 2, 2, "consumer_leader_stepdown_response", api.cluster_required),
)

_BY_KEY: dict[str, Route] = {r.key: r for r in ROUTES}
_KEY_DEPTH = max(r.key.count(".") + 1 for r in ROUTES)


def resolve(tokens: list[str]) -> tuple[Route | None, Handler | None]:
    """The route and handler for a subject's tokens (after $JS.API.), or (None, None)."""
    for depth in range(min(_KEY_DEPTH, len(tokens)), 0, -1):
        route = _BY_KEY.get(".".join(tokens[:depth]))
        if route is None:
            continue
        nargs = len(tokens) - depth
        if nargs < route.min_args or (route.max_args >= 0 and nargs > route.max_args):
            return None, None
        if any(not t for t in tokens):
            return None, None
        return route, route.handler
    return None, None


def dispatch(jsa: api.ApiAccount, subject: str, reply: str, hdr: bytes | None, payload: bytes,
             client: ApiClient | None = None) -> None:
    """Handle one `$JS.API.>` message for a JetStream-enabled account."""
    js = jsa.js
    tokens = subject[len(API_PREFIX) :].split(".") if subject.startswith(API_PREFIX) else []
    route, handler = resolve(tokens)
    if route is None or handler is None:
        js.api_total += 1
        js.api_errors += 1
        _reply(jsa, subject, reply, payload, client,
               api.json_response("system_response", {"error": errors.bad_request().to_dict()}))
        return
    req = api.ApiRequest(jsa, subject, tokens, payload, reply, hdr, client, route.body)
    try:
        if hdr and b"Nats-Required-Api-Level" in hdr and route.key != "DIRECT.GET":
            api.check_api_level(hdr)
        result = handler(req)
    except Exception as e:  # noqa: BLE001 - _finish() tells API errors from bugs
        _finish(route, req, None, e)
        return
    if isinstance(result, GeneratorType):
        # a job (fair.py): cut into slices when long, its requester waiting in order meanwhile
        fair.start(result, lambda r, e: _finish(route, req, r, e), client)
        return
    _finish(route, req, result, None)


def _finish(route: Route, req: api.ApiRequest, result: Any, exc: BaseException | None) -> None:
    """Send a handler's answer: its result (a dict, or bytes already encoded), or its error."""
    jsa, subject, reply, payload, client = req.jsa, req.subject, req.reply, req.payload, req.client
    js = jsa.js
    # counted once the answer exists, as nats-server counts when it sends: account info does
    # not count the request asking for it
    js.api_total += 1
    if isinstance(exc, ApiError):
        js.api_errors += 1
        body: dict[str, Any] = {"error": exc.to_dict()}
        body.update(route.error_fields)
        _reply(jsa, subject, reply, payload, client, api.json_response(route.type_suffix, body))
        return
    if exc is not None:
        # the API task boundary: one bad request must not kill the loop
        log.error("JetStream API handler failed for %s", subject, exc_info=exc)
        js.api_errors += 1
        err = errors.by_constant("JSStreamGeneralErrorF", err="internal error")
        _reply(jsa, subject, reply, payload, client, api.json_response(route.type_suffix, {"error": err.to_dict()}))
        return
    if result is None:
        return
    if isinstance(result, bytes):
        out = result
    elif "type" in result:
        out = json.dumps(result, separators=(",", ":")).encode()
    else:
        out = api.json_response(route.type_suffix, result)
    if req.durable_stream is not None:
        req.durable_stream.after_durable(lambda: _reply(jsa, subject, reply, payload, client, out))
    else:
        _reply(jsa, subject, reply, payload, client, out)


def _reply(jsa: api.ApiAccount, subject: str, reply: str, request: bytes, client: ApiClient | None,
           body: bytes) -> None:
    server = jsa.server
    if reply:
        server.respond(jsa.account, reply, None, body)
    if server.has_interest(jsa.account, advisories.API_AUDIT_SUBJECT):
        advisories.api_audit(server, jsa.account, server.server_name, advisories.client_info(jsa.account, client),
                             subject, request.decode("utf-8", "replace"), body.decode("utf-8", "replace"),
                             jsa.js.domain)


def dispatch_disabled(server: Any, account: Any, subject: str, reply: str, err: ApiError) -> None:
    """Answer any API call in an account without JetStream (10039) with the generic type."""
    if reply:
        tokens = subject[len(API_PREFIX) :].split(".")
        route, _ = resolve(tokens)
        suffix = route.type_suffix if route is not None else "system_response"
        server.respond(account, reply, None, api.json_response(suffix, {"error": err.to_dict()}))
