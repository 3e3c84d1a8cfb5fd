"""What the monitor needs of the server: the state /varz, /connz, /subsz, /jsz, /healthz and
/metrics read.

A Protocol only, so the monitor names no server module that starts it (server.server imports
monitoring.http to start it). server.server.Server is the one implementation; nothing here may
change server state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyjetstream.jetstream.manager import JetStream
    from pyjetstream.server.auth import Authenticator
    from pyjetstream.server.client import Account, ClientConnection
    from pyjetstream.server.options import ServerOptions


class MonitoredServer(Protocol):
    @property
    def opts(self) -> ServerOptions: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def server_id(self) -> str: ...
    @property
    def server_name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def start_time(self) -> float: ...
    @property
    def total_connections(self) -> int: ...
    @property
    def slow_consumers(self) -> int: ...
    @property
    def stale_connections(self) -> int: ...
    @property
    def lame_duck(self) -> bool: ...
    @property
    def accounts(self) -> Mapping[str, Account]: ...
    @property
    def clients(self) -> Mapping[int, ClientConnection]: ...
    @property
    def jetstream(self) -> JetStream | None: ...
    # the MonitorServer serving this server, or None without a monitoring port (its type is
    # monitoring.http's, which imports this module)
    @property
    def monitor(self) -> Any: ...
    def totals(self) -> dict[str, int]: ...
