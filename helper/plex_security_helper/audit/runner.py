"""One audit run: Plex files and API, host exposure, firewall state, Docker; and its schedule."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from ..config import AuditConfig, PlexTvConfig
from ..firewall.enforcer import Enforcer
from ..plex.plextv import audit_account
from ..plex.sessions import server_token
from . import host
from .docker import DockerUnavailable, audit_docker
from .findings import AuditReport, Finding, Severity
from .plexapi import Identity, Mapping, PlexClient, PlexUnavailable, exposure_findings, version_findings
from .preferences import UNREAD_PREFERENCES, file_mode_findings, preferences_findings, public_facts, read_preferences

_LOGGER = logging.getLogger(__name__)


class Auditor:
    """Runs audits (never two at once) and keeps the latest report."""

    def __init__(self, config: AuditConfig, enforcer: Enforcer | None = None) -> None:
        self.config = config
        self.enforcer = enforcer
        self.last: AuditReport | None = None
        # Called with each finished report (the monitor learns the running Plex build from it).
        self.listeners: list[Callable[[AuditReport], None]] = []
        self._lock = asyncio.Lock()
        self.last_started = 0.0
        self.plex_tv = PlexTvConfig()  # the app sets the owner's choice (opt-in)

    @property
    def running(self) -> bool:
        """An audit is under way."""
        return self._lock.locked()

    def retry_after(self, now: float) -> int:
        """Seconds until an on-demand run is allowed again (0: now)."""
        return max(0, int(self.last_started + self.config.cooldown - now + 0.999))

    async def run(self) -> AuditReport:
        """Audit now (waits for a run already under way rather than starting a second)."""
        async with self._lock:
            self.last_started = time.time()
            report = AuditReport(started=self.last_started)
            # The threaded resolver: Plex is an address, and aiodns (when installed) keeps a
            # thread of its own polling for the helper's whole life.
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
            async with aiohttp.ClientSession(connector=connector) as session:
                await self._plex(report, session)
                token = await asyncio.to_thread(server_token, self.config)
                await audit_account(report, session, self.plex_tv, token)
            await self._host(report)
            await self._docker(report)
            report.accept(self.config.accept)
            report.finished = time.time()
            self.last = report
            for listener in self.listeners:
                listener(report)
            return report

    async def _plex(self, report: AuditReport, session: aiohttp.ClientSession) -> None:
        cfg = self.config
        prefs_path = cfg.plex_dir / "Preferences.xml"
        prefs, findings = await asyncio.to_thread(read_preferences, prefs_path)
        # Not finding (or not being let to read) the file means it was not checked, not that it is bad.
        unchecked = [f for f in findings if f.id in UNREAD_PREFERENCES]
        report.findings += [f for f in findings if f not in unchecked]
        report.findings += await asyncio.to_thread(file_mode_findings, prefs_path, cfg.plex_dir / "Logs")
        client = PlexClient(session, cfg.plex_url, cfg.plex_token or None)
        identity: Identity | None = None
        mapping: Mapping | None = None
        try:
            identity = await client.identity()
        except PlexUnavailable as err:
            report.not_checked["plex_api"] = str(err)
        if identity is not None and cfg.plex_token:
            try:
                mapping = await client.mapping()
            except PlexUnavailable as err:
                report.not_checked["remote_access"] = str(err)
            if prefs is None:
                try:
                    prefs = await client.preferences()
                except PlexUnavailable as err:
                    report.not_checked["plex_preferences_api"] = str(err)
        elif identity is not None:
            report.not_checked["remote_access"] = "no plex_token configured"
        if prefs is not None:
            report.findings += preferences_findings(prefs)
            report.facts.update(public_facts(prefs))
        else:
            report.not_checked["plex_preferences"] = (
                f"{unchecked[0].evidence}; {unchecked[0].remediation}"
                if unchecked
                else "Preferences.xml could not be read"
            )
        if identity is not None:
            report.findings += version_findings(identity.version)
            report.facts.update(
                {
                    "plex_version": identity.version,
                    "claimed": identity.claimed,
                    "machine_identifier": identity.machine_identifier or report.facts.get("machine_identifier"),
                }
            )
        report.findings += exposure_findings(identity, mapping)
        report.facts["remote_access"] = mapping.mapping_state if mapping else None
        report.facts["remote_access_exposed"] = bool(mapping and mapping.mapping_state == "mapped")
        report.facts["vulnerable"] = any(f.id == "plex.vulnerable_version" for f in report.findings)

    async def _host(self, report: AuditReport) -> None:
        if self.config.host:
            sockets = await asyncio.to_thread(host.bound_sockets, self.config.proc_net)
            report.findings += host.exposure_findings(sockets)
        else:
            report.not_checked["host"] = "host socket checks are off in the configuration"
        enforcer = self.enforcer
        if enforcer is None:
            return
        if not enforcer.enforcing:
            report.findings.append(
                Finding(
                    "host.enforcement_off",
                    Severity.LOW,
                    "Enforcement is off (monitor only)",
                    f"firewall mode {enforcer.mode!r}, backend {enforcer.config.backend!r}:"
                    " attackers are recorded, not blocked",
                    'Set mode = "enforce" in [firewall] once the recorded bans look right.',
                )
            )
        else:
            problem = await asyncio.to_thread(enforcer.backend.problem)
            if problem is not None:
                report.findings.append(
                    Finding(problem.finding_id, Severity.HIGH, problem.title, problem.evidence, problem.fix)
                )

    async def _docker(self, report: AuditReport) -> None:
        if not self.config.docker:
            report.not_checked["docker"] = "the Docker audit is off in the configuration"
            return
        try:
            report.findings += await audit_docker(self.config.docker_socket)
        except DockerUnavailable as err:
            report.not_checked["docker"] = str(err)
            report.findings.append(
                Finding(
                    "docker.unavailable",
                    Severity.INFO,
                    "No Docker engine to audit",
                    str(err),
                    "Nothing to do unless Plex runs in Docker; then set [audit] docker_socket.",
                )
            )

    def status(self) -> dict[str, Any]:
        """The ``audit`` section of ``/status``."""
        report = self.last
        if report is None:
            return {"available": False, "reason": "the first audit is running" if self.running else "no audit yet"}
        open_findings = [f for f in report.findings if f.accepted is None]
        worst = sorted(open_findings, key=lambda f: list(Severity).index(f.severity))[:5]
        return {
            "available": True,
            "score": report.score(),
            "counts": report.counts(),
            "last_run": report.finished,
            "running": self.running,
            "top": [{"id": f.id, "key": f.key, "severity": f.severity.value, "title": f.title} for f in worst],
            "serious": sorted({f.id for f in open_findings if f.severity in (Severity.CRITICAL, Severity.HIGH)}),
            "open": sorted({f.id for f in open_findings}),
            "not_checked": sorted(report.not_checked),
        }

    def plex_status(self) -> dict[str, Any]:
        """The ``plex`` section of ``/status``: facts the last audit learnt."""
        report = self.last
        if report is None or ("plex_version" not in report.facts and "debug_logging" not in report.facts):
            return {"available": False, "reason": "Plex has not been audited yet or could not be reached"}
        facts = report.facts
        return {
            "available": True,
            "version": facts.get("plex_version"),
            "claimed": facts.get("claimed"),
            "vulnerable": bool(facts.get("vulnerable")),
            "remote_access": facts.get("remote_access"),
            "remote_access_exposed": bool(facts.get("remote_access_exposed")),
            "debug_logging": facts.get("debug_logging"),
            "allowed_networks_public": any(
                f.id == "plex.allowed_networks_public" and f.accepted is None for f in report.findings
            ),
        }


async def schedule(auditor: Auditor, interval: float) -> None:
    """Audit at start and then every *interval* seconds until cancelled."""
    while True:
        try:
            await auditor.run()
        except Exception as err:  # noqa: BLE001 - a failing audit must not end the schedule
            _LOGGER.error("audit failed: %s", err)
        await asyncio.sleep(interval)
