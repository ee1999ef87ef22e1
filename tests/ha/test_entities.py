"""Every entity of every platform, registry entry and state, against syrupy snapshots."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from tests.ha.conftest import make_entry
from tests.helperproc import HelperProcess


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT, Platform.SELECT, Platform.SENSOR, Platform.SWITCH],
)
async def test_entities(
    hass: HomeAssistant,
    audited: HelperProcess,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    with patch("custom_components.plex_security.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
