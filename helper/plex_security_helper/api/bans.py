"""``/api/v1/bans``: list, ban (address or CIDR), unban. Inputs are validated before anything runs."""

from __future__ import annotations

import json
import time
from typing import Any

import voluptuous as vol
from aiohttp import web

from ..firewall.enforcer import MAX_DURATION, MAX_REASON, MIN_DURATION, NotAllowed, NotBanned
from ..firewall.policy import BanRefused
from ..firewall.runner import BackendError
from ..firewall.targets import MAX_TARGET_TEXT, InvalidTarget, parse_target
from ..fleet.decisions import ENFORCE_HOST, ENFORCE_PROXY
from ..fleet.service import FLEET_KEY, FleetUnavailable
from ..model import CALLER_ORIGINS, Origin
from .errors import json_error
from .routes import MONITOR_KEY

BAN_BODY = vol.Schema(
    {
        vol.Required("ip"): vol.All(str, vol.Length(min=1, max=MAX_TARGET_TEXT)),
        vol.Optional("duration"): vol.All(int, vol.Range(min=MIN_DURATION, max=MAX_DURATION)),
        vol.Optional("reason", default=""): vol.All(str, vol.Length(max=MAX_REASON)),
        vol.Optional("origin", default=Origin.MANUAL.value): vol.In(CALLER_ORIGINS),
        vol.Optional("force", default=False): bool,
        vol.Optional("enforce_at", default=ENFORCE_HOST): vol.In([ENFORCE_HOST, ENFORCE_PROXY]),
    }
)
# A decision pushed for the proxy's bouncer has no policy duration of its own: one hour unless given.
PROXY_DURATION = 3600
MAX_LIST = 10_000


async def _json_body(request: web.Request) -> Any:
    """The decoded body, or the 400 answer for one that is not JSON."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "invalid_body", "the body must be a JSON object")


routes = web.RouteTableDef()


@routes.get("/api/v1/bans")
async def list_bans(request: web.Request) -> web.Response:
    """Active bans, newest first."""
    monitor = request.app[MONITOR_KEY]
    now = time.time()
    bans = await monitor.run_in_worker(monitor.store.active_bans, now, MAX_LIST)
    fleet = await monitor.run_in_worker(request.app[FLEET_KEY].decisions, MAX_LIST)
    enforcer = monitor.enforcer
    return web.json_response(
        {
            "mode": enforcer.config.mode,
            "backend": enforcer.config.backend,
            "enforcing": enforcer.enforcing,
            "bans": [b.as_json(now) for b in bans],
            "fleet": fleet,
        }
    )


@routes.post("/api/v1/bans")
async def add_ban(request: web.Request) -> web.Response:
    """Ban an address or network for a duration (default: the policy's, growing per repeat)."""
    raw = await _json_body(request)
    if isinstance(raw, web.Response):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("duration"), bool):
        return json_error(400, "invalid_body", "duration must be a whole number of seconds")
    if isinstance(raw, dict) and isinstance(raw.get("ip"), str):
        try:  # the address first, so its error is the precise one
            parse_target(raw["ip"])
        except InvalidTarget as err:
            return json_error(400, "invalid_address", str(err))
    try:
        body = BAN_BODY(raw)
    except vol.Invalid as err:
        where = ".".join(str(p) for p in err.path) or "body"
        return json_error(400, "invalid_body", f"{where}: {err.msg}")
    monitor = request.app[MONITOR_KEY]
    enforcer = monitor.enforcer
    if body["enforce_at"] == ENFORCE_PROXY:
        return await _push_for_proxy(request, body)

    def ban() -> dict[str, Any]:
        now = time.time()
        result = enforcer.ban(
            monitor.store,
            body["ip"],
            duration=body.get("duration"),
            reason=body["reason"] or f"{body['origin'].replace('_', ' ')} ban",
            origin=body["origin"],
            force=body["force"],
            now=now,
        )
        return result.as_json(now)

    try:
        created = await monitor.run_in_worker(ban)
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    except BanRefused as err:
        return json_error(409, err.code, str(err))
    except BackendError as err:
        await monitor.stream_changed()
        return json_error(502, "backend_failed", str(err))
    await monitor.stream_changed()
    return web.json_response(created, status=201)


async def _push_for_proxy(request: web.Request, body: dict[str, Any]) -> web.Response:
    """A client behind the reverse proxy: no local ban, a decision for the proxy's bouncer."""
    monitor = request.app[MONITOR_KEY]
    fleet = request.app[FLEET_KEY]

    def push() -> dict[str, Any]:
        return fleet.push_decision(
            monitor.store,
            body["ip"],
            duration=body.get("duration") or PROXY_DURATION,
            reason=body["reason"] or f"{body['origin'].replace('_', ' ')} ban at the proxy",
            origin=body["origin"],
            enforce_at=ENFORCE_PROXY,
            now=time.time(),
        )

    try:
        queued = await monitor.run_in_worker(push)
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    except BanRefused as err:
        return json_error(409, err.code, str(err))
    except FleetUnavailable as err:
        return json_error(409, "no_fleet", str(err))
    return web.json_response(queued, status=202)


@routes.delete("/api/v1/bans/{target:.+}")
async def remove_ban(request: web.Request) -> web.Response:
    """Lift a ban; the target is the address or network exactly as listed (``/`` may be ``%2F``)."""
    text = request.match_info["target"]
    monitor = request.app[MONITOR_KEY]

    def unban() -> dict[str, Any]:
        now = time.time()
        return monitor.enforcer.unban(monitor.store, text, now).as_json(now)

    def lift_fleet_wide() -> dict[str, Any] | None:
        return request.app[FLEET_KEY].lift_fleet_wide(monitor.store, text, time.time())

    try:
        lifted = await monitor.run_in_worker(unban)
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    except NotBanned as err:
        # Not a ban of ours, but maybe a fleet decision enforced here: lift it at LAPI.
        queued = await monitor.run_in_worker(lift_fleet_wide)
        if queued is not None:
            return web.json_response(queued, status=202)
        return json_error(404, "not_banned", str(err))
    except BackendError as err:
        await monitor.stream_changed()
        return json_error(502, "backend_failed", str(err))
    await monitor.stream_changed()
    return web.json_response({"unbanned": lifted})


ALLOW_BODY = vol.Schema(
    {
        vol.Required("ip"): vol.All(str, vol.Length(min=1, max=MAX_TARGET_TEXT)),
        vol.Optional("reason", default=""): vol.All(str, vol.Length(max=MAX_REASON)),
    }
)


@routes.get("/api/v1/allow")
async def list_allow(request: web.Request) -> web.Response:
    """The allow-list: configured entries and those added at run time."""
    monitor = request.app[MONITOR_KEY]
    rows = await monitor.run_in_worker(monitor.enforcer.allow_list, monitor.store)
    return web.json_response({"allow": rows})


@routes.post("/api/v1/allow")
async def add_allow(request: web.Request) -> web.Response:
    """Never ban this address or network again; lifts the bans it covers."""
    raw = await _json_body(request)
    if isinstance(raw, web.Response):
        return raw
    try:
        body = ALLOW_BODY(raw)
        parse_target(body["ip"])
    except vol.Invalid as err:
        where = ".".join(str(p) for p in err.path) or "body"
        return json_error(400, "invalid_body", f"{where}: {err.msg}")
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    monitor = request.app[MONITOR_KEY]

    def allow() -> dict[str, Any]:
        now = time.time()
        target, lifted = monitor.enforcer.allow(monitor.store, body["ip"], reason=body["reason"] or "allowed", now=now)
        return {
            "ip": target,
            "origin": "runtime",
            "reason": body["reason"] or "allowed",
            "created": now,
            "unbanned": [b.target for b in lifted],
        }

    try:
        created = await monitor.run_in_worker(allow)
    except BanRefused as err:
        return json_error(409, err.code, str(err))
    await monitor.stream_changed()
    return web.json_response(created, status=201)


@routes.delete("/api/v1/allow/{target:.+}")
async def remove_allow(request: web.Request) -> web.Response:
    """Remove a run-time allow-list entry."""
    monitor = request.app[MONITOR_KEY]
    text = request.match_info["target"]
    try:
        removed = await monitor.run_in_worker(monitor.enforcer.disallow, monitor.store, text)
    except InvalidTarget as err:
        return json_error(400, "invalid_address", str(err))
    except NotAllowed as err:
        return json_error(404, "not_allowed", str(err))
    return web.json_response({"removed": removed})
