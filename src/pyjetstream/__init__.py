"""pyjetstream: a NATS server with JetStream, Kyma-style eventing and an operator's CLI."""

__version__ = "0.1.0"
