"""The fail2ban backend, for owners who already run fail2ban: ban and unban via ``fail2ban-client``.

fail2ban owns the firewall rules and the ban times of its jail; the helper still records every
ban in its own database. Only single addresses: fail2ban's ``banip`` takes addresses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .runner import BackendError, run_tool
from .targets import Target

_BANNED = re.compile(r"Banned IP list:\s*(?P<ips>.*)$", re.MULTILINE)
_CURRENT = re.compile(r"Currently banned:\s*(?P<n>\d+)")


@dataclass(frozen=True, slots=True)
class JailStatus:
    """What ``fail2ban-client status JAIL`` reports."""

    currently_banned: int
    banned: tuple[str, ...]


class Fail2banFirewall:
    """Talks to a running fail2ban server through its socket."""

    def __init__(self, socket: str, jail: str, client: str = "fail2ban-client", netns: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self._argv = [*prefix, client, "-s", socket]
        self.jail = jail

    def _client(self, *args: str) -> str:
        return run_tool([*self._argv, *args])

    def ping(self) -> bool:
        """True when the server answers."""
        try:
            self._client("ping")
        except BackendError:
            return False
        return True

    def status(self) -> JailStatus:
        """Banned addresses of the jail."""
        text = self._client("status", self.jail)
        ips = _BANNED.search(text)
        current = _CURRENT.search(text)
        banned = tuple(ips["ips"].split()) if ips else ()
        return JailStatus(currently_banned=int(current["n"]) if current else len(banned), banned=banned)

    def ban(self, target: Target) -> None:
        """Ban one address in the jail."""
        if not target.single:
            raise BackendError("the fail2ban backend bans single addresses only, not networks")
        self._client("set", self.jail, "banip", target.text)

    def unban(self, target: Target) -> None:
        """Lift a ban (an address fail2ban does not hold is fine)."""
        if not target.single:
            return
        try:
            self._client("set", self.jail, "unbanip", target.text)
        except BackendError as err:
            if "is not banned" not in str(err) and "NOK" not in str(err):
                raise
