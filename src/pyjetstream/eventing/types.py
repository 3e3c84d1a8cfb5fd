"""Kyma's event-type rules: cleaning, standard/exact matching, NATS subjects, consumer names.

Pure functions over strings; no IO. The publisher, the subscription validator and the
manager all derive subjects and consumer names from here so they can never disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

SUBJECT_PREFIX = "kyma"
LEGACY_TYPE_PREFIX = "sap.kyma.custom"
STANDARD = "standard"
EXACT = "exact"
TYPE_MATCHINGS = (STANDARD, EXACT)

# Sources lose dots as well as wildcards, because a source is a single subject token.
_SOURCE_UNSAFE = re.compile(r"[\s.>*/\\]")
_TYPE_UNSAFE = re.compile(r"[\s>*/\\]")
_LEGACY_APP_UNSAFE = re.compile(r"\W|_")
_LEGACY_TYPE_UNSAFE = re.compile(r"[^a-zA-Z0-9.]")


class EventTypeError(ValueError):
    """The type cannot be turned into a subject; the publisher answers 400 with this text."""


def clean_source(source: str) -> str:
    return _SOURCE_UNSAFE.sub("", source)


def clean_application_name(name: str) -> str:
    """The app segment of a legacy (`sap.kyma.custom.<app>...`) type: alphanumerics only."""
    return _LEGACY_APP_UNSAFE.sub("", name)


def clean_type(event_type: str) -> str:
    return _TYPE_UNSAFE.sub("", event_type)


def subscription_subject(source: str, event_type: str, type_matching: str = STANDARD,
                         prefix: str = SUBJECT_PREFIX) -> str:
    """Filter subject of the consumer for one subscription type."""
    if type_matching == EXACT:
        return f"{prefix}.{event_type}"
    return f"{prefix}.{clean_source(source)}.{clean_type(event_type)}"


def subscription_clean_type(event_type: str, type_matching: str = STANDARD) -> str:
    return event_type if type_matching == EXACT else clean_type(event_type)


def consumer_description(namespace: str, name: str, subject: str) -> str:
    return f"{namespace}/{name}/{subject}"


def consumer_name(namespace: str, name: str, subject: str) -> str:
    """Kyma's durable name: the first 32 hex digits of sha256 over `<ns>/<name>/<subject>`."""
    return hashlib.sha256(consumer_description(namespace, name, subject).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PublishTarget:
    """Where a published event goes: the type it is stored with and its subject."""

    event_type: str
    subject: str
    original_type: str | None  # set as the `originaltype` extension on the standard path


def _legacy_clean(event_type: str, legacy_prefix: str, app_types: Mapping[str, str]) -> str:
    rest = event_type[len(legacy_prefix):].lstrip(".")
    parts = rest.split(".")
    if len(parts) < 4 or not all(parts):
        raise EventTypeError(f"failed to parse event-type={event_type} with prefix={legacy_prefix}: invalid format")
    # Kyma looks the raw app segment up as an Application and uses its type label, cleaned.
    app = clean_application_name(app_types.get(parts[0], parts[0]))
    business_object = "".join(parts[1:-2])
    op, version = parts[-2], parts[-1]
    joined = ".".join([app, business_object, op, version])
    return f"{legacy_prefix}.{_LEGACY_TYPE_UNSAFE.sub('', joined)}"


def publish_target(source: str, event_type: str, legacy_prefix: str = LEGACY_TYPE_PREFIX,
                   prefix: str = SUBJECT_PREFIX, app_types: Mapping[str, str] | None = None) -> PublishTarget:
    """Kyma's publisher rules: legacy-prefixed types keep the v1alpha1 path, others get cleaned.

    `app_types` maps application names to application types (Kyma's `application-type`
    label): on the standard path a source naming an application is replaced by its type
    before cleaning; on the legacy path the app segment is. The event's `source` attribute
    itself is never changed. Raises EventTypeError with the text of the publisher's 400 body.
    """
    app_types = app_types or {}
    if legacy_prefix and event_type.startswith(legacy_prefix):
        cleaned = _legacy_clean(event_type, legacy_prefix, app_types)
        return PublishTarget(cleaned, f"{prefix}.{cleaned}", None)
    final = f"{prefix}.{clean_source(app_types.get(source, source))}.{clean_type(event_type)}"
    if any(seg == "" for seg in final.split(".")):
        raise EventTypeError(f"event type cannot have empty segments after cleaning: {final}")
    return PublishTarget(final, final, event_type)


def restore_original_type(event_type: str, source: str, original_type: str | None,
                          prefix: str = SUBJECT_PREFIX) -> str:
    """The type a sink sees: `originaltype` when present, else the subject prefix trimmed."""
    if original_type:
        return original_type
    head = f"{prefix}.{source}."
    return event_type[len(head):] if event_type.startswith(head) else event_type


def split_name_version(event_type: str) -> tuple[str, str] | None:
    """`order.created.v1` -> (`order.created`, `v1`), as the /subscribed endpoint lists them."""
    name, dot, version = event_type.rpartition(".")
    if not dot or not name:
        return None
    return name, version
