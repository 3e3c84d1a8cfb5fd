"""ConsumerConfig: parsing, defaults, validation and JSON with nats field names.

Owns the consumer configuration schema only: how a request's `config` object becomes a
validated `ConsumerConfig` (nats-server's defaults and checks, with its err_codes and texts) and
how a config is echoed back. It knows nothing of streams beyond the few stream settings passed
in, and nothing of delivery; errors are raised as errors.ApiError (data, not IO).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyjetstream.gotime import ZERO_TIME, format_duration, format_rfc3339, parse_rfc3339
from pyjetstream.jetstream import errors, gojson
from pyjetstream.jetstream.errors import ApiError
from pyjetstream.jetstream.schemas import (
    REQ_LEVEL_KEY,
    SERVER_LEVEL_KEY,
    SERVER_VERSION_KEY,
    is_reserved_subject,
    is_valid_name,
)
from pyjetstream.subjects import is_valid_literal_subject, is_valid_subject, subject_matches, subjects_overlap

NS = 1_000_000_000
MS = 1_000_000

ACK_WAIT_DEFAULT = 30 * NS
DELETE_WAIT_DEFAULT = 5 * NS  # ephemeral inactive_threshold when none is given
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_MAX_WAITING = 512
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4 * 1024
MAX_METADATA_LEN = 128 * 1024

DELIVER_POLICIES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK_POLICIES = ("none", "all", "explicit")
REPLAY_POLICIES = ("instant", "original")
PRIORITY_POLICIES = ("", "none", "overflow", "pinned_client", "prioritized")
PINNED_TTL_DEFAULT = 120 * NS
GROUP_NAME = re.compile(r"[a-zA-Z0-9/_=-]{1,16}")

def utc_text(text: str) -> str:
    """An RFC 3339 time as nats-server echoes a time.Time: in UTC, the fraction without trailing
    zeros. Times at or before the Unix epoch keep their value (format_rfc3339 reads 0 or less
    as Go's zero time); year 1 or before is Go's zero time. ValueError when not a time."""
    ns = parse_rfc3339(text)
    if ns > 0:
        return format_rfc3339(ns)
    if int(text[:4]) <= 1:
        return ZERO_TIME
    secs, frac = divmod(ns, NS)
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
    base = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    return base + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def invalid_policy(text: str) -> ApiError:
    return errors.consumer_invalid_policy(err=text)


@dataclass(slots=True)
class ConsumerConfig:
    durable_name: str = ""
    name: str = ""
    description: str = ""
    deliver_policy: str = "all"
    opt_start_seq: int = 0
    opt_start_time: str | None = None  # RFC3339 as given; opt_start_time_ns is its value
    ack_policy: str = "none"
    ack_wait: int = 0
    max_deliver: int = 0
    backoff: list[int] | None = None
    filter_subject: str = ""
    filter_subjects: list[str] | None = None
    replay_policy: str = "instant"
    rate_limit_bps: int = 0
    sample_freq: str = ""
    max_waiting: int = 0
    max_ack_pending: int = 0
    idle_heartbeat: int = 0
    flow_control: bool = False
    headers_only: bool = False
    max_batch: int = 0
    max_expires: int = 0
    max_bytes: int = 0
    deliver_subject: str = ""
    deliver_group: str = ""
    inactive_threshold: int = 0
    num_replicas: int = 0
    mem_storage: bool = False
    direct: bool = False
    metadata: dict[str, str] | None = None
    pause_until: str | None = None
    priority_groups: list[str] | None = None
    priority_policy: str = ""  # "" is nats-server's PriorityNone, never echoed
    priority_timeout: int = 0  # the pin's lifetime without a request from its holder (ns)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown fields, kept for equality

    # -- derived -------------------------------------------------------------------------
    @property
    def is_push(self) -> bool:
        return bool(self.deliver_subject)

    @property
    def filters(self) -> list[str]:
        if self.filter_subjects:
            return list(self.filter_subjects)
        if self.filter_subject:
            return [self.filter_subject]
        return []

    @property
    def opt_start_time_ns(self) -> int:
        return parse_rfc3339(self.opt_start_time) if self.opt_start_time else 0

    @property
    def pause_until_ns(self) -> int:
        """The pause deadline as wall ns; 0 when none (unset or Go's zero time)."""
        return parse_rfc3339(self.pause_until) if self.pause_until else 0

    @property
    def sample_percent(self) -> int:
        if not self.sample_freq:
            return 0
        return int(self.sample_freq.rstrip("%"))

    def copy(self) -> ConsumerConfig:
        return dataclasses.replace(
            self,
            backoff=list(self.backoff) if self.backoff is not None else None,
            filter_subjects=list(self.filter_subjects) if self.filter_subjects is not None else None,
            metadata=dict(self.metadata) if self.metadata is not None else None,
            priority_groups=list(self.priority_groups) if self.priority_groups is not None else None,
            extra=dict(self.extra),
        )

    # -- JSON ----------------------------------------------------------------------------
    @classmethod
    def from_json(cls, d: Any) -> ConsumerConfig:
        if not isinstance(d, dict):
            raise errors.consumer_config_required()
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            if k in known:
                kw[k] = v
            else:
                extra[k] = v
        try:
            cfg = cls(**kw, extra=extra)
            cfg._coerce()
        except (TypeError, ValueError) as e:
            raise errors.invalid_json(e) from None
        return cfg

    # Go's ConsumerConfig field types: a value of the wrong JSON type, or a number that does not
    # fit (a float, out of range), fails the whole decode ("invalid JSON").
    _INT_KINDS = (("opt_start_seq", "uint64"), ("ack_wait", "time.Duration"), ("max_deliver", "int"),
                  ("rate_limit_bps", "uint64"), ("max_waiting", "int"), ("max_ack_pending", "int"),
                  ("idle_heartbeat", "time.Duration"), ("max_batch", "int"), ("max_expires", "time.Duration"),
                  ("max_bytes", "int"), ("inactive_threshold", "time.Duration"), ("num_replicas", "int"),
                  ("priority_timeout", "time.Duration"))
    _STRS = ("durable_name", "name", "description", "filter_subject", "sample_freq", "deliver_subject",
             "deliver_group", "priority_policy")
    _BOOLS = ("flow_control", "headers_only", "mem_storage", "direct")

    def _coerce(self) -> None:
        # Clients send null for unset values; Go decodes them as zero values.
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None and f.default is not None and f.default is not dataclasses.MISSING:
                setattr(self, f.name, f.default)
        for name, kind in self._INT_KINDS:
            setattr(self, name, gojson.to_int(getattr(self, name), "ConsumerConfig", name, kind))
        for name in self._STRS:
            if not isinstance(getattr(self, name), str):
                raise gojson.type_error(getattr(self, name), "ConsumerConfig", name, "string")
        for name in self._BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise gojson.type_error(getattr(self, name), "ConsumerConfig", name, "bool")
        if self.deliver_policy not in DELIVER_POLICIES:
            raise ValueError(f"can not unmarshal {self.deliver_policy!r}")
        if self.ack_policy not in ACK_POLICIES:
            raise ValueError(f"can not unmarshal {self.ack_policy!r}")
        if self.replay_policy not in REPLAY_POLICIES:
            raise ValueError(f"can not unmarshal {self.replay_policy!r}")
        if self.priority_policy not in PRIORITY_POLICIES:
            raise ValueError(f'unknown priority policy: "{self.priority_policy}"')
        if self.priority_policy == "none":
            self.priority_policy = ""
        fields = {"backoff": self.backoff, "filter_subjects": self.filter_subjects, "metadata": self.metadata,
                  "priority_groups": self.priority_groups}
        self.backoff = gojson.duration_list(fields, "backoff", "ConsumerConfig") or None
        self.filter_subjects = gojson.str_list(fields, "filter_subjects", "ConsumerConfig") or None
        self.metadata = gojson.str_map(fields, "metadata", "ConsumerConfig")
        self.priority_groups = gojson.str_list(fields, "priority_groups", "ConsumerConfig") or None
        for name in ("opt_start_time", "pause_until"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise gojson.type_error(v, "ConsumerConfig", name, "time.Time")
        if self.opt_start_time is not None:
            parse_rfc3339(self.opt_start_time)
        if self.pause_until is not None:
            # nats-server keeps the deadline in UTC and echoes it so
            self.pause_until = utc_text(self.pause_until)

    def to_json(self) -> dict[str, Any]:
        """nats-server's field order and omitempty rules."""
        out: dict[str, Any] = {}

        def put(k: str, v: Any, always: bool = False) -> None:
            if always or v:
                out[k] = v

        put("durable_name", self.durable_name)
        put("name", self.name)
        put("description", self.description)
        put("deliver_policy", self.deliver_policy, True)
        put("opt_start_seq", self.opt_start_seq)
        put("opt_start_time", self.opt_start_time)
        put("ack_policy", self.ack_policy, True)
        put("ack_wait", self.ack_wait)
        put("max_deliver", self.max_deliver)
        put("backoff", self.backoff)
        put("filter_subject", self.filter_subject)
        put("filter_subjects", self.filter_subjects)
        put("replay_policy", self.replay_policy, True)
        put("rate_limit_bps", self.rate_limit_bps)
        put("sample_freq", self.sample_freq)
        put("max_waiting", self.max_waiting)
        put("max_ack_pending", self.max_ack_pending)
        put("idle_heartbeat", self.idle_heartbeat)
        put("flow_control", self.flow_control)
        put("headers_only", self.headers_only)
        put("max_batch", self.max_batch)
        put("max_expires", self.max_expires)
        put("max_bytes", self.max_bytes)
        put("deliver_subject", self.deliver_subject)
        put("deliver_group", self.deliver_group)
        put("inactive_threshold", self.inactive_threshold)
        put("num_replicas", self.num_replicas, True)
        put("mem_storage", self.mem_storage)
        put("direct", self.direct)
        put("metadata", self.metadata)
        put("pause_until", self.pause_until)
        put("priority_groups", self.priority_groups)
        put("priority_policy", self.priority_policy)
        put("priority_timeout", self.priority_timeout)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


def consumer_required_level(cfg: ConsumerConfig) -> int:
    """The API level a consumer's features need, as nats-server 2.12 computes it from the
    request: 1 (2.11) for a pause deadline (even one already past; Go's zero time is none) and
    for priority groups (a policy, a pin timeout or group names)."""
    if cfg.pause_until is not None and cfg.pause_until != ZERO_TIME:
        return 1
    if cfg.priority_policy or cfg.priority_timeout != 0 or cfg.priority_groups:
        return 1
    return 0


def set_static_metadata(cfg: ConsumerConfig) -> None:
    """On create, update and pause: the dynamic keys a client echoed back are dropped and the
    required level is (re)computed into the stored metadata, as nats-server's
    setStaticConsumerMetadata (a `_nats.req.level` the client sent is overwritten)."""
    md = {k: v for k, v in (cfg.metadata or {}).items() if k not in (SERVER_VERSION_KEY, SERVER_LEVEL_KEY)}
    md[REQ_LEVEL_KEY] = str(consumer_required_level(cfg))
    cfg.metadata = md


def same_stored_metadata(cfg: ConsumerConfig, stored: ConsumerConfig) -> ConsumerConfig:
    """`cfg` with the stored consumer's required level in place of its own (or none, when the
    stored config has none), as nats-server's copyConsumerMetadata before it compares a create
    request with the consumer that exists: a consumer stored before levels were kept is still
    the same consumer."""
    out = cfg.copy()
    md = {k: v for k, v in (out.metadata or {}).items() if k not in (SERVER_VERSION_KEY, SERVER_LEVEL_KEY)}
    md.pop(REQ_LEVEL_KEY, None)
    if stored.metadata and REQ_LEVEL_KEY in stored.metadata:
        md[REQ_LEVEL_KEY] = stored.metadata[REQ_LEVEL_KEY]
    out.metadata = md or None
    return out


@dataclass(slots=True)
class StreamView:
    """The stream settings config checks depend on."""

    name: str
    subjects: list[str]
    retention: str = "limits"  # limits | interest | workqueue
    num_replicas: int = 1
    has_external: bool = False  # mirror/sources: filter checks cannot be done
    # the subjects a stream subject_transform stores under (its dest, `*` for each reference):
    # a filter on them is a subset too, though no configured subject matches it
    stored_by_transform: str = ""
    # the stream's consumer_limits (2.10): defaults and caps; 0 = none
    limit_inactive_threshold: int = 0
    limit_max_ack_pending: int = 0


# pedantic mode (nats-server 2.11+): values its defaults would change, refused instead, in
# setConsumerConfigDefaults' order
_PEDANTIC_NEGATIVE = (("max_deliver", -1, "max_deliver must be set to -1"),
                      ("max_waiting", 0, "max_waiting must not be negative"),
                      ("max_ack_pending", -1, "max_ack_pending must be set to -1"),
                      ("max_batch", 0, "max_batch must not be negative"),
                      ("max_expires", 0, "max_expires must not be negative"),
                      ("max_bytes", 0, "max_bytes must not be negative"),
                      ("idle_heartbeat", 0, "idle_heartbeat must not be negative"),
                      ("inactive_threshold", 0, "inactive_threshold must not be negative"),
                      ("priority_timeout", 0, "priority_timeout must not be negative"))


def _pedantic(text: str) -> ApiError:
    return errors.by_constant("JSPedanticErrF", err=text)


def apply_defaults(cfg: ConsumerConfig, max_ack_pending_limit: int = 0, stream: StreamView | None = None,
                   pedantic: bool = False) -> None:
    """setConsumerConfigDefaults, in nats-server's order. `stream`: its consumer_limits give
    max_ack_pending and inactive_threshold when the config has none (durables included, and
    max_ack_pending whatever the ack policy, as nats-server does). `pedantic`: where a default
    would change what was asked for, 10157 instead, as nats-server."""
    if pedantic:
        for name, floor, text in _PEDANTIC_NEGATIVE:
            if getattr(cfg, name) < floor:
                raise _pedantic(text)
    if not cfg.deliver_subject and cfg.max_waiting == 0:
        cfg.max_waiting = DEFAULT_MAX_WAITING
    if cfg.ack_wait == 0 and cfg.ack_policy in ("explicit", "all"):
        cfg.ack_wait = ACK_WAIT_DEFAULT
    if cfg.max_deliver == 0 or cfg.max_deliver < -1:
        cfg.max_deliver = -1
    if cfg.backoff:
        if pedantic and cfg.ack_wait != cfg.backoff[0]:
            raise _pedantic("first backoff value has to equal batch AckWait")
        cfg.ack_wait = cfg.backoff[0]
    if stream is not None:
        if cfg.max_ack_pending == 0:
            if pedantic and stream.limit_max_ack_pending > 0:
                raise _pedantic("max_ack_pending must be set if it's configured in stream limits")
            cfg.max_ack_pending = stream.limit_max_ack_pending
        if cfg.inactive_threshold == 0:
            if pedantic and stream.limit_inactive_threshold > 0:
                raise _pedantic("inactive_threshold must be set if it's configured in stream limits")
            cfg.inactive_threshold = stream.limit_inactive_threshold
    if cfg.ack_policy in ("explicit", "all") and cfg.max_ack_pending == 0:
        mp = DEFAULT_MAX_ACK_PENDING
        if 0 < max_ack_pending_limit < mp:
            mp = max_ack_pending_limit
        cfg.max_ack_pending = mp
    if not cfg.durable_name and cfg.inactive_threshold <= 0:
        cfg.inactive_threshold = DELETE_WAIT_DEFAULT
    if cfg.priority_timeout < 0:
        cfg.priority_timeout = 0
    if cfg.priority_policy == "pinned_client" and cfg.priority_timeout == 0:
        cfg.priority_timeout = PINNED_TTL_DEFAULT


def check_config(cfg: ConsumerConfig, stream: StreamView, max_ack_pending_limit: int = 0) -> None:
    """checkConsumerCfg: raise the ApiError of the first violated rule. `max_ack_pending_limit`:
    the account's cap (its `max_ack_pending`; <= 0: none)."""
    if cfg.num_replicas > 0 and cfg.num_replicas > stream.num_replicas:
        raise errors.consumer_replicas_exceeds_stream()
    if cfg.num_replicas < 0:
        raise errors.replicas_count_cannot_be_negative()
    if cfg.num_replicas > 1:
        raise errors.stream_replicas_not_supported()
    if cfg.ack_wait < 0:
        raise errors.consumer_ack_wait_negative()
    if cfg.backoff and cfg.max_deliver != -1 and cfg.max_deliver <= len(cfg.backoff):
        raise errors.consumer_max_deliver_backoff()
    if len(cfg.description) > MAX_DESCRIPTION_LEN:
        raise errors.consumer_description_too_long(max=MAX_DESCRIPTION_LEN)
    if cfg.metadata is not None:
        if not isinstance(cfg.metadata, dict):
            raise errors.invalid_json("metadata")
        if sum(len(k) + len(str(v)) for k, v in cfg.metadata.items()) > MAX_METADATA_LEN:
            raise errors.consumer_metadata_length(limit=f"{MAX_METADATA_LEN // 1024}KB")
    if cfg.priority_policy:
        if cfg.deliver_subject:
            raise errors.by_constant("JSConsumerPushWithPriorityGroupErr")
        if not cfg.priority_groups:
            raise errors.by_constant("JSConsumerPriorityPolicyWithoutGroup")
        for g in cfg.priority_groups:
            if not g:
                raise errors.by_constant("JSConsumerEmptyGroupName")
            if not GROUP_NAME.fullmatch(g):
                raise errors.by_constant("JSConsumerInvalidGroupNameErr")
    else:
        if cfg.priority_groups:
            raise errors.by_constant("JSConsumerPriorityGroupWithPolicyNone")
        if cfg.priority_timeout > 0:
            raise errors.by_constant("JSConsumerPinnedTTLWithoutPriorityPolicyNone")
    if cfg.deliver_subject:
        if "*" in cfg.deliver_subject.split(".") or ">" in cfg.deliver_subject.split("."):
            raise errors.consumer_deliver_to_wildcards()
        # Deliveries to the API, ack, flow-control or system subjects are refused (nats-server
        # 2.9 takes them); the router would not execute them anyway (clients_only).
        if not is_valid_literal_subject(cfg.deliver_subject) or is_reserved_subject(cfg.deliver_subject):
            raise errors.consumer_invalid_deliver_subject()
        if any(subject_matches(s, cfg.deliver_subject) for s in stream.subjects):
            raise errors.consumer_deliver_cycle()
        if cfg.max_waiting != 0:
            raise errors.consumer_push_max_waiting()
        if cfg.max_ack_pending > 0 and cfg.ack_policy == "none":
            raise errors.consumer_max_pending_ack_policy_required()
        if 0 < cfg.idle_heartbeat < 100 * MS:
            raise errors.consumer_small_heartbeat()
    else:
        if cfg.ack_policy == "none" and stream.retention == "workqueue":
            raise errors.consumer_pull_requires_ack()
        if cfg.rate_limit_bps > 0:
            raise errors.consumer_pull_with_rate_limit()
        if cfg.max_waiting < 0:
            raise errors.consumer_max_waiting_negative()
        if cfg.idle_heartbeat > 0:
            raise errors.consumer_hb_requires_push()
        if cfg.flow_control:
            raise errors.consumer_fc_requires_push()
        if cfg.max_batch < 0:
            raise errors.consumer_max_request_batch_negative()
        if cfg.max_expires != 0 and cfg.max_expires < MS:
            raise errors.consumer_max_request_expires_too_small()
    if 0 < max_ack_pending_limit < cfg.max_ack_pending:
        raise errors.by_constant("JSConsumerMaxPendingAckExcessErrF", limit=max_ack_pending_limit)
    if 0 < stream.limit_max_ack_pending < cfg.max_ack_pending:
        raise errors.by_constant("JSConsumerMaxPendingAckExcessErrF", limit=stream.limit_max_ack_pending)
    if 0 < stream.limit_inactive_threshold < cfg.inactive_threshold:
        raise errors.by_constant("JSConsumerInactiveThresholdExcess",
                                 limit=format_duration(stream.limit_inactive_threshold))
    if cfg.direct:
        if not cfg.deliver_subject:
            raise errors.consumer_direct_requires_push()
        if cfg.durable_name:
            raise errors.consumer_direct_requires_ephemeral()
    if cfg.filter_subject and cfg.filter_subjects:
        raise errors.consumer_duplicate_filter_subjects()
    if cfg.filter_subjects:
        for i, f in enumerate(cfg.filter_subjects):
            if not f:
                raise errors.consumer_empty_filter()
            for g in cfg.filter_subjects[i + 1:]:
                if subjects_overlap(f, g):
                    raise errors.consumer_overlapping_subject_filters()
    for f in cfg.filters:
        if not is_valid_subject(f):
            raise errors.consumer_filter_not_subset()
        if not stream.has_external and stream.subjects and not any(
            subjects_overlap(f, s) for s in stream.subjects
        ) and not (stream.stored_by_transform and subjects_overlap(f, stream.stored_by_transform)):
            raise errors.consumer_filter_not_subset()

    dp = cfg.deliver_policy
    words = {"all": "all", "last": "last", "last_per_subject": "last per subject", "new": "new"}
    if dp in words:
        if cfg.opt_start_seq > 0:
            raise invalid_policy(f"consumer delivery policy is deliver {words[dp]}, but optional start sequence is also set")
        if cfg.opt_start_time is not None:
            raise invalid_policy(f"consumer delivery policy is deliver {words[dp]}, but optional start time is also set")
        if dp == "last_per_subject" and not cfg.filters:
            raise invalid_policy("consumer delivery policy is deliver last per subject, but optional filter subject is not set")
    elif dp == "by_start_sequence":
        if cfg.opt_start_seq == 0:
            raise invalid_policy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
        if cfg.opt_start_time is not None:
            raise invalid_policy("consumer delivery policy is deliver by start sequence, but optional start time is also set")
    elif dp == "by_start_time":
        if cfg.opt_start_time is None:
            raise invalid_policy("consumer delivery policy is deliver by start time, but optional start time is not set")
        if cfg.opt_start_seq != 0:
            raise invalid_policy("consumer delivery policy is deliver by start time, but optional start sequence is also set")
    if cfg.sample_freq:
        s = cfg.sample_freq.rstrip("%")
        if not s.isdigit():
            raise errors.consumer_invalid_sampling(err=f'strconv.Atoi: parsing "{s}": invalid syntax')
    if cfg.flow_control and cfg.idle_heartbeat == 0:
        raise errors.consumer_with_flow_control_needs_heartbeats()
    if cfg.durable_name and cfg.name and cfg.durable_name != cfg.name:
        raise errors.consumer_create_durable_and_name_mismatch()
    for n in (cfg.durable_name, cfg.name):
        # nats-server counts bytes (a Go string's len), not characters
        if n and len(n.encode("utf-8", "surrogatepass")) > MAX_NAME_LEN:
            raise errors.consumer_name_too_long(max=MAX_NAME_LEN)
        if n and ("/" in n or "\\" in n):
            raise errors.consumer_name_contains_path_separators()
        if n and not is_valid_name(n):
            raise errors.consumer_bad_durable_name()


def check_limits_update(old_limits: dict[str, Any], new_limits: dict[str, Any],
                        consumers: Iterable[tuple[str, ConsumerConfig]]) -> None:
    """A stream update that sets or changes `consumer_limits`: 10069 naming the consumers
    (sorted; nats-server lists them in map order) that exceed the new limits."""
    def lim(d: dict[str, Any], k: str) -> int:
        v = d.get(k) if d else None
        return v if isinstance(v, int) else 0

    old_it, new_it = lim(old_limits, "inactive_threshold"), lim(new_limits, "inactive_threshold")
    old_map, new_map = lim(old_limits, "max_ack_pending"), lim(new_limits, "max_ack_pending")
    if not ((new_it > 0 and old_it != new_it) or (new_map > 0 and old_map != new_map)):
        return
    bad = sorted(name for name, c in consumers
                 if (new_it > 0 and c.inactive_threshold > new_it) or (new_map > 0 and c.max_ack_pending > new_map))
    if bad:
        raise errors.by_constant("JSStreamUpdateErrF", err="change to limits violates consumers: " + ", ".join(bad))


def check_update(old: ConsumerConfig, new: ConsumerConfig) -> None:
    """checkNewConsumerConfig: which fields an update may change (10012 with the reason)."""
    if old == new:
        return

    def refuse(text: str) -> ApiError:
        return errors.consumer_create(err=text)

    if old.deliver_policy != new.deliver_policy:
        raise refuse("deliver policy can not be updated")
    if old.opt_start_seq != new.opt_start_seq:
        raise refuse("start sequence can not be updated")
    if old.opt_start_time_ns != new.opt_start_time_ns:
        raise refuse("start time can not be updated")
    if old.ack_policy != new.ack_policy:
        raise refuse("ack policy can not be updated")
    if old.replay_policy != new.replay_policy:
        raise refuse("replay policy can not be updated")
    if old.idle_heartbeat != new.idle_heartbeat:
        raise refuse("heart beats can not be updated")
    if old.flow_control != new.flow_control:
        raise refuse("flow control can not be updated")
    if old.max_waiting != new.max_waiting:
        raise refuse("max waiting can not be updated")
    if old.mem_storage != new.mem_storage:
        raise refuse("can not update memory storage setting")
    if old.deliver_subject != new.deliver_subject:
        if not old.deliver_subject:
            raise refuse("can not update pull consumer to push based")
        if not new.deliver_subject:
            raise refuse("can not update push consumer to pull based")
    if new.backoff and new.max_deliver != -1 and new.max_deliver <= len(new.backoff):
        raise errors.consumer_max_deliver_backoff()
