"""Fixtures for the differential tests that drive both servers through a client: the
in-process server (`ours`) and the reference nats-server (`reference_server`), shared with the
consumer tests (tests/consumers/conftest.py); the others start processes with tests/servers.py."""

from consumers.conftest import ours, reference_server  # noqa: F401
