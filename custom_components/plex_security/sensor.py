"""Sensors: what the helper counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api import Snapshot
from .coordinator import PlexSecurityConfigEntry
from .entity import PlexSecurityEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PlexSecuritySensorDescription(SensorEntityDescription):
    """A sensor read from the status snapshot."""

    value_fn: Callable[[Snapshot], StateType]


SENSORS: tuple[PlexSecuritySensorDescription, ...] = (
    PlexSecuritySensorDescription(
        key="failed_logins_24h",
        translation_key="failed_logins_24h",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.failed_logins_24h,
    ),
    PlexSecuritySensorDescription(
        key="suspicious_addresses_24h",
        translation_key="suspicious_addresses_24h",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.failed_addresses_24h,
    ),
    PlexSecuritySensorDescription(
        key="alerts_24h",
        translation_key="alerts_24h",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.alerts_24h,
    ),
    PlexSecuritySensorDescription(
        key="log_lines_per_minute",
        translation_key="log_lines_per_minute",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.lines_per_minute,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one helper."""
    coordinator = entry.runtime_data
    async_add_entities(PlexSecuritySensor(coordinator, d) for d in SENSORS)


class PlexSecuritySensor(PlexSecurityEntity, SensorEntity):
    """A number from the snapshot."""

    entity_description: PlexSecuritySensorDescription

    @property
    def native_value(self) -> StateType:
        """The described value of the latest snapshot."""
        return self.entity_description.value_fn(self.coordinator.data)
