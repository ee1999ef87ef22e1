"""Bans end to end: policy, the ban record in SQLite, and the backend that enforces it.

Runs on the monitor's worker thread (it owns the database), so detector verdicts turn into
kernel elements without crossing threads. Every ban is recorded before the backend is asked,
so a failing backend loses nothing: :meth:`Enforcer.reconcile` applies what is pending, and
a restart re-applies every active ban with its remaining time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..config import FirewallConfig
from ..model import Alert, AlertKind, Ban, Origin, Verdict
from ..store import Store
from .backend import Backend, NftBackend, make_backend
from .geoip import GeoError, load_countries
from .hooks import BanHooks
from .nft import PROFILES, BanElement, RateProfile, Ruleset
from .policy import MIN_PREFIX, BanPolicy, BanRefused, BanTimes, default_gateways
from .runner import BackendError
from .targets import InvalidTarget, Target, parse_target

_LOGGER = logging.getLogger(__name__)
MIN_DURATION = 60
MAX_DURATION = 365 * 86_400
MAX_REASON = 200


class NotBanned(Exception):
    """Unban of a target that has no active ban."""


class NotAllowed(Exception):
    """Removal of an allow-list entry that was never added at run time."""


def ban_event(kind: AlertKind, ban: Ban, now: float) -> Alert:
    """A "banned"/"unbanned" entry for the alert stream, so Home Assistant sees every change."""
    return Alert(
        kind=kind,
        ip=ban.target,
        time=now,
        first_seen=ban.created,
        last_seen=now,
        count=ban.offences,
        score=0,
        detail={
            "verdict": Verdict.INFO,
            "origin": ban.origin,
            "reason": ban.reason,
            "expires": ban.expires,
            "enforced": ban.enforced,
        },
    )


class Enforcer:
    """Decides, records and enforces bans. Blocking: call it on the worker thread."""

    def __init__(self, config: FirewallConfig, proxies: Sequence[str] = ()) -> None:
        self.config = config
        # Trusted reverse proxies carry every proxied client: never banned, like the gateway.
        protect = [*config.protect, *proxies, *(default_gateways() if config.protect_gateway else [])]
        times = BanTimes(base=config.ban_time, factor=config.ban_time_factor, maximum=config.max_ban_time)
        self.policy = BanPolicy(config.allow, protect, times)
        self.mode = config.mode
        self.backend: Backend = make_backend(config, config.mode)
        self.error: str | None = None
        self.geo_networks = 0
        self.applied = False
        self.hooks: BanHooks | None = None  # the fleet's outbox and the metrics (fleet/hooks.py)

    # -- ruleset -----------------------------------------------------------------------------
    def rates(self) -> RateProfile:
        """The profile with the config's overrides."""
        base = PROFILES[self.config.profile]
        return RateProfile(
            new_per_minute=self.config.new_per_minute or base.new_per_minute,
            burst=self.config.burst or base.burst or 1,
            max_concurrent=self.config.max_concurrent or base.max_concurrent,
        )

    def ruleset(self) -> Ruleset:
        """What :class:`NftFirewall` renders, GeoIP networks from the owner's file or the packaged data."""
        geo: tuple[Any, ...] = ()
        if self.config.geoip_mode:
            geo = load_countries(self.config.geoip_source, self.config.geoip_countries)
            if self.config.geoip_mode == "allow" and not geo:
                raise GeoError("the GeoIP allow-list is empty: it would cut every client off; check geoip_source")
            self.geo_networks = len(geo)
        return Ruleset(
            plex_port=self.config.plex_port,
            rates=self.rates(),
            allow=self.policy.allow,
            geo_mode=self.config.geoip_mode,
            geo=geo,
            log_drops=self.config.log_drops,
        )

    @property
    def enforcing(self) -> bool:
        """Whether bans reach a firewall (False in monitor mode: they are only recorded)."""
        return self.backend.enforcing

    def set_mode(self, store: Store, mode: str, now: float) -> None:
        """Switch between ``monitor`` and ``enforce`` at run time (a new backend, then start)."""
        if mode not in ("monitor", "enforce"):
            raise ValueError("mode must be monitor or enforce")
        if self.enforcing and mode != "enforce":
            try:
                self.backend.stop()
            except BackendError as err:
                self._fail(err)
        self.mode = mode
        self.backend = make_backend(self.config, mode)
        self.applied = False
        self.error = None
        self.start(store, now)

    def _fail(self, err: Exception) -> None:
        if self.error != str(err):
            _LOGGER.error("firewall: %s", err)
        self.error = str(err)

    def start(self, store: Store, now: float) -> None:
        """Load the ruleset and re-apply every active ban with its remaining time."""
        for target, _, _ in store.allows():
            self.policy.add_allow(parse_target(target).network)
        if not self.enforcing:
            return
        try:
            active = [
                b
                for b in store.active_bans(now)
                if b.enforce_at == "host" and self.backend.supports(parse_target(b.target))
            ]
            self.backend.init(self.ruleset, self._elements(active, now))
            self.applied = True
            store.put_bans([replace(b, enforced=True) for b in active if not b.enforced])
            self.error = None
        except (BackendError, GeoError) as err:
            self._fail(err)

    def kernel_bans(self) -> dict[str, int | None]:
        """The bans the kernel's set holds, with seconds left (empty unless enforcing with nft)."""
        if not isinstance(self.backend, NftBackend):
            return {}
        found: dict[str, int | None] = {}
        for text, left in self.backend.firewall.banned().items():
            try:
                found[parse_target(text).text] = left
            except ValueError:
                continue
        return found

    def reconcile(self, store: Store, now: float) -> None:
        """Re-load a table that vanished (a reboot, or someone wiping every rule) and apply pending bans."""
        if not self.enforcing:
            return
        if not self.applied or not self.backend.loaded():
            self.start(store, now)
            return
        pending = [b for b in store.active_bans(now) if not b.enforced and b.enforce_at == "host"]
        if pending:
            try:
                self._enforce(store, pending, now)
                self.error = None
            except BackendError as err:
                self._fail(err)

    @staticmethod
    def _elements(bans: Sequence[Ban], now: float) -> list[BanElement]:
        return [BanElement(parse_target(b.target), math.ceil(b.expires - now)) for b in bans]

    def _enforce(self, store: Store, bans: Sequence[Ban], now: float) -> None:
        """Ask the backend; mark the bans enforced once it said yes (this host's bans only)."""
        bans = [b for b in bans if b.enforce_at == "host"]
        if not bans:
            return
        self.backend.add(self._elements(bans, now))
        store.put_bans([replace(b, enforced=True) for b in bans if not b.enforced])

    # -- bans --------------------------------------------------------------------------------
    def _new_ban(
        self, store: Store, target: Target, *, duration: int | None, reason: str, origin: str, now: float
    ) -> Ban:
        previous = store.ban(target.text)
        if previous is not None and previous.active(now):
            offences = previous.offences
        elif previous is not None and previous.created > now - self.policy.times.memory:
            offences = previous.offences + 1
        else:
            offences = 1
        seconds = duration if duration is not None else self.policy.times.duration(offences)
        return Ban(
            target=target.text,
            created=now,
            expires=now + seconds,
            reason=reason,
            origin=origin,
            offences=offences,
            enforced=False,
        )

    def _check_overlap(self, store: Store, target: Target, now: float) -> None:
        if target.single:
            return
        for ban in store.active_bans(now):
            other = parse_target(ban.target)
            same_kind = other.version == target.version and not other.single and other.text != target.text
            if same_kind and target.network.overlaps(other.network):
                raise BanRefused("overlaps", f"{target} overlaps the active ban of {other}; unban it first")

    def ban(
        self,
        store: Store,
        text: str,
        *,
        duration: int | None,
        reason: str,
        origin: str,
        force: bool,
        now: float,
    ) -> Ban:
        """A manual or Home Assistant ban. Raises InvalidTarget, BanRefused or BackendError."""
        target = parse_target(text)
        if origin not in set(Origin):
            raise ValueError(f"origin must be one of {', '.join(Origin)}")
        if duration is not None and not MIN_DURATION <= duration <= MAX_DURATION:
            raise ValueError(f"duration must be {MIN_DURATION} to {MAX_DURATION} seconds")
        if not self.backend.supports(target):
            raise BanRefused("unsupported", f"the {self.backend.name} backend bans single addresses only")
        self.policy.check(target, force=force)
        self._check_overlap(store, target, now)
        ban = self._new_ban(store, target, duration=duration, reason=reason[:MAX_REASON], origin=origin, now=now)
        store.put_bans([ban], self.hooks.recorded([ban], {}, now) if self.hooks else [], now)
        if self.enforcing:
            try:
                self._enforce(store, [ban], now)
            except BackendError as err:
                self._fail(err)
                store.commit_batch([], [ban_event(AlertKind.BANNED, ban, now)], None)
                raise BackendError(
                    f"the ban is recorded and will be retried, but the firewall refused it: {err}"
                ) from None
            ban = replace(ban, enforced=True)
        store.commit_batch([], [ban_event(AlertKind.BANNED, ban, now)], None)
        return ban

    def unban(self, store: Store, text: str, now: float) -> Ban:
        """Lift a ban. Raises InvalidTarget, NotBanned or BackendError."""
        target = parse_target(text)
        lifted = store.lift_ban(target.text, now, self.hooks.lifted if self.hooks else None)
        if lifted is None:
            raise NotBanned(f"{target} is not banned")
        store.commit_batch([], [ban_event(AlertKind.UNBANNED, lifted, now)], None)
        if self.enforcing:
            try:
                self.backend.delete([target])
            except BackendError as err:
                self._fail(err)
                raise BackendError(f"the ban is lifted in the record, but the firewall refused: {err}") from None
        return lifted

    def _ban_target(self, alert: Alert) -> Target:
        target = parse_target(str(alert.detail.get("source") or alert.ip))
        return target if self.backend.supports(target) else parse_target(alert.ip)

    def unbanned_sources(self, store: Store, alerts: Sequence[Alert], now: float) -> list[Alert]:
        """*alerts* without the "ban" verdicts on sources already banned (recorded, in monitor mode).

        In monitor mode a banned attacker keeps going, and the detector would alert again every
        window: one alert per ban period is the news, the rest would be a notification storm.
        """
        kept: list[Alert] = []
        judged: set[str] = set()  # sources whose first "ban" alert of this batch is kept
        for alert in alerts:
            if alert.verdict == Verdict.BAN:
                try:
                    source = self._ban_target(alert).text
                except InvalidTarget:
                    kept.append(alert)
                    continue
                current = store.ban(source)
                if source in judged or (current is not None and current.active(now)):
                    continue
                judged.add(source)
            kept.append(alert)
        return kept

    def auto_ban(self, store: Store, alerts: Sequence[Alert], now: float) -> list[Ban]:
        """Ban the sources of alerts whose verdict is "ban", as one backend batch."""
        fresh: dict[str, Ban] = {}
        sources: dict[str, Alert] = {}
        for alert in alerts:
            if alert.verdict != Verdict.BAN:
                continue
            try:
                target = self._ban_target(alert)
                self.policy.check(target)
            except (InvalidTarget, BanRefused) as err:
                _LOGGER.info("not banning %s after %s: %s", alert.ip, alert.kind, err)
                continue
            current = store.ban(target.text)
            if target.text in fresh or (current is not None and current.active(now)):
                continue
            reason = f"{alert.kind}: {alert.count} in {alert.detail.get('window_s', '?')} s (alert {alert.seq})"
            ban = self._new_ban(store, target, duration=None, reason=reason, origin=Origin.DETECTOR, now=now)
            if alert.detail.get("via"):
                # Its packets come from the proxy: dropping them here would cut every proxied client.
                ban = replace(ban, enforce_at="proxy", reason=f"{reason}, via {alert.detail['via']}")
            fresh[target.text] = ban
            sources[target.text] = alert
        bans = list(fresh.values())
        if not bans:
            return []
        store.put_bans(bans, self.hooks.recorded(bans, sources, now) if self.hooks else [], now)
        if self.enforcing:
            try:
                self._enforce(store, bans, now)
                self.error = None
                bans = [replace(b, enforced=True) if b.enforce_at == "host" else b for b in bans]
            except BackendError as err:
                self._fail(err)
        store.commit_batch([], [ban_event(AlertKind.BANNED, b, now) for b in bans], None)
        return bans

    # -- allow-list -------------------------------------------------------------------------
    def allow(self, store: Store, text: str, *, reason: str, now: float) -> tuple[str, list[Ban]]:
        """Allow-list an address or network at run time; lift the active bans it covers."""
        target = parse_target(text)
        if target.network.prefixlen < MIN_PREFIX[target.version]:
            raise BanRefused(
                "too_broad", f"{target} is wider than /{MIN_PREFIX[target.version]}; allow a narrower network"
            )
        store.put_allow(target.text, reason[:MAX_REASON], now)
        self.policy.add_allow(target.network)
        if self.enforcing:
            try:
                self.backend.set_allowed(target, allowed=True)
            except BackendError as err:
                self._fail(err)
        lifted: list[Ban] = []
        for ban in store.active_bans(now):
            covered = parse_target(ban.target)
            if covered.version == target.version and covered.network.subnet_of(target.network):  # type: ignore[arg-type]
                lifted.append(self.unban(store, ban.target, now))
        return target.text, lifted

    def disallow(self, store: Store, text: str) -> str:
        """Remove a run-time allow-list entry (the configured ones stay)."""
        target = parse_target(text)
        if not store.delete_allow(target.text):
            raise NotAllowed(f"{target} was not added to the allow-list at run time")
        self.policy.remove_allow(target.network)
        configured = {parse_target(a).network for a in self.config.allow}
        if target.network in configured:
            self.policy.add_allow(target.network)
        elif self.enforcing:
            try:
                self.backend.set_allowed(target, allowed=False)
            except BackendError as err:
                self._fail(err)
        return target.text

    def allow_list(self, store: Store) -> list[dict[str, Any]]:
        """Configured and run-time entries."""
        rows: list[dict[str, Any]] = [
            {"ip": parse_target(a).text, "origin": "config", "reason": "configuration", "created": None}
            for a in self.config.allow
        ]
        rows += [{"ip": t, "origin": "runtime", "reason": r, "created": c} for t, r, c in store.allows()]
        return rows

    # -- status ------------------------------------------------------------------------------
    def status(self, store: Store, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``firewall`` and ``bans`` sections of ``/status``."""
        rates = self.rates()
        firewall: dict[str, Any] = {
            "available": True,
            "backend": self.config.backend,
            "mode": self.mode,
            "enforcing": self.enforcing,
            "plex_port": self.config.plex_port,
            "profile": self.config.profile,
            "limits": {
                "new_per_minute": rates.new_per_minute,
                "burst": rates.burst,
                "max_concurrent": rates.max_concurrent,
            },
            "geoip": {"mode": self.config.geoip_mode, "networks": self.geo_networks},
            "active": False,
            "counters": {},
            "error": self.error,
        }
        if self.enforcing:
            try:
                firewall.update(self.backend.status())
            except BackendError as err:
                self._fail(err)
                firewall["error"] = self.error
        active = store.active_bans(now, limit=10)
        by_origin = store.ban_counts(now)
        bans = {
            "available": True,
            "active": sum(by_origin.values()),
            "by_origin": by_origin,
            "pending": store.pending_bans(now) if self.enforcing else 0,
            "recent": [b.as_json(now) for b in active],
        }
        return firewall, bans
