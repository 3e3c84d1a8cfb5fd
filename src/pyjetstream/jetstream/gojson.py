"""Go's encoding/json rules for JetStream request bodies, so a body nats-server refuses is refused.

Owns `loads` (JSON as Go's decoder reads it: no NaN/Infinity, invalid UTF-8 and lone surrogates
become U+FFFD) and the typed field readers the API handlers and config parsers use (`int_field`
with Go's integer kinds, `str_field`, `bool_field`, `str_list`, `duration_list`). Go refuses a
number that does not fit the field's type (a float, an exponent, a value out of range) and a
value of the wrong JSON type; nats-server then answers "invalid JSON" (10025), or 400 "Bad
Request - <decoder text>" for a pull request. Every reader raises GoJSONError (a ValueError)
with the decoder's text; callers turn it into their error. Pure: no IO, no server state.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Go integer kinds -> (min, max); "time.Duration" is an int64 of nanoseconds, "int" is 64-bit.
KINDS: dict[str, tuple[int, int]] = {
    "int": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "time.Duration": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1),
}

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class GoJSONError(ValueError):
    """What Go's json.Unmarshal would have returned."""


def _refuse_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character '{name[0]}' looking for beginning of value")


def _fix_surrogates(v: Any) -> Any:
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, list):
        return [_fix_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}
    return v


def loads(payload: bytes | str) -> Any:
    """Decode as Go does; GoJSONError for anything Go's decoder refuses."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else payload
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except GoJSONError:
        raise
    except (ValueError, RecursionError) as e:
        # RecursionError: deeply nested arrays; Go caps nesting too (10000 levels)
        raise GoJSONError(str(e)) from None
    if _SURROGATE_ESCAPE.search(text):
        # only an escape can make a lone surrogate (a valid pair decodes to one character)
        doc = _fix_surrogates(doc)
    return doc


def _what(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return f"number {v!r}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def type_error(v: Any, struct: str, field: str, kind: str) -> GoJSONError:
    return GoJSONError(f"json: cannot unmarshal {_what(v)} into Go struct field {struct}.{field} of type {kind}")


def to_int(v: Any, struct: str, field: str, kind: str) -> int:
    """A JSON value as a Go integer of `kind`; null is the zero value."""
    if v is None:
        return 0
    if type(v) is not int:  # bool is an int subclass, a float is never an integer for Go
        raise type_error(v, struct, field, kind)
    lo, hi = KINDS[kind]
    if not lo <= v <= hi:
        raise type_error(v, struct, field, kind)
    return v


def int_field(d: dict[str, Any], key: str, kind: str, struct: str = "", default: int = 0) -> int:
    """d[key] as a Go integer of `kind`; `default` when absent or null."""
    v = d.get(key)
    if v is None:
        return default
    return to_int(v, struct, key, kind)


def str_field(d: dict[str, Any], key: str, struct: str = "", default: str = "") -> str:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, str):
        raise type_error(v, struct, key, "string")
    return v


def bool_field(d: dict[str, Any], key: str, struct: str = "") -> bool:
    v = d.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise type_error(v, struct, key, "bool")
    return v


def str_list(d: dict[str, Any], key: str, struct: str = "") -> list[str] | None:
    """A []string field; None when absent or null."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        raise type_error(v, struct, key, "[]string")
    for x in v:
        if not isinstance(x, str):
            raise type_error(x, struct, key, "string")
    return list(v)


def str_map(d: dict[str, Any], key: str, struct: str = "") -> dict[str, str] | None:
    """A map[string]string field; None when absent or null (a null value reads as "")."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise type_error(v, struct, key, "map[string]string")
    out: dict[str, str] = {}
    for k, x in v.items():
        if x is not None and not isinstance(x, str):
            raise type_error(x, struct, key, "string")
        out[k] = x or ""
    return out


def duration_list(d: dict[str, Any], key: str, struct: str = "") -> list[int] | None:
    """A []time.Duration field; None when absent or null."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        raise type_error(v, struct, key, "[]time.Duration")
    return [to_int(x, struct, key, "time.Duration") for x in v]


def object_field(d: dict[str, Any], key: str, struct: str = "") -> dict[str, Any] | None:
    """A struct (or pointer to one) field; None when absent or null."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise type_error(v, struct, key, key)
    return v


def atoi(text: bytes) -> int | None:
    """Go's strconv.Atoi: optional sign, ASCII digits, int64 range; None when it fails."""
    s = text[1:] if text[:1] in (b"+", b"-") else text
    if not s or not s.isdigit():  # bytes.isdigit is ASCII-only
        return None
    n = int(text)
    lo, hi = KINDS["int"]
    return n if lo <= n <= hi else None


def is_empty_request(payload: bytes) -> bool:
    """nats-server's isEmptyRequest: no bytes at all, or a JSON object without keys."""
    if not payload:
        return True
    try:
        doc = loads(payload)
    except GoJSONError:
        return False
    return isinstance(doc, dict) and not doc
