"""``/api/v1/audit``: the latest report, and a run on demand (at most one per 30 s)."""

from __future__ import annotations

import time

from aiohttp import web

from .errors import json_error
from .routes import AUDITOR_KEY

routes = web.RouteTableDef()


@routes.get("/api/v1/audit")
async def get_audit(request: web.Request) -> web.Response:
    """The latest report (null until the first audit has finished)."""
    auditor = request.app[AUDITOR_KEY]
    report = auditor.last
    return web.json_response({"running": auditor.running, "report": report.as_json() if report else None})


@routes.post("/api/v1/audit")
async def run_audit(request: web.Request) -> web.Response:
    """Audit now and return the report."""
    auditor = request.app[AUDITOR_KEY]
    wait = auditor.retry_after(time.time())
    if wait:
        return json_error(
            429, "rate_limited", f"an audit ran moments ago; try again in {wait} s", **{"Retry-After": str(wait)}
        )
    report = await auditor.run()
    return web.json_response({"running": False, "report": report.as_json()})
