"""Offline analysis of Plex log files: the same parser and detector as the live monitor.

`scan_lines` runs the reference pipeline (plexlog + detect) line by line. `scan_files` hands
the bytes to the compiled twin in _fastscan.c when it was built, which asks the reference
for every judgement it caches (path classes, address facts, epochs, alerts) and gives the
same report about 20 times faster; tests/helper/test_fastscan.py holds the two to that.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..model import BAN_KINDS, Alert
from ..thresholds import DetectConfig
from .detect import (
    Detector,
    Verdicts,
    is_probe,
    is_public,
    make_alert,
    path_flags,
    sanitise_path,
    source_key,
    user_network,
)
from .plexlog import LogParser, RequestJoiner, canonical_ip

_fastscan: ModuleType | None
try:
    from . import _fastscan
except ImportError:  # built without a C compiler: the reference pipeline does the work
    _fastscan = None

_ROTATED = re.compile(r"\.(\d+)\.log$")
READ_CHUNK = 1 << 22
JOINER_CAPACITY = 20_000  # requests waiting for their Completed line


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

    def record(self, alert: Alert) -> None:
        """Note an alert: its kind becomes a reason, a ban kind makes the verdict "ban"."""
        target = self.addresses.setdefault(alert.ip, AddressReport())
        target.reasons.add(alert.kind)
        target.ban = target.ban or alert.kind in BAN_KINDS
        self.alerts.append(alert.as_json())

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


def scan_lines(
    lines: Iterable[str],
    config: DetectConfig,
    report: ScanReport | None = None,
    *,
    joiner_capacity: int = JOINER_CAPACITY,
) -> ScanReport:
    """Run parser, joiner and detector over *lines*, accumulating into *report*."""
    report = report or ScanReport()
    parser = LogParser()
    joiner = RequestJoiner(joiner_capacity)
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
                report.record(alert)
            verdicts.alerts.clear()
    return report


def compiled_available() -> bool:
    """Whether the compiled scan was built (``pip install`` with a C compiler)."""
    return _fastscan is not None


def scan_files(
    paths: Iterable[Path],
    config: DetectConfig,
    *,
    compiled: bool | None = None,
    joiner_capacity: int = JOINER_CAPACITY,
) -> ScanReport:
    """Scan files oldest first as one continuous log.

    *compiled* None uses the compiled twin when it exists (``PLEX_SECURITY_SCAN=python``
    forces the reference); True requires it, False never uses it.
    """
    ordered = oldest_first(paths)
    if compiled is None:
        compiled = _fastscan is not None and os.environ.get("PLEX_SECURITY_SCAN") != "python"
    if compiled:
        return _scan_compiled(ordered, config, joiner_capacity)

    def all_lines() -> Iterator[str]:
        for path in ordered:
            yield from read_lines(path)

    return scan_lines(all_lines(), config, joiner_capacity=joiner_capacity)


def _address_facts(text: str) -> tuple[str, str, str, bool] | None:
    ip = canonical_ip(text)
    if ip is None:
        return None
    return ip, source_key(ip), user_network(ip), is_public(ip)


def _feed_file(scanner: Any, handle: io.FileIO) -> None:
    """Read into one reused buffer; a partial last line moves to its front for the next read."""
    buf = bytearray(READ_CHUNK)
    filled = 0
    while True:
        if filled == len(buf):
            buf.extend(bytes(len(buf)))  # one line longer than the buffer
        with memoryview(buf) as view:
            got = handle.readinto(view[filled:])
            if not got:
                scanner.feed(view[:filled], True)
                return
            filled += got
            used = scanner.feed(view[:filled])
        buf[: filled - used] = buf[used:filled]
        filled -= used


def _scan_compiled(
    paths: list[Path],
    config: DetectConfig,
    joiner_capacity: int,
    trace: Callable[[str, tuple[Any, ...]], None] | None = None,
) -> ScanReport:
    if _fastscan is None:
        raise RuntimeError("the compiled scan was not built (no C compiler at install time)")
    report = ScanReport()
    parser = LogParser()
    window = float(config.failed_auth_window)

    def parse(raw: bytes) -> tuple[Any, ...] | None:
        rec = parser.parse(raw.decode("utf-8", "replace"))
        if rec is None:
            return None
        cls = rec.net_class.value if rec.net_class is not None else None
        return (
            rec.time,
            rec.completed,
            rec.ip,
            rec.port,
            cls,
            rec.path,
            rec.status,
            rec.request_id,
            rec.user,
            rec.signed_in,
        )

    def on_alert(  # noqa: PLR0917 - called positionally from C
        kind: str,
        ip: str,
        time: float,
        first: float,
        count: int,
        score: int,
        samples: list[str],
        net_class: str,
        extra: dict[str, object] | None,
    ) -> None:
        alert = make_alert(
            kind,
            ip,
            time,
            first,
            count=count,
            score=score,
            samples=samples,
            window_s=int(window),
            net_class=net_class,
            extra=extra or {},
        )
        report.record(alert)

    scanner = _fastscan.Scanner(
        facts=_address_facts,
        classify=path_flags,
        sanitise=sanitise_path,
        epoch=parser.epoch,
        parse=parse,
        alert=on_alert,
        window=window,
        threshold=float(config.failed_auth_threshold),
        probe_threshold=config.probe_threshold,
        scan_paths=config.scan_distinct_paths,
        scan_window=float(config.scan_window),
        flood=float(config.flood_per_minute),
        trust=float(config.trust_after_signin),
        factor=float(config.trusted_factor),
        max_sources=config.max_tracked_sources,
        capacity=joiner_capacity,
        seed=int.from_bytes(os.urandom(8), "little"),
        trace=trace,
    )
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            _feed_file(scanner, handle)
    lines, parsed, rows = scanner.result()
    report.lines, report.parsed = lines, parsed
    for ip, requests, failed, probes in rows:
        rep = report.addresses.setdefault(ip, AddressReport())
        rep.requests, rep.failed_auth, rep.probes = requests, failed, probes
    return report
