"""The owner's plex.tv account, read with the server's own plex.tv token (opt-in).

Shapes and endpoints are python-plexapi's (plexapi/myplex.py, 4.16.1): ``MyPlexAccount``
(``GET /api/v2/user``: ``twoFactorEnabled``, ``username``), ``MyPlexUser`` (``GET /api/users/``:
``<User id title username>`` with ``<Server lastSeenAt numLibraries allLibraries>`` per shared
server, lastSeenAt in epoch seconds), ``MyPlexDevice`` (``GET /devices.xml``: ``<Device id name
product platform clientIdentifier createdAt lastSeenAt>``; its ``token`` attribute is dropped
on reading; ``MyPlexDevice.delete`` removes one: ``DELETE /devices/<id>.xml``). The token goes
only into the ``X-Plex-Token`` header; it is never stored, logged or returned.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..audit.findings import AuditReport, Finding, Severity
from ..config import AuditConfig, PlexTvConfig
from ..model import Alert, AlertKind

_LOGGER = logging.getLogger(__name__)
TIMEOUT = 10.0
MAX_BODY = 4 << 20
MAX_ITEMS = 2000
DAY = 86_400.0
# plex.tv's clientIdentifier as a caller may name it: letters, digits and a few separators.
DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class PlexTvUnavailable(Exception):
    """plex.tv could not be asked (no token, refused, unreachable, unexpected answer)."""


@dataclass(frozen=True, slots=True)
class SharedUser:
    """A user the owner shares with, and their last activity on the owner's servers."""

    id: str
    name: str
    last_seen: float | None
    libraries: int | None
    all_libraries: bool


@dataclass(frozen=True, slots=True)
class Device:
    """A device authorized on the owner's account."""

    id: str
    name: str
    product: str
    platform: str
    created: float | None
    last_seen: float | None
    key: str = ""  # plex.tv's own id of the device (``id``), which removing it takes


def _digits(value: str | None) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²" and "١", which int() and float() refuse."""
    return value is not None and value.isascii() and value.isdigit()


def _epoch(value: str | None) -> float | None:
    return float(value) if value and _digits(value) and len(value) < 12 else None


def _s(value: str | None, limit: int = 100) -> str:
    return (value or "")[:limit]


def _root(body: bytes) -> ET.Element:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise PlexTvUnavailable("refusing an XML answer with declarations")
    try:
        return ET.fromstring(body)  # noqa: S314 - declarations refused above, size bounded
    except ET.ParseError as err:
        raise PlexTvUnavailable(f"unexpected answer: {err}") from None


class PlexTv:
    """Asks plex.tv (or, in tests, the emulator at the configured base URL)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        if not token:
            raise PlexTvUnavailable("no plex.tv token (Preferences.xml has no PlexOnlineToken)")
        self._session, self._base, self._token = session, base_url.rstrip("/"), token

    async def _get(self, path: str) -> ET.Element:
        headers = {"Accept": "application/xml", "X-Plex-Token": self._token}
        try:
            async with asyncio.timeout(TIMEOUT):
                async with self._session.get(self._base + path, headers=headers, allow_redirects=False) as resp:
                    if resp.status in (401, 403):
                        raise PlexTvUnavailable(f"{path}: plex.tv refused the token")
                    if resp.status != 200:
                        raise PlexTvUnavailable(f"{path}: HTTP {resp.status}")
                    body = await resp.content.read(MAX_BODY + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise PlexTvUnavailable(f"{path}: {type(err).__name__}"[:200]) from None
        if len(body) > MAX_BODY:
            raise PlexTvUnavailable(f"{path}: answer too large")
        return _root(body)

    async def remove_device(self, key: str) -> None:
        """Remove an authorized device (``MyPlexDevice.delete``): its token stops working.

        LookupError when plex.tv has no such device.
        """
        if not _digits(key):
            raise LookupError(key)
        headers = {"Accept": "application/xml", "X-Plex-Token": self._token}
        path = f"/devices/{key}.xml"
        try:
            async with asyncio.timeout(TIMEOUT):
                async with self._session.delete(self._base + path, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise PlexTvUnavailable(f"{path}: {type(err).__name__}"[:200]) from None
        if status == 404:
            raise LookupError(key)
        if status in (401, 403):
            raise PlexTvUnavailable(f"{path}: plex.tv refused the token")
        if not 200 <= status < 300:
            raise PlexTvUnavailable(f"{path}: HTTP {status}")

    async def two_factor(self) -> bool:
        """Whether the account has two-factor authentication on (``MyPlexAccount.twoFactorEnabled``)."""
        root = await self._get("/api/v2/user")
        return root.attrib.get("twoFactorEnabled", "0").lower() in ("1", "true")

    async def users(self) -> list[SharedUser]:
        """Shared users (``MyPlexAccount.users``), last seen = the latest of their servers' ``lastSeenAt``."""
        out = []
        for elem in list(await self._get("/api/users/"))[:MAX_ITEMS]:
            if elem.tag != "User":
                continue
            servers = [s for s in elem if s.tag == "Server"]
            seen = [t for t in (_epoch(s.attrib.get("lastSeenAt")) for s in servers) if t is not None]
            libraries = [int(n) for s in servers if _digits(n := s.attrib.get("numLibraries", ""))]
            out.append(
                SharedUser(
                    id=_s(elem.attrib.get("id"), 20),
                    name=_s(elem.attrib.get("title") or elem.attrib.get("username")),
                    last_seen=max(seen) if seen else None,
                    libraries=sum(libraries) if libraries else None,
                    all_libraries=any(s.attrib.get("allLibraries") == "1" for s in servers),
                )
            )
        return out

    async def devices(self) -> list[Device]:
        """Authorized devices (``MyPlexAccount.devices``); each device's own token is not read."""
        return [
            Device(
                id=_s(e.attrib.get("clientIdentifier") or e.attrib.get("id")),
                name=_s(e.attrib.get("name")),
                product=_s(e.attrib.get("product")),
                platform=_s(e.attrib.get("platform")),
                created=_epoch(e.attrib.get("createdAt")),
                last_seen=_epoch(e.attrib.get("lastSeenAt")),
                key=_s(e.attrib.get("id"), 20),
            )
            for e in list(await self._get("/devices.xml"))[:MAX_ITEMS]
            if e.tag == "Device"
        ]


def account_findings(
    two_factor: bool, users: list[SharedUser], devices: list[Device], *, now: float, inactive_days: int, stale_days: int
) -> list[Finding]:
    """2FA off; shared users inactive beyond *inactive_days*; devices not seen for *stale_days*."""
    found: list[Finding] = []
    if not two_factor:
        found.append(
            Finding(
                "plex_tv.two_factor_off",
                Severity.HIGH,
                "Two-factor authentication is off on the owner's plex.tv account",
                "plex.tv reports twoFactorEnabled = 0: a leaked password (breaches of 2022, 2025) opens the server",
                "Turn on two-factor authentication at plex.tv > Account > Security.",
                ("https://support.plex.tv/articles/two-factor-authentication/",),
            )
        )
    for user in users:
        idle = None if user.last_seen is None else (now - user.last_seen) / DAY
        if idle is None or idle > inactive_days:
            found.append(
                Finding(
                    "plex_tv.user_inactive",
                    Severity.LOW,
                    "A shared user has not used the server for a long time",
                    f"{user.name}: last seen {'never' if idle is None else f'{int(idle)} days ago'},"
                    f" {'all' if user.all_libraries else user.libraries or 0} libraries shared",
                    "Remove the share (plex.tv > Settings > Manage Library Access) if it is no longer needed.",
                    subject=user.name,
                )
            )
    for device in devices:
        idle = None if device.last_seen is None else (now - device.last_seen) / DAY
        if idle is not None and idle > stale_days:
            found.append(
                Finding(
                    "plex_tv.device_stale",
                    Severity.LOW,
                    "An authorized device has not been seen for months",
                    f"{device.name} ({device.product}, {device.platform}): last seen {int(idle)} days ago",
                    "Remove it at plex.tv > Settings > Authorized Devices; its token stays valid until then.",
                    subject=device.id,
                )
            )
    return found


async def audit_account(report: AuditReport, session: aiohttp.ClientSession, config: PlexTvConfig, token: str) -> None:
    """Add the account's findings and facts to *report*, or say why plex.tv was not checked."""
    if not config.enabled:
        report.not_checked["plex_tv"] = "the plex.tv account is not checked ([plex_tv] enabled = false)"
        return
    try:
        client = PlexTv(session, config.url, token)
        two_factor, users, devices = await client.two_factor(), await client.users(), await client.devices()
    except PlexTvUnavailable as err:
        report.not_checked["plex_tv"] = str(err)
        return
    report.not_checked.pop("plex_tv", None)
    report.findings += account_findings(
        two_factor,
        users,
        devices,
        now=time.time(),
        inactive_days=config.inactive_days,
        stale_days=config.device_stale_days,
    )
    report.facts["plex_tv"] = {
        "two_factor": two_factor,
        "users": [{"name": u.name, "last_seen": u.last_seen, "libraries": u.libraries} for u in users[:100]],
        "devices": [{"name": d.name, "product": d.product, "last_seen": d.last_seen} for d in devices[:200]],
    }


def new_device_alerts(devices: list[Device], known: set[str], now: float) -> list[Alert]:
    """An alert per device not seen before; none on the first look (everything is new then)."""
    if not known:
        return []
    kind = AlertKind.NEW_DEVICE
    return [
        Alert(
            kind.value,
            "",  # plex.tv does not say from where a device was authorized
            now,
            d.created or now,
            d.last_seen or now,
            1,
            kind.score,
            {
                "verdict": kind.verdict.value,
                "label": kind.label,
                "source": "plex.tv",
                "device": d.name,
                "device_id": d.id,
                "product": d.product,
                "platform": d.platform,
                "country": None,
            },
        )
        for d in devices
        if d.id and d.id not in known
    ]


@dataclass(slots=True)
class DeviceWatch:
    """What the device watch last saw: for ``/status``, and the devices that can be removed."""

    enabled: bool
    checked: float | None = None
    devices: int = 0
    error: str | None = None
    listed: dict[str, Device] = field(default_factory=dict)  # the last listing, by device id

    def status(self) -> dict[str, Any]:
        """The ``plex_tv`` section of ``/status``."""
        if not self.enabled:
            return {"available": False, "reason": "the plex.tv account is not read ([plex_tv] enabled = false)"}
        if self.checked is None:
            return {"available": False, "reason": self.error or "not read yet"}
        return {"available": True, "checked": self.checked, "devices": self.devices, "error": self.error}


async def watch_devices(config: PlexTvConfig, audit: AuditConfig, monitor: Any, state: DeviceWatch) -> None:
    """Every interval: the account's devices; a newly authorized one becomes an alert."""
    from .sessions import server_token  # noqa: PLC0415 - one token reader for both

    said = ""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                token = await asyncio.to_thread(server_token, audit)
                devices = await PlexTv(session, config.url, token).devices()
                known = await monitor.run_in_worker(monitor.store.account_devices)
                now = time.time()
                alerts = new_device_alerts(devices, known, now)
                rows = [(d.id, d.name, now) for d in devices if d.id and d.id not in known]
                if rows:
                    await monitor.run_in_worker(monitor.store.record_devices, rows, alerts)
                if alerts:
                    await monitor.stream_changed()
                state.checked, state.devices, state.error = now, len(devices), None
                state.listed = {d.id: d for d in devices if d.id}
                said = ""
            except PlexTvUnavailable as err:
                state.error = str(err)
                if str(err) != said:
                    _LOGGER.warning("cannot read the plex.tv devices: %s", err)
                said = str(err)
            except Exception as err:  # noqa: BLE001 - the watch must outlive any one bad answer
                _LOGGER.error("plex.tv device watch failed: %s", err)
            await asyncio.sleep(config.interval)


async def remove_listed_device(config: PlexTvConfig, audit: AuditConfig, state: DeviceWatch, device_id: str) -> Device:
    """Remove a device the last listing showed (ids are plex.tv's, never the caller's guesses).

    LookupError when it was not listed or plex.tv no longer has it; PlexTvUnavailable otherwise.
    """
    from .sessions import server_token  # noqa: PLC0415 - one token reader for both

    device = state.listed.get(device_id)
    if device is None:
        raise LookupError(device_id)
    token = await asyncio.to_thread(server_token, audit)
    async with aiohttp.ClientSession() as session:
        try:
            await PlexTv(session, config.url, token).remove_device(device.key)
        except LookupError:
            state.listed.pop(device_id, None)  # gone already: not offered again
            raise
    state.listed.pop(device_id, None)
    state.devices = max(0, state.devices - 1)
    return device
