"""Firewall backends behind one protocol, chosen once at start (and again on a mode change).

Modelled on cs-firewall-bouncer's backends: each knows how to load its state, add and delete
bans, report health and counters. The enforcer holds policy (who may be banned, for how long,
what is recorded) and never asks which backend it has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import FirewallConfig
from .fail2ban import Fail2banFirewall
from .nft import BanElement, NftFirewall, Ruleset
from .runner import BackendError
from .targets import Target


@dataclass(frozen=True, slots=True)
class BackendProblem:
    """Why a backend is not enforcing right now, as an audit finding says it."""

    finding_id: str
    title: str
    evidence: str
    fix: str


class Backend(Protocol):
    """What the enforcer needs from a firewall. Every method may raise BackendError."""

    name: str
    enforcing: bool  # False: records what it would do, touches nothing (monitor mode)

    def init(self, ruleset: Callable[[], Ruleset], bans: Sequence[BanElement]) -> None:
        """Load (or re-load) the backend's own state and put *bans* in place."""

    def add(self, bans: Sequence[BanElement]) -> None:
        """Put *bans* in force, all or nothing."""

    def delete(self, targets: Sequence[Target]) -> None:
        """Lift bans; absent ones are fine."""

    def set_allowed(self, target: Target, allowed: bool) -> None:
        """Keep the kernel's never-drop list in step with the run-time allow-list."""

    def supports(self, target: Target) -> bool:
        """Whether this backend can ban *target* (fail2ban takes single addresses only)."""

    def loaded(self) -> bool:
        """Whether the state :meth:`init` made is still in place (a reboot or a wipe removes it)."""

    def problem(self) -> BackendProblem | None:
        """What keeps the backend from enforcing, or None."""

    def status(self) -> dict[str, Any]:
        """Backend-specific fields of ``/status``'s firewall section (``active``, ``counters`` …)."""

    def stop(self) -> None:
        """Take away what :meth:`init` made (the mode leaves enforce at run time)."""


class DryRunBackend:
    """Monitor mode: every decision is recorded by the enforcer, nothing reaches a firewall."""

    name = "dry-run"
    enforcing = False

    def init(self, ruleset: Callable[[], Ruleset], bans: Sequence[BanElement]) -> None:
        """Nothing to load."""

    def add(self, bans: Sequence[BanElement]) -> None:
        """Nothing to enforce."""

    def delete(self, targets: Sequence[Target]) -> None:
        """Nothing to lift."""

    def set_allowed(self, target: Target, allowed: bool) -> None:
        """Nothing to keep in step."""

    def supports(self, target: Target) -> bool:
        """Any target can be recorded."""
        return True

    def loaded(self) -> bool:
        """Always in place."""
        return True

    def problem(self) -> BackendProblem | None:
        """A dry run has no problems of its own."""
        return None

    def status(self) -> dict[str, Any]:
        """Nothing is dropped: the counters are zero, not unknown."""
        return {"active": False, "counters": {}}

    def stop(self) -> None:
        """Nothing was made."""


class NftBackend:
    """The helper's own ``inet plex_security`` table (timed sets, rate limits, GeoIP)."""

    name = "nft"
    enforcing = True

    def __init__(self, firewall: NftFirewall) -> None:
        self.firewall = firewall

    def init(self, ruleset: Callable[[], Ruleset], bans: Sequence[BanElement]) -> None:
        """Apply the table atomically (set elements survive), then the active bans."""
        self.firewall.apply(ruleset(), bans)

    def add(self, bans: Sequence[BanElement]) -> None:
        """Add or refresh elements in one batch."""
        self.firewall.add(bans)

    def delete(self, targets: Sequence[Target]) -> None:
        """Remove elements in one batch."""
        self.firewall.remove(targets)

    def set_allowed(self, target: Target, allowed: bool) -> None:
        """Add to or take out of the allow sets."""
        self.firewall.set_allowed(target, allowed)

    def supports(self, target: Target) -> bool:
        """Addresses and networks of both families."""
        return True

    def loaded(self) -> bool:
        """Whether the table exists."""
        return self.firewall.loaded()

    def problem(self) -> BackendProblem | None:
        """A missing table while enforcement is on."""
        if self.firewall.loaded():
            return None
        return BackendProblem(
            "host.firewall_table_missing",
            "The firewall table is not loaded",
            "table inet plex_security is missing while enforcement is on",
            "Check the helper's log for nft errors; it reloads the table every 30 s.",
        )

    def status(self) -> dict[str, Any]:
        """Whether the table is in place and its drop counters."""
        active = self.firewall.loaded()
        return {"active": active, "counters": self.firewall.counters() if active else {}}

    def stop(self) -> None:
        """Remove the table: monitor mode drops nothing."""
        self.firewall.delete_table()


class Fail2banBackend:
    """An existing fail2ban's jail, through ``fail2ban-client`` (single addresses only)."""

    name = "fail2ban"
    enforcing = True

    def __init__(self, client: Fail2banFirewall, socket: str) -> None:
        self.client = client
        self._socket = socket

    def init(self, ruleset: Callable[[], Ruleset], bans: Sequence[BanElement]) -> None:
        """fail2ban owns its rules; only the bans are handed over."""
        self.add(bans)

    def add(self, bans: Sequence[BanElement]) -> None:
        """``banip`` each address (fail2ban keeps its own ban time)."""
        for ban in bans:
            self.client.ban(ban.target)

    def delete(self, targets: Sequence[Target]) -> None:
        """``unbanip`` each address."""
        for target in targets:
            self.client.unban(target)

    def set_allowed(self, target: Target, allowed: bool) -> None:
        """fail2ban's ``ignoreip`` is its owner's: the policy alone keeps allowed addresses out."""

    def supports(self, target: Target) -> bool:
        """``banip`` takes addresses, not networks."""
        return target.single

    def loaded(self) -> bool:
        """fail2ban keeps its bans itself across our restarts; answering is enough."""
        return self.client.ping()

    def problem(self) -> BackendProblem | None:
        """A fail2ban that does not answer."""
        if self.client.ping():
            return None
        return BackendProblem(
            "host.fail2ban_down",
            "fail2ban does not answer",
            f"no answer on {self._socket}",
            "Start fail2ban (systemctl start fail2ban).",
        )

    def status(self) -> dict[str, Any]:
        """The jail's ban count."""
        jail = self.client.status()
        return {
            "active": True,
            "counters": {},
            "fail2ban": {"jail": self.client.jail, "currently_banned": jail.currently_banned},
        }

    def stop(self) -> None:
        """fail2ban's rules are its owner's; its jail keeps its own ban times."""


def make_backend(config: FirewallConfig, mode: str) -> Backend:
    """The backend for *mode* (``monitor`` or ``enforce``) and the configured firewall."""
    if mode != "enforce" or config.backend == "none":
        return DryRunBackend()
    if config.backend == "nft":
        return NftBackend(NftFirewall(netns=config.netns))
    if config.backend == "fail2ban":
        client = Fail2banFirewall(config.fail2ban_socket, config.fail2ban_jail, config.fail2ban_client, config.netns)
        return Fail2banBackend(client, config.fail2ban_socket)
    raise BackendError(f"unknown firewall backend {config.backend!r}")
