"""Plex versions (``A.B.C.BUILD-hash``) and the shipped vulnerability table."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeAlias

Version: TypeAlias = tuple[int, int, int, int]

_VERSION = re.compile(r"^\s*(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,9}))?")


def parse_version(text: str) -> Version | None:
    """The four numbers of a Plex version; missing trailing numbers count as 0."""
    m = _VERSION.match(text or "")
    if m is None:
        return None
    a, b, c, build = (int(g) if g is not None else 0 for g in m.groups())
    return (a, b, c, build)


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One row of ``data/plex_cves.json``."""

    id: str
    also: tuple[str, ...]
    severity: str
    title: str
    fixed: Version | None
    affected_min: Version | None
    affected_max: Version | None
    platform: str | None

    def affects(self, version: Version, platform: str = "linux") -> bool:
        """True when *version* on *platform* is in the affected range."""
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
        return parse_version(value) if value else None

    return Vulnerability(
        id=str(row["id"]),
        also=tuple(row.get("also", ())),
        severity=str(row["severity"]),
        title=str(row["title"]),
        fixed=ver("fixed"),
        affected_min=ver("affected_min"),
        affected_max=ver("affected_max"),
        platform=row.get("platform"),
    )


def load_vulnerabilities(text: str | None = None) -> list[Vulnerability]:
    """The table shipped as data, so that it can be updated without a code change."""
    raw = (
        text if text is not None else (resources.files("plex_security_helper") / "data" / "plex_cves.json").read_text()
    )
    return [_row(r) for r in json.loads(raw)["vulnerabilities"]]


def format_version(version: Version) -> str:
    """``1.43.3.10828``."""
    return ".".join(str(n) for n in version)
