"""What the console reads from and changes in JetStream, through nats-py only.

Thin on purpose: JetStream API calls go through the CLI's `api_request`/`paged` and
`stream.get_message`, Subscriptions through `eventing.subscriptions.SubscriptionStore`, dead
letters through `eventing.deadletter` (listing and replay). What is added here is what a
browser needs on top: stored messages decoded for display (never trusted as markup), the
dead-letter stream's per-subscription view, and secrets masked in manifests.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pyjetstream.cli import common as c
from pyjetstream.cli.stream import decode_headers, get_message
from pyjetstream.eventing import deadletter as dl
from pyjetstream.eventing import dispatcher as d
from pyjetstream.eventing.config import EventingConfig

PAYLOAD_SHOWN = 8192           # bytes of a payload shown in a page
BROWSE_MAX = 100               # messages per page of the browser
SUBJECTS_SHOWN = 200           # subjects listed on a stream page
SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|apikey|api_key|private", re.IGNORECASE)
MASK = "********"


@dataclass
class Message:
    """One stored message, decoded for display; the payload is text, never markup."""

    seq: int
    subject: str
    time_ns: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: str = ""
    data: bytes = b""

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def text(self) -> str:
        """The payload as it is shown: pretty JSON, UTF-8 text, or escaped bytes."""
        shown = self.data[:PAYLOAD_SHOWN]
        try:
            text = shown.decode("utf-8")
        except UnicodeDecodeError:
            return shown.decode("latin-1").encode("unicode_escape").decode("ascii")
        if len(self.data) <= PAYLOAD_SHOWN:
            try:
                doc = json.loads(text)
            except ValueError:
                return text
            if isinstance(doc, (dict, list)):
                return json.dumps(doc, indent=2, ensure_ascii=False)
        return text

    @property
    def truncated(self) -> bool:
        return len(self.data) > PAYLOAD_SHOWN

    @property
    def binary(self) -> bool:
        try:
            self.data[:PAYLOAD_SHOWN].decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Message:
        """A STREAM.MSG.GET answer's `message`."""
        status, headers = "", []
        if raw.get("hdrs"):
            status, grouped = decode_headers(base64.b64decode(raw["hdrs"]))
            headers = [(k, v) for k, values in grouped.items() for v in values]
        return cls(seq=int(raw.get("seq", 0)), subject=str(raw.get("subject", "")),
                   time_ns=c.parse_time_ns(raw.get("time")), headers=headers, status=status,
                   data=base64.b64decode(raw.get("data") or b""))

    def as_dead_letter(self) -> dl.DeadLetter:
        return dl.DeadLetter(self.seq, self.subject, self.data, dict(self.headers))


# -- JetStream ------------------------------------------------------------------------------

async def account_info(nc: Any, timeout: float) -> dict[str, Any]:
    return await c.api_request(nc, "INFO", None, timeout)


async def list_streams(nc: Any, timeout: float) -> list[dict[str, Any]]:
    infos = await c.paged(nc, "STREAM.LIST", "streams", timeout)
    return sorted(infos, key=lambda i: i["config"]["name"])


async def list_consumers(nc: Any, stream: str, timeout: float) -> list[dict[str, Any]]:
    infos = await c.paged(nc, f"CONSUMER.LIST.{stream}", "consumers", timeout)
    return sorted(infos, key=lambda i: i["name"])


async def stream_info(nc: Any, name: str, timeout: float, subjects_filter: str | None = None) -> dict[str, Any]:
    body = {"subjects_filter": subjects_filter} if subjects_filter else None
    return await c.api_request(nc, f"STREAM.INFO.{name}", body, timeout, context=f"stream {name}")


async def consumer_info(nc: Any, stream: str, name: str, timeout: float) -> dict[str, Any]:
    return await c.api_request(nc, f"CONSUMER.INFO.{stream}.{name}", None, timeout,
                               context=f"consumer {stream} > {name}")


async def message_at(nc: Any, stream: str, seq: int, timeout: float) -> Message | None:
    raw = await get_message(nc, stream, timeout, seq=seq)
    return None if raw is None else Message.from_api(raw)


async def browse(nc: Any, stream: str, timeout: float, start: int, subject: str = "",
                 count: int = 25) -> list[Message]:
    """Up to `count` messages from sequence `start` on, matching `subject` (all when empty)."""
    count = max(1, min(count, BROWSE_MAX))
    out: list[Message] = []
    seq = max(start, 1)
    while len(out) < count:
        raw = await get_message(nc, stream, timeout, seq=seq, next_for=subject or ">")
        if raw is None:
            break
        msg = Message.from_api(raw)
        out.append(msg)
        seq = msg.seq + 1
    return out


async def last_per_subject(nc: Any, stream: str, timeout: float, subject: str = "",
                           count: int = 25) -> list[Message]:
    """The newest message of each subject matching `subject` (at most `count` subjects)."""
    info = await stream_info(nc, stream, timeout, subjects_filter=subject or ">")
    subjects = sorted((info.get("state") or {}).get("subjects") or {})
    out: list[Message] = []
    for subj in subjects[:max(1, min(count, BROWSE_MAX))]:
        raw = await get_message(nc, stream, timeout, last_for=subj)
        if raw is not None:
            out.append(Message.from_api(raw))
    return out


async def purge_stream(nc: Any, stream: str, timeout: float, subject: str | None = None) -> int:
    body = {"filter": subject} if subject else None
    answer = await c.api_request(nc, f"STREAM.PURGE.{stream}", body, timeout, context="could not purge stream")
    return int(answer.get("purged", 0))


async def delete_stream(nc: Any, stream: str, timeout: float) -> None:
    await c.api_request(nc, f"STREAM.DELETE.{stream}", None, timeout, context="could not delete stream")


async def delete_message(nc: Any, stream: str, seq: int, timeout: float) -> None:
    await c.api_request(nc, f"STREAM.MSG.DELETE.{stream}", {"seq": seq}, timeout,
                        context="could not delete the message")


# -- dead letters -----------------------------------------------------------------------------

def dead_letter_consumer(config: EventingConfig, subject: str) -> str:
    prefix = config.dead_letter.subject_prefix + "."
    return subject[len(prefix):] if subject.startswith(prefix) else subject


async def dead_letter_counts(nc: Any, config: EventingConfig, timeout: float) -> dict[str, int]:
    """consumer name -> dead letters kept for it; empty when there is no dead-letter stream."""
    try:
        info = await stream_info(nc, config.dead_letter.stream, timeout,
                                 subjects_filter=d.dead_letter_subject(config.dead_letter.subject_prefix, ">"))
    except c.APIError as exc:
        if exc.code == 404:
            return {}
        raise
    subjects = (info.get("state") or {}).get("subjects") or {}
    return {dead_letter_consumer(config, s): int(n) for s, n in subjects.items() if n}


async def newest_dead_letter(nc: Any, config: EventingConfig, consumer: str, timeout: float) -> Message | None:
    raw = await get_message(nc, config.dead_letter.stream, timeout,
                            last_for=d.dead_letter_subject(config.dead_letter.subject_prefix, consumer))
    return None if raw is None else Message.from_api(raw)


async def list_dead_letters(nc: Any, config: EventingConfig, consumers: list[str], timeout: float,
                            limit: int = 500) -> list[Message]:
    """Dead letters of these consumers, oldest first, read with `eventing.deadletter`."""
    js = nc.jetstream(timeout=timeout)
    letters = await dl.list_dead_letters(js, sorted(consumers), config, limit=limit, timeout=min(timeout, 2.0))
    found = [Message(seq=x.sequence, subject=x.subject, time_ns=0, headers=list(x.headers.items()), data=x.data)
             for x in letters]
    return sorted(found, key=lambda m: m.seq)


async def replay(nc: Any, config: EventingConfig, letters: list[Message], timeout: float) -> tuple[int, list[str]]:
    """Publish again with `eventing.deadletter.replay` (removed from the DLQ once stored)."""
    js = nc.jetstream(timeout=timeout)
    return await dl.replay(js, [m.as_dead_letter() for m in letters], config)


async def dead_letter(nc: Any, config: EventingConfig, seq: int, timeout: float) -> Message | None:
    msg = await message_at(nc, config.dead_letter.stream, seq, timeout)
    if msg is None or not msg.subject.startswith(config.dead_letter.subject_prefix + "."):
        return None
    return msg


def letter_summary(msg: Message) -> dict[str, Any]:
    """The fields the dispatcher recorded, as `eventing.deadletter.DeadLetter.summary` reads them."""
    summary = msg.as_dead_letter().summary()
    summary["subscription"] = msg.header(d.H_SUBSCRIPTION) or ""
    summary["consumer"] = msg.header(d.H_CONSUMER) or ""
    return summary


# -- manifests ------------------------------------------------------------------------------

def masked(doc: Any) -> Any:
    """A copy with the values of secret-looking keys (clientSecret, password, token) replaced."""
    if isinstance(doc, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "") else masked(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [masked(v) for v in doc]
    return doc


def manifest_yaml(sub: Any) -> str:
    import yaml

    return yaml.safe_dump(masked(sub.to_manifest()), sort_keys=False)


def strip_userinfo(url: str) -> str:
    """`nats://user:pass@host:4222` -> `nats://host:4222`: credentials are never shown."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
