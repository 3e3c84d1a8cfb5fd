#!/usr/bin/env python3
"""CPU time of the eventing's own per-event steps, in-process (no sockets): the proxy's
CloudEvent parsing and publish preparation, the dispatcher's parsing, and the metrics.

Process time (not wall time), best of 7 repeats, so that other work on a shared machine
disturbs it less than the end-to-end `eventing_bench.py`. Before/after a change, run the
same command against the old code: `PYTHONPATH=/tmp/before/src .venv/bin/python
bench/eventing_micro.py` (the script imports whatever `pyjetstream` comes first on the path).

  .venv/bin/python bench/eventing_micro.py
"""

from __future__ import annotations

import json
import time
import timeit
from typing import Any

from multidict import CIMultiDict

from pyjetstream.eventing import cloudevents as ce
from pyjetstream.eventing import types as t
from pyjetstream.eventing import wire
from pyjetstream.eventing.config import EventingConfig
from pyjetstream.eventing.metrics import EventingMetrics
from pyjetstream.eventing.publisher import EventPublisher, stored_event

HEADERS = CIMultiDict({"Host": "127.0.0.1:1234", "ce-specversion": "1.0", "ce-type": "order.received.v1",
                       "ce-source": "myapp", "content-type": "application/json", "ce-id": "tp-123",
                       "Content-Length": "22", "User-Agent": "Python/3.11 aiohttp/3.14.5", "Accept": "*/*",
                       "Accept-Encoding": "gzip, deflate"})
BODY = b'{"orderCode":"3211213"}'
N = 5000


class _NC:
    max_payload = 1048576
    _inbox_prefix = bytearray(b"_INBOX.abcdefghijklmnopqrstuv")

    def jetstream(self, **kw: Any) -> None:
        return None


def measure(name: str, f: Any) -> dict[str, Any]:
    us = min(timeit.repeat(f, number=N, repeat=7, timer=time.process_time)) / N * 1e6
    return {"step": name, "cpu_us": round(us, 2)}


def main() -> None:
    pub = EventPublisher(_NC(), EventingConfig())
    event = ce.parse_http(HEADERS, BODY)
    target = pub.target(event)
    out = pub.prepare(event)
    stored = out.payload
    parsed = ce.parse_structured(stored)
    metrics = EventingMetrics()

    def dispatcher_headers() -> None:
        o = parsed.copy()
        o.attributes["type"] = t.restore_original_type(o.type, o.source, o.get("originaltype"), "kyma")
        o.to_binary_headers()

    steps = [
        ("proxy: parse_http", lambda: ce.parse_http(HEADERS, BODY)),
        ("proxy: target", lambda: pub.target(event)),
        ("proxy: encode_event", lambda: wire.encode_event(stored_event(event, target))),
        ("proxy: check_publish", lambda: wire.check_publish(out.target.subject, out.headers, out.payload,
                                                            max_payload=1048576)),
        ("proxy: prepare (target, encode, check)", lambda: pub.prepare(event)),
        ("proxy: metrics per request", lambda: (metrics.record_request("POST", 204, "/publish", 0.001),
                                                metrics.record_backend(204, "nats://127.0.0.1:4222", 1.0),
                                                metrics.record_published("order.received.v1", "myapp", 204))),
        ("proxy: PubAck json", lambda: json.loads(b'{"stream":"sap","seq":12345}')),
        ("dispatcher: parse_structured", lambda: ce.parse_structured(stored)),
        ("dispatcher: request headers", dispatcher_headers),
        ("dispatcher: metrics per delivery", lambda: metrics.record_delivery(
            "default/bench", "order.received.v1", "http://127.0.0.1:1/", 204, "abc", 0.001)),
    ]
    for name, f in steps:
        print(json.dumps(measure(name, f)))


if __name__ == "__main__":
    main()
