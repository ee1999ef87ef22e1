"""Base entity: one device per helper (one Plex server)."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, MANUFACTURER, MODEL
from .coordinator import PlexSecurityCoordinator


class PlexSecurityEntity(CoordinatorEntity[PlexSecurityCoordinator]):
    """Common naming and device for every entity of one helper."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: PlexSecurityCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        server_id = coordinator.data.helper_id
        self._attr_unique_id = f"{server_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, server_id)},
            entry_type=DeviceEntryType.SERVICE,
            manufacturer=MANUFACTURER,
            model=MODEL,
            name=coordinator.config_entry.title,
            sw_version=coordinator.data.version,
            configuration_url=f"{coordinator.client.base_url}/api/v1/openapi.json",
        )
