"""The worker's request policy for health checks: which methods and which addresses a declared check may reach.

A health check runs on a worker that holds cloud credentials, inside the operator's network, and its declaration
comes from whoever may start a deployment. Without a policy that is server-side request forgery: a check could
call the instance metadata service (169.254.169.254, which hands out managed-identity tokens), the worker's own
ARM endpoint or any private service, with any method and headers, and ``body_contains`` would tell the declarer
whether the answer holds a guessed text. So every check's target goes through ``RequestPolicy`` on the worker,
immediately before a connection is made:

- **methods**: ``GET`` and ``HEAD`` only, unless the operator lists more (``ORCHESTRATOR_HEALTH_METHODS``);
- **always refused**: link-local addresses (169.254.0.0/16, fe80::/10, which hold the instance metadata service),
  the other instance-metadata and host-agent addresses (Azure's 168.63.129.16, AWS's fd00:ec2::254, Alibaba's
  100.100.100.200), unspecified, multicast and broadcast addresses, and the worker's own ARM endpoint — also when
  a host *name* resolves to one of them, and also inside IPv4-mapped/NAT64 IPv6 addresses;
- **private and loopback addresses** (everything that is not globally routable: 10/8, 172.16/12, 192.168/16,
  100.64/10, 127/8, ::1, fc00::/7, ...): only when the worker allows them (``ORCHESTRATOR_HEALTH_ALLOW_PRIVATE=1``,
  which the embedded default sets; or an allow-list entry that is a network containing the address);
- **allow-list** (``ORCHESTRATOR_HEALTH_ALLOWED_HOSTS``): when set, only targets whose host name matches one of the
  patterns (``*.contoso.com``, ``api.example.org``) or whose addresses all lie in a listed network
  (``10.1.0.0/16``, ``203.0.113.7``) are contacted.

The host name is resolved once, every resolved address is judged, and the connection goes to the address that was
judged (a second lookup could answer differently: DNS rebinding). Redirects are never followed. The decision and
the address are recorded in the check's result (``CheckResult.request_policy``), so they are in history and the
audit. Documented in docs/SECURITY.md and docs/HEALTH.md.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ENV_HEALTH_METHODS = "ORCHESTRATOR_HEALTH_METHODS"
ENV_HEALTH_ALLOW_PRIVATE = "ORCHESTRATOR_HEALTH_ALLOW_PRIVATE"
ENV_HEALTH_ALLOWED_HOSTS = "ORCHESTRATOR_HEALTH_ALLOWED_HOSTS"

DEFAULT_METHODS: frozenset[str] = frozenset({"GET", "HEAD"})

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never reachable from a health check, whatever the operator allows: link-local (the instance metadata service
# lives at 169.254.169.254 on Azure, AWS and GCP), other metadata / host-agent addresses, and addresses that are not
# one host.
_ALWAYS_REFUSED: tuple[tuple[IpNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("169.254.0.0/16", "link-local (the instance metadata service lives here)"),
        ("fe80::/10", "link-local"),
        ("168.63.129.16/32", "the Azure host agent (WireServer)"),
        ("100.100.100.200/32", "an instance metadata service"),
        ("fd00:ec2::254/128", "an instance metadata service"),
        ("0.0.0.0/8", "unspecified"),
        ("::/128", "unspecified"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("255.255.255.255/32", "broadcast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RequestRefused(Exception):
    """The policy refuses a target; nothing was sent. The message says what and why, and which setting to change."""


def _unwrap(address: IpAddress) -> IpAddress:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@dataclass(frozen=True)
class RequestPolicy:
    """What a worker lets health checks reach. The default is the strict one (public addresses, GET/HEAD)."""

    methods: frozenset[str] = DEFAULT_METHODS
    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()  # host-name patterns (fnmatch, case-insensitive) and networks
    refused_endpoints: tuple[tuple[str, int], ...] = ()  # (host, port) of the worker's own services (its ARM)
    _networks: tuple[IpNetwork, ...] = field(default=(), init=False, repr=False, compare=False)
    _patterns: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[IpNetwork] = []
        patterns: list[str] = []
        for entry in self.allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
            except ValueError:
                patterns.append(entry.strip().lower().rstrip("."))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_patterns", tuple(patterns))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, arm_endpoint: str | None = None
    ) -> RequestPolicy:
        """The policy from ``ORCHESTRATOR_HEALTH_*``; ``arm_endpoint`` (the worker's) is always refused.
        Raises ``ValueError`` naming the variable for a value it cannot use."""
        env = os.environ if environ is None else environ
        methods = DEFAULT_METHODS
        raw_methods = (env.get(ENV_HEALTH_METHODS) or "").strip()
        if raw_methods:
            listed = [m.strip().upper() for m in raw_methods.split(",") if m.strip()]
            bad = [m for m in listed if not m.isalpha() or len(m) > 20]
            if bad or not listed:
                raise ValueError(
                    f"{ENV_HEALTH_METHODS}={raw_methods!r} is not a comma list of HTTP methods; write e.g. GET,HEAD"
                )
            methods = frozenset(listed)
        raw_private = (env.get(ENV_HEALTH_ALLOW_PRIVATE) or "").strip().lower()
        if raw_private not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"{ENV_HEALTH_ALLOW_PRIVATE}={raw_private!r} must be 1/true/yes or 0/false/no")
        hosts = tuple(h.strip() for h in (env.get(ENV_HEALTH_ALLOWED_HOSTS) or "").split(",") if h.strip())
        refused: tuple[tuple[str, int], ...] = ()
        if arm_endpoint:
            parts = urlsplit(arm_endpoint)
            if parts.hostname:
                refused = ((parts.hostname.lower(), parts.port or 443),)
        return cls(
            methods=methods,
            allow_private=raw_private in ("1", "true", "yes", "on"),
            allowed_hosts=hosts,
            refused_endpoints=refused,
        )

    def describe(self) -> str:
        """One line for the worker's log: what health checks may reach."""
        private = "allowed" if self.allow_private else "refused"
        hosts = ", ".join(self.allowed_hosts) if self.allowed_hosts else "any"
        return (
            f"health checks: methods {', '.join(sorted(self.methods))}; private/loopback addresses {private}; "
            f"hosts {hosts}; link-local and instance metadata addresses refused"
        )

    # ------------------------------------------------------------------------------------------- decisions

    def check_method(self, method: str) -> None:
        if method.upper() not in self.methods:
            raise RequestRefused(
                f"the method {method} is not allowed by this worker's request policy (allowed: "
                f"{', '.join(sorted(self.methods))}); health checks only read — the operator may allow more "
                f"with {ENV_HEALTH_METHODS}"
            )

    async def resolve(self, host: str, port: int) -> tuple[str, str]:
        """(the address to connect to, the decision for the record), or ``RequestRefused``. Raises
        ``socket.gaierror`` when the name does not resolve (a probe failure like any other)."""
        name = host.strip("[]").lower().rstrip(".")
        where = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        self._check_endpoint(name, port, where)
        literal = _ip_or_none(name)
        if literal is not None:
            addresses: list[IpAddress] = [literal]
        else:
            if self._patterns or self._networks:
                self._check_allow_list_name(name, where)
            infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
            addresses = []
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
                if address not in addresses:
                    addresses.append(address)
        reasons = [self._judge(name, literal is not None, address, port, where) for address in addresses]
        chosen, reason = addresses[0], reasons[0]
        shown = f"[{chosen}]:{port}" if chosen.version == 6 else f"{chosen}:{port}"
        resolved = "" if literal is not None else f" ({name} resolved to {', '.join(map(str, addresses))})"
        return str(chosen), f"allowed: {shown}, {reason}{resolved}"

    def _check_endpoint(self, name: str, port: int, where: str) -> None:
        for host, refused_port in self.refused_endpoints:
            if name == host and port == refused_port:
                raise RequestRefused(
                    f"{where} is this worker's own ARM endpoint; health checks may not call it (use an arm check "
                    "to read resources)"
                )

    def _check_allow_list_name(self, name: str, where: str) -> None:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self._patterns):
            return
        if self._networks:
            return  # the resolved addresses may still fall in a listed network; judged per address
        raise RequestRefused(
            f"{where} is not in this worker's allow-list ({ENV_HEALTH_ALLOWED_HOSTS}: "
            f"{', '.join(self.allowed_hosts)}); ask the operator to add it"
        )

    def _judge(self, name: str, literal: bool, address: IpAddress, port: int, where: str) -> str:
        """Why ``address`` may be contacted, or ``RequestRefused``."""
        plain = _unwrap(address)
        for network, why in _ALWAYS_REFUSED:
            if plain.version == network.version and plain in network:
                resolved = "" if literal else f" ({name} resolves to {address})"
                raise RequestRefused(f"{where} is {why}{resolved}; health checks never contact it")
        for endpoint_host, endpoint_port in self.refused_endpoints:
            endpoint_ip = _ip_or_none(endpoint_host)
            if endpoint_ip is not None and _unwrap(endpoint_ip) == plain and port == endpoint_port:
                raise RequestRefused(f"{where} is this worker's own ARM endpoint; health checks may not call it")
        in_listed_network = any(plain.version == n.version and plain in n for n in self._networks)
        name_listed = not literal and any(fnmatch.fnmatchcase(name, p) for p in self._patterns)
        if (self._patterns or self._networks) and not (in_listed_network or name_listed):
            raise RequestRefused(
                f"{where}{'' if literal else f' ({address})'} is not in this worker's allow-list "
                f"({ENV_HEALTH_ALLOWED_HOSTS}: {', '.join(self.allowed_hosts)}); ask the operator to add it"
            )
        if not plain.is_global:
            kind = "loopback" if plain.is_loopback else "private"
            if in_listed_network:
                return f"{kind} address in an allow-listed network"
            if self.allow_private:
                return f"{kind} address, allowed by this worker ({ENV_HEALTH_ALLOW_PRIVATE})"
            resolved = "" if literal else f" ({name} resolves to {address})"
            raise RequestRefused(
                f"{where} is a {kind} address{resolved}; this worker's request policy refuses private and loopback "
                f"addresses — the operator may allow them with {ENV_HEALTH_ALLOW_PRIVATE}=1 or list the network "
                f"in {ENV_HEALTH_ALLOWED_HOSTS}"
            )
        return "allow-listed host" if name_listed or in_listed_network else "public address"


def _ip_or_none(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None


__all__ = [
    "DEFAULT_METHODS",
    "ENV_HEALTH_ALLOWED_HOSTS",
    "ENV_HEALTH_ALLOW_PRIVATE",
    "ENV_HEALTH_METHODS",
    "RequestPolicy",
    "RequestRefused",
]
