"""Repairs that appear and clear, the audit button, diagnostics, attack state and availability."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.plex_security.const import DOMAIN
from plex_security_helper.demo.plexemu import PlexState
from tests.ha.conftest import ENTRY_ID, PLEX_TOKEN, audited_helper, make_entry, state_of
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _issues(hass: HomeAssistant) -> set[str]:
    return {issue.translation_key or "" for (domain, _), issue in ir.async_get(hass).issues.items() if domain == DOMAIN}


async def _press_audit(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.plex_security_127_0_0_1_run_audit_now"}, blocking=True
    )
    # The button asks for a refresh; a second one within the debouncer's 10 s would wait.
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_repairs_appear_and_clear_themselves(
    hass: HomeAssistant, audited: HelperProcess, plex: tuple[PlexState, int]
) -> None:
    await _setup(hass, make_entry(audited))
    assert _issues(hass) == {"allowed_networks_public", "vulnerable_version"}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"vulnerable_version_{ENTRY_ID}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"server": "Plex Security (127.0.0.1)", "version": "1.43.3.10861-abc"}

    # The owner updates Plex and narrows allowedNetworks, but turns debug logging off and the
    # server loses its claim while remote access stays mapped.
    state, _ = plex
    state.version = "1.43.4.10903-abc"
    state.claimed = False
    (audited.root / "Preferences.xml").write_text(
        f'<Preferences allowedNetworks="192.168.1.0/24" logDebug="0" PlexOnlineToken="{PLEX_TOKEN}"/>'
    )
    await _press_audit(hass)
    assert _issues(hass) == {"unclaimed_exposed", "monitor_blind"}
    unclaimed = ir.async_get(hass).async_get_issue(DOMAIN, f"unclaimed_exposed_{ENTRY_ID}")
    assert unclaimed is not None
    assert unclaimed.severity is ir.IssueSeverity.CRITICAL

    state.claimed = True
    (audited.root / "Preferences.xml").write_text(
        f'<Preferences allowedNetworks="192.168.1.0/24" logDebug="1" PlexOnlineToken="{PLEX_TOKEN}"/>'
    )
    await _press_audit(hass)
    assert _issues(hass) == set()
    assert state_of(hass, "binary_sensor.plex_security_127_0_0_1_vulnerable_plex_version") == "off"


async def test_a_rebuilt_database_and_a_stalled_one_are_repairs(
    hass: HomeAssistant, tmp_path: Path, plex: tuple[PlexState, int]
) -> None:
    helper = audited_helper(tmp_path / "damaged", plex[1])
    (helper.root / "state.db").write_bytes(b"this is not a database" * 100)
    await hass.async_add_executor_job(helper.start)
    try:
        entry = make_entry(helper)
        await _setup(hass, entry)
        rebuilt = ir.async_get(hass).async_get_issue(DOMAIN, f"database_rebuilt_{ENTRY_ID}")
        assert rebuilt is not None and rebuilt.severity is ir.IssueSeverity.WARNING
        assert "moved to state.db.corrupt-" in (rebuilt.translation_placeholders or {})["notice"]
        assert "not_recording" not in _issues(hass)
        # Another program holds the database's write lock: the helper keeps the batch, says so,
        # and records it once the lock is gone.
        db = await hass.async_add_executor_job(
            lambda: sqlite3.connect(helper.root / "state.db", isolation_level=None, check_same_thread=False)
        )
        await hass.async_add_executor_job(db.execute, "BEGIN EXCLUSIVE")
        try:
            lines = [line for port in range(40000, 40005) for line in failed_login("203.0.113.70", port=port)]
            await hass.async_add_executor_job(helper.append, *lines)
            await hass.async_add_executor_job(
                lambda: helper.wait_for(lambda s: s["monitor"]["recording"] is False, timeout=30)
            )
            await entry.runtime_data.coordinator.async_refresh()
            await hass.async_block_till_done()
            stalled = ir.async_get(hass).async_get_issue(DOMAIN, f"not_recording_{ENTRY_ID}")
            assert stalled is not None and stalled.severity is ir.IssueSeverity.ERROR
            assert "locked" in (stalled.translation_placeholders or {})["error"]
        finally:
            await hass.async_add_executor_job(db.execute, "ROLLBACK")
            await hass.async_add_executor_job(db.close)
        await hass.async_add_executor_job(
            lambda: helper.wait_for(lambda s: s["monitor"]["recording"] and s["alerts"]["count_24h"] == 1, timeout=30)
        )
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        assert "not_recording" not in _issues(hass)
        assert "database_rebuilt" in _issues(hass)  # until the helper restarts
    finally:
        await hass.async_add_executor_job(helper.stop)


async def test_audit_button_says_when_the_helper_limits_it(
    hass: HomeAssistant, tmp_path: Path, plex: tuple[PlexState, int]
) -> None:
    limited = audited_helper(tmp_path / "limited", plex[1], cooldown=30)
    await hass.async_add_executor_job(limited.start)
    try:
        await _setup(hass, make_entry(limited))
        with pytest.raises(HomeAssistantError) as err:
            await _press_audit(hass)
        assert err.value.translation_key == "audit_rate_limited"
        assert 0 < int((err.value.translation_placeholders or {})["seconds"]) <= 30
    finally:
        await hass.async_add_executor_job(limited.stop)


async def test_diagnostics_redact_tokens_and_user_names(
    hass: HomeAssistant, audited: HelperProcess, hass_client: ClientSessionGenerator
) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    # alice signs in from home, then from a new network: a new-location alert naming her.
    await hass.async_add_executor_job(audited.append, *exchange("192.0.2.10", 200, user="alice"))
    await hass.async_add_executor_job(audited.append, *exchange("198.51.100.10", 200, user="alice"))
    await hass.async_add_executor_job(
        audited.wait_for, lambda s: (s["alerts"]["last"] or {}).get("kind") == "new_location"
    )
    await entry.runtime_data.coordinator.async_refresh()
    diagnostics: Any = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diagnostics)
    assert audited.token not in text
    assert "alice" not in text
    assert PLEX_TOKEN not in text
    assert diagnostics["entry"]["data"]["token"] == "**REDACTED**"
    assert diagnostics["status"]["alerts"]["last"]["detail"]["user"] == "**REDACTED**"
    assert diagnostics["status"]["alerts"]["last"]["kind"] == "new_location"
    assert diagnostics["alert_cursor"] is not None


async def test_under_attack_and_last_attacker(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    assert state_of(hass, "binary_sensor.plex_security_127_0_0_1_under_attack") == "off"
    lines = [line for port in range(40000, 40005) for line in failed_login("203.0.113.66", port=port)]
    await hass.async_add_executor_job(audited.append, *lines)
    await hass.async_add_executor_job(audited.wait_for, lambda s: s["alerts"]["count_24h"] == 1)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state_of(hass, "binary_sensor.plex_security_127_0_0_1_under_attack") == "on"
    assert state_of(hass, "sensor.plex_security_127_0_0_1_last_attacker") == "203.0.113.66"
    assert state_of(hass, "sensor.plex_security_127_0_0_1_failed_logins_24_h") == "5"
    assert state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "1"


async def test_unavailable_then_available_logs_once_each(
    hass: HomeAssistant, audited: HelperProcess, caplog: pytest.LogCaptureFixture
) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    caplog.set_level(logging.INFO)
    caplog.clear()
    await hass.async_add_executor_job(audited.stop)
    for _ in range(3):
        await coordinator.async_refresh()
    assert state_of(hass, "sensor.plex_security_127_0_0_1_security_score") == "unavailable"
    await hass.async_add_executor_job(audited.start)
    # The restarted helper audits again in the background: its score is unknown until then.
    await hass.async_add_executor_job(audited.wait_for, lambda s: s["audit"].get("score") is not None, 30.0)
    for _ in range(2):
        await coordinator.async_refresh()
    await asyncio.sleep(0)
    assert state_of(hass, "sensor.plex_security_127_0_0_1_security_score") == "21"
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components.plex_security")]
    assert len([m for m in messages if m.startswith("Error fetching plex_security data")]) == 1
    assert len([m for m in messages if m == "Fetching plex_security data recovered"]) == 1


async def test_removing_the_entry_forgets_its_cursor_and_issues(
    hass: HomeAssistant, audited: HelperProcess, hass_storage: dict[str, Any]
) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    key = f"{DOMAIN}.{entry.entry_id}.alerts"
    assert hass_storage[key]["data"] == {"cursor": 0}
    assert _issues(hass)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
    assert _issues(hass) == set()


async def test_lift_newest_ban_button(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    button = "button.plex_security_127_0_0_1_lift_newest_ban"
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    assert err.value.translation_key == "no_active_ban"
    for ip in ("203.0.113.1", "203.0.113.2"):
        await hass.services.async_call(DOMAIN, "ban_ip", {"ip": ip}, blocking=True)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    bans = (await hass.async_add_executor_job(audited.get, "/api/v1/bans"))["bans"]
    assert [b["ip"] for b in bans] == ["203.0.113.1"]
    assert state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "1"


async def test_a_probable_proxy_raises_a_repair_that_says_how_to_trust_it(
    hass: HomeAssistant, audited: HelperProcess
) -> None:
    entry = make_entry(audited)
    await _setup(hass, entry)
    assert "probable_proxy" not in _issues(hass)
    # A Docker bridge: one private address that Plex calls WAN, carrying three users.
    lines = [
        line
        for n, user in enumerate(("alice", "bob", "carol"))
        for line in exchange("172.17.0.1", 200, "/library/sections", user=user, port=41000 + n)
    ]
    await hass.async_add_executor_job(audited.append, *lines)
    await hass.async_add_executor_job(audited.wait_for, lambda s: s["monitor"]["probable_proxies"] == ["172.17.0.1"])
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"probable_proxy_{ENTRY_ID}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["addresses"] == "172.17.0.1"


async def test_plex_tv_two_factor_off_and_idle_friends_raise_repairs(
    hass: HomeAssistant, tmp_path: Path, plex: tuple[PlexState, int]
) -> None:
    import time

    state, port = plex
    state.two_factor = False
    state.shared_users = {"gone-friend": time.time() - 200 * 86_400}
    helper = audited_helper(tmp_path / "helper", port)
    helper.extra_config += f'[plex_tv]\nenabled = true\nurl = "http://127.0.0.1:{port}"\ninactive_days = 90\n'
    await hass.async_add_executor_job(helper.start)
    try:
        await _setup(hass, make_entry(helper))
        await _press_audit(hass)
        assert {"plex_tv_two_factor_off", "plex_tv_inactive_users"} <= _issues(hass)
        state.two_factor = True
        state.shared_users = {"friend": time.time()}
        await _press_audit(hass)
        assert not {"plex_tv_two_factor_off", "plex_tv_inactive_users"} & _issues(hass)
    finally:
        await hass.async_add_executor_job(helper.stop)
