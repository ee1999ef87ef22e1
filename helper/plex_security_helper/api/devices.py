"""``/api/v1/plex-tv/devices/{id}/remove``: take a device off the owner's plex.tv account."""

from __future__ import annotations

from aiohttp import web

from ..plex.plextv import DEVICE_ID, PlexTvUnavailable, remove_listed_device
from .errors import json_error
from .routes import DEVICES_KEY, MONITOR_KEY

routes = web.RouteTableDef()


@routes.post("/api/v1/plex-tv/devices/{device_id}/remove")
async def remove_device(request: web.Request) -> web.Response:
    """Remove a device the last plex.tv listing showed: its token stops working."""
    device_id = request.match_info["device_id"]
    if not DEVICE_ID.match(device_id):
        return json_error(400, "invalid_device", "a device id is 1-100 letters, digits or . _ : -")
    state = request.app[DEVICES_KEY]
    if not state.enabled:
        return json_error(409, "plex_tv_off", "the plex.tv account is not read ([plex_tv] enabled = false)")
    config = request.app[MONITOR_KEY].config
    try:
        device = await remove_listed_device(config.plex_tv, config.audit, state, device_id)
    except LookupError:
        return json_error(404, "no_such_device", "no such device in the last listing of the plex.tv account")
    except PlexTvUnavailable as err:
        return json_error(502, "plex_tv_failed", str(err))
    return web.json_response({"removed": device_id, "name": device.name})
