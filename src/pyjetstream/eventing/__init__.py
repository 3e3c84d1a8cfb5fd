"""Kyma-style eventing on JetStream: publisher proxy, Subscriptions, manager and dispatcher.

Talks to NATS only through nats-py, so it runs on the embedded server and on nats-server
alike. Entry points: `run_eventing(nats_url, config)` / `EventingService` (service.py),
`EventingConfig` (config.py); the modules below hold one concern each.
"""
