"""Logbook rows for the helper's alerts: what happened, from where, why, and what was done.

Each alert is one ``plex_security_suspicious_access`` bus event, so each is one row, even when a
detection and the ban it caused share a millisecond.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.translation import async_get_cached_translations

from .const import ALERT_VERDICTS, DOMAIN, EVENT_SUSPICIOUS_ACCESS, VERDICT_BAN

TITLE_KEY = f"component.{DOMAIN}.entity.event.suspicious_access.state_attributes.event_type.state.%s"


def alert_title(hass: HomeAssistant, kind: str) -> str:
    """The translated title of an alert kind (its key, made readable, if none is loaded)."""
    titles = async_get_cached_translations(hass, hass.config.language, "entity", DOMAIN)
    return titles.get(TITLE_KEY % kind) or kind.replace("_", " ").capitalize()


def alert_message(title: str, data: dict[str, Any]) -> str:
    """One line: type, address, user, reason and outcome."""
    kind = str(data.get("type") or "")
    parts = [f"{title} {'of' if kind in ('banned', 'unbanned') else 'from'} {data.get('ip') or '?'}"]
    if data.get("country"):
        parts[0] += f" ({data['country']})"
    if data.get("user"):
        parts.append(f"user {data['user']}")
    if data.get("reason"):
        parts.append(str(data["reason"]))
    elif data.get("count"):
        window = data.get("window_s")
        parts.append(f"{data['count']} requests" + (f" in {window} s" if window else ""))
    if kind == "banned":
        parts.append("enforced by the firewall" if data.get("enforced") else "recorded only (monitor mode)")
    elif kind == "unbanned" and data.get("origin"):
        parts.append(f"ban by {data['origin']} lifted")
    elif ALERT_VERDICTS.get(kind) == VERDICT_BAN:
        parts.append("ban follows")
    return "; ".join(parts)


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the alert events."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        data = dict(event.data)
        title = alert_title(hass, str(data.get("type") or ""))
        row = {
            LOGBOOK_ENTRY_NAME: str(data.get("server") or "Plex Security"),
            LOGBOOK_ENTRY_MESSAGE: alert_message(title, data),
        }
        if data.get("entity_id"):
            row[LOGBOOK_ENTRY_ENTITY_ID] = str(data["entity_id"])
        return row

    async_describe_event(DOMAIN, EVENT_SUSPICIOUS_ACCESS, describe)
