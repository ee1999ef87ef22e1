"""Alerts reach Home Assistant once each: event entity and bus event, across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.plex_security.const import (
    CONF_LONG_POLL,
    CONF_SCAN_INTERVAL,
    DOMAIN,
    EVENT_SUSPICIOUS_ACCESS,
)
from tests.ha.conftest import make_entry
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the background alert task run until *predicate* holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _event_entity(hass: HomeAssistant) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "event", DOMAIN, "0123456789abcdef0123456789abcdef_suspicious_access"
    )
    assert entity_id is not None
    return entity_id


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _attack(helper: HelperProcess, ip: str, first_port: int) -> None:
    helper.append(*[line for p in range(first_port, first_port + 5) for line in failed_login(ip, port=p)])


@pytest.mark.parametrize("long_poll", [True, False], ids=["long-poll", "polling"])
async def test_each_alert_fires_once_across_a_restart(
    hass: HomeAssistant, audited: HelperProcess, long_poll: bool
) -> None:
    events: list[Event] = async_capture_events(hass, EVENT_SUSPICIOUS_ACCESS)
    fired: list[tuple[str, str]] = []  # (state = time of the event, event type): one per real event
    # Polling every second in the test (the options flow allows 10 s and more).
    entry = make_entry(audited, **{CONF_LONG_POLL: long_poll, CONF_SCAN_INTERVAL: 1})
    await _setup(hass, entry)
    entity_id = _event_entity(hass)

    @callback
    def record(event: Event) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] != entity_id or new is None or new.state in ("unavailable", "unknown"):
            return
        if (new.state, new.attributes["event_type"]) not in fired:  # a restored state is not an event
            fired.append((new.state, new.attributes["event_type"]))

    hass.bus.async_listen("state_changed", record)

    await hass.async_add_executor_job(_attack, audited, "203.0.113.9", 40000)
    await _until(lambda: len(events) == 2)  # the burst, and the (recorded) ban it led to
    assert [(e.data["type"], e.data["ip"]) for e in events] == [
        ("failed_login_burst", "203.0.113.9"),
        ("banned", "203.0.113.9"),
    ]
    assert events[0].data["count"] == 5
    assert events[0].data["config_entry_id"] == entry.entry_id
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["event_type"] == "banned"
    assert state.attributes["ip"] == "203.0.113.9"
    assert [kind for _, kind in fired] == ["failed_login_burst", "banned"], fired

    # Home Assistant goes down; the helper keeps judging; Home Assistant comes back.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await hass.async_add_executor_job(_attack, audited, "198.51.100.44", 41000)
    await hass.async_add_executor_job(audited.wait_for, lambda s: s["alerts"]["last_seq"] >= 4)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await _until(lambda: len(events) == 4)
    await asyncio.sleep(0.5)  # nothing more arrives: no alert is fired twice
    assert [(e.data["type"], e.data["ip"]) for e in events][2:] == [
        ("failed_login_burst", "198.51.100.44"),
        ("banned", "198.51.100.44"),
    ]
    assert [e.data["seq"] for e in events] == [1, 2, 3, 4]
    assert [kind for _, kind in fired] == ["failed_login_burst", "banned", "failed_login_burst", "banned"]


async def test_a_new_entry_does_not_replay_history(hass: HomeAssistant, audited: HelperProcess) -> None:
    await hass.async_add_executor_job(_attack, audited, "203.0.113.10", 42000)
    await hass.async_add_executor_job(audited.wait_for, lambda s: s["alerts"]["last_seq"] >= 2)
    events = async_capture_events(hass, EVENT_SUSPICIOUS_ACCESS)
    entry = make_entry(audited)
    await _setup(hass, entry)
    assert entry.runtime_data.alerts.cursor == 2
    await hass.async_add_executor_job(audited.append, *exchange("192.0.2.10", 200, user="alice"))
    await hass.async_add_executor_job(_attack, audited, "203.0.113.11", 43000)
    await _until(lambda: len(events) == 2)
    assert [e.data["ip"] for e in events] == ["203.0.113.11", "203.0.113.11"]


async def test_a_reset_helper_database_moves_the_cursor_back(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    listener = entry.runtime_data.alerts
    listener.cursor = 50  # as if the helper had been reinstalled since
    assert await listener.poll_once() == 0
    assert listener.cursor == 0


async def test_an_alert_refreshes_the_entities_it_changes_without_waiting_for_the_poll(
    hass: HomeAssistant, audited: HelperProcess
) -> None:
    # An hour between polls: whatever changes below, the alert pushed it.
    entry = make_entry(audited, **{CONF_SCAN_INTERVAL: 3600})
    await _setup(hass, entry)
    registry = er.async_get(hass)

    def state(platform: str, key: str) -> str | None:
        entity_id = registry.async_get_entity_id(platform, DOMAIN, f"{audited.helper_id}_{key}")
        assert entity_id is not None, key
        current = hass.states.get(entity_id)
        return current.state if current else None

    assert state("binary_sensor", "under_attack") == "off"
    assert state("sensor", "active_bans") == "0"
    await hass.async_add_executor_job(_attack, audited, "203.0.113.30", 44000)
    await _until(
        lambda: (
            state("binary_sensor", "under_attack") == "on"
            and state("sensor", "last_attacker") == "203.0.113.30"
            and state("sensor", "active_bans") == "1"
            and state("sensor", "failed_logins_24h") == "5"
        )
    )
