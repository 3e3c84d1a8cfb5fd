"""Reading and replaying the dead-letter stream of a Subscription.

Owns listing the dead-lettered events of a Subscription's consumers (with the reason the
dispatcher recorded) and replaying them: each event is published again to its original
subject in the main stream, and removed from the dead-letter stream only after JetStream
acknowledged the new copy. Talks to JetStream through nats-py only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors

from . import dispatcher as d
from .config import EventingConfig


@dataclass
class DeadLetter:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.data)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def summary(self) -> dict[str, Any]:
        ev = self.event
        return {"sequence": self.sequence, "id": ev.get("id"), "type": ev.get("originaltype") or ev.get("type"),
                "reason": self.headers.get(d.H_REASON), "lastStatus": self.headers.get(d.H_CODE),
                "deliveries": self.headers.get(d.H_DELIVERIES), "error": self.headers.get(d.H_ERROR),
                "sink": self.headers.get(d.H_SINK)}


def original_subject(event: dict[str, Any], prefix: str = "kyma") -> str | None:
    """Where the publisher stored the event: its stored type is the subject (legacy: prefixed)."""
    etype = event.get("type")
    if not isinstance(etype, str) or not etype:
        return None
    return etype if etype.startswith(prefix + ".") else f"{prefix}.{etype}"


async def list_dead_letters(js: Any, consumers: list[str], config: EventingConfig,
                            limit: int = 1000, timeout: float = 2.0) -> list[DeadLetter]:
    dl = config.dead_letter
    out: list[DeadLetter] = []
    for consumer in consumers:
        subject = d.dead_letter_subject(dl.subject_prefix, consumer)
        try:
            sub = await js.pull_subscribe(subject, stream=dl.stream)
        except nats.js.errors.NotFoundError:
            return out
        try:
            while len(out) < limit:
                try:
                    batch = await sub.fetch(min(100, limit - len(out)), timeout=timeout)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for msg in batch:
                    out.append(DeadLetter(msg.metadata.sequence.stream, msg.subject, msg.data, dict(msg.headers or {})))
                    await msg.ack()
                if batch and batch[-1].metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
    return out


async def replay(js: Any, letters: list[DeadLetter], config: EventingConfig) -> tuple[int, list[str]]:
    """Publish each event again to the main stream; returns (replayed, problems)."""
    done, problems = 0, []
    for letter in letters:
        subject = original_subject(letter.event, config.stream.subject_prefix)
        if subject is None:
            problems.append(f"sequence {letter.sequence}: not a stored CloudEvent, left in {config.dead_letter.stream}")
            continue
        event = letter.event
        headers = {"ce-specversion": str(event.get("specversion", "1.0")), "ce-type": str(event.get("type")),
                   "ce-source": str(event.get("source", "")), "ce-id": str(event.get("id", ""))}
        if event.get("datacontenttype"):
            headers["Content-Type"] = str(event["datacontenttype"])
        try:
            await js.publish(subject, letter.data, headers=headers)
        except (nats.errors.Error, TimeoutError) as exc:
            problems.append(f"sequence {letter.sequence}: {exc}")
            continue
        await js.delete_msg(config.dead_letter.stream, letter.sequence)
        done += 1
    return done, problems
