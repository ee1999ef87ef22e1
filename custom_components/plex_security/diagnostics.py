"""Diagnostics with tokens, user names and the Plex token redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .coordinator import PlexSecurityConfigEntry

TO_REDACT = {CONF_TOKEN, "token", "user", "username", "plex_token", "PlexOnlineToken", "authToken", "X-Plex-Token"}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> dict[str, Any]:
    """The entry, its options and the latest snapshot, secrets removed."""
    coordinator, alerts = entry.runtime_data.coordinator, entry.runtime_data.alerts
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "alert_cursor": alerts.cursor,
        "long_poll": alerts.long_poll,
        "last_update_success": coordinator.last_update_success,
        "status": async_redact_data(coordinator.data.raw, TO_REDACT),
    }
