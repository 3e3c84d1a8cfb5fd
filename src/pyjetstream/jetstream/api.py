"""The JetStream API's requests and stream handlers.

Owns request decoding (ApiRequest), the response envelope (`type`, paging) and the stream-side
handlers (account info, stream CRUD, purge, message get/delete, direct get). The table from
`$JS.API.*` subjects to handlers, and dispatch, are router.py's; consumer handlers are
consumer_api.py's. Handlers raise ApiError; they never build error JSON themselves. A handler whose change must survive a crash before the client hears of it
sets `req.durable_stream`; the reply then waits for that stream's next commit. No stream
logic lives here: handlers call the manager and Stream methods.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

from pyjetstream.gotime import format_rfc3339, parse_rfc3339
from pyjetstream.jetstream import errors, fair, gojson, publish_targets, strict
from pyjetstream.jetstream.consumer_config import check_limits_update
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.schemas import (
    JS_API_LEVEL,
    StreamConfig,
    account_limits_to_dict,
)
from pyjetstream.jetstream.seams import AccountLimits, ApiClient, ServerJetStream, StreamOwner
from pyjetstream.jetstream.store.base import MAX_SEQ
from pyjetstream.jetstream.stream import Stream
from pyjetstream.subjects import subjects_overlap

log = logging.getLogger(__name__)

API_PREFIX = "$JS.API."
TYPE_PREFIX = "io.nats.jetstream.api.v1."
NAMES_LIMIT = 1024  # JSApiNamesLimit
LIST_LIMIT = 256  # JSApiListLimit


# The account a manager's stream operations take: its own account type (manager.JsAccount).
_Acct = TypeVar("_Acct", contravariant=True)


class ApiManager(ServerJetStream, Protocol[_Acct]):
    """What handlers ask of the JetStream manager (manager.JetStream, which imports the handlers
    through router.py, so they name it by this view)."""

    api_total: int  # counted by router.dispatch
    api_errors: int
    strict: bool  # unknown request fields refused (nats-server 2.12's default), else dropped
    def add_stream(self, jsa: _Acct, req_cfg: StreamConfig, pedantic: bool = False) -> tuple[Stream, bool]: ...
    def update_stream(self, jsa: _Acct, req_cfg: StreamConfig, pedantic: bool = False) -> Stream: ...
    def delete_stream(self, jsa: _Acct, name: str) -> None: ...


class ApiAccount(StreamOwner, Protocol):
    """What handlers need of the requester's JetStream account (manager.JsAccount): its streams,
    limits and directories, and the manager that creates and deletes streams for it."""

    @property
    def js(self) -> ApiManager[Self]: ...
    @property
    def streams(self) -> Mapping[str, Stream]: ...
    @property
    def limits(self) -> AccountLimits | None: ...
    def streams_dir(self) -> str: ...
    def stream_dir(self, stream: str) -> str: ...


@dataclass(slots=True)
class ApiRequest:
    """One API call as a handler sees it."""

    jsa: ApiAccount
    subject: str
    tokens: list[str]  # the subject's tokens after "$JS.API."
    payload: bytes
    reply: str
    hdr: bytes | None
    client: ApiClient | None  # None: the server's own request
    body: strict.Body | None = None  # the route's request struct (router.py)
    # set by a handler whose change must be durable before the reply goes out
    durable_stream: Stream | None = None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, read against the route's request struct (strict.py:
        keys as Go matches them, unknown ones refused in strict mode); {} when empty. What
        Go's decoder refuses raises 10025."""
        if not self.payload or not self.payload.strip():
            return {}
        if self.body is not None and self.body.optional and self.payload.lstrip()[:1] not in (b"{", b"["):
            return {}  # nats-server decodes such bodies only when they look like JSON
        try:
            doc = gojson.loads(self.payload)
        except gojson.GoJSONError:
            raise errors.invalid_json() from None
        if doc is None:
            return {}  # Go decodes null into a struct as "no fields"
        if not isinstance(doc, dict):
            if self.body is None:
                raise errors.invalid_json()
            raise strict.not_an_object(doc, self.body.shape)
        return self.known_fields(doc)

    def known_fields(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A decoded body as the route's request struct takes it (strict.canonical)."""
        if self.body is None:
            return doc
        return strict.canonical(doc, self.body.shape, self.body.strict and self.jsa.js.strict)

    def stream(self, name: str) -> Stream:
        """The account's stream by name, or the 10059 error."""
        s = self.jsa.streams.get(name)
        if s is None:
            raise errors.stream_not_found()
        return s

    def respond(self, body: bytes, hdr: bytes | None = None) -> None:
        if self.reply:
            self.jsa.server.respond(self.jsa.account, self.reply, hdr, body)


# A handler answers at once (a dict, None when it replied itself) or returns a job (fair.py)
# whose result is that answer, or the response already encoded.
Handler = Callable[[ApiRequest], "dict[str, Any] | None | fair.Job[dict[str, Any] | bytes | None]"]


def json_response(type_suffix: str, body: dict[str, Any]) -> bytes:
    """The response bytes: {"type": "io.nats.jetstream.api.v1.<suffix>", ...body}."""
    doc = {"type": TYPE_PREFIX + type_suffix}
    doc.update(body)
    return json.dumps(doc, separators=(",", ":")).encode()


def _int_field(d: dict[str, Any], key: str, kind: str = "int") -> int:
    """An integer request field of Go type `kind` (offsets are int, sequences uint64)."""
    try:
        return gojson.int_field(d, key, kind)
    except gojson.GoJSONError:
        raise errors.invalid_json() from None


def _str_field(d: dict[str, Any], key: str) -> str:
    v = d.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise errors.invalid_json()
    return v


def _offset(d: dict[str, Any]) -> int:
    return max(_int_field(d, "offset"), 0)


# ------------------------------------------------------------------------------------ handlers


def account_info(req: ApiRequest) -> dict[str, Any]:
    jsa = req.jsa
    mem, store = jsa.usage()
    js = jsa.js
    return {
        "memory": mem,
        "storage": store,
        "reserved_memory": 0,
        "reserved_storage": 0,
        "streams": len(jsa.streams),
        # nats-server feeds mirrors and sources through internal consumers, and counts them here
        "consumers": sum(len(s.consumers) + sum(1 for ln in s.links if ln.origin is not None)
                         for s in jsa.streams.values()),
        "limits": account_limits_to_dict(jsa.limits),
        **({"domain": js.domain} if js.domain else {}),
        "api": {"level": JS_API_LEVEL, "total": js.api_total, "errors": js.api_errors},
    }


def _config_from_request(req: ApiRequest) -> tuple[StreamConfig, bool]:
    """The config of a create or update request, and its `pedantic` flag."""
    name = req.tokens[2]
    if not req.payload or not req.payload.strip():
        raise errors.invalid_json()
    body = req.json()
    pedantic = pedantic_flag(body, "StreamConfigRequest")
    cfg = StreamConfig.from_dict(body)
    if cfg.name != name:
        raise errors.stream_mismatch()
    return cfg, pedantic


def pedantic_flag(body: dict[str, Any], struct: str) -> bool:
    """A create or update request's `pedantic` flag (nats-server 2.11+: where a default would
    change what was asked for, refuse with 10157 instead); Go's bool, else 10025."""
    try:
        return gojson.bool_field(body, "pedantic", struct)
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None


def stream_create(req: ApiRequest) -> dict[str, Any]:
    cfg, pedantic = _config_from_request(req)
    # nats-server checks this before the config (the name becomes a directory)
    if "/" in cfg.name or "\\" in cfg.name:
        raise errors.stream_name_contains_path_separators()
    # nats-server refuses this on create only, before the config checks (an update may set it)
    if cfg.mirror_direct and cfg.mirror is None:
        raise errors.stream_invalid_config(err="stream has no mirror but does have mirror direct")
    old = req.jsa.streams.get(cfg.name)
    publish_targets.check_republish(req.client, cfg.republish, old.config.republish if old else None)
    stream, did_create = req.jsa.js.add_stream(req.jsa, cfg, pedantic)
    info = stream.info()
    info.pop("domain", None)  # nats-server's create response alone leaves the domain out
    # nats-server (standalone) sets did_create on every successful create, re-creates included
    info["did_create"] = True
    req.durable_stream = stream
    return info


def stream_update(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    cfg, pedantic = _config_from_request(req)
    old = req.jsa.streams.get(cfg.name)
    if old is not None:  # else update_stream answers "stream not found"
        publish_targets.check_republish(req.client, cfg.republish, old.config.republish)
        # new consumer_limits must hold for the consumers already there (stream.go's update)
        check_limits_update(old.config.consumer_limits, cfg.consumer_limits,
                            [(n, c.config) for n, c in old.consumers.items()])
    stream = req.jsa.js.update_stream(req.jsa, cfg, pedantic)
    if stream.limits_due:
        # lower limits may remove most of the stream: trimmed in slices, answered after
        yield from stream.limits_job()
    req.durable_stream = stream  # limits may have removed messages
    return stream.info()


def stream_info(req: ApiRequest) -> fair.Job[dict[str, Any] | bytes]:
    d = req.json()
    stream = req.stream(req.tokens[2])
    try:
        deleted = gojson.bool_field(d, "deleted_details")
    except gojson.GoJSONError:
        raise errors.invalid_json() from None
    subjects_filter = _str_field(d, "subjects_filter")
    offset = _offset(d)
    out: dict[str, Any] = {"total": 0, "offset": 0, "limit": 0}
    if not subjects_filter:
        out.update(stream.info(deleted_details=deleted))
        return out
    # the subject detail may cover many subjects: counted and encoded in slices
    states = yield from fair.subjects_state(stream, subjects_filter)
    if not states:
        out.update(stream.info(deleted_details=deleted, subjects={}))
        return out
    # paging applies to the subjects map only (JSMaxSubjectDetails per page)
    names = sorted(states)
    out.update(total=len(names), offset=offset, limit=SUBJECT_DETAILS_LIMIT)
    page = names[offset : offset + SUBJECT_DETAILS_LIMIT]
    out.update(stream.info(deleted_details=deleted, subjects={_SUBJECTS_MARK: 0} if page else {}))
    body = json_response("stream_info_response", out)
    if not page:
        return body
    parts: list[str] = []
    for i in range(0, len(page), fair.SUBJECTS_CHUNK):
        chunk = page[i : i + fair.SUBJECTS_CHUNK]
        parts.append(json.dumps({k: states[k].msgs for k in chunk}, separators=(",", ":"))[1:-1])
        yield from fair.pause(stream)
    head, _, tail = body.partition(_SUBJECTS_MARK_JSON)
    return head + b"{" + ",".join(parts).encode() + b"}" + tail


SUBJECT_DETAILS_LIMIT = 100_000  # JSMaxSubjectDetails
_SUBJECTS_MARK = "\x00subjects\x00"
# where the subject detail goes in the encoded StreamInfo
_SUBJECTS_MARK_JSON = b'{"\\u0000subjects\\u0000":0}'


def stream_delete(req: ApiRequest) -> dict[str, Any]:
    if not gojson.is_empty_request(req.payload):
        raise errors.not_empty_request()
    req.jsa.js.delete_stream(req.jsa, req.tokens[2])
    return {"success": True}


def _filtered_names(req: ApiRequest) -> tuple[list[str], int]:
    d = req.json()
    offset = _offset(d)
    subject = _str_field(d, "subject")
    names = sorted(req.jsa.streams)
    if subject:
        names = [n for n in names if any(subjects_overlap(subject, s) for s in req.jsa.streams[n].config.subjects)]
    return names, offset


def stream_names(req: ApiRequest) -> dict[str, Any]:
    names, offset = _filtered_names(req)
    page = names[offset : offset + NAMES_LIMIT]
    return {"total": len(names), "offset": offset, "limit": NAMES_LIMIT, "streams": page or None}


def stream_list(req: ApiRequest) -> dict[str, Any]:
    names, offset = _filtered_names(req)
    page = names[offset : offset + LIST_LIMIT]
    infos = [req.jsa.streams[n].info(dynamic_metadata=False) for n in page]
    return {"total": len(names), "offset": offset, "limit": LIST_LIMIT, "streams": infos}


def stream_purge(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    d = req.json()
    stream = req.stream(req.tokens[2])
    filt = _str_field(d, "filter")
    seq = _int_field(d, "seq", "uint64")
    keep = _int_field(d, "keep", "uint64")
    if seq > 0 and keep > 0:
        raise errors.bad_request()
    if filt and filt != ">":
        from pyjetstream.subjects import is_valid_subject

        if not is_valid_subject(filt):
            raise errors.stream_purge_failed(err="invalid subject")
    if filt == ">":
        filt = ""
    # a purge up to a sequence past ours empties the stream; the stores never pass MAX_SEQ
    seq = min(seq, MAX_SEQ + 1)
    n = yield from stream.purge_job(filt, seq, keep)
    req.durable_stream = stream
    return {"success": True, "purged": n}


def _msg_json(m: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": m.subject, "seq": m.seq}
    if m.hdr:
        out["hdrs"] = base64.b64encode(m.hdr).decode()
    if m.data:
        out["data"] = base64.b64encode(m.data).decode()
    out["time"] = format_rfc3339(m.ts)
    return out


def stream_msg_get(req: ApiRequest) -> fair.Job[dict[str, Any]]:
    """As nats-server 2.12's jsMsgGetRequest: `batch` and `max_bytes` are direct get's only
    (400 here), `start_time` picks the first message at or after it, `no_hdr` leaves the
    headers out. `multi_last`, `up_to_seq` and `up_to_time` are direct get's too; nats-server
    decodes them here and does nothing with them, and so do we."""
    d = req.json()
    seq = _int_field(d, "seq", "uint64")
    last = _str_field(d, "last_by_subj")
    nxt = _str_field(d, "next_by_subj")
    if _int_field(d, "batch") > 0 or _int_field(d, "max_bytes") > 0:
        raise errors.bad_request()
    start = d.get("start_time")
    try:
        no_hdr = gojson.bool_field(d, "no_hdr")
        start_ns = parse_rfc3339(start) if start is not None else None
    except (gojson.GoJSONError, ValueError, TypeError):
        raise errors.invalid_json() from None
    if (seq > 0 and last) or (seq == 0 and not last and not nxt and start_ns is None) or (
            seq > 0 and start_ns is not None) or (start_ns is not None and last) or (last and nxt):
        raise errors.bad_request()
    stream = req.stream(req.tokens[3])
    if start_ns is not None:
        seq = stream.seq_from_time(start_ns)
    m = yield from fair.get_msg(stream, seq=seq, last_by_subj=last, next_by_subj=nxt)
    if m is None:
        raise errors.no_message_found()
    out = _msg_json(m)
    if no_hdr:
        out.pop("hdrs", None)
    return {"message": out}


def stream_msg_delete(req: ApiRequest) -> dict[str, Any]:
    d = req.json()
    stream = req.stream(req.tokens[3])
    seq = _int_field(d, "seq", "uint64")
    try:
        no_erase = gojson.bool_field(d, "no_erase")
    except gojson.GoJSONError:
        raise errors.invalid_json() from None
    if not stream.delete_msg(seq, erase=not no_erase):
        raise _delete_miss(stream, seq)
    req.durable_stream = stream
    return {"success": True}


def _delete_miss(stream: Any, seq: int) -> ApiError:
    # nats-server's answer depends on its store: the file store errors for a sequence outside
    # its blocks (10057) and reports an interior hole as not removed (10043); the memory
    # store always reports not removed.
    if stream.config.storage == "file":
        st = stream.store.state()
        if seq == 0 or seq < st.first_seq:
            return errors.stream_msg_delete_failed(err="no message found")
        if seq > st.last_seq:
            return errors.stream_msg_delete_failed(err="stream store EOF")
    return errors.sequence_not_found(seq=seq)


def cluster_required(req: ApiRequest) -> dict[str, Any]:
    """Leader and peer operations exist only in a cluster; a single server says so (10010)."""
    raise errors.cluster_required()


# ------------------------------------------------------------------------------------ direct get

_STATUS_EMPTY = b"NATS/1.0 408 Empty Request\r\n\r\n"
_STATUS_MALFORMED = b"NATS/1.0 408 Malformed Request\r\n\r\n"
_STATUS_BAD = b"NATS/1.0 408 Bad Request\r\n\r\n"
_STATUS_NOT_FOUND = b"NATS/1.0 404 Message Not Found\r\n\r\n"
_STATUS_NO_RESPONDERS = b"NATS/1.0 503\r\n\r\n"
_STATUS_NO_RESULTS = b"NATS/1.0 404 No Results\r\n\r\n"


def _direct_headers(stream: str, m: Any, extra: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    lines = [
        ("Nats-Stream", stream),
        ("Nats-Subject", m.subject),
        ("Nats-Sequence", str(m.seq)),
        ("Nats-Time-Stamp", format_rfc3339(m.ts)),
        *extra,
    ]
    add = "".join(f"{k}: {v}\r\n" for k, v in lines).encode()
    if m.hdr:
        base = m.hdr
        if base.endswith(b"\r\n\r\n"):
            base = base[:-2]
        return base + add + b"\r\n"
    return b"NATS/1.0\r\n" + add + b"\r\n"


def direct_get(req: ApiRequest) -> fair.Job[None]:
    """DIRECT.GET replies with the raw message (or a status), never JSON. A job: a wildcard
    lookup on a big stream reads it in slices."""
    if not req.reply:
        return None
    if req.hdr and b"Nats-Required-Api-Level" in req.hdr:
        try:
            check_api_level(req.hdr)
        except ApiError:
            req.respond(b"", b"NATS/1.0 412 Required Api Level\r\n\r\n")
            return None
    stream = req.jsa.streams.get(req.tokens[2])
    if stream is None or not stream.config.allow_direct:
        # nats-server only listens here when allow_direct is on: the caller sees no responders
        req.respond(b"", _STATUS_NO_RESPONDERS)
        return None
    key = ".".join(req.tokens[3:])
    if key:
        d: dict[str, Any] = {}
        if req.payload:
            try:
                d = gojson.loads(req.payload)
            except gojson.GoJSONError:
                req.respond(b"", _STATUS_MALFORMED)
                return None
            if not isinstance(d, dict) or any(
                d.get(k) for k in ("last_by_subj", "next_by_subj", "multi_last", "seq", "batch", "start_time",
                                   "up_to_seq", "up_to_time")
            ):
                req.respond(b"", _STATUS_BAD)
                return None
        m = yield from _direct_lookup(stream, last_by_subj=key)
        if m is None:
            req.respond(b"", _STATUS_NOT_FOUND)
        else:
            req.respond(m.data, _direct_headers(stream.name, m))
        return None
    if not req.payload:
        req.respond(b"", _STATUS_EMPTY)
        return None
    try:
        d = gojson.loads(req.payload)
        if not isinstance(d, dict):
            raise ValueError
        # JSApiMsgGetRequest's Go types: what does not fit is a malformed request
        seq = gojson.int_field(d, "seq", "uint64")
        last = gojson.str_field(d, "last_by_subj")
        nxt = gojson.str_field(d, "next_by_subj")
        batch = gojson.int_field(d, "batch", "int")
        max_bytes = gojson.int_field(d, "max_bytes", "int")
        no_hdr = gojson.bool_field(d, "no_hdr")
        gojson.str_list(d, "multi_last")
        gojson.int_field(d, "up_to_seq", "uint64")
        for k in ("start_time", "up_to_time"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise ValueError(k)
    except ValueError:
        req.respond(b"", _STATUS_MALFORMED)
        return None
    if not seq and not last and not nxt and not d.get("multi_last") and not d.get("start_time"):
        # nothing to look for
        req.respond(b"", _STATUS_EMPTY)
        return None
    multi = d.get("multi_last")
    if (seq and last) or (last and nxt) or (last and batch) or (seq and d.get("start_time")) or (
        d.get("start_time") and last) or (multi and (last or nxt)) or (d.get("up_to_seq") and d.get("up_to_time")):
        req.respond(b"", _STATUS_BAD)
        return None
    try:
        if d.get("start_time"):
            seq = stream.seq_from_time(parse_rfc3339(d["start_time"]))
        if multi:
            if not isinstance(multi, list) or not all(isinstance(f, str) for f in multi):
                raise ValueError
            up_to = gojson.int_field(d, "up_to_seq", "uint64")
            if d.get("up_to_time"):
                up_to = stream.seq_from_time(parse_rfc3339(d["up_to_time"]))
                if up_to <= stream.store.state().first_seq:
                    req.respond(b"", _STATUS_NO_RESULTS)
                    return None
                up_to -= 1
    except (ValueError, TypeError):
        req.respond(b"", _STATUS_MALFORMED)
        return None
    if multi:
        yield from _gone_is_not_found(req, _direct_multi(req, stream, multi, seq, up_to, batch, max_bytes, no_hdr))
        return None
    if batch > 0:
        yield from _gone_is_not_found(req, _direct_batch(req, stream, seq, nxt or ">", batch, max_bytes, no_hdr))
        return None
    if nxt and not seq:
        seq = 1
    m = yield from _direct_lookup(stream, seq=seq, last_by_subj=last, next_by_subj=nxt)
    if m is None:
        req.respond(b"", _STATUS_NOT_FOUND)
    else:
        req.respond(m.data, None if no_hdr else _direct_headers(stream.name, m))
    return None


def _direct_lookup(stream: Any, seq: int = 0, last_by_subj: str = "", next_by_subj: str = "") -> fair.Job[Any]:
    """fair.get_msg for DIRECT.GET, which answers with statuses: a stream deleted while a sliced
    lookup ran has no message to give."""
    try:
        return (yield from fair.get_msg(stream, seq=seq, last_by_subj=last_by_subj, next_by_subj=next_by_subj))
    except ApiError:
        return None


def _gone_is_not_found(req: ApiRequest, job: fair.Job[None]) -> fair.Job[None]:
    try:
        yield from job
    except ApiError:
        req.respond(b"", _STATUS_NOT_FOUND)


MULTI_LAST_MAX = 1024  # nats-server's cap on the subjects one multi_last request may return


def _direct_multi(req: ApiRequest, stream: Any, filters: list[str], start: int, up_to: int, batch: int,
                  max_bytes: int, no_hdr: bool) -> fair.Job[None]:
    """The last message of every subject matching the filters, as of up_to (ADR-31)."""
    store = stream.store
    up_to = up_to or store.state().last_seq
    subjects: dict[str, Any] = {}
    for f in filters:
        subjects.update((yield from fair.subjects_state(stream, f)))
    if len(subjects) > MULTI_LAST_MAX:
        req.respond(b"", b"NATS/1.0 413 Too Many Results\r\n\r\n")
        return
    seqs = []
    for subj, ss in subjects.items():
        seq = ss.last
        if seq > up_to:
            # newer than the cut-off: walk back to this subject's last message before it
            m = store.load_prev_msg(up_to)
            while m is not None and m.subject != subj and m.seq > ss.first:
                m = store.load_prev_msg(m.seq - 1)
                yield from fair.pause(stream)
            seq = m.seq if m is not None and m.subject == subj else 0
        if seq and seq >= start:
            seqs.append(seq)
    if not seqs:
        req.respond(b"", _STATUS_NO_RESULTS)
        return
    seqs.sort()
    last = sent_bytes = 0
    for i, seq in enumerate(seqs):
        m = store.load_msg(seq)
        if m is None:
            continue
        np = len(seqs) - i - 1
        hdr = None if no_hdr else _direct_headers(
            stream.name, m, [("Nats-Num-Pending", str(np)), ("Nats-Last-Sequence", str(last))])
        req.respond(m.data, hdr)
        last = m.seq
        sent_bytes += len(m.subject) + len(m.hdr) + len(m.data)
        if (max_bytes and sent_bytes >= max_bytes) or (batch and i + 1 >= batch):
            break
    np = len(seqs) - 1 - seqs.index(last) if last in seqs else 0
    # the cut-off lets a client page on with a consistent view (up_to_seq of its next request)
    req.respond(b"", (f"NATS/1.0 204 EOB\r\nNats-Num-Pending: {np}\r\nNats-Last-Sequence: {last}\r\n"
                      f"Nats-UpTo-Sequence: {up_to}\r\n\r\n").encode())


def _direct_batch(req: ApiRequest, stream: Any, seq: int, filt: str, batch: int, max_bytes: int,
                  no_hdr: bool) -> fair.Job[None]:
    start = max(seq, 1)
    sent = 0
    sent_bytes = 0
    last = 0
    np = (yield from fair.filtered_state(stream, start, filt)).msgs
    while sent < batch:
        m = yield from fair.load_next(stream, filt, start)
        if m is None:
            break
        np = max(np - 1, 0)
        hdr = None if no_hdr else _direct_headers(
            stream.name, m, [("Nats-Num-Pending", str(np)), ("Nats-Last-Sequence", str(last))])
        req.respond(m.data, hdr)
        last = m.seq
        sent += 1
        sent_bytes += len(m.subject) + len(m.hdr) + len(m.data)
        start = m.seq + 1
        if max_bytes and sent_bytes >= max_bytes:
            break
    if sent == 0:
        req.respond(b"", _STATUS_NOT_FOUND)
        return
    req.respond(b"", f"NATS/1.0 204 EOB\r\nNats-Num-Pending: {np}\r\nNats-Last-Sequence: {last}\r\n\r\n".encode())


def check_api_level(hdr: bytes) -> None:
    # A client asking for a newer API than ours gets a clear refusal instead of half a feature.
    i = hdr.find(b"Nats-Required-Api-Level:")
    end = hdr.find(b"\r\n", i)
    value = hdr[i + 24 : end if end >= 0 else None].strip()
    if not value.isdigit() or int(value) > JS_API_LEVEL:
        raise errors.required_api_level()


def not_implemented(req: ApiRequest) -> dict[str, Any] | None:
    """Operations of newer nats-servers this one does not implement (pausing, unpinning and
    resetting consumers, nats-server 2.11+): refused as an unknown request is (10003), as
    nats-server 2.9.10 answers them."""
    raise errors.bad_request()
