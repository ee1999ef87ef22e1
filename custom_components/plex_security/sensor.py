"""Sensors: what the helper counted, found and blocked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .alerts import iso_time
from .api import Snapshot
from .const import FIREWALL_STATES
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PlexSecuritySensorDescription(SensorEntityDescription):
    """A sensor read from the status snapshot."""

    value_fn: Callable[[Snapshot], StateType | datetime]
    fleet_only: bool = False  # only for helpers with a [crowdsec] section


def _last_alert_time(s: Snapshot) -> datetime | None:
    when = s.last_alert.get("time") if s.last_alert else None
    return dt_util.utc_from_timestamp(float(when)) if isinstance(when, (int, float)) else None


def _last_attacker(s: Snapshot) -> str | None:
    ip = s.last_attack.get("ip") if s.last_attack else None
    return str(ip) if ip else None


def _score(s: Snapshot) -> int | None:
    score = s.audit.get("score")
    return int(score) if isinstance(score, int) else None


def _findings_of(severity: str) -> Callable[[Snapshot], int | None]:
    def value(s: Snapshot) -> int | None:
        return s.open_findings(severity)

    return value


def _streams(s: Snapshot, where: str) -> int | None:
    """Plex streams now, from the helper's last poll of the sessions (None when it cannot read them)."""
    sessions = s.raw.get("sessions")
    if not isinstance(sessions, dict) or not sessions.get("available"):
        return None
    value = sessions.get(where)
    return int(value) if isinstance(value, int) else None


SENSORS: tuple[PlexSecuritySensorDescription, ...] = (
    PlexSecuritySensorDescription(
        key="security_score",
        translation_key="security_score",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_score,
    ),
    *(
        PlexSecuritySensorDescription(
            key=f"open_findings_{severity}",
            translation_key=f"open_findings_{severity}",
            state_class=SensorStateClass.MEASUREMENT,
            entity_registry_enabled_default=severity != "low",
            value_fn=_findings_of(severity),
        )
        for severity in ("critical", "high", "medium", "low")
    ),
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
        key="active_bans",
        translation_key="active_bans",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.active_bans,
    ),
    PlexSecuritySensorDescription(
        key="alerts_24h",
        translation_key="alerts_24h",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.alerts_24h,
    ),
    PlexSecuritySensorDescription(
        key="last_attacker",
        translation_key="last_attacker",
        value_fn=_last_attacker,
    ),
    PlexSecuritySensorDescription(
        key="last_alert",
        translation_key="last_alert",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_alert_time,
    ),
    PlexSecuritySensorDescription(
        key="plex_version",
        translation_key="plex_version",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.plex.get("version"),
    ),
    PlexSecuritySensorDescription(
        key="log_lines_per_minute",
        translation_key="log_lines_per_minute",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.lines_per_minute,
    ),
    PlexSecuritySensorDescription(
        key="monitor_lag",
        translation_key="monitor_lag",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        # Stated, not left to Home Assistant: newer versions pick a precision for durations.
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.monitor_lag,
    ),
    PlexSecuritySensorDescription(
        key="firewall_state",
        translation_key="firewall_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(FIREWALL_STATES),
        value_fn=lambda s: s.firewall_state,
    ),
    PlexSecuritySensorDescription(
        key="firewall_drops",
        translation_key="firewall_drops",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.firewall_drops,
    ),
    PlexSecuritySensorDescription(
        key="fleet_push_queue",
        translation_key="fleet_push_queue",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.fleet.get("push_queue"),
        fleet_only=True,
    ),
    PlexSecuritySensorDescription(
        key="streams_remote",
        translation_key="streams_remote",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: _streams(s, "remote"),
    ),
    PlexSecuritySensorDescription(
        key="streams_local",
        translation_key="streams_local",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: _streams(s, "local"),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of one helper."""
    coordinator = entry.runtime_data.coordinator
    fleet = bool(coordinator.data.fleet.get("configured"))
    async_add_entities(PlexSecuritySensor(coordinator, d) for d in SENSORS if fleet or not d.fleet_only)
    known: set[str] = set()

    @callback
    def add_new_users() -> None:
        """A sensor for each Plex user the helper has seen streaming from outside, as they appear."""
        new = [u for u in _users(coordinator.data) if u not in known]
        known.update(new)
        if new:
            async_add_entities(PlexSecurityUserCountrySensor(coordinator, user) for user in new)

    add_new_users()
    entry.async_on_unload(coordinator.async_add_listener(add_new_users))


def _users(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """Each user's latest remote country, by user (the helper lists at most 50)."""
    sessions = snapshot.raw.get("sessions")
    rows = sessions.get("users") if isinstance(sessions, dict) else None
    return {str(r["user"]): r for r in rows or [] if isinstance(r, dict) and r.get("user") and r.get("country")}


class PlexSecurityUserCountrySensor(PlexSecurityEntity, SensorEntity):
    """The country a Plex user last streamed from, from outside the LAN (ISO 3166 code)."""

    def __init__(self, coordinator: PlexSecurityCoordinator, user: str) -> None:
        super().__init__(
            coordinator, SensorEntityDescription(key=f"user_country_{user}", translation_key="user_country")
        )
        self._user = user
        self._attr_translation_placeholders = {"user": user}

    def _row(self) -> dict[str, Any] | None:
        return _users(self.coordinator.data).get(self._user)

    @property
    def available(self) -> bool:
        """Only while the helper still lists the user (history ages out)."""
        return super().available and self._row() is not None

    @property
    def native_value(self) -> str | None:
        """The user's latest country."""
        row = self._row()
        return str(row["country"]) if row else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When that was."""
        row = self._row()
        return {"user": self._user, "seen": iso_time(row.get("seen")) if row else None}


class PlexSecuritySensor(PlexSecurityEntity, SensorEntity):
    """A value from the snapshot."""

    entity_description: PlexSecuritySensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The described value of the latest snapshot."""
        return self.entity_description.value_fn(self.coordinator.data)
