"""Ban targets: one address or one network, validated and in canonical form."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidTarget(ValueError):
    """The text is not an IP address or a network in CIDR notation."""


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """What a ban covers. ``text`` is canonical: ``192.0.2.7``, ``2001:db8::/64``."""

    text: str
    network: Network

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.network.version

    @property
    def single(self) -> bool:
        """One address rather than a network."""
        return self.network.prefixlen == self.network.max_prefixlen

    def __str__(self) -> str:
        return self.text


MAX_TARGET_TEXT = 64


def parse_target(text: str) -> Target:
    """Parse ``ADDR`` or ``ADDR/PREFIX``; IPv4-mapped IPv6 becomes IPv4; host bits must be zero."""
    if not isinstance(text, str) or not text or len(text) > MAX_TARGET_TEXT:
        raise InvalidTarget("expected an IP address or a CIDR network such as 203.0.113.7 or 2001:db8::/64")
    raw = text
    if not raw.isascii() or any(ch.isspace() for ch in raw) or "%" in raw:
        raise InvalidTarget(f"{text!r} is not an IP address or CIDR network")
    try:
        network: Network = ipaddress.ip_network(raw, strict=True)
    except ValueError as err:
        if "has host bits set" in str(err):
            loose = ipaddress.ip_network(raw, strict=False)
            raise InvalidTarget(f"{raw} has host bits set; did you mean {loose}?") from None
        raise InvalidTarget(f"{raw!r} is not an IP address or CIDR network") from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            network = ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    if network.prefixlen == network.max_prefixlen:
        return Target(str(network.network_address), network)
    return Target(str(network), network)
