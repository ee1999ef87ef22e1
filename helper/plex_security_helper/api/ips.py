"""``/api/v1/ips/{ip}``: everything the helper knows about one address."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..firewall.targets import InvalidTarget, parse_target
from .errors import json_error
from .routes import GEO_KEY, MONITOR_KEY

RECENT_ALERTS = 20
routes = web.RouteTableDef()


@routes.get("/api/v1/ips/{ip}")
async def address_report(request: web.Request) -> web.Response:
    """Totals, recent failures and alerts, the bans that cover it, and whether it is allow-listed."""
    try:
        target = parse_target(request.match_info["ip"])
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    if not target.single:
        return json_error(400, "invalid_address", "one address, not a network")
    monitor = request.app[MONITOR_KEY]
    address = target.network.network_address
    window = monitor.config.detect.failed_auth_window
    place = request.app[GEO_KEY].lookup(target.text)

    def gather() -> dict[str, Any]:
        store, now = monitor.store, time.time()
        bans = [b for b in store.active_bans(now) if address in parse_target(b.target).network]
        return {
            "ip": target.text,
            "seen": store.address(target.text),
            "failed_auth_recent": store.failed_auth_count(target.text, now - window),
            "window_s": window,
            "alerts": [a.as_json() for a in store.alerts_for(target.text, RECENT_ALERTS)],
            "bans": [b.as_json(now) for b in bans],
            "allowed": monitor.enforcer.policy.allowed(target),
            "place": place.as_json(),
        }

    return web.json_response(await monitor.run_in_worker(gather))
