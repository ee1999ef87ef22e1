"""The firewall controls: the enforce switch and the profile select change the real helper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from tests.ha.conftest import make_entry, state_of
from tests.helperproc import HelperProcess

SWITCH = "switch.plex_security_127_0_0_1_enforce_bans"
SELECT = "select.plex_security_127_0_0_1_firewall_profile"
STATE = "sensor.plex_security_127_0_0_1_firewall"
DROPS = "sensor.plex_security_127_0_0_1_firewall_drops"


@pytest.fixture
async def no_backend(tmp_path: Path, socket_enabled: None, hass: HomeAssistant) -> AsyncIterator[HelperProcess]:
    """A helper without a firewall backend: enforce changes the mode and touches no firewall here."""
    proc = HelperProcess(tmp_path / "helper", extra_config='[firewall]\nbackend = "none"\nmode = "monitor"\n')
    await hass.async_add_executor_job(proc.start)
    yield proc
    await hass.async_add_executor_job(proc.stop)


async def _setup(hass: HomeAssistant, helper: HelperProcess) -> None:
    entry = make_entry(helper)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_monitor_mode_reads_monitor_and_drops_nothing(hass: HomeAssistant, audited: HelperProcess) -> None:
    await _setup(hass, audited)
    assert state_of(hass, STATE) == "monitor"
    assert state_of(hass, DROPS) == "0"
    assert state_of(hass, SWITCH) == "off"
    assert state_of(hass, SELECT) == "default"


async def test_switch_and_select_change_the_helper(hass: HomeAssistant, no_backend: HelperProcess) -> None:
    await _setup(hass, no_backend)
    assert state_of(hass, STATE) == "off"  # no backend: nothing would drop

    await hass.services.async_call("switch", "turn_on", {"entity_id": SWITCH}, blocking=True)
    firewall = await hass.async_add_executor_job(no_backend.get, "/api/v1/firewall")
    assert (firewall["mode"], firewall["changed_by"]) == ("enforce", "home_assistant")
    assert state_of(hass, SWITCH) == "on"

    await hass.services.async_call("select", "select_option", {"entity_id": SELECT, "option": "strict"}, blocking=True)
    firewall = await hass.async_add_executor_job(no_backend.get, "/api/v1/firewall")
    assert (firewall["mode"], firewall["profile"]) == ("enforce", "strict")
    assert state_of(hass, SELECT) == "strict"

    await hass.services.async_call("switch", "turn_off", {"entity_id": SWITCH}, blocking=True)
    assert (await hass.async_add_executor_job(no_backend.get, "/api/v1/firewall"))["mode"] == "monitor"
    assert state_of(hass, SWITCH) == "off"

    # The helper goes away: the controls say so instead of pretending.
    await hass.async_add_executor_job(no_backend.stop)
    for domain, service, data in (
        ("switch", "turn_on", {"entity_id": SWITCH}),
        ("select", "select_option", {"entity_id": SELECT, "option": "off"}),
    ):
        with pytest.raises(HomeAssistantError) as err:
            await hass.services.async_call(domain, service, data, blocking=True)
        assert err.value.translation_key == "cannot_connect"
