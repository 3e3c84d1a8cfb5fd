"""Kyma-style eventing on JetStream: publisher proxy, Subscriptions, manager and dispatcher.

Talks to NATS only through nats-py, so it runs on the embedded server and on nats-server
alike. Entry points: `run_eventing(nats_url, config)` / `EventingService` (service.py),
`EventingConfig` (config.py); the modules below hold one concern each.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `pyjetstream.eventing.serve` without importing aiohttp and nats-py for every user of
    # a submodule.
    if name in ("serve", "serve_in_thread"):
        from . import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'pyjetstream.eventing' has no attribute {name!r}")
