"""The logbook, with a real recorder: one readable row per alert, each naming type and address."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.plex_security.const import DOMAIN, EVENT_SUSPICIOUS_ACCESS
from tests.ha.conftest import call_service, make_entry
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login

EVENT_ENTITY = "event.plex_security_127_0_0_1_suspicious_access"
ATTACKERS = ("203.0.113.21", "203.0.113.22", "198.51.100.23")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder first, then custom integrations (the order the test plugin needs)."""


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_seven_alerts_are_seven_readable_rows(
    hass: HomeAssistant, audited: HelperProcess, hass_ws_client: WebSocketGenerator
) -> None:
    start = dt_util.utcnow()
    events = async_capture_events(hass, EVENT_SUSPICIOUS_ACCESS)
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    hass.config.components.add("frontend")  # logbook's dependency; its files are not installed here
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()
    # The entity's first state is recorded (the logbook shows changes from a recorded state on).
    await async_wait_recording_done(hass)

    # Three attackers: each a detection and the ban it caused, in the same batch of the helper.
    lines = [
        line for n, ip in enumerate(ATTACKERS) for p in range(5) for line in failed_login(ip, port=40000 + 10 * n + p)
    ]
    await hass.async_add_executor_job(audited.append, *lines)
    await _until(lambda: len(events) == 6)
    # The seventh: the owner lifts one ban.
    await call_service(hass, "unban_ip", {"ip": ATTACKERS[0]})
    await _until(lambda: len(events) == 7)
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    client = await hass_ws_client(hass)
    await client.send_json(
        {
            "id": 1,
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "end_time": dt_util.utcnow().isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    rows: list[dict[str, Any]] = response["result"]

    described = [r for r in rows if r.get("domain") == DOMAIN]
    assert len(described) == 7, described
    messages = [r["message"] for r in described]
    for ip in ATTACKERS:
        assert sum(m.startswith(f"Failed-login burst from {ip}") for m in messages) == 1, messages
        assert sum(m.startswith(f"Banned of {ip}") for m in messages) == 1, messages
    assert sum(m.startswith(f"Unbanned of {ATTACKERS[0]}") for m in messages) == 1, messages
    assert all(r["name"] == entry.title for r in described)
    # Each readable row belongs to the event entity: its own logbook (a dashboard card) shows it.
    assert all(r.get("entity_id") == EVENT_ENTITY for r in described)
    banned = next(m for m in messages if m.startswith("Banned of"))
    assert "failed_login_burst" in banned  # the ban's reason
    assert "recorded only (monitor mode)" in banned  # what was done

    # The entity's own logbook (as a dashboard's logbook card asks for it) has the readable rows.
    await client.send_json(
        {
            "id": 2,
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "end_time": dt_util.utcnow().isoformat(),
            "entity_ids": [EVENT_ENTITY],
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    assert sorted(r["message"] for r in response["result"] if r.get("domain") == DOMAIN) == sorted(messages)

    # The event entity changed state once per alert: none is hidden behind another.
    states = [r["state"] for r in rows if r.get("entity_id") == EVENT_ENTITY and "state" in r]
    assert len(states) == 7, states
    assert len(set(states)) == 7
