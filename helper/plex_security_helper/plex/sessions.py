"""Who streams from where: Plex's current sessions, read on an interval and judged.

Shapes are python-plexapi's (pkkid/python-plexapi 4.16.1): ``PlexServer.sessions()`` reads
``GET /status/sessions`` (plexapi/server.py); each item is a media element carrying ``User``
(id, title; plexapi/base.py ``PlexSession._loadData``), ``Player`` (address, device,
machineIdentifier, platform, product, state, title, local, relayed, secure; plexapi/client.py
``PlexClient._loadData``), ``Session`` (id, bandwidth, location lan/wan/cellular; plexapi/media.py
``Session``) and, when transcoding, ``TranscodeSession`` (videoDecision; plexapi/media.py).
Stopping is ``PlexSession.stop``: ``GET /status/sessions/terminate?sessionId=…&reason=…``.

The judge: a user streaming from a country not seen before for them, two countries too far
apart for the time between (impossible travel), more remote streams at once than the owner
allows (account sharing), and a stream from a known hosting network. Verdict ``watch``: a
signed-in user is never banned by the helper; the owner can stop the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from ..config import AuditConfig, SessionsConfig
from ..model import Alert, AlertKind
from .geo import Geo

_LOGGER = logging.getLogger(__name__)
TIMEOUT = 5.0
MAX_BODY = 4 << 20
MAX_SESSIONS = 500
MAX_MESSAGE = 200
SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MEDIA_TAGS = ("Video", "Track", "Photo", "Episode", "Movie")


class PlexError(Exception):
    """The server could not be asked (no token, refused, down, unexpected answer)."""


def _text(value: Any, limit: int = 200) -> str:
    return str(value)[:limit] if value is not None else ""


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _int(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 12 else None


@dataclass(frozen=True, slots=True)
class Stream:
    """One current playback session."""

    session_id: str
    user: str
    user_id: int | None
    address: str
    local: bool
    location: str
    product: str
    platform: str
    device: str
    player: str
    machine_identifier: str
    state: str
    bandwidth: int | None
    transcode: str | None  # the video decision when transcoding ("transcode", "copy"), else None
    title: str
    country: str | None = None
    network_owner: str | None = None
    hosting: str | None = None

    @property
    def remote(self) -> bool:
        """Outside the owner's network, as Plex sees it."""
        return not self.local and self.location != "lan"

    def as_json(self) -> dict[str, Any]:
        """The shape served by ``/api/v1/sessions``."""
        return {
            "session_id": self.session_id,
            "user": self.user,
            "address": self.address,
            "remote": self.remote,
            "location": self.location,
            "product": self.product,
            "platform": self.platform,
            "device": self.device,
            "player": self.player,
            "state": self.state,
            "bandwidth": self.bandwidth,
            "transcode": self.transcode,
            "title": self.title,
            "country": self.country,
            "network_owner": self.network_owner,
            "hosting": self.hosting,
        }


def _stream(
    item: dict[str, Any],
    user: dict[str, Any],
    player: dict[str, Any],
    session: dict[str, Any],
    transcode: dict[str, Any] | None,
) -> Stream | None:
    sid = _text(session.get("id"), 64)
    if not SESSION_ID.match(sid):
        return None  # a session without bandwidth has no id and cannot be stopped; not a stream
    title = " – ".join(_text(item.get(k), 100) for k in ("grandparentTitle", "title") if item.get(k))
    return Stream(
        session_id=sid,
        user=_text(user.get("title"), 100) or "unknown",
        user_id=_int(user.get("id")),
        address=_text(player.get("remotePublicAddress") or player.get("address"), 64),
        local=_flag(player.get("local")),
        location=_text(session.get("location"), 16),
        product=_text(player.get("product"), 100),
        platform=_text(player.get("platform"), 100),
        device=_text(player.get("device"), 100),
        player=_text(player.get("title"), 100),
        machine_identifier=_text(player.get("machineIdentifier"), 100),
        state=_text(player.get("state"), 16),
        bandwidth=_int(session.get("bandwidth")),
        transcode=_text(transcode.get("videoDecision"), 16) or "transcode" if transcode is not None else None,
        title=title[:200],
    )


def parse_sessions(body: bytes, content_type: str) -> list[Stream]:
    """The streams of a ``/status/sessions`` answer, JSON or XML."""
    streams: list[Stream] = []
    if "json" in content_type:
        data = json.loads(body)
        container = data.get("MediaContainer") if isinstance(data, dict) else None
        items = container.get("Metadata", []) if isinstance(container, dict) else []
        for item in items[:MAX_SESSIONS] if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            parts = [item.get(k) for k in ("User", "Player", "Session")]
            user, player, session = (p if isinstance(p, dict) else {} for p in parts)
            transcode = item.get("TranscodeSession")
            found = _stream(item, user, player, session, transcode if isinstance(transcode, dict) else None)
            if found is not None:
                streams.append(found)
        return streams
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise PlexError("refusing an XML answer with declarations")
    root = ET.fromstring(body)  # noqa: S314 - declarations refused above, size bounded
    for elem in list(root)[:MAX_SESSIONS]:
        children = {child.tag: dict(child.attrib) for child in elem}
        found = _stream(
            dict(elem.attrib),
            children.get("User", {}),
            children.get("Player", {}),
            children.get("Session", {}),
            children.get("TranscodeSession"),
        )
        if found is not None:
            streams.append(found)
    return streams


@functools.lru_cache(maxsize=512)
def _centroid(country: str) -> tuple[float, float] | None:
    """The country's centre (countryinfo's latlng), None when unknown."""
    from countryinfo import CountryInfo  # noqa: PLC0415 - its data loads per country, on first use

    try:
        lat, lng = CountryInfo(country).latlng()[:2]
        return float(lat), float(lng)
    except (LookupError, ValueError, TypeError, AttributeError):  # countryinfo: CountryNotFoundError
        return None


def country_km(a: str, b: str) -> float | None:
    """Great-circle distance between two countries' centres, None when one is unknown."""
    pa, pb = _centroid(a.upper()), _centroid(b.upper())
    if pa is None or pb is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (*pa, *pb))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


MAX_USERS_SHOWN = 50  # users in /status's sessions section, each with their latest country


@dataclass(slots=True)
class _UserTrack:
    countries: dict[str, float] = field(default_factory=dict)  # country → last seen
    last_country: str | None = None
    last_time: float = 0.0
    sharing_alerted: bool = False


class SessionJudge:
    """Turns successive session lists into alerts; remembers per user where they streamed from."""

    def __init__(self, config: SessionsConfig) -> None:
        self.config = config
        self._users: dict[str, _UserTrack] = {}
        self._hosting_alerted: set[str] = set()

    def restore(self, history: list[tuple[str, str, float, float, str]]) -> None:
        """Learn the stored history, (user, country, first, last, ip), oldest last-seen first."""
        for user, country, _first, last, _ip in history:
            track = self._users.setdefault(user, _UserTrack())
            track.countries[country] = max(last, track.countries.get(country, 0.0))
            track.last_country, track.last_time = country, last

    def last_countries(self, limit: int) -> list[dict[str, Any]]:
        """Each user's latest country of a remote stream, most recent first (bounded)."""
        latest = [
            (user, *max(track.countries.items(), key=lambda kv: kv[1]))
            for user, track in self._users.items()
            if track.countries
        ]
        latest.sort(key=lambda row: -row[2])
        return [{"user": user, "country": country, "seen": seen} for user, country, seen in latest[:limit]]

    def judge(self, streams: list[Stream], now: float) -> tuple[list[Alert], list[tuple[str, str, str, float]]]:
        """Alerts for this poll, and the (user, country, ip, time) rows to remember."""
        alerts: list[Alert] = []
        seen: list[tuple[str, str, str, float]] = []
        remote: dict[str, list[Stream]] = {}
        for stream in streams:
            if not stream.remote:
                continue
            remote.setdefault(stream.user, []).append(stream)
            if stream.hosting and stream.session_id not in self._hosting_alerted:
                self._hosting_alerted.add(stream.session_id)
                if self.config.hosting_alerts:
                    alerts.append(self._alert(AlertKind.HOSTING_STREAM, stream, now, hosting=stream.hosting))
            if stream.country is not None:
                seen.append((stream.user, stream.country, stream.address, now))
        limit = self.config.max_remote_streams_per_user
        for user, track in self._users.items():
            if not limit or len(remote.get(user, ())) <= limit:
                track.sharing_alerted = False
        for user, mine in remote.items():
            track = self._users.setdefault(user, _UserTrack())
            alerts += self._places(track, mine, now)
            if limit and len(mine) > limit and not track.sharing_alerted:
                track.sharing_alerted = True
                alerts.append(
                    self._alert(
                        AlertKind.ACCOUNT_SHARING,
                        mine[0],
                        now,
                        count=len(mine),
                        streams=len(mine),
                        limit=limit,
                        addresses=sorted({s.address for s in mine})[:20],
                        countries=sorted({s.country or "?" for s in mine}),
                        sessions=[s.session_id for s in mine][:20],
                    )
                )
        self._hosting_alerted &= {s.session_id for s in streams}
        return alerts, seen

    def _places(self, track: _UserTrack, mine: list[Stream], now: float) -> list[Alert]:
        """New countries and impossible travel of one user's remote streams in this poll.

        A user's very first streams are learnt, not alerted. Streams in several countries at
        once are account sharing, not travel: the user's position is then unknown until one
        place remains.
        """
        alerts: list[Alert] = []
        first: dict[str, Stream] = {}
        for stream in mine:
            if stream.country is not None:
                first.setdefault(stream.country, stream)
        if not first:
            return alerts
        known = set(track.countries)
        if known:
            for country, stream in first.items():
                if country not in known:
                    alerts.append(self._alert(AlertKind.NEW_COUNTRY, stream, now, known_countries=sorted(known)[:20]))
        previous, since = track.last_country, now - track.last_time
        if len(first) == 1:
            ((country, stream),) = first.items()
            if previous and previous != country and since <= self.config.travel_hours * 3600:
                km = country_km(previous, country)
                if km is not None and km >= self.config.travel_km:
                    alerts.append(
                        self._alert(
                            AlertKind.IMPOSSIBLE_TRAVEL,
                            stream,
                            now,
                            previous_country=previous,
                            km=round(km),
                            hours=round(since / 3600, 2),
                        )
                    )
            track.last_country = country
        else:
            track.last_country = None
        track.last_time = now
        for country in first:
            track.countries[country] = now
        return alerts

    @staticmethod
    def _alert(kind: AlertKind, stream: Stream, now: float, count: int = 1, **extra: Any) -> Alert:
        detail: dict[str, Any] = {
            "verdict": kind.verdict.value,
            "label": kind.label,
            "user": stream.user,
            "country": stream.country,
            "session_id": stream.session_id,
            "product": stream.product,
            "player": stream.player,
            "platform": stream.platform,
            **extra,
        }
        if stream.network_owner:
            detail["network_owner"] = stream.network_owner
        return Alert(kind.value, stream.address, now, now, now, count, kind.score, detail)


class PlexServer:
    """The local server's session endpoints, with the token in the ``X-Plex-Token`` header only."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token = token

    async def _get(self, path: str, params: dict[str, str] | None = None) -> tuple[bytes, str]:
        headers = {"Accept": "application/json", "X-Plex-Token": self._token}
        try:
            async with asyncio.timeout(TIMEOUT):
                async with self._session.get(
                    self._base + path, params=params, headers=headers, allow_redirects=False
                ) as resp:
                    if resp.status == 401:
                        raise PlexError(f"{path}: the server refused the token")
                    if resp.status == 404:
                        raise LookupError(path)
                    if resp.status != 200:
                        raise PlexError(f"{path}: HTTP {resp.status}")
                    body = await resp.content.read(MAX_BODY + 1)
                    if len(body) > MAX_BODY:
                        raise PlexError(f"{path}: answer too large")
                    return body, resp.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise PlexError(f"{path}: {type(err).__name__}: {err}"[:200]) from None

    async def sessions(self) -> list[Stream]:
        """The current sessions."""
        body, content_type = await self._get("/status/sessions")
        try:
            return parse_sessions(body, content_type)
        except (ValueError, ET.ParseError, AttributeError) as err:
            raise PlexError(f"/status/sessions: unexpected answer: {err}"[:200]) from None

    async def terminate(self, session_id: str, reason: str) -> None:
        """Stop a session, showing *reason* to the viewer; LookupError when Plex does not know it."""
        await self._get("/status/sessions/terminate", {"sessionId": session_id, "reason": reason})


def server_token(audit: AuditConfig) -> str:
    """The token for the local server: the configured one, else Preferences.xml's PlexOnlineToken.

    Read when needed and held only in memory; never logged or returned.
    """
    if audit.plex_token:
        return audit.plex_token
    from ..audit.preferences import read_preferences  # noqa: PLC0415

    prefs, _ = read_preferences(audit.plex_dir / "Preferences.xml")
    return str((prefs or {}).get("PlexOnlineToken", ""))


class SessionWatcher:
    """Polls the sessions, keeps the latest list, hands alerts to the store through the monitor."""

    def __init__(self, config: SessionsConfig, audit: AuditConfig, geo: Geo) -> None:
        self.config = config
        self._audit = audit
        self._geo = geo
        self.judge = SessionJudge(config)
        self.streams: list[Stream] = []
        self.updated: float | None = None
        self.error: str | None = None
        self._token = ""
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Poll now (a playback webhook arrived) instead of at the next interval."""
        self._wake.set()

    async def pause(self) -> None:
        """Wait for the next poll: the interval, or a wake-up."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.config.interval)
        self._wake.clear()

    def _server(self) -> PlexServer:
        if not self._token:
            self._token = server_token(self._audit)
        if not self._token:
            raise PlexError("no Plex token: set [audit] plex_token or let the helper read Preferences.xml")
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return PlexServer(self._http, self._audit.plex_url, self._token)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def poll(self, now: float | None = None) -> tuple[list[Alert], list[tuple[str, str, str, float]]]:
        """Read the sessions once and judge them (the caller stores what comes back)."""
        try:
            streams = await self._server().sessions()
        except PlexError as err:
            if "refused the token" in str(err):
                self._token = ""  # read again next time: the owner may have signed the server in anew
            self.error = str(err)
            raise
        placed = []
        for stream in streams:
            place = self._geo.lookup(stream.address)
            placed.append(
                replace(stream, country=place.country, network_owner=place.network_owner, hosting=place.hosting)
            )
        self.streams, self.updated, self.error = placed, time.time(), None
        return self.judge.judge(placed, time.time() if now is None else now)

    async def stop(self, session_id: str, message: str) -> None:
        """Terminate one session with *message*; LookupError when it is not (or no longer) playing."""
        await self._server().terminate(session_id, message[:MAX_MESSAGE])
        self.streams = [s for s in self.streams if s.session_id != session_id]

    def status(self) -> dict[str, Any]:
        """The ``sessions`` section of ``/status``."""
        if not self.config.enabled:
            return {"available": False, "reason": "sessions are off in the configuration"}
        if self.updated is None:
            return {"available": False, "reason": self.error or "not read yet"}
        remote = sum(1 for s in self.streams if s.remote)
        return {
            "available": True,
            "updated": self.updated,
            "remote": remote,
            "local": len(self.streams) - remote,
            "users": self.judge.last_countries(MAX_USERS_SHOWN),
            "error": self.error,
        }


async def watch(watcher: SessionWatcher, monitor: Any) -> None:
    """Poll every interval until cancelled; alerts go to the store and wake the long-pollers."""
    said = ""
    watcher.judge.restore(await monitor.run_in_worker(monitor.store.user_countries))
    next_purge = 0.0
    while True:
        try:
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + 3600
                before = time.time() - watcher.config.history_days * 86_400
                await monitor.run_in_worker(monitor.store.purge_user_countries, before)
            alerts, seen = await watcher.poll()
            if alerts or seen:
                await monitor.run_in_worker(monitor.store.record_sessions, seen, alerts)
                if alerts:
                    await monitor.stream_changed()
            said = ""
        except PlexError as err:
            if str(err) != said:  # said once, not every poll
                _LOGGER.warning("cannot read Plex sessions: %s", err)
            said = str(err)
        except Exception as err:  # noqa: BLE001 - the poll must outlive any one bad answer
            _LOGGER.error("session poll failed: %s", err)
        await watcher.pause()
