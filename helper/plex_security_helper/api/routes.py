"""Thin handlers: validate the query, ask the monitor, serialise."""

from __future__ import annotations

import copy
import time
from typing import Any

from aiohttp import web

from .. import API_VERSION, __version__
from ..audit.runner import Auditor
from ..fleet.service import FLEET_KEY
from ..monitor import DAY, Monitor
from ..plex.geo import Geo
from ..plex.plextv import DeviceWatch
from .errors import json_error
from .openapi import OPENAPI
from .sessions import SESSIONS_KEY

MONITOR_KEY = web.AppKey("monitor", Monitor)
AUDITOR_KEY = web.AppKey("auditor", Auditor)
HELPER_ID_KEY = web.AppKey("helper_id", str)
STARTED_KEY = web.AppKey("started", float)
GEO_KEY = web.AppKey("geo", Geo)
DEVICES_KEY = web.AppKey("plex_tv_devices", DeviceWatch)

MAX_ALERTS = 500
TOP_FAILED = 10  # addresses listed in /status failed_logins.top
MAX_WAIT_KEY = web.AppKey("max_wait", int)
# Long-polls held open at once: beyond these an /alerts call answers at once (as wait=0 would),
# so token holders cannot pin connections and tasks without bound.
WAITERS_PER_ADDRESS = 8
WAITERS_TOTAL = 128


class LongPolls:
    """How many long-polls each address holds open."""

    def __init__(self) -> None:
        self.by_address: dict[str, int] = {}

    def take(self, address: str) -> bool:
        """One more long-poll for *address*, or False when a cap is reached."""
        held = self.by_address.get(address, 0)
        if held >= WAITERS_PER_ADDRESS or sum(self.by_address.values()) >= WAITERS_TOTAL:
            return False
        self.by_address[address] = held + 1
        return True

    def give(self, address: str) -> None:
        """A long-poll ended."""
        held = self.by_address.pop(address, 0) - 1
        if held > 0:
            self.by_address[address] = held


LONG_POLLS_KEY = web.AppKey("long_polls", LongPolls)
routes = web.RouteTableDef()


class QueryError(Exception):
    """A query parameter is missing its form or its bounds."""


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise QueryError(f"{name} must be a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise QueryError(f"{name} must be a whole number from {low} to {high}")
    return value


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    """Liveness: no token needed, nothing secret."""
    return web.json_response({"status": "ok", "version": __version__, "api_version": API_VERSION})


@routes.get("/api/v1/status")
async def status(request: web.Request) -> web.Response:
    """One snapshot for the Home Assistant coordinator."""
    monitor = request.app[MONITOR_KEY]
    since = time.time() - DAY
    (total, addresses, top), alerts, firewall, bans = await monitor.run_in_worker(_status_queries, monitor, since)
    fleet = await monitor.run_in_worker(request.app[FLEET_KEY].status, monitor.store)
    body: dict[str, Any] = {
        "helper": {
            "id": request.app[HELPER_ID_KEY],
            "version": __version__,
            "api_version": API_VERSION,
            "started": request.app[STARTED_KEY],
        },
        "monitor": monitor.status(),
        "failed_logins": {
            "window_s": int(DAY),
            "total": total,
            "addresses": addresses,
            "top": [{"ip": ip, "count": count} for ip, count in top],
        },
        "alerts": alerts,
        "firewall": firewall,
        "bans": bans,
        "plex": request.app[AUDITOR_KEY].plex_status(),
        "audit": request.app[AUDITOR_KEY].status(),
        "fleet": fleet,
        "geo": request.app[GEO_KEY].status(),
        "sessions": request.app[SESSIONS_KEY].status(),
        "plex_tv": request.app[DEVICES_KEY].status(),
    }
    # Sections that cannot be filled right now, named so that clients can tell.
    body["unavailable"] = sorted(k for k in ("plex", "audit", "firewall", "bans") if not body[k]["available"])
    return web.json_response(body)


def _status_queries(
    monitor: Monitor, since: float
) -> tuple[tuple[int, int, list[tuple[str, int]]], dict[str, Any], dict[str, Any], dict[str, Any]]:
    firewall, bans = monitor.enforcer.status(monitor.store, time.time())
    return monitor.store.failed_auth_summary(since, TOP_FAILED), monitor.store.alert_summary(since), firewall, bans


@routes.get("/api/v1/alerts")
async def alerts(request: web.Request) -> web.Response:
    """Alerts after a cursor; ``wait`` long-polls until one arrives."""
    try:
        after = _int_param(request, "after", 0, 0, 2**62)
        limit = _int_param(request, "limit", 100, 1, MAX_ALERTS)
        wait = _int_param(request, "wait", 0, 0, request.app[MAX_WAIT_KEY])
    except QueryError as err:
        return json_error(400, "invalid_query", str(err))
    monitor = request.app[MONITOR_KEY]
    polls = request.app[LONG_POLLS_KEY]
    address = request.remote or ""
    if wait and polls.take(address):
        try:
            await monitor.wait_for_alert(after, float(wait))
        finally:
            polls.give(address)
    found = await monitor.run_in_worker(monitor.store.alerts_after, after, limit)
    return web.json_response({"alerts": [a.as_json() for a in found], "last_seq": monitor.last_seq})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The machine-readable contract (with this helper's long-poll limit)."""
    doc = copy.deepcopy(OPENAPI)
    for param in doc["paths"]["/api/v1/alerts"]["get"]["parameters"]:
        if param["name"] == "wait":
            param["schema"]["maximum"] = request.app[MAX_WAIT_KEY]
    return web.json_response(doc)
