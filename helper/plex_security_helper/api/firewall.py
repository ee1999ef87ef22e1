"""``/api/v1/firewall``: monitor or enforce, and the rate profile, changed at run time.

A change is kept in the database (who asked, from where, when), so it outlives a restart and
wins over the configuration file's ``mode``/``profile`` until changed again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import voluptuous as vol
from aiohttp import web

from ..firewall.nft import PROFILES
from ..model import CALLER_ORIGINS, Origin
from ..monitor import Monitor
from .bans import _json_body
from .errors import json_error
from .openapi import FIREWALL_MODES
from .routes import MONITOR_KEY

_LOGGER = logging.getLogger(__name__)
MODES = FIREWALL_MODES
FIREWALL_BODY = vol.Schema(
    {
        vol.Optional("mode"): vol.In(MODES),
        vol.Optional("profile"): vol.In(sorted(PROFILES)),
        vol.Optional("origin", default=Origin.MANUAL.value): vol.In(CALLER_ORIGINS),
    }
)
routes = web.RouteTableDef()


def apply_setting(monitor: Monitor, mode: str, profile: str, now: float) -> None:
    """Switch the enforcer (worker thread): leaving enforce takes the helper's table away."""
    enforcer = monitor.enforcer
    if profile not in PROFILES or mode not in MODES:
        raise ValueError(f"unknown firewall setting {mode!r}/{profile!r}")
    enforcer.config = replace(enforcer.config, profile=profile)
    enforcer.set_mode(monitor.store, mode, now)


def describe(monitor: Monitor) -> dict[str, Any]:
    """The current mode, profile and the last run-time change (worker thread)."""
    enforcer = monitor.enforcer
    change = monitor.store.firewall_setting() or {}
    return {
        "mode": enforcer.mode,
        "profile": enforcer.config.profile,
        "backend": enforcer.config.backend,
        "enforcing": enforcer.enforcing,
        "error": enforcer.error,
        "changed_by": change.get("by"),
        "changed_from": change.get("address"),
        "changed_at": change.get("at"),
    }


async def restore_setting(monitor: Monitor) -> None:
    """At start: apply the last run-time change over the configuration file's values."""
    setting = await monitor.run_in_worker(monitor.store.firewall_setting)
    if not setting:
        return
    mode, profile = setting.get("mode"), setting.get("profile")
    if (mode, profile) == (monitor.enforcer.mode, monitor.enforcer.config.profile):
        return
    try:
        await monitor.run_in_worker(apply_setting, monitor, str(mode), str(profile), time.time())
        _LOGGER.info("firewall: %s, profile %s (set through the API by %s)", mode, profile, setting.get("by"))
    except ValueError as err:
        _LOGGER.warning("ignoring the stored firewall setting: %s", err)


@routes.get("/api/v1/firewall")
async def get_firewall(request: web.Request) -> web.Response:
    """Mode, profile and who changed them last."""
    monitor = request.app[MONITOR_KEY]
    return web.json_response(await monitor.run_in_worker(describe, monitor))


@routes.put("/api/v1/firewall")
async def put_firewall(request: web.Request) -> web.Response:
    """Change mode and/or profile now; kept across restarts."""
    raw = await _json_body(request)
    if isinstance(raw, web.Response):
        return raw
    try:
        body = FIREWALL_BODY(raw)
    except vol.Invalid as err:
        where = ".".join(str(p) for p in err.path) or "body"
        return json_error(400, "invalid_body", f"{where}: {err.msg}")
    if "mode" not in body and "profile" not in body:
        return json_error(400, "invalid_body", "body: give mode, profile or both")
    monitor = request.app[MONITOR_KEY]
    enforcer = monitor.enforcer
    now = time.time()
    mode = body.get("mode", enforcer.mode)
    profile = body.get("profile", enforcer.config.profile)
    setting = {"mode": mode, "profile": profile, "by": body["origin"], "address": request.remote, "at": now}

    def work() -> dict[str, Any]:
        apply_setting(monitor, mode, profile, now)
        monitor.store.put_firewall_setting(setting)
        return describe(monitor)

    result = await monitor.run_in_worker(work)
    _LOGGER.warning("firewall: %s, profile %s, set by %s from %s", mode, profile, body["origin"], request.remote)
    return web.json_response(result)
