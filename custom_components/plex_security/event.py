"""The "Suspicious access" event entity: one event per alert of the helper, never twice."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .alerts import AlertListener, alert_detail, alert_verdict
from .const import EVENT_TYPES
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity

PARALLEL_UPDATES = 0

DESCRIPTION = EventEntityDescription(
    key="suspicious_access",
    translation_key="suspicious_access",
    event_types=list(EVENT_TYPES),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event entity of one helper."""
    async_add_entities([PlexSecurityEvent(entry.runtime_data.coordinator, entry.runtime_data.alerts)])


class PlexSecurityEvent(PlexSecurityEntity, EventEntity):
    """Fires for every alert and ban the helper reports."""

    def __init__(self, coordinator: PlexSecurityCoordinator, alerts: AlertListener) -> None:
        super().__init__(coordinator, DESCRIPTION)
        self._alerts = alerts

    async def async_added_to_hass(self) -> None:
        """Subscribe to the alert stream."""
        await super().async_added_to_hass()
        self.async_on_remove(self._alerts.subscribe(self._handle_alert))
        self._alerts.event_entity_id = self.entity_id

    @callback
    def _handle_alert(self, alert: dict[str, Any]) -> None:
        kind = alert.get("kind")
        if kind not in EVENT_TYPES:
            return
        detail = alert_detail(alert)
        self._trigger_event(
            str(kind),
            {
                "ip": alert.get("ip"),
                "user": detail.get("user"),
                "country": detail.get("country"),
                "count": alert.get("count"),
                "score": alert.get("score"),
                "seq": alert.get("seq"),
                "verdict": alert_verdict(alert),
                "origin": detail.get("origin"),
                "reason": detail.get("reason"),
            },
        )
        self.async_write_ha_state()
