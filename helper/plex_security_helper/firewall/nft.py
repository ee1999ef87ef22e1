"""The nftables backend: one ``inet plex_security`` table owned by the helper, nothing else touched.

The table is re-applied atomically (``flush table`` and the new rules in one batch), which keeps
the elements of its sets, so bans survive a reconfiguration. Element changes go as one JSON
batch through ``nft -j -f -``. Drops are counted in named counters and logged by a separate,
rate-limited rule: a ``limit`` in the drop rule itself would let the excess through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .runner import BackendError, run_tool
from .targets import Network, Target

TABLE = "plex_security"
COUNTERS = ("banned", "fleet_banned", "rate_limited", "too_many_connections", "geo_blocked")
# Set families: "ban" holds this helper's own bans, "fleet" the decisions streamed from
# CrowdSec's Local API, so that neither side's changes ever touch the other's elements.
BAN_FAMILIES = ("ban", "fleet")


@dataclass(frozen=True, slots=True)
class RateProfile:
    """Per-source limits on the Plex port; ``None`` turns a limit off."""

    new_per_minute: int | None
    burst: int
    max_concurrent: int | None


PROFILES = {
    # The seed's plan. Tight: a browser opening six parallel connections twice in a minute hits it.
    "strict": RateProfile(new_per_minute=10, burst=10, max_concurrent=5),
    # Headroom for real clients: several devices behind one NAT, each browser with six parallel
    # connections, TVs that reconnect for every poster of a library page (docs/firewall.md).
    "default": RateProfile(new_per_minute=300, burst=150, max_concurrent=64),
    "off": RateProfile(new_per_minute=None, burst=0, max_concurrent=None),
}


@dataclass(frozen=True, slots=True)
class Ruleset:
    """What the table enforces besides the bans."""

    plex_port: int
    rates: RateProfile
    allow: tuple[Network, ...]
    geo_mode: str | None = None  # "allow" (only these countries) or "block"
    geo: tuple[Network, ...] = ()
    log_drops: bool = True


@dataclass(frozen=True, slots=True)
class BanElement:
    """A ban as the kernel holds it: a target and the seconds it has left."""

    target: Target
    timeout: int


def _set_name(target: Target, family: str = "ban") -> str:
    return f"{family}{target.version}{'' if target.single else '_net'}"


def _value(network: Network) -> Any:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def _elements(networks: Iterable[Network]) -> str:
    return ", ".join(str(n) for n in networks)


class NftFirewall:
    """Render, apply and change the helper's table. Blocking: run it off the event loop."""

    def __init__(self, netns: str | None = None, nft: str = "nft") -> None:
        self._prefix: list[str] = ["ip", "netns", "exec", netns, nft] if netns else [nft]

    def _nft(self, *args: str, stdin: str | None = None) -> str:
        return run_tool([*self._prefix, *args], stdin=stdin)

    # -- ruleset -----------------------------------------------------------------------------
    def render(self, rules: Ruleset) -> str:
        """The whole table as one atomic nft script."""
        port = rules.plex_port
        log = rules.log_drops
        lines = [
            f"table inet {TABLE} {{}}",
            f"flush table inet {TABLE}",
            f"table inet {TABLE} {{",
            *(f"  counter {name} {{}}" for name in COUNTERS),
            "  set ban4 { type ipv4_addr; flags timeout; }",
            "  set ban4_net { type ipv4_addr; flags interval, timeout; }",
            "  set ban6 { type ipv6_addr; flags timeout; }",
            "  set ban6_net { type ipv6_addr; flags interval, timeout; }",
            "  set fleet4 { type ipv4_addr; flags timeout; }",
            "  set fleet4_net { type ipv4_addr; flags interval, timeout; }",
            "  set fleet6 { type ipv6_addr; flags timeout; }",
            "  set fleet6_net { type ipv6_addr; flags interval, timeout; }",
            "  set allow4 { type ipv4_addr; flags interval; auto-merge; }",
            "  set allow6 { type ipv6_addr; flags interval; auto-merge; }",
            "  set geo4 { type ipv4_addr; flags interval; auto-merge; }",
            "  set geo6 { type ipv6_addr; flags interval; auto-merge; }",
            "  set rate4 { type ipv4_addr; flags dynamic, timeout; timeout 2m; size 131072; }",
            "  set rate6 { type ipv6_addr; flags dynamic, timeout; timeout 2m; size 131072; }",
            "  set conns4 { type ipv4_addr; flags dynamic; size 131072; }",
            "  set conns6 { type ipv6_addr; flags dynamic; size 131072; }",
        ]
        for chain, counter, prefix in (
            ("drop_banned", "banned", "banned"),
            ("drop_fleet", "fleet_banned", "fleet"),
            ("drop_rate", "rate_limited", "rate"),
            ("drop_geo", "geo_blocked", "geo"),
        ):
            body = (
                [f'limit rate 6/minute burst 5 packets log prefix "plex_security {prefix}: " level info'] if log else []
            )
            body.append(f'counter name "{counter}" drop')
            lines.append(f"  chain {chain} {{")
            lines.extend(f"    {rule}" for rule in body)
            lines.append("  }")
        guard = [
            'iifname "lo" return',
            "ip saddr @ban4 jump drop_banned",
            "ip saddr @ban4_net jump drop_banned",
            "ip6 saddr @ban6 jump drop_banned",
            "ip6 saddr @ban6_net jump drop_banned",
            "ip saddr @fleet4 jump drop_fleet",
            "ip saddr @fleet4_net jump drop_fleet",
            "ip6 saddr @fleet6 jump drop_fleet",
            "ip6 saddr @fleet6_net jump drop_fleet",
            "ip saddr @allow4 return",
            "ip6 saddr @allow6 return",
        ]
        if rules.geo_mode == "allow":
            guard += [
                f"tcp dport {port} ip saddr != @geo4 jump drop_geo",
                f"tcp dport {port} ip6 saddr != @geo6 jump drop_geo",
            ]
        elif rules.geo_mode == "block":
            guard += [
                f"tcp dport {port} ip saddr @geo4 jump drop_geo",
                f"tcp dport {port} ip6 saddr @geo6 jump drop_geo",
            ]
        cap = rules.rates.max_concurrent
        if cap is not None:
            for fam, saddr in (("4", "ip saddr"), ("6", "ip6 saddr")):
                guard.append(
                    f"tcp dport {port} ct state new add @conns{fam} {{ {saddr} ct count over {cap} }}"
                    ' counter name "too_many_connections" reject with tcp reset'
                )
        rate = rules.rates.new_per_minute
        if rate is not None:
            for fam, saddr in (("4", "ip saddr"), ("6", "ip6 saddr")):
                guard.append(
                    f"tcp dport {port} ct state new update @rate{fam}"
                    f" {{ {saddr} limit rate over {rate}/minute burst {rules.rates.burst} packets }} jump drop_rate"
                )
        lines.append("  chain guard {")
        lines.extend(f"    {rule}" for rule in guard)
        lines.append("  }")
        # Input for Plex on the host; forward for Docker-published ports (after DNAT).
        for hook in ("input", "forward"):
            lines.append(
                f"  chain {hook} {{ type filter hook {hook} priority filter - 10; policy accept; jump guard; }}"
            )
        lines.append("}")
        for setname, version, nets in (
            ("allow4", 4, rules.allow),
            ("allow6", 6, rules.allow),
            ("geo4", 4, rules.geo),
            ("geo6", 6, rules.geo),
        ):
            lines.append(f"flush set inet {TABLE} {setname}")
            chosen = [n for n in nets if n.version == version]
            if chosen:
                lines.append(f"add element inet {TABLE} {setname} {{ {_elements(chosen)} }}")
        return "\n".join(lines) + "\n"

    def apply(self, rules: Ruleset, bans: Sequence[BanElement] = ()) -> None:
        """Replace the rules atomically (ban elements survive), then make sure *bans* are in."""
        self._nft("-f", "-", stdin=self.render(rules))
        if bans:
            self.add(bans)

    def delete_table(self) -> None:
        """Remove the table and everything in it (uninstall)."""
        try:
            self._nft("delete", "table", "inet", TABLE)
        except BackendError as err:
            if "No such file or directory" not in str(err):
                raise

    # -- elements ----------------------------------------------------------------------------
    @staticmethod
    def _command(op: str, name: str, elems: list[Any]) -> dict[str, Any]:
        return {op: {"element": {"family": "inet", "table": TABLE, "name": name, "elem": elems}}}

    def add(self, bans: Sequence[BanElement], family: str = "ban") -> None:
        """Add or refresh *bans* in one batch (all or nothing), one command per set and step."""
        by_set: dict[str, list[BanElement]] = {}
        for ban in bans:
            by_set.setdefault(_set_name(ban.target, family), []).append(ban)
        batch: list[dict[str, Any]] = []
        for name, group in by_set.items():
            values = [_value(b.target.network) for b in group]
            # add (a no-op where present) + delete + add: sets the new timeout of existing elements.
            batch += [
                self._command("add", name, [{"elem": {"val": v, "timeout": 1}} for v in values]),
                self._command("delete", name, values),
                self._command(
                    "add",
                    name,
                    [{"elem": {"val": v, "timeout": max(1, b.timeout)}} for v, b in zip(values, group, strict=True)],
                ),
            ]
        self._batch(batch)

    def set_allowed(self, target: Target, allowed: bool) -> None:
        """Add a network to (or take it out of) the allow sets without re-applying the table."""
        name = f"allow{target.version}"
        value = _value(target.network)
        if allowed:
            self._batch([self._command("add", name, [value])])
        else:
            # add (a no-op where present) + delete: absent entries are fine
            self._batch([self._command("add", name, [value]), self._command("delete", name, [value])])

    def remove(self, targets: Sequence[Target], family: str = "ban") -> None:
        """Remove *targets* in one batch; absent ones are fine."""
        by_set: dict[str, list[Any]] = {}
        for target in targets:
            by_set.setdefault(_set_name(target, family), []).append(_value(target.network))
        batch: list[dict[str, Any]] = []
        for name, values in by_set.items():
            batch += [
                self._command("add", name, [{"elem": {"val": v, "timeout": 1}} for v in values]),
                self._command("delete", name, values),
            ]
        self._batch(batch)

    def _batch(self, commands: list[dict[str, Any]]) -> None:
        if commands:
            self._nft("-j", "-f", "-", stdin=json.dumps({"nftables": commands}))

    # -- reading -----------------------------------------------------------------------------
    def _list(self, *what: str) -> list[dict[str, Any]]:
        data = json.loads(self._nft("-j", "list", *what))
        items: list[dict[str, Any]] = data.get("nftables", [])
        return items

    def loaded(self) -> bool:
        """True when our table exists."""
        try:
            self._nft("list", "table", "inet", TABLE)
        except BackendError:
            return False
        return True

    def counters(self) -> dict[str, dict[str, int]]:
        """Packets and bytes per named counter."""
        result: dict[str, dict[str, int]] = {}
        for item in self._list("counters", "table", "inet", TABLE):
            counter = item.get("counter")
            if counter and counter.get("name") in COUNTERS:
                result[counter["name"]] = {"packets": int(counter["packets"]), "bytes": int(counter["bytes"])}
        return result

    def banned(self, family: str = "ban") -> dict[str, int | None]:
        """Every element of one family's sets in the kernel with its seconds left (``None``: no timeout)."""
        found: dict[str, int | None] = {}
        for name in (f"{family}4", f"{family}4_net", f"{family}6", f"{family}6_net"):
            for item in self._list("set", "inet", TABLE, name):
                for elem in item.get("set", {}).get("elem", []):
                    found[_elem_text(elem)] = _elem_expires(elem)
        return found


def _elem_text(elem: Any) -> str:
    value = elem["elem"]["val"] if isinstance(elem, dict) and "elem" in elem else elem
    if isinstance(value, dict) and "prefix" in value:
        return f"{value['prefix']['addr']}/{value['prefix']['len']}"
    return str(value)


def _elem_expires(elem: Any) -> int | None:
    if isinstance(elem, dict) and "elem" in elem:
        expires = elem["elem"].get("expires")
        return int(expires) if expires is not None else None
    return None
