"""The "Enforce bans" switch: monitor mode (record only) or enforce (the firewall drops)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import HelperError
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity
from .services import helper_failure

PARALLEL_UPDATES = 1

DESCRIPTION = SwitchEntityDescription(key="enforce", translation_key="enforce", entity_category=EntityCategory.CONFIG)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switch of one helper."""
    async_add_entities([PlexSecurityEnforceSwitch(entry.runtime_data.coordinator)])


class PlexSecurityEnforceSwitch(PlexSecurityEntity, SwitchEntity):
    """On: bans reach the firewall; off: monitor mode, bans are only recorded."""

    def __init__(self, coordinator: PlexSecurityCoordinator) -> None:
        super().__init__(coordinator, DESCRIPTION)

    @property
    def available(self) -> bool:
        """Only with a firewall section in the snapshot."""
        return super().available and bool(self.coordinator.data.firewall.get("available"))

    @property
    def is_on(self) -> bool:
        """Whether the helper's mode is enforce."""
        return self.coordinator.data.firewall.get("mode") == "enforce"

    async def _set(self, mode: str) -> None:
        try:
            await self.coordinator.client.set_firewall(mode=mode)
        except HelperError as err:
            raise helper_failure(self.coordinator.config_entry, err) from err
        await self.coordinator.async_refresh()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Enforce: active bans are put in force at once."""
        await self._set("enforce")

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Monitor: bans are recorded, nothing is dropped."""
        await self._set("monitor")
