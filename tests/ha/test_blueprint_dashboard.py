"""The shipped blueprint and dashboard load in Home Assistant, and the blueprint bans from a tap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from homeassistant.components.blueprint import models
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.ha.conftest import BLUEPRINT, make_entry, phone_and_blueprint, state_of
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "dashboard.yaml"


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


BUILT_IN_CARDS = {"grid", "tile", "entities", "logbook", "markdown", "button", "glance", "history-graph"}


def _counted(total: int) -> Callable[[dict[str, Any]], bool]:
    return lambda status: bool(status["failed_logins"]["total"] >= total)


def _alerts(notifications: list[ServiceCall]) -> list[ServiceCall]:
    return [n for n in notifications if n.data["message"] != "clear_notification"]


async def _bans(hass: HomeAssistant, helper: HelperProcess) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await hass.async_add_executor_job(helper.get, "/api/v1/bans"))["bans"]
    return result


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(load_yaml_dict(str(BLUEPRINT)), expected_domain="automation", schema=BLUEPRINT_SCHEMA)
    assert blueprint.inputs.keys() == {"notify_device", "event_types", "ban_hours", "stop_message"}
    assert blueprint.metadata["homeassistant"]["min_version"] == "2025.4.0"
    assert blueprint.inputs["notify_device"]["selector"]["device"]["filter"] == [{"integration": "mobile_app"}]


async def test_a_suspicion_offers_ban_and_a_tap_bans_and_clears(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    notifications = await phone_and_blueprint(hass)

    # A user from a new place: worth a look, not banned by the helper, so "Ban" is offered.
    hass.bus.async_fire(
        "plex_security_suspicious_access",
        {
            "type": "new_location",
            "title": "User from a new location",
            "verdict": "watch",
            "ip": "203.0.113.99",
            "server": entry.title,
            "config_entry_id": entry.entry_id,
            "count": 1,
            "user": "alice",
        },
    )
    # (The run now waits for a tap: block_till_done would wait with it, so poll instead.)
    await _until(lambda: len(notifications) == 1)
    sent = notifications[0].data
    assert sent["title"] == "Plex: User from a new location"
    assert "203.0.113.99" in sent["message"] and "user alice" in sent["message"]
    ban, ignore = sent["data"]["actions"]
    assert (ban["title"], ignore["title"]) == ("Ban 2 h", "Ignore")

    # A ban record of our own does not notify (not among the default types).
    hass.bus.async_fire("plex_security_suspicious_access", {"type": "banned", "verdict": "info", "ip": "203.0.113.98"})
    await asyncio.sleep(0.2)
    assert len(notifications) == 1

    # The owner taps "Ban 2 h": the notification is cleared, the address banned on every server.
    hass.bus.async_fire("mobile_app_notification_action", {"action": ban["action"]})
    async with asyncio.timeout(10):
        while not (bans := await _bans(hass, audited)):
            await asyncio.sleep(0.05)
    assert [(b["ip"], b["origin"]) for b in bans] == [("203.0.113.99", "home_assistant")]
    assert 7190 < bans[0]["remaining_s"] <= 7200
    clear = notifications[1].data
    assert (clear["message"], clear["data"]["tag"]) == ("clear_notification", "plex-security-203.0.113.99")


async def test_a_new_device_notifies_without_ban_buttons(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    notifications = await phone_and_blueprint(hass)
    # plex.tv authorized a device: there is no address to ban, but the owner wants to know.
    hass.bus.async_fire(
        "plex_security_suspicious_access",
        {
            "type": "new_device",
            "title": "New device on the account",
            "verdict": "watch",
            "ip": "",
            "device": "Smart TV",
            "device_id": "tv-9",
            "server": entry.title,
            "config_entry_id": entry.entry_id,
            "seq": 7,
        },
    )
    await _until(lambda: len(notifications) == 1)
    sent = notifications[0].data
    assert sent["title"] == "Plex: New device on the account"
    assert sent["message"].startswith("Smart TV on ") and "newly authorized" in sent["message"]
    assert [a["title"] for a in sent["data"]["actions"]] == ["Remove device", "Ignore"]
    assert sent["data"]["tag"] == "plex-security-tv-9"


async def test_an_attack_the_helper_banned_offers_unban(hass: HomeAssistant, audited: HelperProcess) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    notifications = await phone_and_blueprint(hass)
    attack = [line for p in range(5) for line in failed_login("203.0.113.77", port=45000 + p)]
    await hass.async_add_executor_job(audited.append, *attack)
    await _until(lambda: len(notifications) == 1)
    sent = notifications[0].data
    assert sent["title"] == "Plex: Failed-login burst"
    unban, _ = sent["data"]["actions"]
    assert unban["title"] == "Unban"  # no "Ban" for an address already banned
    await _until(lambda: state_of(hass, "sensor.plex_security_127_0_0_1_active_bans") == "1")

    hass.bus.async_fire("mobile_app_notification_action", {"action": unban["action"]})
    async with asyncio.timeout(10):
        while await _bans(hass, audited):
            await asyncio.sleep(0.05)
    assert notifications[1].data["message"] == "clear_notification"


async def test_thirty_minutes_of_attack_in_monitor_mode_notify_once_per_attacker(
    hass: HomeAssistant, audited: HelperProcess
) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    notifications = await phone_and_blueprint(hass)
    # Two attackers keep guessing for 30 minutes of Plex's log time (the helper's monitor mode
    # lets them): five wrong passwords a minute each, written as the minutes pass.
    start = datetime.now() - timedelta(minutes=31)
    attackers = ("203.0.113.81", "198.51.100.82")
    for minute in range(30):
        lines = [
            line
            for n, ip in enumerate(attackers)
            for k in range(5)
            for line in failed_login(
                ip, when=start + timedelta(minutes=minute, seconds=k), port=20000 + 100 * n + 5 * minute + k
            )
        ]
        await hass.async_add_executor_job(audited.append, *lines)
        await hass.async_add_executor_job(audited.wait_for, _counted(10 * (minute + 1)))
    await _until(lambda: len(_alerts(notifications)) >= 2)
    await asyncio.sleep(1)  # whatever else would come has had time to
    sent = _alerts(notifications)
    assert len(sent) == 2
    assert sorted(ip for ip in attackers if any(ip in n.data["message"] for n in sent)) == sorted(attackers)


async def test_dashboard_loads_with_built_in_cards_and_existing_entities(
    hass: HomeAssistant, audited: HelperProcess, hass_ws_client: WebSocketGenerator
) -> None:
    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert await async_setup_component(
        hass,
        "lovelace",
        {
            "lovelace": {
                "dashboards": {
                    "plex-security": {
                        "mode": "yaml",
                        "filename": str(DASHBOARD),
                        "title": "Plex Security",
                        "show_in_sidebar": True,
                    }
                }
            }
        },
    )
    client = await hass_ws_client(hass)
    await client.send_json({"id": 1, "type": "lovelace/config", "url_path": "plex-security"})
    response = await client.receive_json()
    assert response["success"], response
    config = response["result"]

    cards: list[dict[str, Any]] = []
    entities: set[str] = set()

    def walk(card: dict[str, Any]) -> None:
        cards.append(card)
        for key in ("entity",):
            if key in card:
                entities.add(card[key])
        for item in card.get("entities", []):
            entities.add(item if isinstance(item, str) else item["entity"])
        for inner in card.get("cards", []):
            walk(inner)

    for view in config["views"]:
        for card in view["cards"]:
            walk(card)
    # Built-in cards and the integration's own (served by it, see threats.py).
    assert {c["type"] for c in cards} <= BUILT_IN_CARDS | {"custom:plex-security-threats"}
    assert "custom:plex-security-threats" in {c["type"] for c in cards}
    missing = sorted(e for e in entities if hass.states.get(e) is None)
    assert missing == []
