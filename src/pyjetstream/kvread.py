"""Whole reads of a KV bucket: every current key, a key's history, every current entry.

nats-py's `KeyValue.keys()`, `history()` and the "initial values done" marker (None) of
`watch()` can come early: the watcher decides from a consumer-info snapshot and a local
delivery counter that does not count deliveries still in flight (nats-io/nats.py#842). We saw
it in CI against nats-server 2.9.10: `history()` of a key with two values raised "no keys
found". A short read is a nuisance in a listing and a loss in the eventing manager, whose
start-up cleanup deletes the consumers of Subscriptions it did not see. So reads that must be
whole come from here: the stream's per-subject counts (STREAM.INFO with `subjects_filter`,
every page) name the keys, and one direct read per key (STREAM.MSG.GET `last_by_subj`, or
`next_by_subj` for a history) gets its entries. It costs a request per key and never waits
for a marker.

Owns no state and must not subscribe: live changes still come from a watcher; this module only
answers "what is there now".
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from pyjetstream import gotime
from pyjetstream.protocol.headers import get_header

KV_OPERATION = "KV-Operation"
# nats-server 2.11+ writes its own markers (TTL expiry, purge) with this header instead
MARKER_REASON = "Nats-Marker-Reason"
_MARKER_OPERATIONS = {"MaxAge": "PURGE", "Purge": "PURGE", "Remove": "DEL"}
NO_MESSAGE_FOUND = 10037  # JSNoMessageFoundErr
# the clients' rule for bucket names: the name becomes one token of the API subjects
VALID_BUCKET = re.compile(r"[a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class Entry:
    """One stored entry: nats-py's KeyValue.Entry fields that a whole read can know."""

    bucket: str
    key: str
    value: bytes
    revision: int
    created: int  # ns since the epoch
    operation: str  # "PUT", "DEL" or "PURGE"

    @property
    def deleted(self) -> bool:
        return self.operation in ("DEL", "PURGE")


class KVReader:
    """Reads one bucket over plain requests (`nc` is a connected nats-py client)."""

    def __init__(self, nc: Any, bucket: str, timeout: float = 5.0, api_prefix: str = "$JS.API") -> None:
        if not VALID_BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.nc = nc
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."
        self.timeout = timeout
        self.api = api_prefix.rstrip(".")

    async def _request(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        import nats.js.errors

        msg = await self.nc.request(f"{self.api}.{subject}", json.dumps(body).encode(), timeout=self.timeout)
        answer = json.loads(msg.data)
        error = answer.get("error")
        if error:
            nats.js.errors.APIError.from_error(error)  # raises the matching nats-py error
        return dict(answer)

    async def subjects(self, pattern: str = ">") -> list[str]:
        """Every key subject holding at least one message (values and markers), sorted."""
        found: list[str] = []
        while True:
            answer = await self._request(f"STREAM.INFO.{self.stream}",
                                         {"subjects_filter": self.prefix + pattern, "offset": len(found)})
            page = list((answer.get("state") or {}).get("subjects") or {})
            found.extend(page)
            if not page or len(found) >= int(answer.get("total") or 0):
                return sorted(found)

    async def _get(self, body: dict[str, Any]) -> Entry | None:
        import nats.js.errors

        try:
            answer = await self._request(f"STREAM.MSG.GET.{self.stream}", body)
        except nats.js.errors.APIError as exc:
            if exc.err_code == NO_MESSAGE_FOUND:
                return None
            raise
        raw = answer["message"]
        hdrs = base64.b64decode(raw["hdrs"]) if raw.get("hdrs") else None
        return Entry(bucket=self.bucket, key=raw["subject"][len(self.prefix):],
                     value=base64.b64decode(raw.get("data") or ""), revision=int(raw["seq"]),
                     created=gotime.parse_rfc3339(raw["time"]),
                     operation=_operation(hdrs))

    async def latest(self, pattern: str = ">") -> list[Entry]:
        """The newest entry of every key matching `pattern`, markers included, by key."""
        out: list[Entry] = []
        for subject in await self.subjects(pattern):
            entry = await self._get({"last_by_subj": subject})
            if entry is not None:  # purged between the listing and the read
                out.append(entry)
        return out

    async def keys(self, pattern: str = ">") -> list[str]:
        """The keys whose newest entry is a value (as nats-py's keys(): no delete markers)."""
        return [e.key for e in await self.latest(pattern) if not e.deleted]

    async def history(self, key: str) -> list[Entry]:
        """Every stored entry of `key`, oldest first; empty when the key has none."""
        out: list[Entry] = []
        seq = 1
        while (entry := await self._get({"seq": seq, "next_by_subj": self.prefix + key})) is not None:
            out.append(entry)
            seq = entry.revision + 1
        return out


def _operation(hdrs: bytes | None) -> str:
    op = get_header(hdrs, KV_OPERATION)
    if op:
        return op
    reason = get_header(hdrs, MARKER_REASON)
    return _MARKER_OPERATIONS.get(reason, "PURGE") if reason else "PUT"
