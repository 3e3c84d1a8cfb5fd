"""The consumer half of the JetStream API: create/update, info, delete, names, list, next.

Owns the `$JS.API.CONSUMER.*` handlers (router.py's table names them), the
create rules that span the request subject, the body and the stream (nats-server's checks
and err_codes, including the workqueue rules), opening each consumer's state store, consumer
advisories, and recovering consumers when a stream is restored. Delivery is the runner's and
the state machine's; response envelopes and error rendering are api.py's.
"""

from __future__ import annotations

import json
import logging
import os
import random
import string
from typing import Any

from pyjetstream.gotime import ZERO_TIME
from pyjetstream.jetstream import advisories, errors, fair, gojson, publish_targets
from pyjetstream.jetstream.api import ApiRequest, pedantic_flag
from pyjetstream.jetstream.consumer_config import (
    GROUP_NAME,
    ConsumerConfig,
    StreamView,
    apply_defaults,
    check_config,
    check_update,
    same_stored_metadata,
    set_static_metadata,
    utc_text,
)
from pyjetstream.jetstream.consumer_runner import ConsumerRunner
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.schemas import with_dynamic_metadata
from pyjetstream.jetstream.store.layout import consumer_dir, list_consumers, open_consumer_store
from pyjetstream.jetstream.stream import Stream
from pyjetstream.subjects import subjects_overlap
from pyjetstream.version import VERSION

log = logging.getLogger(__name__)

NAMES_LIMIT = 1024
LIST_LIMIT = 256
_NAME_ALPHABET = string.ascii_letters + string.digits
_NO_RESPONDERS = b"NATS/1.0 503\r\n\r\n"


def _stream_view(stream: Any) -> StreamView:
    cfg = stream.config
    limits = getattr(cfg, "consumer_limits", None) or {}
    st = cfg.subject_transform
    return StreamView(
        name=stream.name,
        subjects=list(cfg.subjects or []),
        stored_by_transform=_transform_space(st["dest"]) if st and st.get("dest") else "",
        retention=cfg.retention,
        num_replicas=max(1, cfg.num_replicas or 1),
        has_external=bool(cfg.mirror or cfg.sources),
        limit_inactive_threshold=max(0, int(limits.get("inactive_threshold") or 0)),
        limit_max_ack_pending=max(0, int(limits.get("max_ack_pending") or 0)),
    )


def _transform_space(dest: str) -> str:
    """The subjects a transform destination can produce: each `$N` / `{{wildcard(N)}}` token
    stands for one source token (the only mapping functions stream transforms accept)."""
    return ".".join("*" if t.startswith("$") or t.startswith("{{") else t for t in dest.split("."))


_SYSRAND = random.SystemRandom()  # os.urandom, as secrets uses, without its hmac and OpenSSL


def _ephemeral_name() -> str:
    return "".join(_SYSRAND.choice(_NAME_ALPHABET) for _ in range(8))


def _stream_dir(stream: Any) -> str:
    # The stream's own directory (store/layout.py names it), so consumer state lives inside
    # it and goes with it when the stream is deleted.
    return stream.directory or stream.jsa.stream_dir(stream.name)


def add_consumer(stream: Any, cfg: ConsumerConfig, action: str = "", pedantic: bool = False) -> ConsumerRunner:
    """Create (or update) a consumer on a stream; nats-server's addConsumerWithAction rules.
    `pedantic`: the request's flag (consumer_config.apply_defaults)."""
    view = _stream_view(stream)
    # the account's max_ack_pending caps the default and refuses larger values (10121)
    limits = stream.jsa.limits
    acct_map = limits.max_ack_pending if limits is not None else -1
    apply_defaults(cfg, max(acct_map, 0), view, pedantic)
    check_config(cfg, view, max(acct_map, 0))
    name = cfg.durable_name or cfg.name
    existing = stream.consumers.get(name) if name else None
    if existing is not None:
        if action == "create":
            if same_stored_metadata(cfg, existing.config).to_json() == existing.config.to_json():
                return existing
            raise errors.consumer_already_exists()
        check_update(existing.config, cfg)
        if view.retention == "workqueue":
            # filters stay exclusive on update too (nats-server 2.9.10 checked only on create;
            # later releases refuse an overlapping update with 10100, as here)
            _check_wq_unique(stream, cfg, exclude=name)
        if cfg.deliver_subject != existing.config.deliver_subject and existing.core.active and \
                stream.jsa.server.has_interest(stream.jsa.account, existing.config.deliver_subject):
            raise errors.consumer_name_exist()
        existing.update_config(cfg)
        return existing
    if action == "update":
        raise errors.consumer_does_not_exist()
    mc = stream.config.max_consumers
    if mc > 0 and len(stream.consumers) >= mc:
        raise errors.maximum_consumers_limit()
    acct_mc = stream.jsa.limit("max_consumers")
    if acct_mc > 0 and sum(len(s.consumers) for s in stream.jsa.streams.values()) >= acct_mc:
        raise errors.maximum_consumers_limit()
    if view.retention == "workqueue":
        if cfg.ack_policy != "explicit":
            raise errors.consumer_wq_requires_explicit_ack()
        if stream.consumers:
            if not cfg.filters:
                raise errors.consumer_wq_multiple_unfiltered()
            _check_wq_unique(stream, cfg)
        if cfg.deliver_policy != "all":
            raise errors.consumer_wq_consumer_not_deliver_all()
    if not name:
        while True:
            name = _ephemeral_name()
            if name not in stream.consumers:
                break
        cfg.name = name
    durable = stream.config.storage == "file" and bool(cfg.durable_name) and not cfg.mem_storage
    if durable and "\x00" in name:
        # what nats-server answers when the file system refuses such a directory name
        raise errors.consumer_create(err="error creating store for consumer")
    # As in nats-server, only durables of file streams keep their state over a restart.
    cstore = open_consumer_store("file" if durable else "memory", consumer_dir(_stream_dir(stream), name))
    runner = ConsumerRunner(stream, name, cfg, cstore=cstore)
    stream.add_consumer(name, runner)
    advisories.consumer_action(stream.jsa.server, stream.jsa.account, stream.name, name, "create",
                               domain=stream.jsa.js.domain)
    return runner


def _check_wq_unique(stream: Any, cfg: ConsumerConfig, exclude: str = "") -> None:
    """On a work-queue stream no two consumers may share a subject (10100)."""
    for oname, other in stream.consumers.items():
        if oname == exclude:
            continue
        ofs = other.config.filters
        if not cfg.filters or not ofs or any(subjects_overlap(a, b) for a in cfg.filters for b in ofs):
            raise errors.consumer_wq_consumer_not_unique()


def delete_consumer(stream: Any, name: str) -> None:
    runner = stream.consumers.get(name)
    if runner is None:
        raise errors.consumer_not_found()
    runner.stop(delete=True)
    stream.remove_consumer(name)
    advisories.consumer_action(stream.jsa.server, stream.jsa.account, stream.name, name, "delete",
                               domain=stream.jsa.js.domain)


def _adopt_legacy_consumers(stream: Any) -> None:
    """Earlier releases kept consumer state under <streams>/<raw stream name>/obs, beside the
    stream's (quoted) directory; move it into the stream's directory once."""
    legacy = os.path.join(stream.jsa.streams_dir(), stream.name)
    current = _stream_dir(stream)
    if os.path.normpath(legacy) == os.path.normpath(current) or not os.path.isdir(os.path.join(legacy, "obs")):
        return
    if os.path.exists(os.path.join(legacy, "meta.json")):
        return  # another stream's directory, not a leftover
    try:
        if not os.path.exists(os.path.join(current, "obs")):
            os.replace(os.path.join(legacy, "obs"), os.path.join(current, "obs"))
        os.rmdir(legacy)
    except OSError as e:
        log.warning("consumer state of %s in %s not moved: %s", stream.name, legacy, e)


def recover_consumers(stream: Any) -> None:
    """Bring back the durable consumers a restored file stream remembers (the manager calls this)."""
    if stream.config.storage != "file":
        return
    _adopt_legacy_consumers(stream)
    for name, directory in list_consumers(_stream_dir(stream)):
        cstore = open_consumer_store("file", directory)
        try:
            raw, state = cstore.load()
            if raw is None:
                # created but never configured (a crash mid-create): nothing to restore
                cstore.delete()
                continue
            meta = json.loads(raw)
            cfg = ConsumerConfig.from_json(meta["config"])
            # the config names the consumer; a long name's directory only hashes it
            name = cfg.durable_name or cfg.name or name
            if not name:
                raise ValueError(f"consumer in {directory} has no name")
            runner = ConsumerRunner(stream, name, cfg, cstore=cstore, state=state,
                                    created=int(meta.get("created", 0)))
            stream.add_consumer(name, runner)
            log.info("consumer %s > %s restored: delivered %d, ack floor %d, %d pending",
                     stream.name, name, state.delivered.stream_seq, state.ack_floor.stream_seq,
                     len(state.pending))
        except (ValueError, KeyError, TypeError, OSError, ApiError) as e:
            log.error("consumer %s > %s not recovered: %s", stream.name, name, e)


# ------------------------------------------------------------------------------------ handlers


def _body(req: ApiRequest) -> dict[str, Any]:
    return req.json()


def consumer_create(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    t = req.tokens  # CONSUMER CREATE <stream> [<name> [<filter>...]] | CONSUMER DURABLE CREATE <stream> <durable>
    legacy_durable = t[1] == "DURABLE"
    if legacy_durable:
        stream_name, subj_name, filt = t[3], t[4] if len(t) > 4 else "", ""
    else:
        stream_name = t[2]
        subj_name = t[3] if len(t) > 3 else ""
        filt = ".".join(t[4:]) if len(t) > 4 else ""
    if not req.payload or not req.payload.strip():
        raise errors.invalid_json()
    d = _body(req)
    if not isinstance(d.get("stream_name", ""), str | None):
        raise errors.invalid_json()
    if (d.get("stream_name") or "") != stream_name:
        raise errors.stream_mismatch()
    action = d.get("action", "") or ""
    if action not in ("", "create", "update"):
        raise errors.invalid_json()
    if "config" not in d or d["config"] is None:
        raise errors.consumer_config_required()
    cfg = ConsumerConfig.from_json(d["config"])
    pedantic = pedantic_flag(d, "CreateConsumerRequest")
    if subj_name and ("/" in subj_name or "\\" in subj_name):
        raise errors.consumer_name_contains_path_separators()
    if legacy_durable:
        if not cfg.durable_name:
            raise errors.consumer_durable_name_not_set()
        if subj_name != cfg.durable_name:
            raise errors.consumer_durable_name_not_match_subject()
    elif subj_name:
        if cfg.durable_name and cfg.durable_name != subj_name:
            raise errors.consumer_durable_name_not_match_subject()
        cfg.name = subj_name
    elif cfg.durable_name:
        raise errors.consumer_ephemeral_with_durable_name()
    if filt:
        if cfg.filter_subjects:
            raise errors.consumer_multiple_filters_not_allowed()
        if cfg.filter_subject != filt:
            raise errors.consumer_create_filter_subject_mismatch()
    if cfg.num_replicas > 1:
        raise errors.stream_replicas_not_supported()
    stream = req.stream(stream_name)
    existing = stream.consumers.get(cfg.durable_name or cfg.name)
    if existing is not None:
        # nats-server 2.12: a create or update leaves an existing consumer's pause deadline as
        # it is; only $JS.API.CONSUMER.PAUSE changes it
        cfg.pause_until = existing.config.pause_until
    set_static_metadata(cfg)
    publish_targets.check_deliver_subject(req.client, cfg.deliver_subject,
                                          existing.config.deliver_subject if existing else None)
    runner = add_consumer(stream, cfg, action, pedantic)
    runner.announce_pause()
    return (yield from _info(stream, runner, dynamic=True))


def _info(stream: Any, runner: ConsumerRunner, dynamic: bool = False) -> fair.Job[dict[str, Any]]:
    """runner.info() with its pending count taken in slices: on a big stream with a wildcard
    filter that count reads every message. `dynamic`: the config's metadata also gets the
    server's version and API level, as nats-server's create and info answers have (its list
    answers do not)."""
    per_subject, filters, sseq = runner.core.pending_plan()
    n = yield from fair.count_pending(stream, per_subject, filters, sseq)
    if runner.closed or stream.closed:
        raise errors.consumer_not_found()
    core = runner.core
    if not core.npc_valid and core.sseq == sseq:
        core.npc, core.npc_valid = n, True  # spares its first delivery the same count
    info = runner.info(num_pending=n)
    if dynamic:
        info["config"] = with_dynamic_metadata(info["config"], VERSION)
    return info


def _consumer(req: ApiRequest) -> tuple[Stream, ConsumerRunner]:
    stream = req.stream(req.tokens[2])
    runner = stream.consumers.get(req.tokens[3])
    if not isinstance(runner, ConsumerRunner):  # a stream's consumers are runners
        raise errors.consumer_not_found()
    return stream, runner


def consumer_info(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    # nats-server takes no body here (isEmptyRequest, before the lookups): a field sent is
    # refused rather than ignored
    if not gojson.is_empty_request(req.payload):
        raise errors.not_empty_request()
    stream, runner = _consumer(req)
    return (yield from _info(stream, runner, dynamic=True))


def consumer_delete(req: ApiRequest) -> dict[str, Any]:
    # Only an empty request deletes (nats-server's isEmptyRequest): a stray message such as a
    # PubAck published to this subject must not take the consumer with it.
    if not gojson.is_empty_request(req.payload):
        raise errors.not_empty_request()
    stream = req.stream(req.tokens[2])
    delete_consumer(stream, req.tokens[3])
    return {"success": True}


def _offset(req: ApiRequest) -> int:
    try:
        off = gojson.int_field(_body(req), "offset", "int")
    except gojson.GoJSONError:
        raise errors.invalid_json() from None
    return max(0, off)


def consumer_names(req: ApiRequest) -> dict[str, Any]:
    offset = _offset(req)
    stream = req.stream(req.tokens[2])
    names = sorted(stream.consumers)
    return {"total": len(names), "offset": offset, "limit": NAMES_LIMIT,
            "consumers": names[offset:offset + NAMES_LIMIT]}


def consumer_list(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    offset = _offset(req)
    stream = req.stream(req.tokens[2])
    names = sorted(stream.consumers)
    infos = []
    for n in names[offset:offset + LIST_LIMIT]:
        runner = stream.consumers.get(n)
        if isinstance(runner, ConsumerRunner):  # else deleted while the list was being made
            try:
                infos.append((yield from _info(stream, runner)))
            except ApiError:
                if stream.closed:
                    raise
    return {"total": len(names), "offset": offset, "limit": LIST_LIMIT, "consumers": infos}


def consumer_msg_next(req: ApiRequest) -> None:
    """Pull request: the consumer answers the request's reply subject itself, later."""
    if not req.reply:
        return None
    stream = req.jsa.streams.get(req.tokens[3])  # CONSUMER MSG NEXT <stream> <consumer>
    runner = stream.consumers.get(req.tokens[4]) if stream is not None else None
    # a stream's consumers are runners; only a runner takes pull requests
    if not isinstance(runner, ConsumerRunner):
        # nats-server has no subscriber for this subject then: the requester sees no responders
        req.respond(b"", _NO_RESPONDERS)
        return None
    runner.on_pull_request(req.reply, req.payload)
    return None



def _pause_until(req: ApiRequest) -> str | None:
    """The `pause_until` of a pause request, normalised to UTC; None lifts the pause. As
    nats-server: a body that is not a JSON object or array is ignored (a resume); one Go
    cannot decode into the request is 10025, an unknown field too in strict mode."""
    body = req.payload.strip() if req.payload else b""
    if body[:1] not in (b"{", b"["):
        return None
    try:
        doc = gojson.loads(body)
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise errors.invalid_json("json: cannot unmarshal array into Go value of type JSApiConsumerPauseRequest")
    v = req.known_fields(doc).get("pause_until")
    if v is None:
        return None
    if not isinstance(v, str):
        raise errors.invalid_json("Time.UnmarshalJSON: input is not a JSON string")
    try:
        text = utc_text(v)
    except ValueError:
        raise errors.invalid_json(f"parsing time {json.dumps(v)} as \"2006-01-02T15:04:05Z07:00\"") from None
    # Go's zero time lifts the pause; any other time, even long past, is kept (not paused)
    return None if text == ZERO_TIME else text


def consumer_pause(req: ApiRequest) -> dict[str, Any]:
    """`$JS.API.CONSUMER.PAUSE.<stream>.<consumer>` (nats-server 2.11+): pause until the given
    time, or resume at once when it is empty, zero or passed."""
    until = _pause_until(req)
    _, runner = _consumer(req)
    paused, remaining = runner.pause(until)
    out: dict[str, Any] = {"paused": paused, "pause_until": until or ZERO_TIME}
    if paused:
        out["pause_remaining"] = remaining
    return out


def consumer_unpin(req: ApiRequest) -> dict[str, Any]:
    """`$JS.API.CONSUMER.UNPIN.<stream>.<consumer>` with `{"group": ...}` (nats-server 2.11+):
    the group's pinned client loses its pin; the next request without a pin id gets a new one.
    The body is checked before the stream and consumer are looked up, as nats-server does."""
    try:
        doc = gojson.loads(req.payload.strip() if req.payload else b"")
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None
    if doc is not None and not isinstance(doc, dict):
        raise errors.invalid_json("json: cannot unmarshal into Go value of type JSApiConsumerUnpinRequest")
    try:
        # keys as Go matches them; unknown ones dropped (nats-server is never strict here)
        group = gojson.str_field(req.known_fields(doc or {}), "group", "JSApiConsumerUnpinRequest")
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None
    if not group:
        raise errors.invalid_json("consumer group not specified")
    if not GROUP_NAME.fullmatch(group):
        raise errors.by_constant("JSConsumerInvalidGroupNameErr")
    _, runner = _consumer(req)
    if group not in (runner.config.priority_groups or ()):
        raise errors.by_constant("JSConsumerInvalidPriorityGroupErr")
    runner.unpin(group)
    return {}
