"""Coordinator: polls the helper's status snapshot; repair issues follow each snapshot."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .alerts import AlertListener, alert_verdict
from .api import HelperAuthError, HelperClient, HelperConnectionError, HelperError, HelperRequestError, Snapshot
from .const import CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL, DOMAIN, REFUSED_ISSUE, VERDICT_BAN

_LOGGER = logging.getLogger(__name__)
# An alert refreshes the snapshot at once; more alerts within this many seconds share one more
# refresh at its end. The poll interval stays as the fallback.
PUSH_COOLDOWN = 1.0

type PlexSecurityConfigEntry = ConfigEntry[PlexSecurityData]


class PlexSecurityCoordinator(DataUpdateCoordinator[Snapshot]):
    """Keeps the latest snapshot of one helper."""

    config_entry: PlexSecurityConfigEntry

    def __init__(self, hass: HomeAssistant, config_entry: PlexSecurityConfigEntry, client: HelperClient) -> None:
        seconds = int(config_entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL))
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=DOMAIN,
            update_interval=timedelta(seconds=seconds),
            request_refresh_debouncer=Debouncer(hass, _LOGGER, cooldown=PUSH_COOLDOWN, immediate=True),
        )
        self.client = client

    @callback
    def alert_arrived(self, alert: dict[str, Any]) -> None:
        """Show what the alert itself says now, and refresh the counters it changed (debounced)."""
        if self.data is not None:
            changes: dict[str, Any] = {
                "last_alert": alert,
                "last_alert_seq": max(self.data.last_alert_seq, int(alert["seq"])),
            }
            if alert_verdict(alert) == VERDICT_BAN:
                changes["last_attack"] = alert
            # Not async_set_updated_data: that would cancel the refresh requested below.
            self.data = replace(self.data, **changes)
            self.async_update_listeners()
        self.config_entry.async_create_background_task(
            self.hass, self.async_request_refresh(), f"{DOMAIN} refresh after alert {alert.get('seq')}"
        )

    async def _async_update_data(self) -> Snapshot:
        issue = f"{REFUSED_ISSUE}_{self.config_entry.entry_id}"
        try:
            snapshot = await self.client.status()
        except HelperRequestError as err:
            if not err.refuses_address:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="bad_response",
                    translation_placeholders={"error": str(err)},
                ) from err
            # A repair says why, and what to do: the entities alone would only be unavailable.
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=REFUSED_ISSUE,
                translation_placeholders={"server": self.config_entry.title, "code": err.code, "message": err.message},
            )
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key=REFUSED_ISSUE,
                translation_placeholders={"url": self.client.base_url, "code": err.code, "message": err.message},
            ) from err
        except HelperAuthError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth") from err
        except HelperConnectionError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"url": self.client.base_url},
            ) from err
        except HelperError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="bad_response",
                translation_placeholders={"error": str(err)},
            ) from err
        ir.async_delete_issue(self.hass, DOMAIN, issue)
        return snapshot


@dataclass(slots=True)
class PlexSecurityData:
    """What a loaded entry holds: the snapshot's coordinator, the alert stream, its options."""

    coordinator: PlexSecurityCoordinator
    alerts: AlertListener
    options: dict[str, Any]  # as set up: the update listener reloads only when they change
