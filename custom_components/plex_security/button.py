"""The "Run audit now" button."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import HelperError, HelperRequestError
from .const import DOMAIN
from .coordinator import PlexSecurityConfigEntry, PlexSecurityCoordinator
from .entity import PlexSecurityEntity
from .services import helper_failure

PARALLEL_UPDATES = 1

DESCRIPTION = ButtonEntityDescription(
    key="run_audit", translation_key="run_audit", entity_category=EntityCategory.CONFIG
)
LIFT_DESCRIPTION = ButtonEntityDescription(key="lift_newest_ban", translation_key="lift_newest_ban")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexSecurityConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the button of one helper."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([PlexSecurityAuditButton(coordinator), PlexSecurityLiftBanButton(coordinator)])


class PlexSecurityAuditButton(PlexSecurityEntity, ButtonEntity):
    """Asks the helper to audit now."""

    def __init__(self, coordinator: PlexSecurityCoordinator) -> None:
        super().__init__(coordinator, DESCRIPTION)

    async def async_press(self) -> None:
        """Run the audit, then refresh the entities."""
        try:
            await self.coordinator.client.run_audit()
        except HelperRequestError as err:
            if err.code == "rate_limited":
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="audit_rate_limited",
                    translation_placeholders={"seconds": str(err.retry_after or 30)},
                ) from err
            raise helper_failure(self.coordinator.config_entry, err) from err
        except HelperError as err:
            raise helper_failure(self.coordinator.config_entry, err) from err
        await self.coordinator.async_request_refresh()


class PlexSecurityLiftBanButton(PlexSecurityEntity, ButtonEntity):
    """Lifts the most recent active ban: the "that was my friend" button on a dashboard."""

    def __init__(self, coordinator: PlexSecurityCoordinator) -> None:
        super().__init__(coordinator, LIFT_DESCRIPTION)

    async def async_press(self) -> None:
        """Unban the newest ban the latest snapshot lists."""
        recent = (self.coordinator.data.raw.get("bans") or {}).get("recent") or []
        if not recent or not isinstance(recent[0], dict) or not recent[0].get("ip"):
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_active_ban")
        try:
            await self.coordinator.client.unban(str(recent[0]["ip"]))
        except HelperError as err:
            raise helper_failure(self.coordinator.config_entry, err) from err
        await self.coordinator.async_refresh()
