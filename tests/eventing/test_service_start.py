"""EventingService.start(): a start that fails half-way leaves nothing open behind it.

Real NATS server (both implementations, see conftest), real sockets; the failure is the
publisher proxy's port being taken, which happens only after NATS, consumers and the
dispatcher's HTTP session are up.
"""

from __future__ import annotations

import socket

import pytest

from pyjetstream.eventing.service import EventingService

from .conftest import fast_config


async def test_failed_start_closes_what_it_opened(nats_server) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        config = fast_config(publish_host="127.0.0.1", publish_port=taken.getsockname()[1])
        svc = EventingService(nats_server.url, config)
        with pytest.raises(OSError):
            await svc.start()
        assert svc.nc is not None and svc.nc.is_closed
        assert svc.dispatcher is not None and svc.dispatcher._client is None
        assert svc.manager is not None and svc.manager._tasks == []
    finally:
        taken.close()
