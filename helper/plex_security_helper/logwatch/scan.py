"""Offline analysis of Plex log files: the same parser and detector as the live monitor."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DetectConfig
from .detect import BAN_KINDS, Detector, Verdicts, is_probe
from .plexlog import LogParser, RequestJoiner

_ROTATED = re.compile(r"\.(\d+)\.log$")
READ_CHUNK = 1 << 22


def oldest_first(paths: Iterable[Path]) -> list[Path]:
    """Order ``X.5.log … X.1.log, X.log`` (and anything else by name) from oldest to newest."""

    def key(path: Path) -> tuple[int, str]:
        m = _ROTATED.search(path.name)
        return (-int(m.group(1)) if m else 0, path.name)

    return sorted(paths, key=key)


def read_lines(path: Path) -> Iterator[str]:
    """Lines of a file without their newline; undecodable bytes become U+FFFD."""
    with path.open("r", encoding="utf-8", errors="replace", newline="\n", buffering=READ_CHUNK) as handle:
        for line in handle:
            yield line.rstrip("\r\n")


@dataclass(slots=True)
class AddressReport:
    """What one address did in the scanned files."""

    requests: int = 0
    failed_auth: int = 0
    probes: int = 0
    reasons: set[str] = field(default_factory=set)
    ban: bool = False

    def verdict(self) -> str:
        """``ban`` (an alert that bans), ``watch`` (suspicious, below thresholds) or ``ok``."""
        if self.ban:
            return "ban"
        if self.failed_auth or self.probes or self.reasons:
            return "watch"
        return "ok"


@dataclass(slots=True)
class ScanReport:
    """The result of one scan; :meth:`as_json` is the documented ``scan --json`` shape."""

    lines: int = 0
    parsed: int = 0
    addresses: dict[str, AddressReport] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """``{"lines", "parsed", "addresses": [{"ip", "verdict", "failed_auth", "probes", "requests", "reasons"}]}``."""
        order = {"ban": 0, "watch": 1, "ok": 2}
        rows = sorted(
            self.addresses.items(), key=lambda kv: (order[kv[1].verdict()], -kv[1].failed_auth - kv[1].probes, kv[0])
        )
        return {
            "lines": self.lines,
            "parsed": self.parsed,
            "addresses": [
                {
                    "ip": ip,
                    "verdict": rep.verdict(),
                    "failed_auth": rep.failed_auth,
                    "probes": rep.probes,
                    "requests": rep.requests,
                    "reasons": sorted(rep.reasons),
                }
                for ip, rep in rows
            ],
        }


def scan_lines(lines: Iterable[str], config: DetectConfig, report: ScanReport | None = None) -> ScanReport:
    """Run parser, joiner and detector over *lines*, accumulating into *report*."""
    report = report or ScanReport()
    parser = LogParser()
    joiner = RequestJoiner()
    detector = Detector(config)
    addresses = report.addresses
    verdicts = Verdicts()
    for line in lines:
        report.lines += 1
        rec = parser.parse(line)
        if rec is None:
            continue
        report.parsed += 1
        event = joiner.feed(rec)
        if event is None:
            continue
        rep = addresses.get(event.ip)
        if rep is None:
            rep = addresses[event.ip] = AddressReport()
        rep.requests += 1
        if is_probe(event.path):
            rep.probes += 1
        detector.feed(event, verdicts)
        if verdicts.failures:
            rep.failed_auth += len(verdicts.failures)
            verdicts.failures.clear()
        if verdicts.alerts:
            for alert in verdicts.alerts:
                target = addresses.setdefault(alert.ip, AddressReport())
                target.reasons.add(alert.kind)
                target.ban = target.ban or alert.kind in BAN_KINDS
                report.alerts.append(alert.as_json())
            verdicts.alerts.clear()
    return report


def scan_files(paths: Iterable[Path], config: DetectConfig) -> ScanReport:
    """Scan files oldest first as one continuous log."""
    ordered = oldest_first(paths)

    def all_lines() -> Iterator[str]:
        for path in ordered:
            yield from read_lines(path)

    return scan_lines(all_lines(), config)
