"""Services against real helpers: ban on every server, unban, allow, audit, and every refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plex_security.const import DOMAIN
from plex_security_helper.demo.plexemu import PlexState
from tests.ha.conftest import audited_helper, call_service, entry_data, make_entry, state_of
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


type Servers = tuple[HelperProcess, HelperProcess, MockConfigEntry, MockConfigEntry]


@pytest.fixture
async def two_servers(
    hass: HomeAssistant, audited: HelperProcess, tmp_path: Path, plex: tuple[PlexState, int]
) -> AsyncIterator[Servers]:
    """Two Plex servers, each with its helper and entry."""
    second = audited_helper(tmp_path / "second", plex[1])
    second.fixed_id = "fedcba9876543210fedcba9876543210"
    await hass.async_add_executor_job(second.start)
    first_entry = make_entry(audited)
    second_entry = MockConfigEntry(
        domain=DOMAIN, title="Plex Security (second)", data=entry_data(second), unique_id=second.fixed_id
    )
    await _setup(hass, first_entry)
    await _setup(hass, second_entry)
    yield audited, second, first_entry, second_entry
    await hass.async_add_executor_job(second.stop)


async def test_ban_on_every_server_then_unban_on_one(hass: HomeAssistant, two_servers: Servers) -> None:
    first, second, _, second_entry = two_servers
    response = await call_service(
        hass, "ban_ip", {"ip": " 203.0.113.7 ", "duration": {"hours": 24}, "reason": "from my phone"}
    )
    assert response is not None
    bans = response["bans"]
    assert [b["server"] for b in bans] == ["Plex Security (127.0.0.1)", "Plex Security (second)"]
    assert all(b["ip"] == "203.0.113.7" for b in bans)
    expires = dt_util.parse_datetime(bans[0]["expires"])
    assert expires is not None
    assert timedelta(hours=23, minutes=59) < expires - dt_util.utcnow() <= timedelta(hours=24)
    for helper in (first, second):
        listed = await hass.async_add_executor_job(helper.get, "/api/v1/bans")
        assert [(b["ip"], b["origin"], b["reason"]) for b in listed["bans"]] == [
            ("203.0.113.7", "home_assistant", "from my phone")
        ]
        assert 86_390 < listed["bans"][0]["remaining_s"] <= 86_400
    assert state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "1"

    response = await call_service(hass, "unban_ip", {"ip": "203.0.113.7", "config_entry_id": second_entry.entry_id})
    assert response == {"unbans": [{"server": "Plex Security (second)", "ip": "203.0.113.7", "was_banned": True}]}
    assert (await hass.async_add_executor_job(second.get, "/api/v1/bans"))["bans"] == []
    assert len((await hass.async_add_executor_job(first.get, "/api/v1/bans"))["bans"]) == 1
    response = await call_service(hass, "unban_ip", {"ip": "203.0.113.7", "config_entry_id": second_entry.entry_id})
    assert response["unbans"][0]["was_banned"] is False


async def test_allow_lifts_the_ban_and_audit_reports_scores(hass: HomeAssistant, two_servers: Servers) -> None:
    _, _, first_entry, _ = two_servers
    await hass.services.async_call(DOMAIN, "ban_ip", {"ip": "2001:db8:5::/64"}, blocking=True)
    response = await call_service(
        hass, "allow_ip", {"ip": "2001:db8:5::/48", "reason": "my office", "config_entry_id": first_entry.entry_id}
    )
    assert response == {
        "allowed": [{"server": "Plex Security (127.0.0.1)", "ip": "2001:db8:5::/48", "unbanned": ["2001:db8:5::/64"]}]
    }
    response = await call_service(hass, "run_audit", {})
    # 1.43.3.10861: the September advisory is fixed, the two later Zenofex rows (high, medium) are not.
    assert [a["score"] for a in response["audits"]] == [21, 21]
    assert response["audits"][0]["counts"]["critical"] == 1
    assert response["audits"][0]["counts"]["high"] >= 1


async def test_lookup_tells_what_each_helper_knows(hass: HomeAssistant, two_servers: Servers) -> None:
    first, _, first_entry, _ = two_servers
    await hass.async_add_executor_job(first.wait_for, lambda s: s["monitor"]["following"])
    attack = [line for n in range(6) for line in failed_login("203.0.113.9", port=43000 + n)]
    await hass.async_add_executor_job(first.append, *attack)
    await hass.async_add_executor_job(first.wait_for, lambda s: s["failed_logins"]["total"] >= 6)
    response = await call_service(hass, "lookup_ip", {"ip": " 203.0.113.9 "})
    assert response is not None
    here, there = response["servers"]
    assert (here["server"], there["server"]) == ("Plex Security (127.0.0.1)", "Plex Security (second)")
    assert (here["seen"]["requests"], here["seen"]["failed_auth"], here["failed_logins_recent"]) == (6, 6, 6)
    assert "failed_login_burst" in [a["kind"] for a in here["recent_alerts"]]
    assert [b["ip"] for b in here["bans"]] == ["203.0.113.9"]
    # Times are ISO 8601 in UTC, as Home Assistant shows them everywhere else.
    for when in (here["seen"]["first_seen"], here["seen"]["last_seen"], here["bans"][0]["expires"]):
        assert dt_util.parse_datetime(when) is not None and when.endswith("+00:00"), when
    assert all(dt_util.parse_datetime(a["time"]) is not None for a in here["recent_alerts"])
    assert there["seen"] is None and there["bans"] == [] and there["recent_alerts"] == []

    response = await call_service(hass, "lookup_ip", {"ip": "192.168.1.4", "config_entry_id": first_entry.entry_id})
    assert [(s["server"], s["allowed"]) for s in response["servers"]] == [("Plex Security (127.0.0.1)", True)]


@pytest.mark.parametrize(
    ("service", "data", "key"),
    [
        ("lookup_ip", {"ip": "203.0.113.0/24"}, "invalid_ip"),
        ("lookup_ip", {"ip": "nope"}, "invalid_ip"),
        ("ban_ip", {"ip": "203.0.113.300"}, "invalid_ip"),
        ("ban_ip", {"ip": "203.0.113.7/24"}, "invalid_ip"),
        ("ban_ip", {"ip": "evil.example; rm -rf /"}, "invalid_ip"),
        ("unban_ip", {"ip": ""}, "invalid_ip"),
        ("allow_ip", {"ip": "not an ip"}, "invalid_ip"),
        ("ban_ip", {"ip": "203.0.113.7", "duration": {"seconds": 5}}, "invalid_duration"),
        ("ban_ip", {"ip": "203.0.113.7", "config_entry_id": "nope"}, "unknown_entry"),
        ("run_audit", {"config_entry_id": "nope"}, "unknown_entry"),
    ],
)
async def test_invalid_input_is_a_translated_validation_error(
    hass: HomeAssistant, audited: HelperProcess, service: str, data: dict[str, Any], key: str
) -> None:
    await _setup(hass, make_entry(audited))
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)
    assert err.value.translation_key == key
    assert (await hass.async_add_executor_job(audited.get, "/api/v1/bans"))["bans"] == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"ip": "192.168.1.20"}, "allow_listed"),
        ({"ip": "127.0.0.1"}, "loopback"),
        ({"ip": "0.0.0.0/0"}, "too_broad"),
    ],
)
async def test_a_refusing_helper_says_why(
    hass: HomeAssistant, audited: HelperProcess, data: dict[str, Any], code: str
) -> None:
    await _setup(hass, make_entry(audited))
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "ban_ip", data, blocking=True)
    assert err.value.translation_key == "helper_refused"
    assert (err.value.translation_placeholders or {})["code"] == code


async def test_helper_down_and_no_helpers(hass: HomeAssistant, audited: HelperProcess) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "run_audit", {}, blocking=True)
    assert err.value.translation_key == "no_helpers"
    entry = make_entry(audited)
    await _setup(hass, entry)
    await hass.async_add_executor_job(audited.stop)
    for service, data in (
        ("ban_ip", {"ip": "203.0.113.8"}),
        ("unban_ip", {"ip": "203.0.113.8"}),
        ("allow_ip", {"ip": "203.0.113.8"}),
        ("run_audit", {}),
    ):
        with pytest.raises(HomeAssistantError) as failure:
            await hass.services.async_call(DOMAIN, service, data, blocking=True)
        assert failure.value.translation_key == "cannot_connect"
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "run_audit", {"config_entry_id": entry.entry_id}, blocking=True)
    assert err.value.translation_key == "entry_not_loaded"
