"""Which addresses the dispatcher may connect to: the sink egress policy (SSRF guard).

Owns the policy (mode, allow and deny lists of CIDRs and host names), the decision for one
host name and address, and `GuardedResolver`, the aiohttp resolver that applies it to the
addresses a name resolves to at connect time, so a name that resolves to a harmless address
when the Subscription is checked and to the metadata service later (DNS rebinding) is still
refused. IP-literal sinks never reach a resolver in aiohttp; `Dispatcher` checks those with
`refusal` before sending. Makes no HTTP requests and stores nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused in every mode unless allow-listed: link-local (where cloud metadata services live,
# 169.254.169.254) and AWS's IPv6 metadata address.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
MODES = ("default", "public")


class SinkRefused(OSError):
    """The egress policy refuses the sink's address; an OSError so aiohttp wraps it like any
    other connect failure (ClientConnectorError.os_error is this)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _host_key(name: str) -> str:
    return name.strip().rstrip(".").lower()


@dataclass(frozen=True)
class SinkPolicy:
    """`default`: everything but link-local/metadata; `public`: only globally routable
    addresses. Explicit deny entries win over allow entries, which win over the mode."""

    mode: str = "default"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    _allow_nets: tuple[IPNetwork, ...] = field(default=(), init=False, repr=False, compare=False)
    _allow_names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _deny_nets: tuple[IPNetwork, ...] = field(default=(), init=False, repr=False, compare=False)
    _deny_names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sink policy must be one of {', '.join(MODES)}, not {self.mode!r}")
        for kind, entries in (("allow", self.allow), ("deny", self.deny)):
            nets, names = parse_entries(entries)
            object.__setattr__(self, f"_{kind}_nets", nets)
            object.__setattr__(self, f"_{kind}_names", names)

    @staticmethod
    def _name_matches(host: str, patterns: tuple[str, ...]) -> bool:
        for pattern in patterns:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def refusal(self, host: str, address: str | None = None) -> str | None:
        """Why `host` (connecting to `address`, or itself when an IP literal) is refused; None if allowed."""
        name = _host_key(host)
        if self._name_matches(name, self._deny_names):
            return f"sink host {host} is on the deny list"
        literal = _ip(name)
        ip = _ip(address) if address is not None else literal
        if ip is None:
            return None  # a name not resolved yet: the resolver decides per address
        ip = _unmapped(ip)
        shown = f"{host} ({ip})" if literal is None else str(ip)
        if any(ip in net for net in self._deny_nets if net.version == ip.version):
            return f"sink address {shown} is on the deny list"
        if self._name_matches(name, self._allow_names) or \
                any(ip in net for net in self._allow_nets if net.version == ip.version):
            return None
        if any(ip in net for net in ALWAYS_REFUSED if net.version == ip.version):
            return (f"sink address {shown} is link-local or a cloud metadata address; "
                    "allow it with --sink-allow if intended")
        if self.mode == "public" and not ip.is_global:
            return (f"sink address {shown} is not a public address (sink policy public); "
                    "allow it with --sink-allow if intended")
        return None


def parse_entries(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    """Split `--sink-allow`/`--sink-deny` values (comma-separated allowed) into CIDRs and names."""
    nets: list[IPNetwork] = []
    names: list[str] = []
    for raw in entries:
        for entry in (e.strip() for e in raw.split(",")):
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = _host_key(entry)
            label = name[2:] if name.startswith("*.") else name
            if not label or any(c in label for c in "/:* ") or "/" in entry:
                raise ValueError(f"not a CIDR or host name: {entry!r}")
            names.append(name)
    return tuple(nets), tuple(names)


def is_ip_literal(host: str) -> bool:
    """An address written in the URL, which no resolver sees: the dispatcher checks it against
    the policy itself, and the sink client connects to it as written."""
    return ":" in host or host.replace(".", "").isdigit()


def _ip(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _unmapped(ip: IPAddress) -> IPAddress:
    # ::ffff:169.254.169.254 reaches the IPv4 address; judge it as that.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` and keeps only the addresses the policy allows; raises SinkRefused
    (with the first reason) when none is left. aiohttp connects to exactly what this returns."""

    def __init__(self, policy: SinkPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner
        self._owns_inner = inner is None

    def _resolver(self) -> AbstractResolver:
        if self._inner is None:
            # Created lazily: aiohttp's default resolver wants a running loop.
            from aiohttp.resolver import DefaultResolver

            self._inner = DefaultResolver()
        return self._inner

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        name_refusal = self.policy.refusal(host)
        if name_refusal is not None:
            raise SinkRefused(name_refusal)
        results = await self._resolver().resolve(host, port, family)
        allowed: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            reason = self.policy.refusal(host, result["host"])
            if reason is None:
                allowed.append(result)
            else:
                reasons.append(reason)
        if not allowed:
            raise SinkRefused(reasons[0] if reasons else f"sink host {host} resolved to no address")
        return allowed

    async def close(self) -> None:
        if self._owns_inner and self._inner is not None:
            await self._inner.close()

