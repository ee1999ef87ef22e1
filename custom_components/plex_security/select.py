"""The firewall's rate profile (default, strict, off) as a select."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import HelperError
from .const import FIREWALL_PROFILES
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity
from .services import helper_failure

PARALLEL_UPDATES = 1

DESCRIPTION = SelectEntityDescription(
    key="firewall_profile",
    translation_key="firewall_profile",
    entity_category=EntityCategory.CONFIG,
    options=list(FIREWALL_PROFILES),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the select of one helper."""
    async_add_entities([PlexSecurityProfileSelect(entry.runtime_data.coordinator)])


class PlexSecurityProfileSelect(PlexSecurityEntity, SelectEntity):
    """How many new connections a second an address may open (applies when enforcing)."""

    def __init__(self, coordinator: PlexSecurityCoordinator) -> None:
        super().__init__(coordinator, DESCRIPTION)

    @property
    def available(self) -> bool:
        """Only with a firewall section in the snapshot."""
        return super().available and bool(self.coordinator.data.firewall.get("available"))

    @property
    def current_option(self) -> str | None:
        """The helper's profile."""
        profile = self.coordinator.data.firewall.get("profile")
        return str(profile) if profile in FIREWALL_PROFILES else None

    async def async_select_option(self, option: str) -> None:
        """Ask the helper to switch profile."""
        try:
            await self.coordinator.client.set_firewall(profile=option)
        except HelperError as err:
            raise helper_failure(self.coordinator.config_entry, err) from err
        await self.coordinator.async_refresh()
