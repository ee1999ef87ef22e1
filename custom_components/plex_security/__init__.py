"""The Plex Security integration: a Home Assistant view of the plex-security-helper."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .alerts import AlertListener
from .api import HelperClient
from .const import (
    CONF_FINGERPRINT,
    CONF_LONG_POLL,
    CONF_SCAN_INTERVAL,
    CONF_VERIFY_SSL,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator, PlexSecurityData
from .issues import clear_issues, update_issues
from .services import async_setup_services
from .threats import async_register_card, async_setup_websocket

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


def client_from_data(hass: HomeAssistant, data: dict[str, object]) -> HelperClient:
    """Build a helper client from config-entry (or flow) data."""
    use_tls = bool(data.get(CONF_SSL, False))
    verify = bool(data.get(CONF_VERIFY_SSL, True))
    pinned = data.get(CONF_FINGERPRINT)
    return HelperClient(
        async_get_clientsession(hass, verify_ssl=verify),
        host=str(data[CONF_HOST]),
        port=int(str(data[CONF_PORT])),
        token=str(data[CONF_TOKEN]),
        use_tls=use_tls,
        verify_ssl=verify,
        fingerprint=str(pinned) if pinned else None,
    )


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services, the threat view's websocket command and its card once."""
    async_setup_services(hass)
    async_setup_websocket(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> bool:
    """Connect to the helper, follow its alerts and set up the entities."""
    client = client_from_data(hass, dict(entry.data))
    coordinator = PlexSecurityCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    listener = AlertListener(
        hass,
        client,
        entry_id=entry.entry_id,
        server=entry.title,
        long_poll=bool(entry.options.get(CONF_LONG_POLL, True)),
        interval=float(entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)),
    )
    await listener.async_load(coordinator.data.last_alert_seq)
    entry.async_on_unload(listener.subscribe(coordinator.alert_arrived))
    entry.runtime_data = PlexSecurityData(coordinator, listener, dict(entry.options))

    entry.async_on_unload(coordinator.async_add_listener(lambda: update_issues(hass, entry)))
    update_issues(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the event entity is subscribed before the first alert.
    entry.async_create_background_task(hass, listener.run(), f"{DOMAIN} alerts {entry.title}")
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


async def _async_options_updated(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> None:
    """Apply new options (interval, long-poll) by reloading.

    Only for options: reauth and reconfigure change the data and reload through
    ``async_update_reload_and_abort``; reloading here too would reload twice.
    """
    if dict(entry.options) != entry.runtime_data.options:
        await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> bool:
    """Remove the entities; the alert task ends with the entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> None:
    """Forget the alert cursor and the repair issues of a deleted entry."""
    await AlertListener(
        hass,
        client_from_data(hass, dict(entry.data)),
        entry_id=entry.entry_id,
        server=entry.title,
        long_poll=False,
        interval=0,
    ).async_remove()
    clear_issues(hass, entry.entry_id)
