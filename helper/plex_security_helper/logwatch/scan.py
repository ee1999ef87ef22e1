"""Offline analysis of Plex log files: a thin driver of the one pipeline (pipeline.py).

Files are read oldest first as one continuous log, in large binary chunks cut at the last
newline; the report is built from the same per-address tallies the live monitor commits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import BAN_KINDS, AddressTally, Alert
from ..thresholds import DetectConfig
from .pipeline import JOINER_CAPACITY, Batch, Pipeline
from .plexlog import log_lines

_ROTATED = re.compile(r"\.(\d+)\.log$")
READ_CHUNK = 1 << 22


def oldest_first(paths: Iterable[Path]) -> list[Path]:
    """Order ``X.5.log … X.1.log, X.log`` (and anything else by name) from oldest to newest."""

    def key(path: Path) -> tuple[int, str]:
        m = _ROTATED.search(path.name)
        return (-int(m.group(1)) if m else 0, path.name)

    return sorted(paths, key=key)


def read_chunks(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[list[str]]:
    """Lists of complete lines (no newline; undecodable bytes become U+FFFD), chunk by chunk."""
    rest = b""
    with path.open("rb", buffering=0) as handle:
        while True:
            data = handle.read(READ_CHUNK)
            if progress is not None:
                progress(len(data))
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            yield _lines(data[:cut])
    if rest:
        yield _lines(rest)


def _lines(data: bytes) -> list[str]:
    return log_lines(data.decode("utf-8", "replace"))


@dataclass(slots=True)
class AddressReport:
    """What one address did in the scanned files."""

    tally: AddressTally
    reasons: set[str] = field(default_factory=set)
    ban: bool = False

    def verdict(self) -> str:
        """``ban`` (an alert that bans), ``watch`` (suspicious, below thresholds) or ``ok``."""
        if self.ban:
            return "ban"
        if self.tally.failed_auth or self.tally.probes or self.reasons:
            return "watch"
        return "ok"


@dataclass(slots=True)
class ScanReport:
    """The result of one scan; :meth:`as_json` is the documented ``scan --json`` shape."""

    lines: int = 0
    parsed: int = 0
    parse_failures: int = 0
    unverified: int = 0
    addresses: dict[str, AddressReport] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def add(self, batch: Batch) -> None:
        """Fold one batch of the pipeline into the report."""
        self.lines += batch.lines
        self.parsed += batch.access
        self.parse_failures += batch.parse_failures
        self.unverified += batch.unverified
        for ip, tally in batch.tallies.items():
            found = self.addresses.get(ip)
            if found is None:
                self.addresses[ip] = AddressReport(tally)
            else:
                found.tally.add(tally)
        for alert in batch.verdicts.alerts:
            self.record(alert)

    def record(self, alert: Alert) -> None:
        """Note an alert: its kind becomes a reason, a ban kind makes the verdict "ban"."""
        target = self.addresses.get(alert.ip)
        if target is None:
            target = self.addresses[alert.ip] = AddressReport(AddressTally(alert.time, alert.time))
        target.reasons.add(alert.kind)
        target.ban = target.ban or alert.kind in BAN_KINDS
        self.alerts.append(alert.as_json())

    def summary(self) -> str:
        """One line: lines, access lines, addresses, bans, watches (and a hint when blind)."""
        verdicts = [r.verdict() for r in self.addresses.values()]
        text = (
            f"{self.lines} lines, {self.parsed} access lines, {len(self.addresses)} addresses:"
            f" {verdicts.count('ban')} to ban, {verdicts.count('watch')} to watch"
        )
        if self.lines and not self.parsed:
            text += " (no access lines: Plex's debug logging is probably off)"
        return text

    def as_json(self) -> dict[str, Any]:
        """The documented shape: ``{"lines", "parsed", "addresses": [...]}``.

        Each address: ``{"ip", "verdict", "failed_auth", "probes", "requests", "alerts", "reasons"}``.
        """
        order = {"ban": 0, "watch": 1, "ok": 2}
        rows = sorted(
            self.addresses.items(),
            key=lambda kv: (order[kv[1].verdict()], -kv[1].tally.failed_auth - kv[1].tally.probes, kv[0]),
        )
        return {
            "lines": self.lines,
            "parsed": self.parsed,
            "addresses": [
                {
                    "ip": ip,
                    "verdict": rep.verdict(),
                    "failed_auth": rep.tally.failed_auth,
                    "probes": rep.tally.probes,
                    "requests": rep.tally.requests,
                    "alerts": rep.tally.alerts,
                    "reasons": sorted(rep.reasons),
                }
                for ip, rep in rows
            ],
        }


def scan_lines(lines: Iterable[str], config: DetectConfig, *, trusted_proxies: Iterable[str] = ()) -> ScanReport:
    """Run the pipeline over *lines* as one log."""
    pipeline = Pipeline(config, trusted_proxies=trusted_proxies)
    report = ScanReport()
    pipeline.feed(lines)
    pipeline.finish()
    report.add(pipeline.take())
    return report


class Progress:
    """Bytes read and lines per second on a terminal's stderr, at most twice a second."""

    def __init__(self, total: int, write: Callable[[str], object]) -> None:
        self.total = total
        self.read = 0
        self.lines = 0
        self._write = write
        self._start = self._last = time.monotonic()

    def advance(self, size: int) -> None:
        """Count *size* more bytes read; redraw when half a second passed."""
        self.read += size
        now = time.monotonic()
        if now - self._last >= 0.5 or (size == 0 and self.read >= self.total):
            self._last = now
            rate = self.lines / max(now - self._start, 1e-6)
            percent = 100 * self.read / max(self.total, 1)
            self._write(f"\r{self.read / 1e6:8.1f} / {self.total / 1e6:.1f} MB ({percent:3.0f} %), {rate:,.0f} lines/s")


def scan_files(
    paths: Iterable[Path],
    config: DetectConfig,
    *,
    trusted_proxies: Iterable[str] = (),
    joiner_capacity: int = JOINER_CAPACITY,
    progress: Progress | None = None,
) -> ScanReport:
    """Scan files oldest first as one continuous log."""
    pipeline = Pipeline(config, trusted_proxies=trusted_proxies, joiner_capacity=joiner_capacity)
    report = ScanReport()
    advance = progress.advance if progress is not None else None
    for path in oldest_first(paths):
        for lines in read_chunks(path, advance):
            pipeline.feed(lines)
            report.add(pipeline.take())  # per chunk: the failures list stays one chunk long
            if progress is not None:
                progress.lines += len(lines)
    pipeline.finish()
    report.add(pipeline.take())
    return report
