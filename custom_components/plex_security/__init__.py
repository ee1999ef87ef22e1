"""The Plex Security integration: a Home Assistant view of the plex-security-helper."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import HelperClient
from .const import CONF_VERIFY_SSL
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator

PLATFORMS: list[Platform] = [Platform.SENSOR]


def client_from_data(hass: HomeAssistant, data: dict[str, object]) -> HelperClient:
    """Build a helper client from config-entry (or flow) data."""
    use_tls = bool(data.get(CONF_SSL, False))
    verify = bool(data.get(CONF_VERIFY_SSL, True))
    return HelperClient(
        async_get_clientsession(hass, verify_ssl=verify),
        host=str(data[CONF_HOST]),
        port=int(str(data[CONF_PORT])),
        token=str(data[CONF_TOKEN]),
        use_tls=use_tls,
        verify_ssl=verify,
    )


async def async_setup_entry(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> bool:
    """Connect to the helper and set up the entities."""
    coordinator = PlexSecurityCoordinator(hass, entry, client_from_data(hass, dict(entry.data)))
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> bool:
    """Remove the entities."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
