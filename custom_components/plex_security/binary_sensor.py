"""Binary sensors: whether Plex is configured safely, under attack, watched and protected."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import Snapshot
from .const import CONF_ATTACK_WINDOW, DEFAULT_ATTACK_WINDOW
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PlexSecurityBinarySensorDescription(BinarySensorEntityDescription):
    """A yes/no read from the snapshot (``window`` is the under-attack window in seconds)."""

    is_on_fn: Callable[[Snapshot, float], bool | None]
    fleet_only: bool = False  # only for helpers with a [crowdsec] section


def _config_problem(s: Snapshot, _: float) -> bool | None:
    if not s.audit.get("available"):
        return None
    return any(str(finding).startswith("plex.") for finding in s.audit.get("serious", []))


def _under_attack(s: Snapshot, window: float) -> bool:
    when = s.last_attack.get("time") if s.last_attack else None
    return isinstance(when, (int, float)) and time.time() - float(when) < window


BINARY_SENSORS: tuple[PlexSecurityBinarySensorDescription, ...] = (
    PlexSecurityBinarySensorDescription(
        key="fleet_lapi",
        translation_key="fleet_lapi",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda s, _: s.fleet.get("lapi_reachable"),
        fleet_only=True,
    ),
    PlexSecurityBinarySensorDescription(
        key="plex_configuration",
        translation_key="plex_configuration",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=_config_problem,
    ),
    PlexSecurityBinarySensorDescription(
        key="under_attack",
        translation_key="under_attack",
        device_class=BinarySensorDeviceClass.SAFETY,
        is_on_fn=_under_attack,
    ),
    PlexSecurityBinarySensorDescription(
        key="monitor",
        translation_key="monitor",
        device_class=BinarySensorDeviceClass.RUNNING,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda s, _: s.following and s.debug_logging_seen and s.monitor_error is None,
    ),
    PlexSecurityBinarySensorDescription(
        key="vulnerable_version",
        translation_key="vulnerable_version",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda s, _: s.plex.get("vulnerable") if s.plex.get("available") else None,
    ),
    PlexSecurityBinarySensorDescription(
        key="remote_access",
        translation_key="remote_access",
        is_on_fn=lambda s, _: s.plex.get("remote_access_exposed") if s.plex.get("available") else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of one helper."""
    window = 60.0 * float(entry.options.get(CONF_ATTACK_WINDOW, DEFAULT_ATTACK_WINDOW))
    coordinator = entry.runtime_data.coordinator
    fleet = bool(coordinator.data.fleet.get("configured"))
    async_add_entities(
        PlexSecurityBinarySensor(coordinator, d, window) for d in BINARY_SENSORS if fleet or not d.fleet_only
    )


class PlexSecurityBinarySensor(PlexSecurityEntity, BinarySensorEntity):
    """A yes/no from the snapshot."""

    entity_description: PlexSecurityBinarySensorDescription

    def __init__(
        self, coordinator: PlexSecurityCoordinator, description: PlexSecurityBinarySensorDescription, window: float
    ) -> None:
        super().__init__(coordinator, description)
        self._window = window

    @property
    def is_on(self) -> bool | None:
        """The described state of the latest snapshot."""
        return self.entity_description.is_on_fn(self.coordinator.data, self._window)
