"""Coordinator: polls the helper's status snapshot."""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import HelperAuthError, HelperClient, HelperConnectionError, HelperError, Snapshot
from .const import DOMAIN, SCAN_INTERVAL

_LOGGER = logging.getLogger(__name__)

type PlexSecurityConfigEntry = ConfigEntry[PlexSecurityCoordinator]


class PlexSecurityCoordinator(DataUpdateCoordinator[Snapshot]):
    """Keeps the latest snapshot of one helper."""

    config_entry: PlexSecurityConfigEntry

    def __init__(self, hass: HomeAssistant, config_entry: PlexSecurityConfigEntry, client: HelperClient) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=DOMAIN,
            update_interval=SCAN_INTERVAL,
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
