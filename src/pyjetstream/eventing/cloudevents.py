"""CloudEvents 1.0 over HTTP: parse binary and structured requests, validate, encode.

Owns the event model the eventing layer passes around (attributes plus raw data bytes),
the stored form (structured JSON, as Kyma stores it in the stream) and the binary-mode
headers the dispatcher sends. No IO and no Kyma type rules here (see `types`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

SPEC_VERSIONS = ("1.0", "0.3")
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
CONTEXT_ATTRIBUTES = ("specversion", "id", "source", "type", "datacontenttype", "dataschema",
                      "subject", "time")
TRACING_EXTENSIONS = {  # extension -> HTTP header, both directions
    "traceparent": "traceparent",
    "b3traceid": "X-B3-TraceId",
    "b3parentspanid": "X-B3-ParentSpanId",
    "b3spanid": "X-B3-SpanId",
    "b3sampled": "X-B3-Sampled",
    "b3flags": "X-B3-Flags",
}
_EXT_NAME = re.compile(r"^[a-z0-9]+$")
# Printable ASCII stays as is in header values, except the three the HTTP binding reserves.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_HEADER_AS_IS = re.compile('[\x21\x23\x24\x26-\x7e]*')  # _HEADER_SAFE as a character class
# What a CloudEvents String must not hold: controls, surrogates, the 66 noncharacters.
_NOT_STRING = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
                         + "".join(f"{chr(p + 0xFFFE)}{chr(p + 0xFFFF)}" for p in range(0, 0x110000, 0x10000)) + "]")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Attributes the dispatcher sends as raw HTTP header values (not percent-encoded), so their
# format is checked on the way in: a value aiohttp refuses at dispatch would stall delivery.
# W3C Trace Context: version 00 has exactly four fields; later versions may append more.
_TRACEPARENT = re.compile(r"^(?:00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
                          r"|(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(?:-[!-~]*)?)$")
_B3_FORMATS = {  # openzipkin/b3-propagation: lower-hex ids; Sampled also takes the old true/false
    "b3traceid": (re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$"), "16 or 32 lower-hex digits"),
    "b3spanid": (re.compile(r"^[0-9a-f]{16}$"), "16 lower-hex digits"),
    "b3parentspanid": (re.compile(r"^[0-9a-f]{16}$"), "16 lower-hex digits"),
    "b3sampled": (re.compile(r"^(?:0|1|true|false|d)$"), "0, 1, true or false"),
    "b3flags": (re.compile(r"^1$"), "1"),
}
# RFC 9110 media-type: type "/" subtype *( OWS ";" OWS [ parameter ] ), parameter values a
# token or a quoted-string; ASCII only, no control characters (empty parameters tolerated).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?)*[ \t]*$")


class CloudEventError(ValueError):
    """Not a valid CloudEvent; the text is what the client sees (one problem per line)."""


@dataclass
class CloudEvent:
    attributes: dict[str, Any]
    data: bytes | None = None

    # -- accessors -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.attributes.get("id", ""))

    @property
    def source(self) -> str:
        return str(self.attributes.get("source", ""))

    @property
    def type(self) -> str:
        return str(self.attributes.get("type", ""))

    @property
    def datacontenttype(self) -> str | None:
        value = self.attributes.get("datacontenttype")
        return None if value is None else str(value)

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def extensions(self) -> dict[str, Any]:
        return {k: v for k, v in self.attributes.items() if k not in CONTEXT_ATTRIBUTES}

    def copy(self) -> CloudEvent:
        return CloudEvent(dict(self.attributes), self.data)

    # -- stored form (structured JSON) ----------------------------------------------------
    def to_json(self) -> bytes:
        doc: dict[str, Any] = dict(self.attributes)
        if self.data is not None:
            if _is_json_type(self.datacontenttype):
                try:
                    doc["data"] = json.loads(self.data)
                except ValueError:
                    doc["data_base64"] = base64.b64encode(self.data).decode()
            else:
                try:
                    doc["data"] = self.data.decode("utf-8")
                except UnicodeDecodeError:
                    doc["data_base64"] = base64.b64encode(self.data).decode()
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    def data_text(self) -> str:
        """Data for humans: JSON re-rendered compactly, text as text, binary as base64."""
        if self.data is None:
            return ""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(self.data).decode()

    # -- binary mode (what the dispatcher sends) ------------------------------------------
    def to_binary_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.attributes.items():
            if name == "datacontenttype" or value is None:
                continue
            headers[f"ce-{name}"] = encode_header_value(value)
        if self.datacontenttype:
            headers["Content-Type"] = self.datacontenttype
        return headers


def _is_json_type(content_type: str | None) -> bool:
    if content_type is None:
        return True  # the spec's default for structured JSON events
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media == "text/json" or media.endswith("+json")


def encode_header_value(value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    if _HEADER_AS_IS.fullmatch(text):
        return text  # what quote() would return unchanged, at a fraction of its cost
    return quote(text, safe=_HEADER_SAFE)


def decode_header_value(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise CloudEventError(f"invalid percent-encoded header value: {value!r}") from exc


# -- parsing ---------------------------------------------------------------------------------

def parse_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Parse an HTTP request in binary or structured mode; validates the result."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == BATCH_CONTENT_TYPE:
        raise CloudEventError("batched CloudEvents are not supported")
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED_CONTENT_TYPE:
            raise CloudEventError(f"unsupported event format: {media}")
        return parse_structured(body)
    if "ce-specversion" not in lowered:
        raise CloudEventError("unknown Message encoding: neither binary (ce-specversion header) "
                              "nor structured (Content-Type application/cloudevents+json)")
    attrs: dict[str, Any] = {}
    for name, value in lowered.items():
        if name.startswith("ce-") and len(name) > 3:
            attrs[name[3:]] = decode_header_value(value)
    if "datacontenttype" in attrs:
        raise CloudEventError("ce-datacontenttype header must not be used in binary mode; use Content-Type")
    if content_type:
        attrs["datacontenttype"] = content_type
    event = CloudEvent(attrs, body if body else None)
    validate(event)
    return event


def parse_structured(body: bytes | str) -> CloudEvent:
    """Parse one structured JSON CloudEvent (HTTP body or the stored stream message)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise CloudEventError(f"structured CloudEvent is not valid JSON: {exc}") from exc
    except RecursionError:
        raise CloudEventError("structured CloudEvent is nested too deeply") from None
    if not isinstance(doc, dict):
        raise CloudEventError("structured CloudEvent must be a JSON object")
    data: bytes | None = None
    if "data_base64" in doc:
        if "data" in doc:
            raise CloudEventError("data and data_base64 must not both be present")
        raw = doc.pop("data_base64")
        try:
            data = base64.b64decode(raw, validate=True) if raw is not None else None
        except (ValueError, TypeError) as exc:
            raise CloudEventError(f"data_base64: not valid base64: {exc}") from exc
    elif "data" in doc:
        json_data = doc.pop("data")
        content_type = doc.get("datacontenttype")
        try:
            if isinstance(json_data, str) and not _is_json_type(content_type if isinstance(content_type, str)
                                                                  else None):
                data = json_data.encode("utf-8")
            elif json_data is not None:
                data = json.dumps(json_data, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise CloudEventError(f"data: holds text that is not valid Unicode ({exc.reason})") from None
        except RecursionError:
            raise CloudEventError("data: nested too deeply") from None
    event = CloudEvent(doc, data)
    validate(event)
    return event


def validate(event: CloudEvent) -> None:
    """Check the required attributes and the formats of the optional ones."""
    problems: list[str] = []
    attrs = event.attributes
    spec = attrs.get("specversion")
    if spec not in SPEC_VERSIONS:
        problems.append(f"specversion: unknown or missing value {spec!r}, expected 1.0")
    for name in ("id", "type"):
        value = attrs.get(name)
        if not isinstance(value, str) or value == "":
            problems.append(f"{name}: MUST be a non-empty string")
    source = attrs.get("source")
    if not isinstance(source, str) or source == "":
        problems.append("source: REQUIRED but MISSING")
    elif not is_uri_reference(source):
        problems.append("source: must be a valid URI-reference (RFC 3986)")
    for name in ("subject", "datacontenttype", "dataschema"):
        if name in attrs and (not isinstance(attrs[name], str) or attrs[name] == ""):
            problems.append(f"{name}: if present, MUST be a non-empty string")
    if "dataschema" in attrs and isinstance(attrs["dataschema"], str) and not is_uri_reference(attrs["dataschema"]):
        problems.append("dataschema: if present, MUST adhere to the format specified in RFC 3986")
    time_value = attrs.get("time")
    if time_value is not None and (not isinstance(time_value, str) or not is_rfc3339(time_value)):
        problems.append("time: if present, MUST adhere to the format specified in RFC 3339")
    for name in attrs:
        if name not in CONTEXT_ATTRIBUTES and not _EXT_NAME.match(name):
            problems.append(f"bad key {name!r}: CloudEvents attribute names MUST consist of lower-case "
                            "letters ('a' to 'z') or digits ('0' to '9')")
    for name, value in attrs.items():
        # datacontenttype has its own (stricter) media-type check, which allows OWS tabs
        if isinstance(value, str) and name != "datacontenttype":
            bad = string_problem(value)
            if bad is not None:
                problems.append(f"{name}: {bad}")
    problems.extend(header_attribute_problems(attrs))
    if problems:
        raise CloudEventError("\n".join(problems))


def string_problem(value: str) -> str | None:
    """Why `value` is not a CloudEvents String, or None.

    The spec's type system disallows control characters (U+0000-U+001F, U+007F-U+009F),
    surrogates not in pairs and Unicode noncharacters. Beyond the spec's word, these are what
    would break the stored event or a NATS header: a CR/LF ends a header line, a lone
    surrogate (a `\\ud800` JSON escape, a header byte that is not UTF-8) has no UTF-8 form.
    """
    found = _NOT_STRING.search(value)
    if found is None:
        return None
    ch = found.group()
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return f"holds a lone surrogate {ch!r} (not valid Unicode text)"
    if code >= 0xFDD0:
        return f"holds the Unicode noncharacter U+{code:04X}"
    return f"holds the control character {ch!r}, which a CloudEvents String must not contain"


def header_attribute_problems(attrs: Mapping[str, Any]) -> list[str]:
    """Problems with the attributes that become raw HTTP header values at dispatch.

    Everything else is percent-encoded into `ce-*` headers and cannot break a request; these
    (Content-Type and the tracing headers) are sent as they are, so they must be well-formed.
    """
    problems: list[str] = []
    media = attrs.get("datacontenttype")
    if isinstance(media, str) and media and not _MEDIA_TYPE.match(media):
        problems.append(f"datacontenttype: {media!r} is not a valid media type (RFC 9110, e.g. application/json)")
    if "traceparent" in attrs:
        value = attrs["traceparent"]
        if not isinstance(value, str) or not _TRACEPARENT.match(value):
            problems.append(f"traceparent: {value!r} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
    for name, (pattern, expected) in _B3_FORMATS.items():
        if name in attrs:
            value = attrs[name]
            if not isinstance(value, str) or not pattern.match(value):
                problems.append(f"{name}: {value!r} is not a valid B3 value ({expected})")
    return problems


_URI_BAD = re.compile(r"[\s<>\"{}|\\^`]")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def is_uri_reference(value: str) -> bool:
    """A lenient RFC 3986 URI-reference check: no spaces or characters that must be escaped."""
    if not value or _URI_BAD.search(value):
        return False
    return "%" not in value or "%" not in _PERCENT_ESCAPE.sub("", value)


def is_rfc3339(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return False
    return True
