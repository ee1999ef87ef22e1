"""Prometheus metrics (``GET /api/v1/metrics``): one registry per application, never the global one.

Counts the helper already keeps (lines, parse failures, alerts, bans, the push queue) are read
at scrape time from a snapshot taken on the worker thread; latencies are histograms observed
where they happen (the ban hook, an API middleware).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From "the same batch" to "a human noticed": detection to ban is milliseconds when all is well.
BAN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Snapshot:
    """What the helper counts, read on the worker thread just before a scrape."""

    lines: int = 0
    access_lines: int = 0
    parse_failures: int = 0
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    bans_by_origin: dict[str, int] = field(default_factory=dict)
    push_queue: int = 0
    fleet_refused: int = 0


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        lines = CounterMetricFamily("plex_security_log_lines", "Plex log lines read", labels=["kind"])
        lines.add_metric(["all"], snap.lines)
        lines.add_metric(["access"], snap.access_lines)
        yield lines
        yield CounterMetricFamily(
            "plex_security_parse_failures", "Access lines that did not parse", value=snap.parse_failures
        )
        alerts = CounterMetricFamily("plex_security_alerts", "Alerts stored since the helper started", labels=["kind"])
        for kind, count in sorted(snap.alerts_by_kind.items()):
            alerts.add_metric([kind], count)
        yield alerts
        bans = GaugeMetricFamily("plex_security_bans_active", "Bans in force by origin", labels=["origin"])
        for origin, count in sorted(snap.bans_by_origin.items()):
            bans.add_metric([origin], count)
        yield bans
        yield GaugeMetricFamily(
            "plex_security_fleet_push_queue", "Decisions waiting for CrowdSec's LAPI", value=snap.push_queue
        )
        yield CounterMetricFamily(
            "plex_security_fleet_refused", "Fleet decisions refused by the never-ban policy", value=snap.fleet_refused
        )


class Metrics:
    """The helper's registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.start_seq = 0  # alerts above this were stored since the helper started
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)
        self.ban_latency = Histogram(
            "plex_security_detection_to_ban_seconds",
            "From the alert's last event to its ban being recorded",
            buckets=BAN_BUCKETS,
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "plex_security_api_request_seconds", "API request handling time", ["route"], registry=self.registry
        )
        self.pushed = Counter(
            "plex_security_fleet_pushed", "Messages CrowdSec's LAPI accepted", ["op"], registry=self.registry
        )
        self.push_failures = Counter(
            "plex_security_fleet_push_failures", "Failed attempts to reach CrowdSec's LAPI", registry=self.registry
        )

    def render(self, snapshot: Snapshot) -> bytes:
        """The text exposition format, with *snapshot* as the counts."""
        self._snapshot.snapshot = snapshot
        return generate_latest(self.registry)

    def middleware(self) -> Middleware:
        """Observe each request's handling time by route (the route's pattern: bounded labels)."""

        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            try:
                return await handler(request)
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                self.api_latency.labels(route).observe(time.perf_counter() - start)

        return timed
