"""End to end: Plex log lines appended on the helper's host change a Home Assistant sensor."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.plex_security.const import DOMAIN, SCAN_INTERVAL
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login


def _state(hass: HomeAssistant, helper: HelperProcess, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{helper.helper_id}_{key}")
    assert entity_id is not None, key
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def _refresh(hass: HomeAssistant) -> None:
    """What the poll interval does (its task runs in the background, next to the alert long-poll)."""
    async_fire_time_changed(hass, dt_util.utcnow() + SCAN_INTERVAL)
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_failed_logins_reach_sensor(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert _state(hass, helper, "failed_logins_24h") == "0"

    # Three failed logins from two internet addresses, plus traffic that must not count:
    # a signed-in user's success and a LAN device's 401.
    helper.append(*failed_login("203.0.113.7", port=40001), *failed_login("203.0.113.7", port=40002))
    helper.append(*failed_login("2001:db8::7", port=40003))
    helper.append(*exchange("192.0.2.10", 200, user="alice"))
    helper.append(*exchange("192.168.1.20", 401, net_class="Subnet"))
    await hass.async_add_executor_job(helper.wait_for, lambda s: s["monitor"]["access_lines"] >= 10)

    await _refresh(hass)
    assert _state(hass, helper, "failed_logins_24h") == "3"
    assert _state(hass, helper, "suspicious_addresses_24h") == "2"

    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, helper.helper_id)})
    assert device is not None
    assert device.sw_version == "0.1.0"


async def test_helper_down_makes_entities_unavailable(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, helper, "failed_logins_24h") == "0"

    helper.stop()
    await _refresh(hass)
    assert _state(hass, helper, "failed_logins_24h") == "unavailable"

    helper.start()
    await _refresh(hass)
    assert _state(hass, helper, "failed_logins_24h") == "0"


async def test_setup_retries_when_helper_unreachable(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    helper.stop()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_rejected_token_fails_setup(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    bad = MockConfigEntry(
        domain=DOMAIN,
        data={**config_entry.data, "token": "not-the-token-at-all"},
        unique_id=helper.helper_id,
    )
    bad.add_to_hass(hass)
    await hass.config_entries.async_setup(bad.entry_id)
    assert bad.state is ConfigEntryState.SETUP_ERROR


async def test_unload(hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.NOT_LOADED
