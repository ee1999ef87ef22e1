"""A small Plex Media Server emulator for tests and the demo.

Serves the documented endpoints (``/identity`` without a token; ``/:/prefs`` and
``/myplex/account`` with ``X-Plex-Token``), answers JSON or XML as Plex does, and writes a
``Request:``/``Completed:`` pair in Plex's debug-log format for every request it serves, so
that the helper can follow a log written by real HTTP traffic.
"""

from __future__ import annotations

import hmac
import itertools
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ..logwatch.plexlog import MONTH_NAMES

OWNER = "owner"


@dataclass
class PlexState:
    """What the emulated server reports; tests change it between requests."""

    token: str
    version: str = "1.43.4.10903-e5521bd8c"
    claimed: bool = True
    machine_identifier: str = "0123456789abcdef0123456789abcdef01234567"
    prefs: dict[str, str] = field(default_factory=dict)
    mapping_state: str = "mapped"
    public_address: str = "203.0.113.200"
    public_port: int = 32400
    log_path: Path | None = None
    wan_classes: tuple[str, ...] = ()  # client addresses the log should call WAN (the demo's "internet")
    xml_only: bool = False  # answer XML even when JSON is asked for, as older servers do
    sessions: list[EmuSession] = field(default_factory=list)  # what /status/sessions reports
    terminated: dict[str, str] = field(default_factory=dict)  # session id → the reason given
    # plex.tv (served by the same app: the helper's [plex_tv] url points here in tests)
    two_factor: bool = True
    shared_users: dict[str, float] = field(default_factory=dict)  # name → last seen (epoch)
    devices: dict[str, float] = field(default_factory=dict)  # name → last seen (epoch)
    removed_devices: list[str] = field(default_factory=list)  # names, in the order removed


@dataclass
class EmuSession:
    """One playback on the emulated server (the parts of a session python-plexapi reads)."""

    session_id: str
    user: str
    address: str
    local: bool = False
    user_id: int = 2
    product: str = "Plex Web"
    platform: str = "Chrome"
    device: str = "Windows"
    player: str = "Chrome"
    machine_identifier: str = "emu-player"
    title: str = "The Demo Film"
    bandwidth: int = 4000
    transcode: bool = False

    def parts(self, key: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The media element's attributes and its child elements, by tag.

        Shapes: python-plexapi 4.16.1 plexapi/base.py ``PlexSession._loadData`` (``sessionKey``,
        ``User`` id/title), plexapi/client.py ``PlexClient._loadData`` (``Player`` address, device,
        local, machineIdentifier, platform, product, remotePublicAddress, state, title),
        plexapi/media.py ``Session`` (id, bandwidth, location) and ``TranscodeSession`` (videoDecision).
        """
        children: dict[str, dict[str, Any]] = {
            "User": {"id": str(self.user_id), "title": self.user, "thumb": ""},
            "Player": {
                "address": self.address,
                "device": self.device,
                "local": self.local,
                "machineIdentifier": self.machine_identifier,
                "platform": self.platform,
                "product": self.product,
                "remotePublicAddress": self.address,
                "state": "playing",
                "title": self.player,
                "relayed": False,
                "secure": True,
            },
            "Session": {"id": self.session_id, "bandwidth": self.bandwidth, "location": "lan" if self.local else "wan"},
        }
        if self.transcode:
            children["TranscodeSession"] = {"videoDecision": "transcode", "throttled": False}
        return {"type": "movie", "title": self.title, "sessionKey": str(key)}, children


STATE_KEY = web.AppKey("plex_state", PlexState)
_rid = itertools.count(0x5000)
_log_lock = threading.Lock()


def _stamp() -> str:
    t = datetime.now()
    return f"{MONTH_NAMES[t.month - 1]} {t.day:02d}, {t.year} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"


def _net_class(ip: str, state: PlexState) -> str:
    if ip in state.wan_classes:
        return "WAN"
    if ip.startswith(("127.", "::1")):
        return "Loopback"
    return "Subnet"


def _reply(
    request: web.Request,
    container: str,
    attrs: dict[str, Any],
    children: list[dict[str, Any]] | None = None,
    child: str = "Setting",
) -> web.Response:
    if "json" in request.headers.get("Accept", "") and not request.app[STATE_KEY].xml_only:
        body: dict[str, Any] = dict(attrs)
        if children is not None:
            body[child] = children
        return web.json_response({container: body})
    root = ET.Element(container, {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in attrs.items()})
    for item in children or []:
        ET.SubElement(root, child, {k: str(v) for k, v in item.items()})
    return web.Response(body=ET.tostring(root, xml_declaration=True, encoding="utf-8"), content_type="text/xml")


def _authorised(request: web.Request) -> bool:
    state = request.app[STATE_KEY]
    presented = request.headers.get("X-Plex-Token", request.query.get("X-Plex-Token", ""))
    return hmac.compare_digest(presented.encode(), state.token.encode())


@web.middleware
async def _log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write the Request/Completed pair Plex writes at debug level."""
    state = request.app[STATE_KEY]
    started = time.monotonic()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    if state.log_path is not None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ip, port = (str(peer[0]), int(peer[1])) if peer else ("127.0.0.1", 0)
        addr = f"[{ip}]" if ":" in ip else ip
        rid = f"{next(_rid):x}"
        auth = f" Signed-in Token ({OWNER})" if _authorised(request) else ""
        path = request.rel_url.path_qs.replace("\n", "%0A")
        ms = int((time.monotonic() - started) * 1000)
        size = response.content_length or 0
        lines = [
            f"{_stamp()} [{threading.get_ident()}] DEBUG - Request: [{addr}:{port} ({_net_class(ip, state)})] "
            f"{request.method} {path} (1 live) #{rid} GZIP{auth}",
            f"{_stamp()} [{threading.get_ident()}] DEBUG - Completed: [{addr}:{port}] {response.status} "
            f"{request.method} {path} (1 live) #{rid} GZIP {ms}ms {size} bytes",
        ]
        with _log_lock, state.log_path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def identity(request: web.Request) -> web.Response:
    """No token needed, as on a real server."""
    state = request.app[STATE_KEY]
    return _reply(
        request,
        "MediaContainer",
        {"size": 0, "claimed": state.claimed, "machineIdentifier": state.machine_identifier, "version": state.version},
    )


async def prefs(request: web.Request) -> web.Response:
    """The settings list."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    settings = [{"id": k, "value": v, "default": ""} for k, v in sorted(state.prefs.items())]
    return _reply(request, "MediaContainer", {"size": len(settings)}, settings)


async def account(request: web.Request) -> web.Response:
    """Remote access mapping; like the real one, it also carries the owner's token."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    return _reply(
        request,
        "MyPlex",
        {
            "authToken": state.token,
            "username": OWNER,
            "mappingState": state.mapping_state,
            "mappingError": "",
            "publicAddress": state.public_address,
            "publicPort": state.public_port,
            "signInState": "ok",
            "subscriptionActive": True,
        },
    )


async def library(request: web.Request) -> web.Response:
    """Any other path: 401 without a token (what attackers and expired clients get), else a small list."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    return _reply(request, "MediaContainer", {"size": 0})


async def sessions(request: web.Request) -> web.Response:
    """``GET /status/sessions`` (python-plexapi plexapi/server.py ``PlexServer.sessions``).

    JSON puts the media under ``MediaContainer.Metadata`` with the children as objects; XML
    makes them child elements (``<Video>`` with ``<User>``, ``<Player>``, ``<Session>``).
    """
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    items = [s.parts(n + 1) for n, s in enumerate(state.sessions)]
    if "json" in request.headers.get("Accept", "") and not state.xml_only:
        metadata = [{**attrs, **children} for attrs, children in items]
        return web.json_response({"MediaContainer": {"size": len(metadata), "Metadata": metadata}})
    root = ET.Element("MediaContainer", {"size": str(len(items))})
    for attrs, children in items:
        video = ET.SubElement(root, "Video", {k: str(v) for k, v in attrs.items()})
        for tag, child in children.items():
            ET.SubElement(
                video, tag, {k: ("1" if v else "0") if isinstance(v, bool) else str(v) for k, v in child.items()}
            )
    return web.Response(body=ET.tostring(root, xml_declaration=True, encoding="utf-8"), content_type="text/xml")


async def terminate(request: web.Request) -> web.Response:
    """``GET /status/sessions/terminate?sessionId=…&reason=…`` (plexapi/base.py ``PlexSession.stop``)."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    sid, reason = request.query.get("sessionId", ""), request.query.get("reason", "")
    if not any(s.session_id == sid for s in state.sessions):
        raise web.HTTPNotFound(text="404 Not Found")
    state.sessions = [s for s in state.sessions if s.session_id != sid]
    state.terminated[sid] = reason
    return web.Response(status=200)


def _xml(root: ET.Element) -> web.Response:
    return web.Response(body=ET.tostring(root, xml_declaration=True, encoding="utf-8"), content_type="text/xml")


async def tv_user(request: web.Request) -> web.Response:
    """plex.tv ``/api/v2/user`` (python-plexapi plexapi/myplex.py ``MyPlexAccount._loadData``)."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    attrs = {"id": "1", "username": OWNER, "title": OWNER, "twoFactorEnabled": "1" if state.two_factor else "0"}
    root = ET.Element("user", attrs)
    ET.SubElement(root, "subscription", {"active": "1", "status": "Active", "plan": "lifetime"})
    return _xml(root)


async def tv_users(request: web.Request) -> web.Response:
    """plex.tv ``/api/users/`` (plexapi/myplex.py ``MyPlexUser`` with ``MyPlexServerShare`` children)."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    root = ET.Element("MediaContainer", {"friendlyName": "myPlex", "size": str(len(state.shared_users))})
    for n, (name, seen) in enumerate(sorted(state.shared_users.items()), start=100):
        user = ET.SubElement(root, "User", {"id": str(n), "title": name, "username": name, "home": "0"})
        share = {"id": str(n), "serverId": "1", "machineIdentifier": state.machine_identifier, "name": "Home"}
        share.update(lastSeenAt=str(int(seen)), numLibraries="2", allLibraries="0", owned="0", pending="0")
        ET.SubElement(user, "Server", share)
    return _xml(root)


def _device_key(name: str) -> str:
    """plex.tv's numeric device id: stable for a device, whatever else is added or removed."""
    return str(zlib.crc32(name.encode()) % 10_000_000)


async def tv_devices(request: web.Request) -> web.Response:
    """plex.tv ``/devices.xml`` (plexapi/myplex.py ``MyPlexDevice``; the real one carries a token per device)."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    root = ET.Element("MediaContainer", {"size": str(len(state.devices))})
    for n, (name, seen) in enumerate(sorted(state.devices.items())):
        attrs = {"name": name, "product": "Plex Web", "platform": "Chrome", "clientIdentifier": f"dev-{n}"}
        attrs.update(id=_device_key(name), createdAt=str(int(seen)), lastSeenAt=str(int(seen)))
        attrs["token"] = "device-token-never-read"  # noqa: S105 - a fake; the helper never reads it
        ET.SubElement(root, "Device", attrs)
    return _xml(root)


async def tv_remove_device(request: web.Request) -> web.Response:
    """plex.tv ``DELETE /devices/<id>.xml`` (plexapi/myplex.py ``MyPlexDevice.delete``)."""
    if not _authorised(request):
        raise web.HTTPUnauthorized(text="401 Unauthorized")
    state = request.app[STATE_KEY]
    found = [name for name in state.devices if _device_key(name) == request.match_info["key"]]
    if not found:
        raise web.HTTPNotFound(text="404 Not Found")
    name = found[0]
    del state.devices[name]
    state.removed_devices.append(name)
    return web.Response(status=200)


def create_plex_app(state: PlexState) -> web.Application:
    """The emulator as an aiohttp application."""
    app = web.Application(middlewares=[_log_middleware])
    app[STATE_KEY] = state
    app.router.add_get("/identity", identity)
    app.router.add_get("/:/prefs", prefs)
    app.router.add_get("/myplex/account", account)
    app.router.add_get("/status/sessions", sessions)
    app.router.add_get("/status/sessions/terminate", terminate)
    app.router.add_get("/api/v2/user", tv_user)
    app.router.add_get("/api/users/", tv_users)
    app.router.add_get("/devices.xml", tv_devices)
    app.router.add_delete("/devices/{key}.xml", tv_remove_device)
    app.router.add_route("*", "/{tail:.*}", library)
    return app
