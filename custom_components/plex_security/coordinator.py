"""Coordinator: polls the helper's status snapshot; repair issues follow each snapshot."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import HelperAuthError, HelperClient, HelperConnectionError, HelperError, Snapshot
from .const import CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL, DOMAIN

if TYPE_CHECKING:
    from .alerts import AlertListener

_LOGGER = logging.getLogger(__name__)

type PlexSecurityConfigEntry = ConfigEntry[PlexSecurityCoordinator]


class PlexSecurityCoordinator(DataUpdateCoordinator[Snapshot]):
    """Keeps the latest snapshot of one helper."""

    config_entry: PlexSecurityConfigEntry
    alerts: AlertListener

    def __init__(self, hass: HomeAssistant, config_entry: PlexSecurityConfigEntry, client: HelperClient) -> None:
        seconds = int(config_entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL))
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=DOMAIN,
            update_interval=timedelta(seconds=seconds),
        )
        self.client = client

    async def _async_update_data(self) -> Snapshot:
        try:
            return await self.client.status()
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
