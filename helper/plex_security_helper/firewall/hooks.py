"""The enforcer's one window onto the fleet: what a recorded or lifted ban adds to the outbox.

The enforcer calls :meth:`BanHooks.recorded` where it records bans and :meth:`BanHooks.lifted`
where it lifts one; what they return is written in the same SQLite transaction as the ban, so
a crash can never keep a ban and lose its message to CrowdSec (or the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ..model import Alert, Ban
from ..store import OutboxItem


class BanHooks(Protocol):
    """Called on the worker thread, inside the enforcer; must not block or raise."""

    def recorded(self, bans: Sequence[Ban], sources: Mapping[str, Alert], now: float) -> list[OutboxItem]:
        """New bans (*sources*: the alert behind each detector ban, by target)."""
        ...

    def lifted(self, ban: Ban) -> list[OutboxItem]:
        """A ban lifted before its time."""
        ...
