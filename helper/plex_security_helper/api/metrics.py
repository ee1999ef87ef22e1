"""``GET /api/v1/metrics``: Prometheus text format, behind the bearer token like every route."""

from __future__ import annotations

import time

from aiohttp import web

from ..fleet.service import FLEET_KEY, Fleet
from ..metrics import CONTENT_TYPE, Metrics, Snapshot
from ..monitor import Monitor
from .routes import MONITOR_KEY

METRICS_KEY = web.AppKey("metrics", Metrics)
routes = web.RouteTableDef()


def _snapshot(monitor: Monitor, fleet: Fleet, start_seq: int) -> Snapshot:
    """Counts read on the worker thread, which owns the database."""
    store = monitor.store
    bans = store.ban_counts(time.time())
    if fleet.bouncer is not None:
        for origin, count in fleet.bouncer.counts().items():
            bans[origin] = bans.get(origin, 0) + count
    return Snapshot(
        lines=monitor.lines,
        access_lines=monitor.access_lines,
        parse_failures=monitor.parse_failures,
        alerts_by_kind=store.alert_counts(start_seq),
        bans_by_origin=bans,
        push_queue=store.outbox_stats()[0],
        fleet_refused=fleet.bouncer.refused_total if fleet.bouncer is not None else 0,
    )


@routes.get("/api/v1/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Scrape target (``Authorization: Bearer <token>``, as for the rest of the API)."""
    monitor = request.app[MONITOR_KEY]
    registry = request.app[METRICS_KEY]
    snap = await monitor.run_in_worker(_snapshot, monitor, request.app[FLEET_KEY], registry.start_seq)
    return web.Response(body=registry.render(snap), headers={"Content-Type": CONTENT_TYPE})
