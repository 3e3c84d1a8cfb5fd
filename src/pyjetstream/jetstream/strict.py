"""Which fields the JetStream API's request bodies may carry, and strict decoding of them.

Owns the one table of request field sets: the json tags of nats-server 2.12's request structs
(StreamConfig and its nested structs, ConsumerConfig, the create/update, info, names, list,
purge, message get/delete, pause and unpin requests), and `canonical()`, which reads a decoded
body against such a struct as Go's encoding/json does: a key matches a field exactly or, failing
that, case-insensitively (and is renamed to the field's tag, so handlers read one spelling); a
later duplicate wins. In strict mode (nats-server 2.12's default, `jetstream { strict: false }`
switches it off) the first unknown key, in document order, is refused as nats-server's decoder
with DisallowUnknownFields refuses it (10025 `invalid JSON: json: unknown field "x"`);
otherwise unknown keys are dropped, as json.Unmarshal drops them.

Must not: check value types or values (schemas.py, consumer_config.py and the handlers do), or
know which route takes which struct (router.py's table says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyjetstream.jetstream import errors


@dataclass(frozen=True, slots=True)
class Struct:
    """A Go request struct: its json field names, each mapped to the shape of its value when
    that value is itself a struct (or a list of structs), None for anything else (scalars,
    string lists, string maps such as metadata, times)."""

    go_name: str
    fields: dict[str, Struct | ListOf | None]
    _folded: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.fields:
            self._folded.setdefault(name.casefold(), name)

    def field_for(self, key: str) -> str | None:
        """The field a key decodes into: exact match first, then Go's case-insensitive match."""
        if key in self.fields:
            return key
        return self._folded.get(key.casefold())


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array of structs ([]T or []*T)."""

    item: Struct


def _leaves(*names: str) -> dict[str, Struct | ListOf | None]:
    return dict.fromkeys(names)


# ------------------------------------------------------------------------- nats-server 2.12's structs

SUBJECT_TRANSFORM = Struct("SubjectTransformConfig", _leaves("src", "dest"))
REPUBLISH = Struct("RePublish", _leaves("src", "dest", "headers_only"))
PLACEMENT = Struct("Placement", _leaves("cluster", "tags", "preferred"))
EXTERNAL = Struct("ExternalStream", _leaves("api", "deliver"))
STREAM_SOURCE = Struct("StreamSource", {
    **_leaves("name", "opt_start_seq", "opt_start_time", "filter_subject"),
    "subject_transforms": ListOf(SUBJECT_TRANSFORM),
    "external": EXTERNAL,
    # 2.14's durable source consumer: known so that schemas.py refuses it by name ("not
    # supported by this server") in both modes rather than 2.12's "unknown field"
    "consumer": None,
})
CONSUMER_LIMITS = Struct("StreamConsumerLimits", _leaves("inactive_threshold", "max_ack_pending"))

STREAM_CONFIG_FIELDS: dict[str, Struct | ListOf | None] = {
    **_leaves("name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes",
              "max_age", "max_msgs_per_subject", "max_msg_size", "discard", "storage", "num_replicas",
              "no_ack", "template_owner", "duplicate_window"),
    "placement": PLACEMENT,
    "mirror": STREAM_SOURCE,
    "sources": ListOf(STREAM_SOURCE),
    **_leaves("compression", "first_seq"),
    "subject_transform": SUBJECT_TRANSFORM,
    "republish": REPUBLISH,
    **_leaves("allow_direct", "mirror_direct", "discard_new_per_subject", "sealed", "deny_delete",
              "deny_purge", "allow_rollup_hdrs"),
    "consumer_limits": CONSUMER_LIMITS,
    **_leaves("allow_msg_ttl", "subject_delete_marker_ttl", "allow_msg_counter", "allow_atomic",
              "allow_msg_schedules", "persist_mode", "metadata",
              # 2.14's fast batch publish: refused by name in schemas.py (see "consumer" above)
              "allow_batched"),
}
# StreamConfigRequest: StreamConfig plus the request-scoped `pedantic`
STREAM_CONFIG_REQUEST = Struct("StreamConfigRequest", {**STREAM_CONFIG_FIELDS, "pedantic": None})

CONSUMER_CONFIG = Struct("ConsumerConfig", _leaves(
    "durable_name", "name", "description", "deliver_policy", "opt_start_seq", "opt_start_time",
    "ack_policy", "ack_wait", "max_deliver", "backoff", "filter_subject", "filter_subjects",
    "replay_policy", "rate_limit_bps", "sample_freq", "max_waiting", "max_ack_pending", "flow_control",
    "headers_only", "max_batch", "max_expires", "max_bytes", "deliver_subject", "deliver_group",
    "idle_heartbeat", "inactive_threshold", "num_replicas", "mem_storage", "direct", "metadata",
    "pause_until", "priority_groups", "priority_policy", "priority_timeout"))
CREATE_CONSUMER_REQUEST = Struct("CreateConsumerRequest", {
    "stream_name": None, "config": CONSUMER_CONFIG, "action": None, "pedantic": None})

STREAM_INFO_REQUEST = Struct("JSApiStreamInfoRequest", _leaves("offset", "deleted_details", "subjects_filter"))
STREAM_NAMES_REQUEST = Struct("JSApiStreamNamesRequest", _leaves("offset", "subject"))
STREAM_LIST_REQUEST = Struct("JSApiStreamListRequest", _leaves("offset", "subject"))
STREAM_PURGE_REQUEST = Struct("JSApiStreamPurgeRequest", _leaves("seq", "filter", "keep"))
MSG_DELETE_REQUEST = Struct("JSApiMsgDeleteRequest", _leaves("seq", "no_erase"))
MSG_GET_REQUEST = Struct("JSApiMsgGetRequest", _leaves(
    "seq", "last_by_subj", "next_by_subj", "batch", "max_bytes", "start_time", "multi_last",
    "up_to_seq", "up_to_time", "no_hdr"))
CONSUMERS_REQUEST = Struct("JSApiConsumersRequest", _leaves("offset"))
CONSUMER_PAUSE_REQUEST = Struct("JSApiConsumerPauseRequest", _leaves("pause_until"))
# nats-server decodes unpin requests with plain json.Unmarshal: never strict (router.py)
CONSUMER_UNPIN_REQUEST = Struct("JSApiConsumerUnpinRequest", _leaves("group"))


def unknown_field(key: str) -> errors.ApiError:
    """nats-server's answer to a key its strict decoder does not know."""
    return errors.invalid_json(f'json: unknown field "{key}"')


def not_an_object(doc: Any, shape: Struct) -> errors.ApiError:
    """nats-server's answer to a body that is JSON but not an object (Go's decoder text)."""
    kind = ("array" if isinstance(doc, list) else "string" if isinstance(doc, str)
            else "bool" if isinstance(doc, bool) else "number")
    return errors.invalid_json(f"json: cannot unmarshal {kind} into Go value of type server.{shape.go_name}")


def canonical(doc: dict[str, Any], shape: Struct, strict: bool) -> dict[str, Any]:
    """`doc` as Go decodes it into `shape`: keys renamed to their fields' tags (a later
    duplicate wins), nested structs likewise. Unknown keys raise 10025 when `strict`, else are
    dropped. Values of the wrong JSON type are passed through for the typed readers to refuse."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = shape.field_for(key)
        if name is None:
            if strict:
                raise unknown_field(key)
            continue
        sub = shape.fields[name]
        if isinstance(sub, Struct) and isinstance(value, dict):
            value = canonical(value, sub, strict)
        elif isinstance(sub, ListOf) and isinstance(value, list):
            value = [canonical(v, sub.item, strict) if isinstance(v, dict) else v for v in value]
        out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Body:
    """How one API route decodes its request body (router.py's table holds one per route)."""

    shape: Struct
    strict: bool = True  # nats-server decodes it with unmarshalRequest; False: json.Unmarshal
    # nats-server decodes the body only when it opens with `{` or `[` (isJSONObjectOrArray) and
    # ignores anything else, as for the paged requests
    optional: bool = False
