"""What the console is started with: address, access gate, eventing names, sampling.

Plain data; no I/O. `ConsoleAuth` says how a visitor proves who they are: the console token
when one is set, else the NATS credentials the console itself connects with, else nothing
(allowed on loopback addresses only unless `allow_open`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pyjetstream.eventing.config import EventingConfig

DEFAULT_PORT = 8090
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


@dataclass(frozen=True)
class ConsoleAuth:
    """The secret a visitor must present. Never rendered, never logged."""

    token: str | None = None       # the console token, or the NATS token of the console's user
    user: str | None = None        # NATS user of the console (with `password`)
    password: str | None = None
    source: str = "none"           # console-token | nats-token | nats-user | none

    @property
    def required(self) -> bool:
        return self.source != "none"

    @property
    def mode(self) -> str:
        """What the login form asks for: `token` or `user`."""
        return "user" if self.source == "nats-user" else "token"

    @classmethod
    def from_options(cls, console_token: str | None, connect_options: dict[str, Any]) -> ConsoleAuth:
        if console_token:
            return cls(token=console_token, source="console-token")
        if connect_options.get("user"):
            return cls(user=str(connect_options["user"]), password=str(connect_options.get("password") or ""),
                       source="nats-user")
        if connect_options.get("token"):
            return cls(token=str(connect_options["token"]), source="nats-token")
        return cls()

    def __repr__(self) -> str:  # a settings dump in a log or traceback shows no secret
        return f"ConsoleAuth(source={self.source!r})"


@dataclass(frozen=True)
class ConsoleSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    auth: ConsoleAuth = field(default_factory=ConsoleAuth)
    publisher_url: str = field(default="http://127.0.0.1:8080", repr=False)   # may carry user:password
    publisher_token: str | None = field(default=None, repr=False)   # bearer token for /publish
    eventing: EventingConfig = field(default_factory=EventingConfig)
    interval: float = 1.0          # seconds between samples (live updates and charts)
    history: float = 600.0         # seconds of chart history
    timeout: float = 5.0           # JetStream API requests
    read_only: bool = False        # no action at all, only views
    allow_open: bool = False       # no gate on a non-loopback address (refused otherwise)
    max_live: int = 64             # concurrent server-sent-event streams
    session_ttl: float = 12 * 3600.0

    def check(self) -> None:
        """Refuse a console anyone on the network could use to purge streams."""
        if not self.auth.required and not is_loopback(self.host) and not self.allow_open:
            raise ValueError(f"the console would listen on {self.host} without any access control: "
                             "set a console token (or connect with NATS credentials), or allow it "
                             "explicitly (--allow-open; under `up`: --console-allow-open)")
        if self.interval <= 0:
            raise ValueError("the sampling interval must be positive")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
