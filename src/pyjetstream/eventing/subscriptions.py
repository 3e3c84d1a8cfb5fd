"""Kyma `eventing.kyma-project.io/v1alpha2` Subscriptions: manifests, validation, status, storage.

Owns the Subscription model, parsing of YAML/JSON manifests (several per file), Kyma's
validation rules and messages, the status shape Kyma shows, and the KV bucket that holds
specs and statuses so every process sees one state. It never touches consumers (that is
`manager`) and never talks HTTP.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from ..kvread import KVReader
from . import cloudevents as ce
from . import types as t
from .retry import BACKOFF_POLICIES, CONFIG_KEYS, PROFILE_KYMA, PROFILES, RetryPolicy, parse_duration

API_VERSION = "eventing.kyma-project.io/v1alpha2"
KIND = "Subscription"
DEFAULT_CONFIG = {"maxInFlightMessages": "10"}
COND_SPEC_VALID = "Subscription spec valid"
COND_ACTIVE = "Subscription active"
REASON_SPEC_VALID = "Subscription spec has no validation errors"
REASON_SPEC_INVALID = "Subscription spec has validation errors"
REASON_ACTIVE = "NATS Subscription active"
REASON_NOT_ACTIVE = "NATS Subscription not active"
# Kyma's EventMesh backend reports its sink's failures with this condition and
# `backend.emsSubscriptionStatus.lastFailedDelivery*`; the dispatcher does the same for NATS
# under `backend.deliveryStatus`. It does not change `ready`: the Subscription is served.
COND_WEBHOOK = "Webhook call status"
REASON_WEBHOOK_OK = "Webhook call no errors"
REASON_WEBHOOK_FAILED = "Webhook call failed"
DELIVERY_STATUS = "deliveryStatus"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QOS = ("AT_LEAST_ONCE", "AT_MOST_ONCE")


class ManifestError(ValueError):
    """A manifest that cannot be read as a Subscription at all (before validation)."""


@dataclass
class Subscription:
    name: str
    namespace: str = "default"
    source: str = ""
    types: list[str] = field(default_factory=list)
    type_matching: str = t.STANDARD
    sink: str = ""
    config: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CONFIG))
    id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    generation: int = 0
    creation_timestamp: str | None = None
    status: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def unique_types(self) -> list[str]:
        seen: dict[str, None] = {}
        for ty in self.types:
            seen.setdefault(ty, None)
        return list(seen)

    def max_in_flight(self, default: int = 10) -> int:
        try:
            return int(self.config.get("maxInFlightMessages", default))
        except (TypeError, ValueError):
            return default

    def retry_policy(self, defaults: RetryPolicy | None = None) -> RetryPolicy:
        return RetryPolicy.from_config(self.config, defaults)

    def subjects(self, prefix: str = t.SUBJECT_PREFIX) -> dict[str, str]:
        """original type -> consumer filter subject, one per unique type."""
        return {ty: t.subscription_subject(self.source, ty, self.type_matching, prefix)
                for ty in self.unique_types()}

    def consumers(self, prefix: str = t.SUBJECT_PREFIX) -> dict[str, tuple[str, str]]:
        """consumer name -> (original type, filter subject)."""
        return {t.consumer_name(self.namespace, self.name, subject): (ty, subject)
                for ty, subject in self.subjects(prefix).items()}

    def spec_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"sink": self.sink, "source": self.source, "types": list(self.types),
                                "typeMatching": self.type_matching, "config": dict(self.config)}
        if self.id is not None:
            spec["id"] = self.id
        return spec

    def to_manifest(self, with_status: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        if self.generation:
            meta["generation"] = self.generation
        if self.creation_timestamp:
            meta["creationTimestamp"] = self.creation_timestamp
        doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta,
                               "spec": self.spec_dict()}
        if with_status and self.status is not None:
            doc["status"] = self.status
        return doc

    def same_spec(self, other: Subscription) -> bool:
        return (self.spec_dict() == other.spec_dict() and self.labels == other.labels
                and self.annotations == other.annotations)

    @classmethod
    def from_manifest(cls, doc: Any, default_namespace: str = "default") -> Subscription:
        if not isinstance(doc, dict):
            raise ManifestError("a manifest must be a mapping with apiVersion, kind, metadata and spec")
        kind = doc.get("kind")
        if kind != KIND:
            raise ManifestError(f"kind must be {KIND!r}, got {kind!r}")
        api = doc.get("apiVersion")
        if api != API_VERSION:
            raise ManifestError(f"apiVersion must be {API_VERSION!r}, got {api!r}")
        meta = doc.get("metadata") or {}
        spec = doc.get("spec")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ManifestError("metadata.name is required")
        if not isinstance(spec, dict):
            raise ManifestError(f"{meta.get('name')}: spec is required")
        types = spec.get("types") or []
        if not isinstance(types, list):
            raise ManifestError(f"{meta['name']}: spec.types must be a list of strings")
        config = spec.get("config")
        if config is None:
            config = dict(DEFAULT_CONFIG)
        if not isinstance(config, dict):
            raise ManifestError(f"{meta['name']}: spec.config must be a map of strings")
        return cls(
            name=str(meta["name"]),
            namespace=str(meta.get("namespace") or default_namespace),
            source="" if spec.get("source") is None else str(spec.get("source")),
            types=["" if x is None else str(x) for x in types],
            type_matching=str(spec.get("typeMatching") or t.STANDARD),
            sink="" if spec.get("sink") is None else str(spec.get("sink")),
            # Kyma's config is map[string]string; YAML happily gives ints, so stringify.
            config={str(k): _stringify(v) for k, v in config.items()},
            id=None if spec.get("id") is None else str(spec.get("id")),
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            generation=int(meta.get("generation") or 0),
            creation_timestamp=meta.get("creationTimestamp"),
            status=doc.get("status"),
        )


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_manifests(text: str, default_namespace: str = "default") -> list[Subscription]:
    """All Subscriptions in a YAML stream or JSON document (object, array or `kind: List`)."""
    docs: list[Any] = []
    stripped = text.lstrip()
    try:
        if stripped.startswith("{") or stripped.startswith("["):
            loaded = json.loads(text)
            docs = loaded if isinstance(loaded, list) else [loaded]
        else:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (ValueError, yaml.YAMLError) as exc:
        raise ManifestError(f"cannot parse manifest: {exc}") from exc
    out: list[Subscription] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            items = doc.get("items") or []
            out.extend(Subscription.from_manifest(i, default_namespace) for i in items)
        else:
            out.append(Subscription.from_manifest(doc, default_namespace))
    if not out:
        raise ManifestError("no Subscription found in the manifest")
    return out


# -- validation (Kyma's rules and messages) -------------------------------------------------

def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {json.dumps(value)}: {detail}"


def validate(sub: Subscription, strict_sinks: bool = False, legacy_prefix: str = t.LEGACY_TYPE_PREFIX) -> list[str]:
    """Field errors in Kyma's `field.Invalid` form; empty when the spec is valid."""
    errs: list[str] = []
    if not _DNS_SUBDOMAIN.match(sub.name) or len(sub.name) > 253:
        errs.append(_invalid("metadata.name", sub.name, "must be a lowercase RFC 1123 subdomain"))
    if not _DNS_LABEL.match(sub.namespace) or len(sub.namespace) > 63:
        errs.append(_invalid("metadata.namespace", sub.namespace, "must be a lowercase RFC 1123 label"))
    if sub.type_matching not in t.TYPE_MATCHINGS:
        errs.append(_invalid("spec.typeMatching", sub.type_matching,
                             "must be a valid TypeMatching value exact or standard"))
    if sub.type_matching != t.EXACT and sub.source == "":
        errs.append(_invalid("spec.source", sub.source, "must not be empty"))
    elif sub.source and not ce.is_uri_reference(sub.source):
        errs.append(_invalid("spec.source", sub.source, "must be valid as per RFC 3986"))
    errs.extend(_validate_types(sub, legacy_prefix))
    errs.extend(_validate_config(sub.config))
    errs.extend(_validate_sink(sub, strict_sinks))
    return errs


def _validate_types(sub: Subscription, legacy_prefix: str) -> list[str]:
    errs: list[str] = []
    if not sub.types:
        return [_invalid("spec.types", sub.types, "must not be empty")]
    dups = sorted({ty for ty in sub.types if sub.types.count(ty) > 1})
    if dups:
        errs.append(_invalid("spec.types", ",".join(dups), "must not have duplicate types"))
    for ty in sub.unique_types():
        if ty == "":
            errs.append(_invalid("spec.types", ty, "must not be of length zero"))
            continue
        if len(ty.split(".")) < 2:
            errs.append(_invalid("spec.types", ty, "must have minimum 2 segments"))
        if sub.type_matching != t.EXACT and ty.startswith(legacy_prefix):
            errs.append(_invalid("spec.types", ty, f"must not have {legacy_prefix} as type prefix"))
        if any(c.isspace() for c in ty) and sub.type_matching == t.EXACT:
            errs.append(_invalid("spec.types", ty, "must be valid as per RFC 3986"))
        # Beyond Kyma: a type that yields an unusable NATS filter is rejected here rather
        # than failing later when the consumer is created.
        subject = t.subscription_subject(sub.source, ty, sub.type_matching)
        source_reported = sub.type_matching != t.EXACT and sub.source == ""
        if not source_reported and any(seg == "" for seg in subject.split(".")):
            errs.append(_invalid("spec.types", ty, f"must not produce empty subject segments: {subject}"))
        elif sub.type_matching == t.EXACT and ("*" in ty or ">" in ty):
            errs.append(_invalid("spec.types", ty, "must not contain NATS wildcards (* or >) with exact matching"))
    return errs


def _validate_config(config: dict[str, str]) -> list[str]:
    errs: list[str] = []
    if "maxInFlightMessages" in config:
        try:
            int(config["maxInFlightMessages"])
        except ValueError:
            errs.append(_invalid("spec.config", config["maxInFlightMessages"],
                                 "maxInFlightMessages must be a stringified int value"))
    if "qos" in config and config["qos"] not in _QOS:
        errs.append(_invalid("spec.config", config["qos"], "must be a valid QoS value AT_LEAST_ONCE or AT_MOST_ONCE"))
    if "type" in config and config["type"] not in ("oauth2",):
        errs.append(_invalid("spec.config", config["type"], "must be a valid Auth Type value oauth2"))
    if "grantType" in config and config["grantType"] != "client_credentials":
        errs.append(_invalid("spec.config", config["grantType"],
                             "must be a valid GrantType value client_credentials"))
    if "backoffPolicy" in config and config["backoffPolicy"] not in BACKOFF_POLICIES:
        errs.append(_invalid("spec.config", config["backoffPolicy"],
                             "backoffPolicy must be one of " + ", ".join(BACKOFF_POLICIES)))
    for key in ("backoffDelay", "backoffMax", "deliveryTimeout", "retryAfterMax"):
        if key in config:
            try:
                parse_duration(config[key])
            except ValueError:
                errs.append(_invalid("spec.config", config[key], f"{key} must be a duration such as PT5S or 5s"))
    if "maxDeliveryAttempts" in config:
        try:
            if int(config["maxDeliveryAttempts"]) < 1:
                raise ValueError
        except ValueError:
            errs.append(_invalid("spec.config", config["maxDeliveryAttempts"],
                                 "maxDeliveryAttempts must be a stringified int value of at least 1"))
    if "noRetryStatusCodes" in config:
        try:
            [int(c) for c in config["noRetryStatusCodes"].split(",") if c.strip()]
        except ValueError:
            errs.append(_invalid("spec.config", config["noRetryStatusCodes"],
                                 "noRetryStatusCodes must be a comma separated list of HTTP status codes"))
    profile = config.get("deliveryProfile")
    if profile is not None and profile not in PROFILES:
        errs.append(_invalid("spec.config", profile, "deliveryProfile must be one of " + ", ".join(PROFILES)))
    elif profile == PROFILE_KYMA:
        # The kyma profile is Kyma's fixed behaviour; a retry key next to it contradicts it.
        for key in (k for k in CONFIG_KEYS if k in config):
            errs.append(_invalid("spec.config", key, f"{key} cannot be combined with deliveryProfile kyma"))
    return errs


def _validate_sink(sub: Subscription, strict: bool) -> list[str]:
    from urllib.parse import urlsplit

    sink = sub.sink
    if sink == "":
        return [_invalid("spec.sink", sink, "must not be empty")]
    if not (sink.startswith("http://") or sink.startswith("https://")):
        return [_invalid("spec.sink", sink, "must have URL scheme 'http' or 'https'")]
    try:
        parts = urlsplit(sink)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        return [_invalid("spec.sink", sink, f"failed to parse subscription sink URL: {exc}")]
    if not host or any(c.isspace() for c in sink):
        return [_invalid("spec.sink", sink, "failed to parse subscription sink URL")]
    if not strict:
        return []
    if not host.endswith("svc.cluster.local"):
        return [_invalid("spec.sink", sink, "must have valid sink URL suffix svc.cluster.local")]
    segments = host.split(".")
    if len(segments) != 5:
        return [_invalid("spec.sink", sink, f"must have sink URL with 5 sub-domains: {host}")]
    if segments[1] != sub.namespace:
        return [_invalid("metadata.namespace", sub.namespace,
                         f"must have the same namespace as the subscriber: {segments[1]}")]
    return []


def validation_message(errors: list[str]) -> str:
    body = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f"Subscription validation failed: {body}"


# -- status --------------------------------------------------------------------------------

def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(ctype: str, ok: bool, reason: str, message: str, now: str,
               previous: dict[str, Any] | None) -> dict[str, Any]:
    status = "True" if ok else "False"
    stamp = now
    if previous and previous.get("type") == ctype and previous.get("status") == status:
        stamp = previous.get("lastTransitionTime", now)
    return {"type": ctype, "status": status, "lastTransitionTime": stamp, "reason": reason, "message": message}


def _previous(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in (status or {}).get("conditions", []) or []:
        if cond.get("type") == ctype:
            return cond
    return None


def status_invalid(sub: Subscription, errors: list[str], now: str) -> dict[str, Any]:
    """Kyma resets the status and keeps only the failed spec condition."""
    msg = validation_message(errors)
    return {"ready": False, "types": [], "backend": {},
            "conditions": [_condition(COND_SPEC_VALID, False, REASON_SPEC_INVALID, msg, now,
                                      _previous(sub.status, COND_SPEC_VALID))],
            "observedGeneration": sub.generation}


def status_synced(sub: Subscription, now: str, error: str | None = None,
                  prefix: str = t.SUBJECT_PREFIX, dead_letter: dict[str, Any] | None = None) -> dict[str, Any]:
    """Status after a sync of the consumers: ready exactly when the sync had no error."""
    types = [{"originalType": ty, "cleanType": t.subscription_clean_type(ty, sub.type_matching)}
             for ty in sub.unique_types()]
    backend = {"types": [{"originalType": ty, "consumerName": t.consumer_name(sub.namespace, sub.name, subj)}
                         for ty, subj in sub.subjects(prefix).items()]}
    conditions = [
        _condition(COND_SPEC_VALID, True, REASON_SPEC_VALID, "", now, _previous(sub.status, COND_SPEC_VALID)),
        _condition(COND_ACTIVE, error is None, REASON_ACTIVE if error is None else REASON_NOT_ACTIVE,
                   error or "", now, _previous(sub.status, COND_ACTIVE)),
    ]
    status: dict[str, Any] = {"ready": error is None, "types": types, "backend": backend,
                              "conditions": conditions, "observedGeneration": sub.generation}
    if dead_letter is not None:
        status["deadLetter"] = dead_letter
    return status


def status_pending(sub: Subscription, now: str, strict_sinks: bool = False) -> dict[str, Any]:
    """Written by `apply` before any manager has looked at the Subscription."""
    errors = validate(sub, strict_sinks)
    if errors:
        return status_invalid(sub, errors, now)
    st = status_synced(sub, now, error="waiting for the eventing manager to create the consumers")
    st["conditions"][1]["status"] = "Unknown"
    return st


def with_delivery(status: dict[str, Any], fields: dict[str, Any], now: str) -> dict[str, Any]:
    """`status` with the dispatcher's last delivery failure (`delivery_status.DeliveryState.fields`)
    in `backend.deliveryStatus` and the webhook condition: False with the reason while failing,
    True once a delivery succeeded after it."""
    out = dict(status)
    backend = dict(out.get("backend") or {})
    backend[DELIVERY_STATUS] = dict(fields)
    out["backend"] = backend
    recovered = "lastSuccessfulDelivery" in fields
    cond = _condition(COND_WEBHOOK, recovered, REASON_WEBHOOK_OK if recovered else REASON_WEBHOOK_FAILED,
                      "" if recovered else str(fields.get("lastFailedDeliveryReason", "")), now,
                      _previous(status, COND_WEBHOOK))
    conditions = [c for c in out.get("conditions", []) or [] if c.get("type") != COND_WEBHOOK]
    out["conditions"] = [*conditions, cond]
    return out


def carry_delivery(status: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """A status the manager computed, with the delivery fields and condition of the stored one kept."""
    fields = ((stored or {}).get("backend") or {}).get(DELIVERY_STATUS)
    previous = _previous(stored, COND_WEBHOOK)
    if not isinstance(fields, dict) or previous is None:
        return status
    out = dict(status)
    out["backend"] = {**(out.get("backend") or {}), DELIVERY_STATUS: fields}
    out["conditions"] = [*(c for c in out.get("conditions", []) or [] if c.get("type") != COND_WEBHOOK), previous]
    return out


def without_timestamps(status: dict[str, Any] | None) -> Any:
    if not status:
        return status
    copy = json.loads(json.dumps(status))
    for cond in copy.get("conditions", []) or []:
        cond.pop("lastTransitionTime", None)
    return copy


# -- storage in a KV bucket ----------------------------------------------------------------

SPEC_PREFIX = "spec"
STATUS_PREFIX = "status"


def spec_key(namespace: str, name: str) -> str:
    return f"{SPEC_PREFIX}.{namespace}.{name}"


def status_key(namespace: str, name: str) -> str:
    return f"{STATUS_PREFIX}.{namespace}.{name}"


def split_key(key: str) -> tuple[str, str, str]:
    kind, namespace, name = key.split(".", 2)
    return kind, namespace, name


@dataclass
class WatchEvent:
    namespace: str
    name: str
    subscription: Subscription | None  # None: deleted


class SubscriptionStore:
    """Specs under `spec.<ns>.<name>`, statuses under `status.<ns>.<name>`, one KV bucket.

    Specs are written by users (CLI), statuses by managers; keeping them apart means an
    `apply` never races with a status update.
    """

    def __init__(self, kv: Any, reader: KVReader) -> None:
        self.kv = kv  # nats-py's KeyValue: writes, single reads and the live watch
        self.reader = reader  # whole reads: listings must never come back short

    @classmethod
    async def open(cls, nc: Any, bucket: str = "eventing-subscriptions", create: bool = True,
                   replicas: int = 1, timeout: float = 5.0) -> SubscriptionStore:
        import nats.js.errors

        js = nc.jetstream(timeout=timeout)
        try:
            kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                raise
            kv = await js.create_key_value(bucket=bucket, history=1, replicas=replicas)
        return cls(kv, KVReader(nc, bucket, timeout))

    async def _get_entry(self, key: str) -> tuple[int, bytes] | None:
        """(revision, value) of the key while it holds a value; None when missing, deleted or
        purged."""
        import nats.js.errors

        try:
            entry = await self.kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.operation in ("DEL", "PURGE"):
            return None
        return entry.revision or 0, entry.value

    async def _get_doc(self, key: str) -> dict[str, Any] | None:
        found = await self._get_entry(key)
        return None if found is None else json.loads(found[1])

    async def get(self, namespace: str, name: str) -> Subscription | None:
        doc = await self._get_doc(spec_key(namespace, name))
        if doc is None:
            return None
        sub = Subscription.from_manifest(doc)
        sub.status = await self._get_doc(status_key(namespace, name))
        return sub

    async def apply(self, sub: Subscription, strict_sinks: bool = False) -> str:
        """Create or update; returns `created`, `configured` or `unchanged` as kubectl does."""
        current = await self.get(sub.namespace, sub.name)
        if current is not None and current.same_spec(sub):
            return "unchanged"
        sub.generation = (current.generation if current else 0) + 1
        sub.creation_timestamp = current.creation_timestamp if current else now_rfc3339()
        sub.status = None
        if current is None or current.status is None or not current.status.get("conditions"):
            # Written before the spec: a manager reacting to the spec at once must not have
            # its status overwritten by this placeholder afterwards.
            pending = status_pending(sub, now_rfc3339(), strict_sinks)
            await self.put_status(sub.namespace, sub.name, pending)
        await self.kv.put(spec_key(sub.namespace, sub.name), json.dumps(sub.to_manifest(False)).encode())
        return "created" if current is None else "configured"

    async def get_status(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_doc(status_key(namespace, name))

    async def put_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.kv.put(status_key(namespace, name), json.dumps(status).encode())

    async def update_status(self, namespace: str, name: str,
                            change: Callable[[dict[str, Any]], dict[str, Any]], attempts: int = 3) -> bool:
        """Read-modify-write of an existing status, only if nobody wrote it in between (the
        KV revision); tried `attempts` times. False when there is no status (a deleted
        Subscription, or one no manager has seen) or every attempt lost the race."""
        import nats.js.errors

        key = status_key(namespace, name)
        for _ in range(attempts):
            found = await self._get_entry(key)
            if found is None:
                return False
            revision, value = found
            new = change(json.loads(value))
            try:
                await self.kv.update(key, json.dumps(new).encode(), last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            return True
        return False

    async def delete_status(self, namespace: str, name: str) -> None:
        await self.kv.delete(status_key(namespace, name))

    async def delete(self, namespace: str, name: str) -> bool:
        if await self._get_doc(spec_key(namespace, name)) is None:
            return False
        await self.kv.delete(spec_key(namespace, name))
        return True

    async def list(self, namespace: str | None = None, with_status: bool = True) -> list[Subscription]:
        out: list[Subscription] = []
        for current in await self.reader.latest(f"{SPEC_PREFIX}.>"):
            event = None if current.deleted else _watch_event(current.key, current.value)
            if event is None or event.subscription is None or namespace not in (None, event.namespace):
                continue
            if with_status:
                event.subscription.status = await self.get_status(event.namespace, event.name)
            out.append(event.subscription)
        return out

    async def watch(self) -> AsyncIterator[WatchEvent | None]:
        """Every current spec, then None (initial state complete), then live changes.

        The current specs come from a whole read, not from the watcher's own "initial values
        done" marker, which nats-py can put before values still in flight (see kvread): a
        manager shown a short initial state would delete the consumers, and the backlogs, of
        the Subscriptions it missed. The watcher starts first, so nothing written after the
        read is missed; its replay of what the read gave is skipped by revision.
        """
        watcher = await self.kv.watch(f"{SPEC_PREFIX}.>")
        try:
            seen: dict[str, int] = {}
            for current in await self.reader.latest(f"{SPEC_PREFIX}.>"):
                seen[current.key] = current.revision
                if not current.deleted:
                    event = _watch_event(current.key, current.value)
                    if event is not None:
                        yield event
            yield None
            async for entry in watcher:
                if entry is None or (entry.revision or 0) <= seen.get(entry.key, 0):
                    continue
                deleted = entry.operation in ("DEL", "PURGE") or not entry.value
                event = _watch_event(entry.key, None if deleted else entry.value)
                if event is not None:
                    yield event
        finally:
            await watcher.stop()


def _watch_event(key: str, value: bytes | None) -> WatchEvent | None:
    """The change a spec entry makes (None: the key or value is not a Subscription's)."""
    try:
        _, ns, name = split_key(key)
    except ValueError:
        return None  # `spec.x` written by hand names no namespace
    if value is None:
        return WatchEvent(ns, name, None)
    try:
        return WatchEvent(ns, name, Subscription.from_manifest(json.loads(value)))
    except (ManifestError, ValueError):
        return None  # a hand-written bad value must not stop the manager


class StoreListing:
    """The stored Subscriptions, read from the bucket at most once per `ttl` seconds.

    For a process that runs the publisher proxy without the manager (whose in-memory view
    `/subscribed` uses otherwise): concurrent callers share one read, and a flood of
    requests costs one bucket listing per `ttl`, never one per request.
    """

    def __init__(self, store: SubscriptionStore, ttl: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cached: list[Subscription] = []
        self._read_at = float("-inf")
        self._reading: asyncio.Task[list[Subscription]] | None = None

    async def __call__(self) -> list[Subscription]:
        if asyncio.get_running_loop().time() - self._read_at < self.ttl:
            return self._cached
        if self._reading is None:
            # A task of its own: a caller that goes away (its client hung up) must not cancel
            # the read the other callers wait for.
            self._reading = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._reading)

    async def _read(self) -> list[Subscription]:
        try:
            self._cached = await self.store.list(with_status=False)
            self._read_at = asyncio.get_running_loop().time()
            return self._cached
        finally:
            self._reading = None
