"""The fleet in Home Assistant: LAPI reachability, the push queue, and a repair for rejected credentials.

Real helper, real CrowdSec LAPI (Debian's crowdsec, started by the test under its temp dir).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.plex_security.const import DOMAIN
from tests.ha.conftest import ENTRY_ID, make_entry, state_of
from tests.helperproc import HelperProcess
from tests.system.crowdsec import Lapi, can_run


@pytest.fixture
async def lapi(tmp_path: Path, hass: HomeAssistant, socket_enabled: None) -> AsyncIterator[Lapi]:
    reason = can_run()
    if reason:
        pytest.skip(reason)
    server = Lapi(tmp_path / "lapi")
    await hass.async_add_executor_job(server.start)
    yield server
    await hass.async_add_executor_job(server.stop)


def _fleet_helper(root: Path, lapi: Lapi, password: str, key: str) -> HelperProcess:
    return HelperProcess(
        root,
        extra_config=(
            '[firewall]\nmode = "monitor"\n'
            f'[crowdsec]\nlapi_url = "{lapi.url}"\nmachine_id = "plex-ha"\npassword = "{password}"\n'
            f'bouncer_key = "{key}"\nstream_interval = 1\nretry_max = 1\n'
        ),
    )


async def test_rejected_credentials_raise_a_repair_that_clears_once_lapi_takes_them(
    hass: HomeAssistant, lapi: Lapi, tmp_path: Path
) -> None:
    password = await hass.async_add_executor_job(lapi.add_machine, "plex-ha")
    key = await hass.async_add_executor_job(lapi.add_bouncer, "plex-ha")
    helper = _fleet_helper(tmp_path / "helper", lapi, password, "not-the-registered-key")
    await hass.async_add_executor_job(helper.start)
    try:
        await hass.async_add_executor_job(helper.wait_for, lambda s: s["fleet"]["credentials_ok"] is False, 15.0)
        entry = make_entry(helper)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

        issue = ir.async_get(hass).async_get_issue(DOMAIN, f"fleet_credentials_rejected_{ENTRY_ID}")
        assert issue is not None
        assert issue.severity is ir.IssueSeverity.ERROR
        assert state_of(hass, "binary_sensor.plex_security_127_0_0_1_crowdsec_lapi") == "on"  # reachable
        assert state_of(hass, "sensor.plex_security_127_0_0_1_crowdsec_push_queue") == "0"

        # The owner puts the right key in and restarts the helper; a ban is pushed.
        await hass.async_add_executor_job(helper.stop)
        helper.config_path.write_text(helper.config_path.read_text().replace("not-the-registered-key", key))
        await hass.async_add_executor_job(helper.start)
        code, _ = await hass.async_add_executor_job(
            helper.call, "POST", "/api/v1/bans", {"ip": "203.0.113.70", "duration": 600}
        )
        assert code == 201
        await hass.async_add_executor_job(
            helper.wait_for, lambda s: s["fleet"]["credentials_ok"] is True and s["fleet"]["push_queue"] == 0, 15.0
        )
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        assert ir.async_get(hass).async_get_issue(DOMAIN, f"fleet_credentials_rejected_{ENTRY_ID}") is None
        values = {d["value"] for d in await hass.async_add_executor_job(lapi.decisions)}
        assert values == {"203.0.113.70"}
    finally:
        await hass.async_add_executor_job(helper.stop)


async def test_helpers_without_a_fleet_have_no_fleet_entities(hass: HomeAssistant, helper: HelperProcess) -> None:
    entry = make_entry(helper)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.plex_security_127_0_0_1_crowdsec_lapi") is None
    assert hass.states.get("sensor.plex_security_127_0_0_1_crowdsec_push_queue") is None
    assert state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "0"


async def test_the_threat_view_shows_the_fleet_decisions_with_their_origin_and_scenario(
    hass: HomeAssistant, lapi: Lapi, tmp_path: Path, hass_ws_client: WebSocketGenerator
) -> None:
    password = await hass.async_add_executor_job(lapi.add_machine, "plex-ha")
    key = await hass.async_add_executor_job(lapi.add_bouncer, "plex-ha")
    # The owner bans an address on the LAPI host, for every server of the fleet.
    await hass.async_add_executor_job(
        lapi.cscli, "decisions", "add", "-i", "198.51.100.123", "-d", "30m", "-R", "test: seen on the NAS"
    )
    helper = _fleet_helper(tmp_path / "helper", lapi, password, key)
    await hass.async_add_executor_job(helper.start)
    try:
        await hass.async_add_executor_job(
            helper.wait_for, lambda s: sum((s["fleet"]["pull"] or {}).get("decisions", {}).values()) == 1, 15.0
        )
        entry = make_entry(helper)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        client = await hass_ws_client(hass)
        await client.send_json_auto_id({"type": "plex_security/threats"})
        response = await client.receive_json()
        assert response["success"], response
        (server,) = response["result"]["servers"]
        (decision,) = server["fleet"]
        assert (decision["ip"], decision["lapi_origin"], decision["scenario"]) == (
            "198.51.100.123",
            "cscli",
            "test: seen on the NAS",
        )
        assert 1700 < decision["remaining_s"] <= 1800
        assert server["bans"] == []  # the fleet's decision is not one of this helper's own bans
    finally:
        await hass.async_add_executor_job(helper.stop)
