"""The finding model and the security score.

Score: ``100 − Σ weight(severity)`` over findings that are not accepted deviations, floored at 0,
with weights critical 40, high 20, medium 8, low 3, info 0. One critical finding caps the score at
60, two at 20: a server that lets the internet in without a password must not look "mostly fine".
An audit that could check neither Plex's settings nor its API has no score (``None``): a server
that was not found is not 89/100 safe. Areas that could not be checked are listed as such, never
scored as findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


WEIGHTS = {Severity.CRITICAL: 40, Severity.HIGH: 20, Severity.MEDIUM: 8, Severity.LOW: 3, Severity.INFO: 0}
SEVERITY_ORDER = list(Severity)
# Without both of these, Plex itself was not checked: no score.
PLEX_AREAS = ("plex_preferences", "plex_api")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that is wrong (or worth knowing), with evidence and a fix.

    ``id`` is stable (``plex.allowed_networks_public``, ``docker.5.32.docker_sock``); ``subject``
    names the container or file when the same check can fire more than once.
    """

    id: str
    severity: Severity
    title: str
    evidence: str
    remediation: str
    references: tuple[str, ...] = ()
    subject: str = ""
    fix: tuple[str, ...] = ()  # shell commands (already quoted) for the remediation script
    accepted: str | None = None  # the owner's reason when this is an accepted deviation

    @property
    def key(self) -> str:
        """What an acceptance refers to: ``id`` or ``id:subject``."""
        return f"{self.id}:{self.subject}" if self.subject else self.id

    def as_json(self) -> dict[str, Any]:
        """The shape served by ``/api/v1/audit``."""
        return {
            "id": self.id,
            "key": self.key,
            "severity": self.severity.value,
            "title": self.title,
            "subject": self.subject,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "references": list(self.references),
            "accepted": self.accepted is not None,
            "accepted_reason": self.accepted,
        }


@dataclass(slots=True)
class AuditReport:
    """All findings of one audit run, plus what could not be checked."""

    started: float
    finished: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)  # area → why
    facts: dict[str, Any] = field(default_factory=dict)  # plex version, claimed, … for the UI

    def accept(self, accepted: dict[str, str]) -> None:
        """Mark findings the owner accepted (by ``id:subject`` or by ``id`` for all subjects)."""
        self.findings = [
            replace(f, accepted=accepted.get(f.key, accepted.get(f.id)))
            if (f.key in accepted or f.id in accepted)
            else f
            for f in self.findings
        ]

    def score(self) -> int | None:
        """0–100, or None when Plex could not be checked at all; see the module docstring."""
        if all(area in self.not_checked for area in PLEX_AREAS):
            return None
        return max(0, 100 - sum(WEIGHTS[f.severity] for f in self.findings if f.accepted is None))

    def counts(self) -> dict[str, int]:
        """Open (not accepted) findings per severity."""
        counts = {s.value: 0 for s in Severity}
        for finding in self.findings:
            if finding.accepted is None:
                counts[finding.severity.value] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        """The audit document."""
        ordered = sorted(self.findings, key=lambda f: (SEVERITY_ORDER.index(f.severity), f.id, f.subject))
        return {
            "started": self.started,
            "finished": self.finished,
            "score": self.score(),
            "counts": self.counts(),
            "findings": [f.as_json() for f in ordered],
            "not_checked": self.not_checked,
            "facts": self.facts,
        }
