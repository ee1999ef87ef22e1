"""Plex's webhooks: multipart posts of a ``payload`` JSON part, unsigned, so the URL carries a secret.

Some events also carry a ``thumb`` image part, which is skipped.

Payload (Plex's webhook documentation; python-plexapi does not parse these): ``event``
(``device.new``, ``playback.started``, ``media.play`` …), ``Account`` {id, title}, ``Server``
{title, uuid}, ``Player`` {local, publicAddress, title, uuid}. ``device.new`` ("a new device
accessed the owner's server") becomes an alert at once; playback events make the session
watcher poll now instead of at its next interval.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ..model import Alert, AlertKind
from .geo import Geo, parse_address

EVENT = re.compile(r"^[a-z]{1,20}(\.[a-z]{1,20}){1,3}$")


class WebhookError(Exception):
    """The post is not a Plex webhook we accept."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """The parts of one webhook the helper uses."""

    event: str
    account: str
    player: str
    player_uuid: str
    address: str  # the player's public address, "" when absent or not an address
    local: bool
    server: str


def _part(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _short(value: Any, limit: int = 100) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_payload(raw: bytes) -> WebhookEvent:
    """Validate the ``payload`` part."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("the payload is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookError("the payload is not an object")
    event = data.get("event")
    if not isinstance(event, str) or not EVENT.match(event):
        raise WebhookError("no valid event name")
    player = _part(data, "Player")
    address = parse_address(_short(player.get("publicAddress"), 64))
    return WebhookEvent(
        event=event,
        account=_short(_part(data, "Account").get("title")),
        player=_short(player.get("title")),
        player_uuid=_short(player.get("uuid")),
        address=str(address) if address is not None else "",
        local=player.get("local") is True,
        server=_short(_part(data, "Server").get("title")),
    )


def device_alert(event: WebhookEvent, geo: Geo, now: float | None = None) -> Alert:
    """The alert for ``device.new``."""
    now = time.time() if now is None else now
    kind = AlertKind.NEW_DEVICE
    detail = {
        "verdict": kind.verdict.value,
        "label": kind.label,
        "source": "webhook",
        "event": event.event,
        "user": event.account,
        "device": event.player,
        "device_id": event.player_uuid,
        "local": event.local,
        "server": event.server,
        "country": geo.country(event.address) if event.address else None,
    }
    return Alert(kind.value, event.address, now, now, now, 1, kind.score, detail)
