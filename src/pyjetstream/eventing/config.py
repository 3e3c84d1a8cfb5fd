"""Settings of the eventing layer, with Kyma's defaults and environment overrides.

Owns names and defaults only (stream, consumers, publisher, dispatcher); reading the
environment happens in `from_env`, everything else takes an explicit EventingConfig.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .egress import SinkPolicy
from .retry import RetryPolicy, parse_duration

MEBIBYTE = 1024 * 1024


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

    def with_overrides(self, **changes) -> EventingConfig:
        return replace(self, **changes)


def from_env(env: Mapping[str, str] | None = None, base: EventingConfig | None = None) -> EventingConfig:
    """Apply Kyma's environment variable names on top of `base`."""
    env = os.environ if env is None else env
    cfg = base or EventingConfig()
    stream = cfg.stream
    s: dict = {}
    if env.get("JS_STREAM_NAME"):
        s["name"] = env["JS_STREAM_NAME"]
    if env.get("JS_STREAM_SUBJECT_PREFIX"):
        s["subject_prefix"] = env["JS_STREAM_SUBJECT_PREFIX"]
    if env.get("JS_STREAM_STORAGE_TYPE"):
        s["storage"] = env["JS_STREAM_STORAGE_TYPE"].lower()
    if env.get("JS_STREAM_REPLICAS"):
        s["replicas"] = int(env["JS_STREAM_REPLICAS"])
    if env.get("JS_STREAM_RETENTION_POLICY"):
        s["retention"] = env["JS_STREAM_RETENTION_POLICY"].lower()
    if env.get("JS_STREAM_MAX_MSGS"):
        s["max_msgs"] = int(env["JS_STREAM_MAX_MSGS"])
    if env.get("JS_STREAM_MAX_BYTES"):
        s["max_bytes"] = parse_size(env["JS_STREAM_MAX_BYTES"])
    if env.get("JS_STREAM_MAX_MSGS_PER_TOPIC"):
        s["max_msgs_per_subject"] = int(env["JS_STREAM_MAX_MSGS_PER_TOPIC"])
    if env.get("JS_STREAM_DISCARD_POLICY"):
        s["discard"] = env["JS_STREAM_DISCARD_POLICY"].lower()
    c: dict = {}
    if env.get("JS_CONSUMER_DELIVER_POLICY"):
        c["deliver_policy"] = normalize_deliver_policy(env["JS_CONSUMER_DELIVER_POLICY"])
    if env.get("DEFAULT_MAX_IN_FLIGHT_MESSAGES"):
        c["max_in_flight"] = int(env["DEFAULT_MAX_IN_FLIGHT_MESSAGES"])
    top: dict = {}
    if env.get("EVENT_TYPE_PREFIX"):
        top["legacy_type_prefix"] = env["EVENT_TYPE_PREFIX"]
    if env.get("LEGACY_NAMESPACE"):
        top["legacy_namespace"] = env["LEGACY_NAMESPACE"]
    if env.get("REQUEST_TIMEOUT"):
        top["publish_timeout"] = parse_duration(env["REQUEST_TIMEOUT"])
    return replace(cfg, stream=replace(stream, **s), consumer=replace(cfg.consumer, **c), **top)


def normalize_deliver_policy(value: str) -> str:
    value = value.strip().lower()
    # Kyma falls back to `new` for anything it does not know.
    return value if value in ("all", "last", "last_per_subject", "new") else "new"


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
    return int(float(num) * _SIZE_UNITS[unit])
