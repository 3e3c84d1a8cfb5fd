"""Settings of the eventing layer: Kyma's defaults, the eventing config file, the environment.

Owns names and defaults (stream, consumers, publisher, dispatcher, application types,
delivery profile) and the three ways to change them, applied in this order: the YAML file
(`load_file`, the keys of Kyma's Eventing CR plus ours), Kyma's environment variables
(`from_env`), then command-line flags (`cli.eventing_cmd`). Every bad key or value is a
`ConfigError` naming the key or variable. Nothing here opens sockets or reads the environment
except `from_env`; everything else takes an explicit EventingConfig.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from .egress import MODES, SinkPolicy, parse_entries
from .retry import (
    BACKOFF_POLICIES,
    KYMA_ACK_WAIT,
    KYMA_MAX_DELIVER,
    KYMA_NAK_DELAY,
    PROFILE_DEFAULT,
    PROFILE_KYMA,
    PROFILES,
    RetryPolicy,
    kyma_policy,
    parse_duration,
)

MEBIBYTE = 1024 * 1024
DELIVER_POLICIES = ("all", "last", "last_per_subject", "new")


class ConfigError(ValueError):
    """A setting that cannot be used; the message starts with the file key or variable name."""


@dataclass(frozen=True)
class StreamSettings:
    name: str = "sap"
    subject_prefix: str = "kyma"
    storage: str = "file"            # file | memory
    replicas: int = 1                # Kyma's CR says 3; a single node can only hold 1
    retention: str = "interest"      # interest | limits
    max_msgs: int = -1
    max_bytes: int = 700 * MEBIBYTE
    max_msgs_per_subject: int = 1_000_000
    discard: str = "new"             # new | old
    duplicate_window: float = 120.0  # used by the Nats-Msg-Id de-duplication

    def config_dict(self) -> dict:
        return {
            "name": self.name,
            "subjects": [f"{self.subject_prefix}.>"],
            "storage": self.storage,
            "num_replicas": self.replicas,
            "retention": self.retention,
            "max_msgs": self.max_msgs,
            "max_bytes": self.max_bytes,
            "max_msgs_per_subject": self.max_msgs_per_subject,
            "discard": self.discard,
            "duplicate_window": self.duplicate_window,
        }


@dataclass(frozen=True)
class DeadLetterSettings:
    enabled: bool = True
    stream: str = "sap-dlq"
    subject_prefix: str = "kyma-dlq"
    max_age: float = 7 * 86400.0
    storage: str = "file"
    replicas: int = 1


@dataclass(frozen=True)
class ConsumerSettings:
    deliver_policy: str = "new"      # all | last | last_per_subject | new
    ack_wait: float = 30.0
    max_in_flight: int = 10          # DEFAULT_MAX_IN_FLIGHT_MESSAGES
    flow_control: bool = True
    idle_heartbeat: float = 60.0


@dataclass(frozen=True)
class KymaDelivery:
    """Kyma's dispatcher constants, used by the `kyma` delivery profile. Not a user setting
    (the profile promises Kyma's numbers); tests inject a short `nak_delay` instead of waiting."""

    nak_delay: float = KYMA_NAK_DELAY
    ack_wait: float = KYMA_ACK_WAIT
    max_deliver: int = KYMA_MAX_DELIVER


@dataclass(frozen=True)
class EventingConfig:
    stream: StreamSettings = field(default_factory=StreamSettings)
    dead_letter: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    legacy_type_prefix: str = "sap.kyma.custom"
    legacy_namespace: str = "kyma"
    publish_host: str = "127.0.0.1"
    publish_port: int = 8080
    max_request_size: int = 65536
    publish_timeout: float = 5.0
    dedupe: bool = False             # opt-in Nats-Msg-Id from source+id (beyond Kyma)
    legacy_double_publish: bool = True
    kv_bucket: str = "eventing-subscriptions"
    strict_sinks: bool = False       # Kyma's cluster-local sink rules
    http_max_connections: int = 50   # per sink host, as Kyma's transport
    sink_policy: SinkPolicy = field(default_factory=SinkPolicy)  # egress (SSRF) guard, beyond Kyma
    # Bearer tokens the publisher proxy accepts (any one of them); empty: no token needed.
    publish_tokens: tuple[str, ...] = field(default=(), repr=False)
    # Application name -> application type: what Kyma reads from an Application CR's
    # `application-type` label; the type replaces the name in published event types.
    application_types: Mapping[str, str] = field(default_factory=dict)
    delivery_profile: str = PROFILE_DEFAULT  # default | kyma; a Subscription may choose its own
    kyma_delivery: KymaDelivery = field(default_factory=KymaDelivery)

    def with_overrides(self, **changes: Any) -> EventingConfig:
        return replace(self, **changes)

    def application_type(self, application: str) -> str:
        """The mapped type of `application`, or the name itself (Kyma: no Application CR)."""
        return self.application_types.get(application, application)

    def delivery_policy(self, subscription_config: Mapping[str, str]) -> RetryPolicy:
        """The policy of a Subscription: its `deliveryProfile` key, else the global profile.
        Under `kyma` the Subscription's retry keys do not apply (validation refuses them
        next to `deliveryProfile: kyma`)."""
        profile = subscription_config.get("deliveryProfile") or self.delivery_profile
        if profile == PROFILE_KYMA:
            return kyma_policy(self.kyma_delivery.nak_delay, self.kyma_delivery.max_deliver)
        return RetryPolicy.from_config(dict(subscription_config), self.retry)


# -- values ----------------------------------------------------------------------------------
# Each parser takes the key (for the message) and a value from YAML or the environment.

Parser = Callable[[str, Any], Any]


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"{key}: {message}")


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(key, f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise _fail(key, f"must be an integer, got {value!r}")


def _int_range(low: int, high: int | None = None) -> Parser:
    def parse(key: str, value: Any) -> int:
        n = _integer(key, value)
        if n < low or (high is not None and n > high):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise _fail(key, f"must be {span}, got {n}")
        return n
    return parse


def _limit(key: str, value: Any) -> int:
    """-1 (unlimited) or a positive number, as JetStream limits take them."""
    n = _integer(key, value)
    if n == 0 or n < -1:
        raise _fail(key, f"must be -1 (unlimited) or a positive number, got {n}")
    return n


def _size(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _fail(key, f"must be a size such as 700Mi, 1GB or a number of bytes, got {value!r}")
    try:
        n = value if isinstance(value, int) else parse_size(value)
    except ValueError:
        raise _fail(key, f"must be a size such as 700Mi, 1GB or a number of bytes, got {value!r}") from None
    if n == 0 or n < -1:
        raise _fail(key, f"must be -1 (unlimited) or a positive size, got {value!r}")
    return n


def _request_size(key: str, value: Any) -> int:
    n = _size(key, value)
    if n < 1:
        raise _fail(key, f"must be a positive size, got {value!r}")
    return n


def _duration(key: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _fail(key, f"must be a duration such as 5s, 500ms or PT5S, got {value!r}")
    try:
        seconds = float(value) if not isinstance(value, str) else parse_duration(value)
    except ValueError:
        raise _fail(key, f"must be a duration such as 5s, 500ms or PT5S, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise _fail(key, f"must be a {'positive' if positive else 'non-negative'} duration, got {value!r}")
    return seconds


def _positive_duration(key: str, value: Any) -> float:
    return _duration(key, value, positive=True)


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(key, f"must be true or false, got {value!r}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _choice(*choices: str) -> Parser:
    def parse(key: str, value: Any) -> str:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in choices:
            raise _fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(text)
    return parse


_NAME_UNSAFE = re.compile(r"[\s.*>/\\]")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _stream_name(key: str, value: Any) -> str:
    name = _text(key, value)
    if len(name) > 32:
        raise _fail(key, f"stream name should be max 32 characters long, got {len(name)}")
    if _NAME_UNSAFE.search(name):
        raise _fail(key, f"a stream name must not contain whitespace, '.', '*', '>', '/' or '\\', got {name!r}")
    return name


def _subject_token(key: str, value: Any) -> str:
    token = _text(key, value)
    if not _TOKEN.match(token):
        raise _fail(key, f"must be one subject token of letters, digits, '-' or '_', got {token!r}")
    return token


def _type_prefix(key: str, value: Any) -> str:
    prefix = _text(key, value)
    if not re.fullmatch(r"[A-Za-z0-9]+(\.[A-Za-z0-9]+)*", prefix):
        raise _fail(key, f"must be dot-separated letters and digits such as sap.kyma.custom, got {prefix!r}")
    return prefix


def _status_codes(key: str, value: Any) -> frozenset[int]:
    items = value if isinstance(value, list) else str(value).split(",") if isinstance(value, (str, int)) else None
    if items is None:
        raise _fail(key, f"must be a list of HTTP status codes, got {value!r}")
    codes: set[int] = set()
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        code = _integer(key, item.strip() if isinstance(item, str) else item)
        if not 100 <= code <= 599:
            raise _fail(key, f"{code} is not an HTTP status code")
        codes.add(code)
    return frozenset(codes)


def _host_entries(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _fail(key, f"must be a list of CIDRs and host names, got {value!r}")
    try:
        parse_entries(items)
    except ValueError as exc:
        raise _fail(key, str(exc)) from None
    return tuple(items)


# Kubernetes label values (Kyma keeps the application type in a label): at most 63
# characters, alphanumerics with '-', '_' or '.' inside.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_APP_NAME = re.compile(r"^[^\s/]+$")


def _application_types(key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(key, f"must map application names to application types, got {value!r}")
    out: dict[str, str] = {}
    for app, app_type in value.items():
        if not isinstance(app, str) or not _APP_NAME.match(app):
            raise _fail(key, f"{app!r} is not an application name (non-empty, no '/' or whitespace)")
        if not isinstance(app_type, str) or not _LABEL_VALUE.match(app_type):
            raise _fail(f"{key}.{app}", "must be an application type as a Kubernetes label value "
                                        f"(letters, digits, '-', '_', '.'; at most 63), got {app_type!r}")
        out[app] = app_type
    return out


# -- the file ----------------------------------------------------------------------------------
# section -> key -> (target, parser). A target is an EventingConfig field, or `part.field`
# for the nested settings. `backend` uses the names of Kyma's Eventing CR
# (spec.backend.config), so that block can be copied from a cluster as it is.

FILE_KEYS: dict[str, dict[str, tuple[str, Parser]]] = {
    "backend": {
        "natsStreamStorageType": ("stream.storage", _choice("file", "memory")),
        "natsStreamReplicas": ("stream.replicas", _int_range(1, 5)),
        "natsStreamMaxSize": ("stream.max_bytes", _size),
        "natsMaxMsgsPerTopic": ("stream.max_msgs_per_subject", _limit),
        "eventTypePrefix": ("legacy_type_prefix", _type_prefix),
    },
    "stream": {
        "name": ("stream.name", _stream_name),
        "subjectPrefix": ("stream.subject_prefix", _subject_token),
        "retentionPolicy": ("stream.retention", _choice("interest", "limits")),
        "maxMessages": ("stream.max_msgs", _limit),
        "discardPolicy": ("stream.discard", _choice("new", "old")),
    },
    "consumer": {
        "deliverPolicy": ("consumer.deliver_policy", _choice(*DELIVER_POLICIES)),
        "maxInFlightMessages": ("consumer.max_in_flight", _int_range(1)),
    },
    "publisher": {
        "host": ("publish_host", _text),
        "port": ("publish_port", _int_range(0, 65535)),
        "maxRequestSize": ("max_request_size", _request_size),
        "requestTimeout": ("publish_timeout", _positive_duration),
        "legacyNamespace": ("legacy_namespace", _subject_token),
        "dedupe": ("dedupe", _boolean),
    },
    "delivery": {
        "profile": ("delivery_profile", _choice(*PROFILES)),
        "deadLetter": ("dead_letter.enabled", _boolean),
        "deadLetterMaxAge": ("dead_letter.max_age", _positive_duration),
        "maxDeliveryAttempts": ("retry.max_deliveries", _int_range(1)),
        "backoffPolicy": ("retry.backoff", _choice(*BACKOFF_POLICIES)),
        "backoffDelay": ("retry.initial_delay", _duration),
        "backoffMax": ("retry.max_delay", _duration),
        "deliveryTimeout": ("retry.delivery_timeout", _positive_duration),
        "retryAfterMax": ("retry.retry_after_max", _duration),
        "noRetryStatusCodes": ("retry.no_retry_codes", _status_codes),
    },
    "sinks": {
        "policy": ("sink_policy.mode", _choice(*MODES)),
        "allow": ("sink_policy.allow", _host_entries),
        "deny": ("sink_policy.deny", _host_entries),
        "kymaStrict": ("strict_sinks", _boolean),
    },
}
# Sections that are one mapping of free keys rather than fixed keys.
MAP_SECTIONS: dict[str, tuple[str, Parser]] = {
    "applications": ("application_types", _application_types),
}


def _apply(cfg: EventingConfig, changes: Mapping[str, Any]) -> EventingConfig:
    """Set `field` and `part.field` targets; nested parts are replaced as a whole."""
    top: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    for target, value in changes.items():
        part, _, name = target.partition(".")
        if name:
            parts.setdefault(part, {})[name] = value
        else:
            top[target] = value
    for part, values in parts.items():
        top[part] = replace(getattr(cfg, part), **values)
    return replace(cfg, **top)


def from_document(doc: Any, base: EventingConfig | None = None, origin: str = "eventing config"
                  ) -> EventingConfig:
    """Apply a parsed eventing config document on top of `base`; ConfigError on any bad key."""
    cfg = base or EventingConfig()
    if doc is None:
        return cfg
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{origin}: must be a mapping of sections "
                          f"({', '.join([*FILE_KEYS, *MAP_SECTIONS])}), got {type(doc).__name__}")
    changes: dict[str, Any] = {}
    for section, body in doc.items():
        if section in MAP_SECTIONS:
            target, parse = MAP_SECTIONS[section]
            changes[target] = parse(str(section), body)
            continue
        keys = FILE_KEYS.get(section) if isinstance(section, str) else None
        if keys is None:
            raise ConfigError(f"{section}: unknown section; known sections: "
                              f"{', '.join([*FILE_KEYS, *MAP_SECTIONS])}")
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys, got {body!r}")
        for key, value in body.items():
            if key not in keys:
                raise ConfigError(f"{section}.{key}: unknown key; known keys of {section}: {', '.join(keys)}")
            target, parse = keys[key]
            changes[target] = parse(f"{section}.{key}", value)
    try:
        return _apply(cfg, changes)
    except ValueError as exc:  # SinkPolicy and friends validate on construction
        raise ConfigError(str(exc)) from None


def load_file(path: str, base: EventingConfig | None = None) -> EventingConfig:
    """Read the YAML eventing config at `path` on top of `base`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"eventing config {path}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"eventing config {path}: not valid YAML: {exc}") from None
    try:
        return from_document(doc, base, origin=f"eventing config {path}")
    except ConfigError as exc:
        raise ConfigError(f"eventing config {path}: {exc}") from None


# -- the environment ------------------------------------------------------------------------------
# Kyma's variable names. JS_STREAM_STORAGE_TYPE, JS_STREAM_REPLICAS, JS_STREAM_MAX_BYTES and
# JS_STREAM_MAX_MSGS_PER_TOPIC are the eventing-controller's names; today's eventing-manager
# takes those four from the Eventing CR instead, the rest are still its env (pkg/env).

ENV_KEYS: dict[str, tuple[str, Parser]] = {
    "JS_STREAM_NAME": ("stream.name", _stream_name),
    "JS_STREAM_SUBJECT_PREFIX": ("stream.subject_prefix", _subject_token),
    "JS_STREAM_STORAGE_TYPE": ("stream.storage", _choice("file", "memory")),
    "JS_STREAM_REPLICAS": ("stream.replicas", _int_range(1, 5)),
    "JS_STREAM_RETENTION_POLICY": ("stream.retention", _choice("interest", "limits")),
    "JS_STREAM_MAX_MSGS": ("stream.max_msgs", _limit),
    "JS_STREAM_MAX_BYTES": ("stream.max_bytes", _size),
    "JS_STREAM_MAX_MSGS_PER_TOPIC": ("stream.max_msgs_per_subject", _limit),
    "JS_STREAM_DISCARD_POLICY": ("stream.discard", _choice("new", "old")),
    # Kyma falls back to `new` for a deliver policy it does not know.
    "JS_CONSUMER_DELIVER_POLICY": ("consumer.deliver_policy", lambda key, value: normalize_deliver_policy(value)),
    "DEFAULT_MAX_IN_FLIGHT_MESSAGES": ("consumer.max_in_flight", _int_range(1)),
    "EVENT_TYPE_PREFIX": ("legacy_type_prefix", _type_prefix),
    "LEGACY_NAMESPACE": ("legacy_namespace", _subject_token),
    "REQUEST_TIMEOUT": ("publish_timeout", _positive_duration),
}


def from_env(env: Mapping[str, str] | None = None, base: EventingConfig | None = None) -> EventingConfig:
    """Apply Kyma's environment variable names on top of `base`; unset or empty ones are skipped."""
    env = os.environ if env is None else env
    changes = {target: parse(name, env[name]) for name, (target, parse) in ENV_KEYS.items() if env.get(name)}
    return _apply(base or EventingConfig(), changes)


# -- command-line flags (the last word) ----------------------------------------------------------


def _flag_application_types(key: str, value: Any) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in value if isinstance(value, list) else [value]:
        app, sep, app_type = str(item).partition("=")
        if not sep:
            raise _fail(key, f"must be APP=TYPE, got {item!r}")
        pairs[app.strip()] = app_type.strip()
    return _application_types(key, pairs)


FLAG_KEYS: dict[str, tuple[str, Parser]] = {
    "--stream-name": ("stream.name", _stream_name),
    "--stream-storage": ("stream.storage", _choice("file", "memory")),
    "--stream-replicas": ("stream.replicas", _int_range(1, 5)),
    "--stream-retention": ("stream.retention", _choice("interest", "limits")),
    "--stream-max-bytes": ("stream.max_bytes", _size),
    "--stream-max-msgs": ("stream.max_msgs", _limit),
    "--max-msgs-per-subject": ("stream.max_msgs_per_subject", _limit),
    "--discard": ("stream.discard", _choice("new", "old")),
    "--deliver-policy": ("consumer.deliver_policy", lambda key, value: normalize_deliver_policy(value)),
    "--publish-host": ("publish_host", _text),
    "--publish-port": ("publish_port", _int_range(0, 65535)),
    "--max-request-size": ("max_request_size", _request_size),
    "--dedupe": ("dedupe", _boolean),
    "--no-dead-letter": ("dead_letter.enabled", lambda key, value: not _boolean(key, value)),
    "--kyma-strict-sinks": ("strict_sinks", _boolean),
    "--sink-policy": ("sink_policy.mode", _choice(*MODES)),
    "--sink-allow": ("sink_policy.allow", _host_entries),
    "--sink-deny": ("sink_policy.deny", _host_entries),
    "--delivery-profile": ("delivery_profile", _choice(*PROFILES)),
    "--application-type": ("application_types", _flag_application_types),
}


def from_flags(values: Mapping[str, Any], base: EventingConfig | None = None) -> EventingConfig:
    """Apply the flags that were given (`--flag` -> value) on top of `base`. A flag replaces
    the value from the file or environment; `--application-type` adds to the mapping."""
    cfg = base or EventingConfig()
    changes: dict[str, Any] = {}
    for flag, value in values.items():
        target, parse = FLAG_KEYS[flag]
        parsed = parse(flag, value)
        if target == "application_types":
            parsed = {**cfg.application_types, **parsed}
        changes[target] = parsed
    try:
        return _apply(cfg, changes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def normalize_deliver_policy(value: str) -> str:
    value = value.strip().lower()
    # Kyma falls back to `new` for anything it does not know.
    return value if value in DELIVER_POLICIES else "new"


_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
               "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from a Kubernetes quantity (`700Mi`) or a NATS size (`1GB`); empty means -1."""
    text = text.strip()
    if not text:
        return -1
    num = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(num):].lower()
    if unit not in _SIZE_UNITS or not num:
        raise ValueError(f"invalid size {text!r}")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"invalid size {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid size {text!r}")
    return int(value * _SIZE_UNITS[unit])
