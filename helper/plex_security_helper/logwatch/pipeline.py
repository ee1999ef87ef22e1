"""The one log pipeline: parse → guard client-written lines → join → detect → tallies.

A pure object fed lines, with no I/O: the live monitor, first-start backfill and the offline
``scan`` are three thin drivers of it, so every rule and every count exists once. A driver
feeds lines (any split into batches gives the same result) and takes a :class:`Batch` of
what they produced: failed logins, alerts, learnt user networks and per-address tallies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import tzinfo

from ..model import AddressTally, HttpEvent, NetClass
from ..thresholds import DetectConfig
from .detect import Detector, Verdicts, classify
from .join import RequestJoiner
from .logwrites import LogWriteGuard, Passed, is_log_write
from .plexlog import LogParser, LogRecord, looks_like_access

JOINER_CAPACITY = 20_000  # requests waiting for their Completed line


@dataclass(slots=True)
class Batch:
    """What the lines fed since the last :meth:`Pipeline.take` produced."""

    verdicts: Verdicts = field(default_factory=Verdicts)
    tallies: dict[str, AddressTally] = field(default_factory=dict)
    lines: int = 0
    access: int = 0
    parse_failures: int = 0
    unverified: int = 0  # events that arrived inside a client's log write: recorded, never evidence
    last_time: float | None = None


class TrustedProxies:
    """The reverse proxies whose forwarded address is believed (Home Assistant's convention)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __call__(self, ip: str) -> bool:
        """Whether *ip* is one of the trusted proxies (cached)."""
        found = self._cache.get(ip)
        if found is None:
            addr = ipaddress.ip_address(ip)
            found = any(addr in net for net in self._networks if net.version == addr.version)
            if len(self._cache) > 65_536:
                self._cache.clear()
            self._cache[ip] = found
        return found


class Pipeline:
    """Parser, log-write guard, joiner and detector, composed once."""

    def __init__(
        self,
        detect: DetectConfig,
        *,
        zone: tzinfo | None = None,
        trusted_proxies: Iterable[str] = (),
        joiner_capacity: int = JOINER_CAPACITY,
    ) -> None:
        self.proxies = TrustedProxies(trusted_proxies)
        self._proxied = bool(self.proxies)
        self.parser = LogParser(zone, self.proxies if self.proxies else None)
        self.guard = LogWriteGuard(lambda line: self.parser.parse(line) is not None)
        self.joiner = RequestJoiner(joiner_capacity)
        self.detector = Detector(detect)
        self._batch = Batch()

    def feed(self, lines: Iterable[str]) -> None:
        """Run *lines* (complete lines, no newline) through every stage."""
        batch = self._batch
        parse = self.parser.parse
        guard = self.guard
        judge = self._judge
        request = self.joiner.request
        count = 0
        for line in lines:
            count += 1
            rec = parse(line)
            if rec is None:
                if looks_like_access(line):
                    batch.parse_failures += 1  # looks like an access line, yet did not parse
                continue
            batch.access += 1
            if guard.windows or (not rec.completed and "log" in rec.path and is_log_write(rec.path)):
                self._guarded(rec, line)
            elif rec.completed:
                judge(rec, False)
            else:
                request(rec)  # what _judge does with a Request, without the call
        if count:
            batch.lines += count
            batch.last_time = self.parser.last_time

    def finish(self) -> None:
        """End of input (``scan``): writes still open end unconfirmed, held lines are judged."""
        passed: list[Passed] = []
        self.guard.flush(passed)
        self._run(passed)

    def carry(self) -> list[str]:
        """Lines to feed again after a restart: the open log writes (see logwrites.py)."""
        return self.guard.carry()

    def take(self) -> Batch:
        """What was produced since the last call, with failures and alerts in the tallies."""
        batch, self._batch = self._batch, Batch()
        for failure in batch.verdicts.failures:
            self._tally(batch, failure.ip, failure.time).failed_auth += 1
        for alert in batch.verdicts.alerts:
            tally = self._tally(batch, alert.ip, alert.time)
            tally.alerts += 1
            tally.last_alert = alert.kind
        return batch

    @staticmethod
    def _tally(batch: Batch, ip: str, when: float) -> AddressTally:
        found = batch.tallies.get(ip)
        if found is None:
            found = batch.tallies[ip] = AddressTally(first_seen=when, last_seen=when)
        elif when > found.last_seen:
            found.last_seen = when
        elif when < found.first_seen:
            found.first_seen = when
        return found

    def _guarded(self, rec: LogRecord, line: str) -> None:
        passed: list[Passed] = []
        self.guard.feed(rec, line, passed)
        self._run(passed)

    def _run(self, passed: list[Passed]) -> None:
        for item in passed:
            self._judge(item.record, item.unverified)
        injections = self.guard.injections
        while injections:
            found = injections.pop(0)
            w = found.writer
            writer = HttpEvent(
                w.time, w.ip, w.port, w.net_class or NetClass.UNKNOWN, w.method, w.path, 200, w.request_id, w.user, True
            )
            self.detector.log_injection(writer, self._batch.verdicts, found.forged)

    def _judge(self, rec: LogRecord, unverified: bool) -> None:
        if not rec.completed:
            self.joiner.request(rec, unverified)
            return
        event, _req, late = self.joiner.completed(rec)
        if event.via is None and self._proxied and self.proxies(event.ip):
            event.via = event.ip  # a trusted proxy's own request: the client is unknown
        batch = self._batch
        tally = self._tally(batch, event.ip, event.time)
        tally.requests += 1
        probe, exploit = classify(event.method, event.path)
        if probe:
            tally.probes += 1
        if unverified or late:
            batch.unverified += 1
            return
        if exploit is not None:
            self.detector.exploit(event, exploit, batch.verdicts)
        self.detector.feed(event, batch.verdicts, probe)
