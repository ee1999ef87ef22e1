"""The threat view's websocket command against a real helper: attackers, bans, findings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.ha.conftest import make_entry, state_of
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login

ATTACKER = "203.0.113.44"
SIX = "2001:db8:77::5"  # banned as its /64


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_the_view_names_the_attacker_its_ban_and_the_findings(
    hass: HomeAssistant, audited: HelperProcess, hass_ws_client: WebSocketGenerator
) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.async_add_executor_job(audited.get, "/api/v1/audit")
    lines = [line for ip in (SIX, ATTACKER) for p in range(5) for line in failed_login(ip, port=46000 + p)]
    await hass.async_add_executor_job(audited.append, *lines)
    await _until(lambda: state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "2")

    client = await hass_ws_client(hass)

    async def view(**extra: Any) -> dict[str, Any]:
        await client.send_json_auto_id({"type": "plex_security/threats", **extra})
        response = await client.receive_json()
        assert response["success"], response
        result: dict[str, Any] = response["result"]
        return result

    (server,) = (await view())["servers"]
    assert (server["config_entry_id"], server["title"], server["error"]) == (entry.entry_id, entry.title, None)
    assert server["firewall"] == {"state": "monitor", "mode": "monitor"}
    assert server["switch_entity"] == "switch.plex_security_127_0_0_1_enforce_bans"
    attacker, six = server["attackers"]  # newest first
    assert (attacker["ip"], attacker["kind"], attacker["title"]) == (
        ATTACKER,
        "failed_login_burst",
        "Failed-login burst",
    )
    assert attacker["reason"].startswith("5 requests in ")
    assert attacker["banned_as"] == ATTACKER
    assert (six["ip"], six["banned_as"]) == (SIX, "2001:db8:77::/64")
    ban = next(b for b in server["bans"] if b["ip"] == ATTACKER)
    assert (ban["ip"], ban["origin"], ban["enforced"]) == (ATTACKER, "detector", False)
    assert ban["reason"].startswith("failed_login_burst")
    assert 0 < ban["remaining_s"] <= 3600
    assert server["findings"], "the audited helper has findings"
    assert all(f["title"] and f["remediation"] for f in server["findings"])

    assert (await view(config_entry_id="another"))["servers"] == []
    # A helper that is gone: its row says why, the command still answers.
    await hass.async_add_executor_job(audited.stop)
    (server,) = (await view())["servers"]
    assert server["error"] and server["attackers"] == []
