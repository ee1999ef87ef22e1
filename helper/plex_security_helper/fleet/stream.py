"""The helper as a CrowdSec bouncer: LAPI's decisions in the table's ``fleet`` sets.

``startup=true`` first (and again after any error, and every ``RESYNC_ROUNDS`` rounds, so a
lost answer or a re-created table heals), deltas in between. Every decision meets the same
never-ban policy as our own bans; a refused one is kept out and reported. The fleet sets are
separate from the helper's own ban sets: a local unban never fights the stream, and the
stream never touches a local ban.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..firewall.backend import NftBackend
from ..firewall.nft import BanElement, NftFirewall
from ..firewall.policy import BanRefused
from ..firewall.runner import BackendError
from ..firewall.targets import InvalidTarget, Target, parse_target
from .decisions import FleetDecision, parse_decision
from .lapi import Lapi, LapiError, LapiRejected

if TYPE_CHECKING:
    from ..monitor import Monitor

_LOGGER = logging.getLogger(__name__)
FAMILY = "fleet"
RESYNC_ROUNDS = 60
MAX_REFUSED_SHOWN = 50
MAX_DECISIONS = 500_000


class StreamBouncer:
    """Pulls ``/v1/decisions/stream`` and keeps the fleet sets equal to what may be enforced."""

    def __init__(self, lapi: Lapi, monitor: Monitor, interval: float) -> None:
        self._lapi = lapi
        self._monitor = monitor
        self._interval = interval
        self._held: dict[str, dict[int, FleetDecision]] = {}  # target → LAPI id → decision
        self._refused: dict[int, dict[str, Any]] = {}  # LAPI id → why it is not enforced
        self._counted: set[int] = set()  # refused ids already counted and logged (resyncs repeat them)
        self._last_nft: NftFirewall | None = None
        self.refused_total = 0
        self.malformed = 0
        self.last_stream: float | None = None
        self.reachable: bool | None = None
        self.key_ok: bool | None = None
        self.error: str | None = None
        self.rounds = 0

    def _nft(self) -> NftFirewall | None:
        """The table the fleet sets live in: only the nft backend has them (else: recorded only)."""
        backend = self._monitor.enforcer.backend
        return backend.firewall if isinstance(backend, NftBackend) and backend.enforcing else None

    @property
    def enforcing(self) -> bool:
        """Decisions reach the kernel (the nft backend in enforce mode); otherwise only recorded."""
        return self._nft() is not None

    async def run(self) -> None:
        """Forever: one pull per interval."""
        startup = True
        while True:
            full = startup or self.rounds % RESYNC_ROUNDS == 0
            try:
                answer = await self._lapi.stream(full)
                await self._monitor.run_in_worker(self.apply, answer, full)
                self.last_stream, self.reachable, self.key_ok, self.error = time.time(), True, True, None
                startup = False
            except (LapiError, BackendError) as err:
                if isinstance(err, LapiError):
                    self.reachable = err.status != 0
                    self.key_ok = False if isinstance(err, LapiRejected) else self.key_ok
                if self.error != str(err):
                    _LOGGER.warning("fleet stream: %s", err)
                self.error = str(err)
                startup = True  # whatever was missed comes back with the full list
            except Exception as err:  # noqa: BLE001 - the loop must outlive any one bad answer
                _LOGGER.warning("fleet stream failed: %s", err)
                self.error = str(err)
                startup = True
            self.rounds += 1
            await asyncio.sleep(self._interval)

    # -- worker thread ---------------------------------------------------------------------------
    def apply(self, answer: dict[str, Any], full: bool) -> None:
        """Fold one stream answer into the sets (worker thread)."""
        now = time.time()
        changed: set[str] = set()
        nft = self._nft()
        if nft is not self._last_nft:  # a new backend (start, a mode switch): it holds nothing yet
            changed |= set(self._held)
            if nft is not None:
                changed |= set(nft.banned(FAMILY))  # left from before a restart or a switch
            self._last_nft = nft
        if full:
            changed |= set(self._held)
            self._held.clear()
            self._refused.clear()
        for raw in answer.get("deleted", []):
            ident = raw.get("id") if isinstance(raw, dict) else None
            self._refused.pop(ident, None)  # type: ignore[arg-type]
            target = str(raw.get("value", "")) if isinstance(raw, dict) else ""
            for text in self._targets_of(target):
                held = self._held.get(text)
                if held is not None and held.pop(ident, None) is not None:  # type: ignore[arg-type]
                    changed.add(text)
        for raw in answer.get("new", []):
            try:
                decision = parse_decision(raw, now)
            except (ValueError, InvalidTarget):
                self.malformed += 1
                continue
            if decision is None or decision.expires <= now:
                continue
            why = self._why_refused(decision)
            if why is not None:
                if decision.id not in self._counted:
                    if len(self._counted) >= MAX_DECISIONS:
                        self._counted.clear()
                    self._counted.add(decision.id)
                    self.refused_total += 1
                    _LOGGER.warning("fleet: not enforcing %s (%s): %s", decision.target, decision.scenario, why[1])
                self._refused[decision.id] = {**decision.as_json(now), "reason": why[0], "message": why[1]}
                continue
            if sum(len(v) for v in self._held.values()) < MAX_DECISIONS:
                self._held.setdefault(decision.target.text, {})[decision.id] = decision
                changed.add(decision.target.text)
        self._sync(nft, changed, now)

    @staticmethod
    def _targets_of(value: str) -> list[str]:
        try:
            return [parse_target(value).text]
        except InvalidTarget:
            return []

    def _why_refused(self, decision: FleetDecision) -> tuple[str, str] | None:
        """The never-ban policy, as for our own bans; overlapping ranges cannot share an interval set."""
        try:
            self._monitor.enforcer.policy.check(decision.target)
        except BanRefused as err:
            return err.code, str(err)
        target = decision.target
        if not target.single and target.text not in self._held:
            for text, held in self._held.items():
                other = next(iter(held.values())).target if held else None
                same_kind = other is not None and not other.single and other.version == target.version
                if same_kind and other is not None and other.network.overlaps(target.network):
                    return "overlaps", f"{target} overlaps the fleet decision for {text}"
        return None

    def _sync(self, nft: NftFirewall | None, changed: set[str], now: float) -> None:
        """Add, refresh or remove the changed targets in one batch each."""
        for text in [t for t, held in self._held.items() if not held or max(d.expires for d in held.values()) <= now]:
            del self._held[text]  # expired: the kernel's timeout removed the element already
        if nft is None or not changed:
            return
        add: list[BanElement] = []
        remove: list[Target] = []
        for text in changed:
            held = self._held.get(text)
            if held:
                add.append(BanElement(parse_target(text), math.ceil(max(d.expires for d in held.values()) - now)))
            else:
                try:
                    remove.append(parse_target(text))
                except InvalidTarget:
                    continue
        if remove:
            nft.remove(remove, FAMILY)
        if add:
            nft.add(add, FAMILY)

    def holds(self, text: str) -> bool:
        """Whether a fleet decision covers exactly this target (worker thread)."""
        return bool(self._held.get(text))

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        """The decisions in force, longest first per target (worker thread)."""
        now = time.time()
        rows = [max(held.values(), key=lambda d: d.expires).as_json(now) for held in self._held.values() if held]
        return sorted(rows, key=lambda r: -int(r["remaining_s"]))[:limit]

    def counts(self) -> dict[str, int]:
        """Targets held per origin (a target counts for the origin of its longest decision)."""
        origins: Counter[str] = Counter()
        for held in self._held.values():
            if held:
                origins[max(held.values(), key=lambda d: d.expires).origin.value] += 1
        return dict(origins)

    def status(self) -> dict[str, Any]:
        """The pull half of ``/status``'s fleet section."""
        return {
            "lapi_reachable": self.reachable,
            "credentials_ok": self.key_ok,
            "last_stream": self.last_stream,
            "enforcing": self.enforcing,
            "decisions": self.counts(),
            "refused": list(self._refused.values())[:MAX_REFUSED_SHOWN],
            "refused_total": self.refused_total,
            "malformed": self.malformed,
            "error": self.error,
        }
