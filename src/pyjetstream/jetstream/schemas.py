"""JetStream configuration and info types, and their JSON with nats-server's field names.

Owns StreamConfig (parse a request body, apply the server defaults, validate, echo back),
subject mappings (SubjectTransform, for republish and stream transforms), the time and
duration encodings (durations are integer nanoseconds, times RFC3339Nano UTC),
and StreamState/account-limits rendering. Pure: no IO, no
clock (callers pass timestamps), no knowledge of stores or the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

from pyjetstream.gotime import ZERO_TIME, format_rfc3339, parse_rfc3339
from pyjetstream.jetstream import errors, gojson
from pyjetstream.jetstream.store.base import MAX_SEQ
from pyjetstream.subjects import is_subset, is_valid_subject, subject_matches, subjects_overlap
from pyjetstream.version import JS_API_LEVEL

REQ_LEVEL_KEY = "_nats.req.level"  # stored with the config: the level its features need
SERVER_VERSION_KEY = "_nats.ver"  # added to every answer, never stored
SERVER_LEVEL_KEY = "_nats.level"  # added to every answer, never stored
JS_MAX_NAME_LEN = 255
JS_MAX_DESCRIPTION_LEN = 4 * 1024
JS_MAX_METADATA_LEN = 128 * 1024
STREAM_MAX_REPLICAS = 5
DEFAULT_DUPLICATE_WINDOW = 120_000_000_000  # 2 minutes, nats-server's StreamDefaultDuplicatesWindow
MS = 1_000_000

RETENTIONS = ("limits", "interest", "workqueue")
DISCARDS = ("old", "new")
STORAGES = ("file", "memory")
COMPRESSIONS = ("none", "s2")

_WILDCARD_REF = re.compile(r"^(?:\$(\d+)|\{\{\s*wildcard\s*\(\s*(\d+)\s*\)\s*\}\})$")


class SubjectTransform:
    """A subject mapping as nats-server's newTransform (the wildcard subset): `src` may hold
    `*` and a trailing `>`; `dest` refers to src's `*` tokens by `$N` or `{{wildcard(N)}}`
    (all of them must be used) and ends in `>` exactly when src does. Other mapping
    functions (partition, split, slice) are refused. ValueError when not valid."""

    __slots__ = ("src", "dest", "_stoks", "_plan", "_fwc", "_identity")

    def __init__(self, src: str, dest: str, strict: bool = True) -> None:
        src = src or ">"
        self.src, self.dest = src, dest
        if not is_valid_subject(src) or not is_valid_subject(dest):
            raise ValueError("invalid subject")
        stoks = src.split(".")
        dtoks = dest.split(".")
        if "*" in dtoks or (stoks[-1] == ">") != (dtoks[-1] == ">"):
            raise ValueError("destination wildcards do not match the source")
        pwc = [i for i, t in enumerate(stoks) if t == "*"]
        plan: list[str | int] = []
        used: set[int] = set()
        for t in dtoks[:-1] if dtoks[-1] == ">" else dtoks:
            m = _WILDCARD_REF.match(t)
            if m is None:
                if "{{" in t:
                    raise ValueError(f"unsupported mapping function {t!r}")
                plan.append(t)
                continue
            n = int(m.group(1) or m.group(2))
            if not 1 <= n <= len(pwc):
                raise ValueError(f"wildcard index {n} out of range")
            used.add(n)
            plan.append(pwc[n - 1])
        if strict and len(used) < len(pwc):
            # republish and stream transforms keep this rule; source transforms (strict=False)
            # may drop tokens, as nats-server's non-strict NewSubjectTransform allows
            raise ValueError("destination does not use all source wildcards")
        self._stoks = stoks
        self._plan = plan
        self._fwc = dtoks[-1] == ">"
        self._identity = src == ">" and dest == ">"

    def match(self, subject: str) -> str | None:
        """The mapped subject, or None when `subject` does not match `src`."""
        if self._identity:
            return subject
        if not subject_matches(self.src, subject):
            return None
        toks = subject.split(".")
        out = [toks[p] if isinstance(p, int) else p for p in self._plan]
        if self._fwc:
            out.extend(toks[len(self._stoks) - 1 :])
        return ".".join(out)


_MAPPING_FUNCTION = re.compile(
    r"^\{\{\s*(?:wildcard|partition|splitfromleft|splitfromright|slicefromleft|slicefromright|split|random)"
    r"\s*\(.*\)\s*\}\}$", re.IGNORECASE)


def mapping_error(src: str, dest: str) -> str | None:
    """Why nats-server's ValidateMapping refuses `src` -> `dest` (its error text), or None when
    the mapping is valid for us. Mapping functions nats-server knows but SubjectTransform does
    not implement (partition, split, slice, random) are refused with a text of our own."""
    if not dest:
        return None
    fwc_seen = False
    for t in dest.split("."):
        if not t or fwc_seen:
            return f"invalid mapping destination: invalid transform in {t}"
        if len(t) > 4 and t.startswith("{{") and t.endswith("}}"):
            if not _MAPPING_FUNCTION.match(t):
                return f"invalid mapping destination: unknown function in {t}"
            continue
        if t == ">":
            fwc_seen = True
        elif any(c in t for c in "\t\n\f\r "):
            return "invalid mapping destination: invalid transform"
    src = src or ">"
    stoks, dtoks = src.split("."), dest.split(".")
    if not is_valid_subject(src) or not is_valid_subject(dest) or "*" in dtoks or (
            (stoks[-1] == ">") != (dtoks[-1] == ">")):
        return "invalid subject"
    npwcs = stoks.count("*")
    for t in dtoks:
        m = _WILDCARD_REF.match(t)
        if m is not None:
            n = int(m.group(1) or m.group(2))
            if not npwcs and stoks[-1] != ">":
                return f"invalid mapping destination: wildcard index out of range in {t}"
            if n > npwcs or n < 1:
                return f"invalid mapping destination: wildcard index out of range in {t}: [{n}]"
        elif t.startswith("{{"):
            return f"mapping function {t} is not supported by this server"
    return None


def name_len(name: str) -> int:
    """A name's length as nats-server counts it: UTF-8 bytes (a Go string's len)."""
    return len(name.encode("utf-8", "surrogatepass"))


def is_valid_name(name: str) -> bool:
    """nats-server's isValidAssetName, which it applies to stream and consumer names (its
    isValidName, without the path separators, serves other names only)."""
    return bool(name) and not any(c in name for c in " \t\r\n\f.*>\\/")


# ---------------------------------------------------------------------------------------------
# time


# ---------------------------------------------------------------------------------------------
# request-body field coercion (Go's decoder refuses wrong JSON types and numbers that do not fit
# the field with "invalid JSON"; the Go types are nats-server's StreamConfig field types)

_STRUCT = "StreamConfig"


def _bad(field_name: str, want: str) -> errors.ApiError:
    return errors.invalid_json(f"json: cannot unmarshal into Go struct field {_STRUCT}.{field_name} of type {want}")


def _int(d: dict[str, Any], key: str, default: int, kind: str = "int64") -> int:
    try:
        return gojson.int_field(d, key, kind, _STRUCT, default)
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None


def _bool(d: dict[str, Any], key: str) -> bool:
    v = d.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise _bad(key, "bool")
    return v


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise _bad(key, "string")
    return v


def _enum(d: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    v = d.get(key)
    if v is None or v == "":
        return default
    if not isinstance(v, str) or v.lower() not in allowed:
        # Go's enum UnmarshalJSON rejects unknown values, which surfaces as invalid JSON
        raise errors.invalid_json(f"can not unmarshal {v!r}")
    return v.lower()


def _compression(d: dict[str, Any]) -> str:
    """nats-server's StoreCompression decoder: exactly "s2" or "none" (an empty string too is
    unknown); absent means none."""
    v = d.get("compression")
    if v is None:
        return "none"
    if not isinstance(v, str):
        what = "bool" if isinstance(v, bool) else "number" if isinstance(v, int | float) else (
            "array" if isinstance(v, list) else "object")
        raise errors.invalid_json(f"json: cannot unmarshal {what} into Go value of type string")
    if v not in COMPRESSIONS:
        raise errors.invalid_json("unknown compression algorithm")
    return v


def _persist_mode(d: dict[str, Any]) -> str:
    """nats-server decodes persist_mode into its enum: anything but "", "default" or "async"
    fails the whole body, with the raw JSON value quoted."""
    v = d.get("persist_mode")
    if v is None:
        return ""
    if v not in ("", "default", "async"):
        raise errors.invalid_json(f"can not unmarshal {_go_quote(json.dumps(v))}")
    return str(v)


def _go_quote(s: str) -> str:
    """Go's %q of a string (the ASCII cases)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_nested(d: dict[str, Any]) -> None:
    """The nested structs' field types (Placement, StreamSource, RePublish, SubjectTransform,
    StreamConsumerLimits), as Go decodes them with the rest of the body."""
    try:
        p = gojson.object_field(d, "placement", _STRUCT)
        if p is not None:
            gojson.str_field(p, "cluster", "Placement")
            gojson.str_list(p, "tags", "Placement")
            gojson.str_field(p, "preferred", "Placement")
        origins = [gojson.object_field(d, "mirror", _STRUCT)]
        sources = d.get("sources")
        if sources is not None:
            if not isinstance(sources, list):
                raise gojson.type_error(sources, _STRUCT, "sources", "[]*StreamSource")
            origins.extend(sources)
        for src in origins:
            if src is None:
                continue
            if not isinstance(src, dict):
                raise gojson.type_error(src, _STRUCT, "sources", "StreamSource")
            for k in ("name", "filter_subject"):
                gojson.str_field(src, k, "StreamSource")
            gojson.int_field(src, "opt_start_seq", "uint64", "StreamSource")
            t = src.get("opt_start_time")
            if t is not None and not isinstance(t, str):
                raise gojson.type_error(t, "StreamSource", "opt_start_time", "time.Time")
            ext = gojson.object_field(src, "external", "StreamSource")
            if ext is not None:
                gojson.str_field(ext, "api", "ExternalStream")
                gojson.str_field(ext, "deliver", "ExternalStream")
            sts = src.get("subject_transforms")
            if sts is not None and not isinstance(sts, list):
                raise gojson.type_error(sts, "StreamSource", "subject_transforms", "[]SubjectTransformConfig")
            for tr in sts or ():
                if not isinstance(tr, dict):
                    raise gojson.type_error(tr, "StreamSource", "subject_transforms", "SubjectTransformConfig")
                gojson.str_field(tr, "src", "SubjectTransformConfig")
                gojson.str_field(tr, "dest", "SubjectTransformConfig")
        for k in ("republish", "subject_transform"):
            o = gojson.object_field(d, k, _STRUCT)
            if o is not None:
                gojson.str_field(o, "src", k)
                gojson.str_field(o, "dest", k)
                gojson.bool_field(o, "headers_only", k)
        cl = gojson.object_field(d, "consumer_limits", _STRUCT)
        if cl is not None:
            gojson.int_field(cl, "inactive_threshold", "time.Duration", "StreamConsumerLimits")
            gojson.int_field(cl, "max_ack_pending", "int", "StreamConsumerLimits")
    except gojson.GoJSONError as e:
        raise errors.invalid_json(e) from None


# ---------------------------------------------------------------------------------------------
# StreamConfig


@dataclass(slots=True)
class StreamConfig:
    """A stream's configuration; attribute names are nats-server's JSON field names."""

    name: str = ""
    description: str = ""
    subjects: list[str] = field(default_factory=list)
    retention: str = "limits"
    max_consumers: int = -1
    max_msgs: int = -1
    max_bytes: int = -1
    max_age: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard: str = "old"
    storage: str = "file"
    num_replicas: int = 1
    no_ack: bool = False
    template_owner: str = ""
    duplicate_window: int = 0
    placement: dict[str, Any] | None = None
    mirror: dict[str, Any] | None = None
    sources: list[dict[str, Any]] | None = None
    compression: str = "none"
    first_seq: int = 0
    subject_transform: dict[str, Any] | None = None
    republish: dict[str, Any] | None = None
    allow_direct: bool = False
    mirror_direct: bool = False
    discard_new_per_subject: bool = False
    sealed: bool = False
    deny_delete: bool = False
    deny_purge: bool = False
    allow_rollup_hdrs: bool = False
    consumer_limits: dict[str, Any] = field(default_factory=dict)
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl: int = 0
    allow_msg_counter: bool = False
    allow_atomic: bool = False
    allow_msg_schedules: bool = False
    persist_mode: str = ""
    allow_batched: bool = False
    metadata: dict[str, str] | None = None

    # dict-style access, so code written against a plain config dict keeps working
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @classmethod
    def from_dict(cls, d: Any) -> StreamConfig:
        """Parse a request body (already JSON-decoded). Type errors give 10025; no defaults yet."""
        if not isinstance(d, dict):
            raise errors.invalid_json("config must be an object")
        subjects = d.get("subjects")
        if subjects is None:
            subjects = []
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise _bad("subjects", "[]string")
        metadata = d.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
        ):
            raise _bad("metadata", "map[string]string")
        cl = d.get("consumer_limits") or {}
        if not isinstance(cl, dict):
            raise _bad("consumer_limits", "StreamConsumerLimits")
        for k in ("placement", "mirror", "subject_transform", "republish"):
            if d.get(k) is not None and not isinstance(d[k], dict):
                raise _bad(k, "object")
        if d.get("sources") is not None and not isinstance(d["sources"], list):
            raise _bad("sources", "[]StreamSource")
        _check_nested(d)
        return cls(
            name=_str(d, "name"),
            description=_str(d, "description"),
            subjects=list(subjects),
            retention=_enum(d, "retention", RETENTIONS, "limits"),
            max_consumers=_int(d, "max_consumers", 0, "int"),
            max_msgs=_int(d, "max_msgs", 0),
            max_bytes=_int(d, "max_bytes", 0),
            max_age=_int(d, "max_age", 0, "time.Duration"),
            max_msgs_per_subject=_int(d, "max_msgs_per_subject", 0),
            max_msg_size=_int(d, "max_msg_size", 0, "int32"),
            discard=_enum(d, "discard", DISCARDS, "old"),
            storage=_enum(d, "storage", STORAGES, "file"),
            num_replicas=_int(d, "num_replicas", 0, "int"),
            no_ack=_bool(d, "no_ack"),
            template_owner=_str(d, "template_owner"),
            duplicate_window=_int(d, "duplicate_window", 0, "time.Duration"),
            placement=d.get("placement") or None,
            mirror=d.get("mirror") or None,
            sources=d.get("sources") or None,
            compression=_compression(d),
            first_seq=_int(d, "first_seq", 0, "uint64"),
            subject_transform=d.get("subject_transform") or None,
            republish=d.get("republish") or None,
            allow_direct=_bool(d, "allow_direct"),
            mirror_direct=_bool(d, "mirror_direct"),
            discard_new_per_subject=_bool(d, "discard_new_per_subject"),
            sealed=_bool(d, "sealed"),
            deny_delete=_bool(d, "deny_delete"),
            deny_purge=_bool(d, "deny_purge"),
            allow_rollup_hdrs=_bool(d, "allow_rollup_hdrs"),
            consumer_limits=dict(cl),
            allow_msg_ttl=_bool(d, "allow_msg_ttl"),
            subject_delete_marker_ttl=_int(d, "subject_delete_marker_ttl", 0, "time.Duration"),
            allow_msg_counter=_bool(d, "allow_msg_counter"),
            allow_atomic=_bool(d, "allow_atomic"),
            allow_msg_schedules=_bool(d, "allow_msg_schedules"),
            persist_mode=_persist_mode(d),
            allow_batched=_bool(d, "allow_batched"),
            metadata=dict(metadata) if metadata else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON echo, with nats-server's omitempty rules."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.subjects:
            out["subjects"] = list(self.subjects)
        out.update(
            retention=self.retention,
            max_consumers=self.max_consumers,
            max_msgs=self.max_msgs,
            max_bytes=self.max_bytes,
            max_age=self.max_age,
            max_msgs_per_subject=self.max_msgs_per_subject,
        )
        if self.max_msg_size:
            out["max_msg_size"] = self.max_msg_size
        out.update(discard=self.discard, storage=self.storage, num_replicas=self.num_replicas)
        if self.no_ack:
            out["no_ack"] = True
        if self.template_owner:
            out["template_owner"] = self.template_owner
        if self.duplicate_window:
            out["duplicate_window"] = self.duplicate_window
        for k in ("placement", "mirror", "sources"):
            v = getattr(self, k)
            if v:
                out[k] = v
        out["compression"] = self.compression
        if self.first_seq:
            out["first_seq"] = self.first_seq
        for k in ("subject_transform", "republish"):
            v = getattr(self, k)
            if v:
                out[k] = v
        out.update(allow_direct=self.allow_direct, mirror_direct=self.mirror_direct)
        if self.discard_new_per_subject:
            out["discard_new_per_subject"] = True
        out.update(
            sealed=self.sealed,
            deny_delete=self.deny_delete,
            deny_purge=self.deny_purge,
            allow_rollup_hdrs=self.allow_rollup_hdrs,
            consumer_limits=dict(self.consumer_limits),
            allow_msg_ttl=self.allow_msg_ttl,
        )
        if self.subject_delete_marker_ttl:
            out["subject_delete_marker_ttl"] = self.subject_delete_marker_ttl
        for k in ("allow_msg_counter", "allow_atomic", "allow_msg_schedules", "allow_batched"):
            if getattr(self, k):
                out[k] = True
        if self.persist_mode:
            out["persist_mode"] = self.persist_mode
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def copy(self) -> StreamConfig:
        return StreamConfig(**{f.name: _clone(getattr(self, f.name)) for f in fields(self)})


def _clone(v: Any) -> Any:
    if isinstance(v, list):
        return [_clone(x) for x in v]
    if isinstance(v, dict):
        return {k: _clone(x) for k, x in v.items()}
    return v


def _invalid(text: str) -> errors.ApiError:
    return errors.stream_invalid_config(err=text)


@dataclass(frozen=True, slots=True)
class StreamByteLimits:
    """An account's rules for a stream's max_bytes (nats-server's maxBytesLimits): whether it
    must be set, and its ceiling for memory and for file streams (<= 0: none)."""

    required: bool = False
    memory: int = -1
    store: int = -1


def _pedantic(text: str) -> errors.ApiError:
    return errors.by_constant("JSPedanticErrF", err=text)


def check_stream_config(cfg: StreamConfig, byte_limits: StreamByteLimits | None = None,
                        pedantic: bool = False) -> StreamConfig:
    """Apply nats-server's defaults and validation (checkStreamCfg); returns a new config.
    `pedantic` (a request's flag, nats-server 2.11+): where a default would change what was
    asked for, refuse instead, with nats-server's errors.

    Checks involving other streams (subject overlap) and the update rules live in the manager.
    """
    c = cfg.copy()
    if not is_valid_name(c.name):
        raise _invalid("stream name is required and can not contain '.', '*', '>'")
    if name_len(c.name) > JS_MAX_NAME_LEN:
        raise _invalid(f"stream name is too long, maximum allowed is {JS_MAX_NAME_LEN}")
    if len(c.description) > JS_MAX_DESCRIPTION_LEN:
        raise _invalid(f"stream description is too long, maximum allowed is {JS_MAX_DESCRIPTION_LEN}")
    if c.metadata and sum(len(k) + len(v) for k, v in c.metadata.items()) > JS_MAX_METADATA_LEN:
        raise _invalid(f"stream metadata exceeds maximum size of {JS_MAX_METADATA_LEN} bytes")
    if c.num_replicas == 0:
        c.num_replicas = 1
    if c.num_replicas > STREAM_MAX_REPLICAS:
        raise _invalid(f"maximum replicas is {STREAM_MAX_REPLICAS}")
    if c.num_replicas < 0:
        raise errors.replicas_count_cannot_be_negative()
    for attr in ("max_msgs", "max_msgs_per_subject", "max_bytes", "max_msg_size", "max_consumers"):
        v = getattr(c, attr)
        if v == 0 or v < -1:
            if pedantic and v < -1:
                raise _pedantic(f"{attr} must be set to -1")
            setattr(c, attr, -1)
    if c.max_age < 0:
        raise _invalid("max age can not be negative")
    if c.max_age and c.max_age < 100 * MS:
        raise _invalid("max age needs to be >= 100ms")
    if c.duplicate_window == 0 and c.mirror is None:
        if c.max_age and c.max_age < DEFAULT_DUPLICATE_WINDOW:
            if pedantic:
                raise _pedantic("duplicate window cannot be bigger than max age")
            c.duplicate_window = c.max_age
        else:
            c.duplicate_window = DEFAULT_DUPLICATE_WINDOW
    if c.duplicate_window < 0:
        raise _invalid("duplicates window can not be negative")
    if c.max_age and c.duplicate_window > c.max_age:
        raise _invalid("duplicates window can not be larger then max age")
    if 0 < c.duplicate_window < 100 * MS:
        raise _invalid("duplicates window needs to be >= 100ms")
    if c.deny_purge and c.allow_rollup_hdrs:
        raise _invalid("roll-ups require the purge permission")
    if c.discard_new_per_subject:
        if c.discard != "new":
            raise _invalid("discard new per subject requires discard new policy to be set")
        if c.max_msgs_per_subject <= 0:
            raise _invalid("discard new per subject requires max msgs per subject > 0")
    if c.subject_delete_marker_ttl > 0:
        if c.subject_delete_marker_ttl < 1_000_000_000:
            raise _invalid("subject delete marker TTL must be at least 1 second")
        if pedantic and not c.allow_msg_ttl:
            raise _invalid("subject delete marker cannot be set if message TTLs are disabled")
        if pedantic and not c.allow_rollup_hdrs:
            raise _invalid("subject delete marker cannot be set if roll-ups are disabled")
        c.allow_msg_ttl = True
        c.allow_rollup_hdrs, c.deny_purge = True, False
    elif c.subject_delete_marker_ttl < 0:
        raise _invalid("subject delete marker TTL must not be negative")
    if c.first_seq > MAX_SEQ:
        # sequences stay within int64: every store record and every client can hold them
        raise _invalid(f"first sequence can not be larger than {MAX_SEQ}")
    if c.mirror is not None or c.sources:
        _check_origins(c)
    # Features of nats-server we do not implement are refused rather than silently ignored.
    if c.subject_transform is not None:
        st = c.subject_transform
        src, dest = st.get("src") or "", st.get("dest")
        if not isinstance(src, str) or not isinstance(dest, str):
            raise errors.invalid_json()
        if src and not is_valid_subject(src):
            raise errors.stream_transform_invalid_source(err=f"invalid subject {src}")
        try:
            SubjectTransform(src, dest)
        except ValueError as e:
            raise errors.stream_transform_invalid_destination(err=str(e)) from None
    if c.allow_batched:
        raise _invalid("fast batch publish is not supported by this server")
    if c.allow_msg_counter:
        if c.discard == "new":
            raise _invalid("counter stream cannot use discard new")
        if c.allow_msg_ttl:
            raise _invalid("counter stream cannot use message TTLs")
        if c.allow_msg_schedules:
            raise _invalid("counter stream cannot use message schedules")
        if c.retention != "limits":
            raise _invalid("counter stream can only use limits retention")
        if c.mirror is not None:
            raise errors.by_constant("JSMirrorWithCountersErr")
        if c.sources:
            # nats-server sums sourced counters (Nats-Counter-Sources); we do not, so refuse
            raise _invalid("counter streams with sources are not supported by this server")
    if c.allow_msg_schedules:
        if c.discard == "new":
            raise _invalid("message scheduling cannot use discard new")
        # as nats-server: schedules purge through roll-ups, which pedantic mode will not turn on
        if pedantic and not c.allow_rollup_hdrs:
            raise _invalid("message scheduling cannot be set if roll-ups are disabled")
        c.allow_rollup_hdrs, c.deny_purge = True, False
        if c.mirror is not None:
            raise errors.by_constant("JSMirrorWithMsgSchedulesErr")
        if c.sources:
            raise errors.by_constant("JSSourceWithMsgSchedulesErr")
    if c.persist_mode not in ("", "default", "async"):
        raise _invalid("invalid persist mode")
    if c.persist_mode == "default":
        c.persist_mode = ""  # nats-server's zero value: one mode, never echoed
    if c.persist_mode == "async":
        if c.storage != "file":
            raise _invalid("async persist mode is only supported on file storage")
        if c.num_replicas > 1:
            raise _invalid("async persist mode is not supported on replicated streams")
    if c.persist_mode == "async" and c.allow_atomic:
        raise _invalid("async persist mode is not supported with atomic batch publish")
    if c.mirror is not None and c.allow_atomic:
        raise errors.by_constant("JSMirrorWithAtomicPublishErr")
    if c.mirror is not None and c.subjects:
        raise errors.mirror_with_subjects()
    if not c.subjects:
        if c.mirror is None and not c.sources:
            c.subjects = [c.name]
    else:
        seen: set[str] = set()
        for subj in c.subjects:
            if not is_valid_subject(subj):
                raise _invalid("invalid subject")
            if subj in seen:
                raise _invalid("duplicate subjects detected")
            if subj == ">" and not c.no_ack:
                raise _invalid("capturing all subjects requires no-ack to be true")
            if not c.no_ack:
                for ns in ("$JS.>", "$JSC.>", "$NRG.>"):
                    if subjects_overlap(subj, ns) and not is_subset(subj, "$JS.EVENT.>"):
                        raise _invalid("subjects that overlap with jetstream api require no-ack to be true")
                if subjects_overlap(subj, "$SYS.>") and not is_subset(subj, "$SYS.ACCOUNT.>"):
                    raise _invalid("subjects that overlap with system api require no-ack to be true")
            seen.add(subj)
        # a message matching two of our own subjects would be stored twice
        for i, subj in enumerate(c.subjects):
            for other in c.subjects[i + 1 :]:
                if subjects_overlap(other, subj):
                    raise _invalid(f'subject "{subj}" overlaps with "{other}"')
    if byte_limits is not None:
        # where nats-server checks them: after the subjects, before the republish rules
        ceiling = byte_limits.memory if c.storage == "memory" else byte_limits.store
        if byte_limits.required and c.max_bytes <= 0:
            raise errors.by_constant("JSStreamMaxBytesRequired")
        if ceiling > 0 and c.max_bytes > ceiling:
            raise errors.stream_max_stream_bytes_exceeded()
    if c.republish is not None:
        _check_republish(c, pedantic)
    return c


def _check_transforms(src: dict[str, Any], mirror: bool) -> None:
    """A mirror's or source's `subject_transforms`, in nats-server's order of checks."""
    sts = src.get("subject_transforms") or []
    if not sts:
        return
    if src.get("filter_subject"):
        raise errors.by_constant("JSMirrorMultipleFiltersNotAllowed" if mirror else "JSSourceMultipleFiltersNotAllowed")
    for tr in sts:
        if not isinstance(tr, dict) or not isinstance(tr.get("src", ""), str) or not isinstance(
                tr.get("dest", ""), str):
            raise errors.invalid_json()
        tsrc, tdest = tr.get("src") or "", tr.get("dest") or ""
        if tsrc and not is_valid_subject(tsrc):
            raise errors.by_constant("JSMirrorInvalidSubjectFilter" if mirror else "JSSourceInvalidSubjectFilter",
                                     err=f"invalid subject {tsrc}")
        why = mapping_error(tsrc, tdest)
        if why is not None:
            raise errors.by_constant("JSMirrorInvalidTransformDestination" if mirror
                                     else "JSSourceInvalidTransformDestination", err=why)
    # an empty source collides with nothing (Go tokenizes it to one empty token)
    srcs = [tr.get("src") or "" for tr in sts]
    for i, a in enumerate(srcs):
        for j, b in enumerate(srcs):
            if i == j or not a or not b:
                continue
            if mirror and subjects_overlap(a, b):
                raise errors.by_constant("JSMirrorOverlappingSubjectFilters")
            if not mirror and is_subset(a, b):
                raise errors.by_constant("JSSourceOverlappingSubjectFilters")


def origin_index_name(src: dict[str, Any]) -> str:
    """nats-server's index name of a source: `<name> <filters> <destinations>`, several joined
    by a form feed, `>` for none. Two sources with one index name are duplicates; the
    `Nats-Stream-Source` header carries its parts so a restart resumes the right source."""
    sts = src.get("subject_transforms") or []
    if sts:
        filt = "\f".join(tr.get("src") or ">" for tr in sts)
        dest = "\f".join(tr.get("dest") or ">" for tr in sts)
    else:
        filt, dest = src.get("filter_subject") or ">", ">"
    return f"{src['name']} {filt} {dest}"


def _check_origin(src: Any, mirror: bool) -> dict[str, Any]:
    if not isinstance(src, dict):
        raise errors.invalid_json()
    name = src.get("name")
    if not mirror and (not isinstance(name, str) or not is_valid_name(name)):
        raise errors.source_invalid_stream_name()
    if src.get("external"):
        raise _invalid("sourcing from another account or domain is not supported by this server")
    if mirror:
        if src.get("opt_start_seq") and src.get("opt_start_time"):
            raise errors.mirror_with_start_seq_and_time()
        _check_transforms(src, True)
        if not isinstance(name, str) or not is_valid_name(name):
            raise errors.mirror_invalid_stream_name()
    filt = src.get("filter_subject") or ""
    if not isinstance(filt, str) or (filt and not is_valid_subject(filt)):
        raise errors.source_invalid_subject_filter(err=f"invalid subject {filt}")
    seq = src.get("opt_start_seq") or 0
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise errors.invalid_json()
    t = src.get("opt_start_time")
    if t is not None:
        try:
            parse_rfc3339(t)
        except ValueError:
            raise errors.invalid_json() from None
    if src.get("consumer"):
        # 2.14's durable source consumers: refused rather than ignored
        raise _invalid("sourcing through a durable consumer is not supported by this server")
    return origin_echo(src)


def origin_echo(src: dict[str, Any]) -> dict[str, Any]:
    """A mirror or source as nats-server echoes it: its StreamSource fields only (unknown keys
    such as the retired `subject_transform_dest` dropped), empty ones left out, each transform
    with both `src` and `dest`."""
    out: dict[str, Any] = {"name": src.get("name")}
    for k in ("opt_start_seq", "opt_start_time", "filter_subject", "external"):
        if src.get(k):
            out[k] = src[k]
    sts = src.get("subject_transforms")
    if sts:
        out["subject_transforms"] = [{"src": tr.get("src") or "", "dest": tr.get("dest") or ""} for tr in sts]
    return out


def _check_origins(c: StreamConfig) -> None:
    """Mirrors and sources within the account (nats-server's rules for those)."""
    if c.mirror is not None:
        if c.sources:
            raise errors.mirror_with_sources()
        if c.first_seq:
            raise errors.mirror_with_first_seq()
        c.mirror = _check_origin(c.mirror, True)
        if c.mirror["name"] == c.name:
            raise _invalid("detected cycle")
    if c.sources:
        seen: set[str] = set()
        out = []
        for src in c.sources:
            src = _check_origin(src, False)
            key = origin_index_name(src)
            if key in seen:
                raise errors.source_duplicate_detected()
            _check_transforms(src, False)
            if src["name"] == c.name:
                raise _invalid("detected cycle")
            seen.add(key)
            out.append(src)
        c.sources = out


def _check_republish(c: StreamConfig, pedantic: bool = False) -> None:
    rp = dict(c.republish or {})
    if pedantic and not rp.get("src"):
        raise _pedantic("republish source can not be empty")
    src = rp.get("src") or ">"
    dest = rp.get("dest")
    if not isinstance(src, str) or not isinstance(dest, str) or not isinstance(rp.get("headers_only", False), bool):
        raise errors.invalid_json()
    rp["src"] = src  # the echo carries the applied default, as nats-server's does
    if not any(subjects_overlap(src, s) for s in c.subjects):
        raise _invalid("stream configuration for republish source is not valid subset of subjects")
    if any(subjects_overlap(dest, s) for s in c.subjects):
        raise _invalid("stream configuration for republish destination forms a cycle")
    try:
        SubjectTransform(src, dest)
    except ValueError:
        raise _invalid("stream configuration for republish not valid") from None
    c.republish = rp


# Subjects whose messages the server acts on when a client publishes them: the JetStream API,
# consumer acks and flow-control replies, and the system account's requests. Nothing the server
# publishes (deliveries, republished copies) may be aimed there, whatever a client configured.
RESERVED_SUBJECTS = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$SYS.>")
RESERVED_PREFIXES = tuple(s[:-1] for s in RESERVED_SUBJECTS)
RESERVED_TEXT = ", ".join(RESERVED_SUBJECTS)


def is_reserved_subject(subject: str) -> bool:
    """Is the literal `subject` one the server acts on (RESERVED_SUBJECTS)?"""
    return subject[:1] == "$" and subject.startswith(RESERVED_PREFIXES)


def republish_pattern(dest: str) -> str:
    """The filter of every subject a republish destination can produce: each wildcard
    reference (`$N`, `{{wildcard(N)}}`) becomes `*`; a trailing `>` stays."""
    return ".".join("*" if _WILDCARD_REF.match(t) else t for t in dest.split("."))


def check_publish_targets(c: StreamConfig) -> None:
    """Refuse a stream whose republish destination points into RESERVED_SUBJECTS (nats-server
    2.9 accepts it). A destination that starts with a wildcard reference is chosen per
    message by the publisher; those copies are checked when sent (Stream drops them).
    Creation and update only: a stream stored before this check still loads."""
    dest = (c.republish or {}).get("dest")
    if not isinstance(dest, str) or not dest:
        return
    toks = dest.split(".")
    if toks[0] == ">" or _WILDCARD_REF.match(toks[0]):
        return
    pattern = republish_pattern(dest)
    if any(subjects_overlap(pattern, r) for r in RESERVED_SUBJECTS):
        raise _invalid(f"stream configuration for republish destination can not overlap {RESERVED_TEXT}")


def stream_required_level(c: StreamConfig) -> int:
    """The API level a stream's features need, as nats-server 2.12 computes it."""
    if c.allow_msg_counter or c.allow_atomic or c.allow_msg_schedules or c.persist_mode == "async":
        return 2
    if c.allow_msg_ttl or c.subject_delete_marker_ttl > 0:
        return 1
    return 0


def set_static_metadata(c: StreamConfig) -> None:
    """On create and update: the dynamic keys a client echoed back are dropped and the
    required level is (re)computed and stored, as nats-server's setStaticStreamMetadata."""
    md = {k: v for k, v in (c.metadata or {}).items() if k not in (SERVER_VERSION_KEY, SERVER_LEVEL_KEY)}
    md[REQ_LEVEL_KEY] = str(stream_required_level(c))
    c.metadata = md


def with_dynamic_metadata(config: dict[str, Any], version: str) -> dict[str, Any]:
    """A config echo with the server's version and API level added to its metadata."""
    md = dict(config.get("metadata") or {})
    md[SERVER_VERSION_KEY] = version
    md[SERVER_LEVEL_KEY] = str(JS_API_LEVEL)
    return {**config, "metadata": md}


def check_update(old: StreamConfig, new: StreamConfig, byte_limits: StreamByteLimits | None = None,
                 pedantic: bool = False) -> StreamConfig:
    """nats-server's configUpdateCheck: defaults, validation, then what may not change. Pedantic
    mode still lets sealing set its limits, as in nats-server."""
    c = check_stream_config(new, byte_limits, pedantic)
    check_publish_targets(c)
    if c.name != old.name:
        raise _invalid("stream configuration name must match original")
    if c.num_replicas > 1:
        raise errors.stream_replicas_not_supported()
    # 2.9 also fixes max_consumers at creation (2.10 lets it change)
    if c.max_consumers != old.max_consumers:
        raise _invalid("stream configuration update can not change MaxConsumers")
    if c.storage != old.storage:
        raise _invalid("stream configuration update can not change storage type")
    # nats-server 2.9 (the release we advertise) refuses every retention change; 2.10 later
    # allowed limits <-> interest. Clients that read our version expect the 2.9 answer.
    if c.retention != old.retention:
        raise _invalid("stream configuration update can not change retention policy")
    if not c.sealed and old.sealed:
        raise _invalid("stream configuration update can not unseal a sealed stream")
    if not c.deny_delete and old.deny_delete:
        raise _invalid("stream configuration update can not cancel deny message deletes")
    if not c.deny_purge and old.deny_purge:
        raise _invalid("stream configuration update can not cancel deny purge")
    # 2.12: a mirror may be dropped, promoting the stream to a normal one (it keeps its
    # messages and may take subjects and sources in the same update); adding or changing one
    # is still refused
    # compared as echoed: a config stored before the echo was normalised still matches
    if c.mirror is not None and (old.mirror is None or c.mirror != origin_echo(old.mirror)):
        raise errors.stream_mirror_not_updatable()
    if old.allow_msg_ttl and not c.allow_msg_ttl:
        raise _invalid("message TTL status can not be disabled")
    if old.allow_msg_schedules and not c.allow_msg_schedules:
        raise _invalid("message schedules can not be disabled")
    if old.allow_msg_counter != c.allow_msg_counter:
        raise _invalid("stream configuration update can not change message counter setting")
    if c.persist_mode != old.persist_mode:
        raise _invalid("stream configuration update can not change persist mode")
    if c.sealed:
        c.max_age = 0
        c.discard = "new"
        c.deny_delete, c.deny_purge = True, True
        c.allow_rollup_hdrs = False
    # first_seq only matters at creation; keep the original so the echo stays stable
    c.first_seq = old.first_seq if not new.first_seq else c.first_seq
    return c


# ---------------------------------------------------------------------------------------------
# state and info rendering


def state_to_dict(st: Any, consumer_count: int, subjects: dict[str, int] | None = None) -> dict[str, Any]:
    """StreamState (store.base.StreamState) as nats-server's JSON."""
    out: dict[str, Any] = {
        "messages": st.msgs,
        "bytes": st.bytes,
        # nats-server reports 0 for a stream that never held a message
        "first_seq": 0 if (st.last_seq == 0 and not st.msgs) else st.first_seq,
        "first_ts": format_rfc3339(st.first_ts) if st.msgs else ZERO_TIME,
        "last_seq": st.last_seq,
        "last_ts": format_rfc3339(st.last_ts),
    }
    if st.num_subjects:
        out["num_subjects"] = st.num_subjects
    if subjects:
        out["subjects"] = subjects
    if st.num_deleted:
        out["num_deleted"] = st.num_deleted
    if st.deleted:
        out["deleted"] = list(st.deleted)
    lost = st.lost
    if lost is not None and (lost.msgs or lost.bytes):
        out["lost"] = {"msgs": list(lost.msgs) or None, "bytes": lost.bytes}
    out["consumer_count"] = consumer_count
    return out


def account_limits_to_dict(limits: Any) -> dict[str, Any]:
    def g(name: str) -> int:
        v = getattr(limits, name, None) if limits is not None else None
        if v is None and isinstance(limits, dict):
            v = limits.get(name)
        return -1 if v is None else int(v)

    return {
        "max_memory": g("max_mem"),
        "max_storage": g("max_file"),
        "max_streams": g("max_streams"),
        "max_consumers": g("max_consumers"),
        "max_ack_pending": g("max_ack_pending"),
        "memory_max_stream_bytes": g("memory_max_stream_bytes"),
        "storage_max_stream_bytes": g("store_max_stream_bytes"),
        "max_bytes_required": g("max_bytes_required") > 0,
    }
