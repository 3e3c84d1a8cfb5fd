"""Fixtures for the end-to-end eventing tests: the same as tests/eventing (a real NATS server
process per server command, a real HTTP sink, the service), imported rather than copied."""

from eventing.conftest import (  # noqa: F401  (fixtures are found by name)
    VENV_BIN,
    _own_server_missing,
    fast_config,
    make_service,
    nats_server,
    server_cmd,
    sink,
)
