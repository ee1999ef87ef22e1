"""Plex versions (``A.B.C.BUILD-hash``) and the shipped vulnerability table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

type Version = tuple[int, int, int, int]

_VERSION = re.compile(r"^\s*(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,9}))?")


def parse_version(text: str) -> Version | None:
    """The four numbers of a Plex version; missing trailing numbers count as 0."""
    m = _VERSION.match(text or "")
    if m is None:
        return None
    a, b, c, build = (int(g) if g is not None else 0 for g in m.groups())
    return (a, b, c, build)


SIDES = ("server", "plex.tv")


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One row of ``data/plex_cves.json``.

    ``side`` is ``server`` (matched against the running build) or ``plex.tv`` (a service-side
    CVE or breach: no server build is affected or fixed, so it never matches a version and the
    audit reports it as information). ``fixed`` None means no fix is published.
    """

    id: str
    also: tuple[str, ...]
    severity: str
    title: str
    fixed: Version | None
    affected_min: Version | None
    affected_max: Version | None
    platform: str | None
    side: str = "server"
    references: tuple[str, ...] = ()
    note: str = ""
    remediation: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id this row answers to (its own, then component CVEs and advisories)."""
        return (self.id, *self.also)

    def affects(self, version: Version, platform: str = "linux") -> bool:
        """True when *version* on *platform* is in the affected range (never for plex.tv rows)."""
        if self.side != "server":
            return False
        if self.platform is not None and self.platform != platform:
            return False
        if self.affected_min is not None and version < self.affected_min:
            return False
        if self.fixed is not None and version >= self.fixed:
            return False
        return not (self.affected_max is not None and version > self.affected_max)


def _row(row: dict[str, Any]) -> Vulnerability:
    def ver(key: str) -> Version | None:
        value = row.get(key)
        if value is None:
            return None
        parsed = parse_version(str(value))
        if parsed is None:
            raise ValueError(f"{row.get('id')}: unparseable {key} {value!r}")
        return parsed

    vuln = Vulnerability(
        id=str(row["id"]),
        also=tuple(str(a) for a in row.get("also", ())),
        severity=str(row["severity"]),
        title=str(row["title"]),
        fixed=ver("fixed"),
        affected_min=ver("affected_min"),
        affected_max=ver("affected_max"),
        platform=row.get("platform"),
        side=str(row.get("side", "server")),
        references=tuple(str(r) for r in row.get("references", ())),
        note=str(row.get("note", "")),
        remediation=str(row.get("remediation", "")),
    )
    if vuln.side not in SIDES:
        raise ValueError(f"{vuln.id}: side must be one of {SIDES}")
    bounded = (vuln.fixed, vuln.affected_min, vuln.affected_max) != (None, None, None)
    if vuln.side == "plex.tv" and bounded:
        raise ValueError(f"{vuln.id}: a plex.tv row has no server versions")
    if vuln.side == "server" and vuln.fixed is None and vuln.affected_max is None:
        raise ValueError(f"{vuln.id}: a server row without 'fixed' or 'affected_max' would flag every build")
    return vuln


def load_vulnerabilities(text: str | None = None) -> list[Vulnerability]:
    """The table shipped as data, so that it can be updated without a code change."""
    if text is None:
        return list(_shipped())
    return [_row(r) for r in json.loads(text)["vulnerabilities"]]


@cache
def _shipped() -> tuple[Vulnerability, ...]:
    """The shipped table, read once: the detector asks it on every exploit alert."""
    raw = (resources.files("plex_security_helper") / "data" / "plex_cves.json").read_text()
    return tuple(_row(r) for r in json.loads(raw)["vulnerabilities"])


def affected_advisories(
    advisories: Iterable[str],
    version: Version | None,
    platform: str = "linux",
    table: Iterable[Vulnerability] | None = None,
) -> list[Vulnerability]:
    """The rows named by *advisories* (by id or ``also``) that affect the running *version*.

    An exploit rule names the advisories whose request shape it matches; a non-empty answer means
    the attack hits a build that is still vulnerable, so the alert is critical. An unknown version
    answers nothing: the audit reports it separately.
    """
    if version is None:
        return []
    wanted = set(advisories)
    rows = _shipped() if table is None else table
    return [v for v in rows if wanted.intersection(v.ids) and v.affects(version, platform)]


def fix_advice(affected: Iterable[Vulnerability]) -> str:
    """The repair text of a critical exploit alert: the newest fix build among *affected*.

    Rows without a published fix are named as such, so the advice never promises an update that
    does not exist.
    """
    rows = list(affected)
    fixes = [v.fixed for v in rows if v.fixed is not None]
    unfixed = [v.id for v in rows if v.fixed is None]
    parts = []
    if fixes:
        fixed_ids = ", ".join(v.id for v in rows if v.fixed is not None)
        parts.append(f"Update Plex Media Server to {format_version(max(fixes))} or newer ({fixed_ids}).")
    if unfixed:
        parts.append(f"No fix published yet for {', '.join(unfixed)}.")
    return " ".join(parts)


def format_version(version: Version) -> str:
    """``1.43.3.10828``."""
    return ".".join(str(n) for n in version)
