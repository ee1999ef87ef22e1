"""Who may be banned and for how long.

Real users must never be locked out: loopback is never banned, the allow-list (the LAN by
default, plus Home Assistant, the reverse proxy and the admin's own addresses) only when a
user forces a ban on one single address, and networks so wide they would cut off most of the
internet are refused unless forced. Repeat offenders get longer bans, as fail2ban's
``bantime.increment`` does, capped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .targets import Network, Target, parse_target

LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Narrower than this is a normal ban; wider would cut off a large part of the internet.
MIN_PREFIX = {4: 16, 6: 32}
MAX_PROTECTED = 64


class BanRefused(Exception):
    """The policy does not allow this ban; ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class BanTimes:
    """Ban duration growth: ``base × factor^(offences-1)``, at most ``maximum`` seconds."""

    base: int = 3600
    factor: float = 2.0
    maximum: int = 7 * 86_400
    # Offences older than this are forgiven when counting repeats.
    memory: int = 30 * 86_400

    def duration(self, offence: int) -> int:
        """Seconds for the *offence*-th ban (1 = first)."""
        seconds = self.base * self.factor ** max(0, offence - 1)
        return int(min(seconds, self.maximum))


def default_gateways(
    route_v4: Path = Path("/proc/net/route"), route_v6: Path = Path("/proc/net/ipv6_route")
) -> list[str]:
    """Default routers of this host: banning them would cut the host off."""
    found: list[str] = []
    try:
        for line in route_v4.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
                found.append(str(ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little"))))
    except (OSError, ValueError):
        pass
    try:
        for line in route_v6.read_text().splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[0] == "0" * 32 and fields[1] == "00" and fields[4] != "0" * 32:
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[4]))))
    except (OSError, ValueError):
        pass
    return found


class BanPolicy:
    """Decides whether a target may be banned."""

    def __init__(self, allow: Iterable[str], protect: Iterable[str], times: BanTimes) -> None:
        self.allow: tuple[Network, ...] = tuple(parse_target(a).network for a in allow)
        self.protect: tuple[Network, ...] = tuple(parse_target(p).network for p in protect)
        self.times = times
        self._seen_clients: set[str] = set()

    @staticmethod
    def _overlapping(target: Target, networks: Iterable[Network]) -> Network | None:
        for net in networks:
            if net.version == target.version and target.network.overlaps(net):
                return net
        return None

    def check(self, target: Target, *, force: bool = False) -> None:
        """Raise :class:`BanRefused` unless *target* may be banned."""
        if target.network.prefixlen < MIN_PREFIX[target.version] and not force:
            raise BanRefused(
                "too_broad", f"{target} is wider than /{MIN_PREFIX[target.version]}; pass force to ban it anyway"
            )
        if self._overlapping(target, LOOPBACK):
            raise BanRefused("loopback", f"{target} is or covers loopback; loopback is never banned")
        hit = self._overlapping(target, self.protect)
        if hit is not None:
            raise BanRefused(
                "protected", f"{target} covers {hit}, a management address (Home Assistant, proxy, gateway)"
            )
        hit = self._overlapping(target, self.allow)
        if hit is not None and not (force and target.single):
            hint = "; force bans one single address anyway" if target.single else ""
            raise BanRefused("allow_listed", f"{target} is in the allow-list ({hit}){hint}")

    def add_allow(self, network: Network) -> None:
        """Allow-list one more network (run-time entries from the API)."""
        if network not in self.allow:
            self.allow = (*self.allow, network)

    def remove_allow(self, network: Network) -> None:
        """Forget a run-time allow-list entry."""
        self.allow = tuple(n for n in self.allow if n != network)

    def protect_address(self, text: str) -> None:
        """Protect one more management address (learnt from authenticated API clients)."""
        if text in self._seen_clients:
            return  # every authenticated request calls this: known clients cost a set lookup
        if len(self._seen_clients) < 4 * MAX_PROTECTED:
            self._seen_clients.add(text)
        try:
            net = parse_target(text.removeprefix("::ffff:")).network
        except ValueError:
            return
        if net in self.protect or len(self.protect) >= MAX_PROTECTED:
            return
        # A new tuple in one assignment: readers on other threads see the old or the new one.
        self.protect = (*self.protect, net)

    def allowed(self, target: Target) -> bool:
        """True when the allow-list covers *target* (the detector never bans these)."""
        return self._overlapping(target, self.allow) is not None
