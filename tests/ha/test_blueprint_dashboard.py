"""The shipped blueprint and dashboard load in Home Assistant, and the blueprint bans from a tap."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.components.blueprint import models
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import async_mock_service
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.ha.conftest import make_entry, state_of
from tests.helperproc import HelperProcess

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT = ROOT / "blueprints" / "automation" / "plex_security" / "notify_suspicious_access.yaml"
DASHBOARD = ROOT / "examples" / "dashboard.yaml"


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


BUILT_IN_CARDS = {"grid", "tile", "entities", "logbook", "markdown", "button", "glance", "history-graph"}


async def test_blueprint_is_valid_and_a_tap_on_ban_bans(hass: HomeAssistant, audited: HelperProcess) -> None:
    blueprint = models.Blueprint(load_yaml_dict(str(BLUEPRINT)), expected_domain="automation", schema=BLUEPRINT_SCHEMA)
    assert blueprint.inputs.keys() == {"notify_service", "event_types", "ban_hours"}

    entry = make_entry(audited)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    target = Path(hass.config.path("blueprints/automation/plex_security"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    automation: dict[str, Any] = {
        "id": "plex_notify",
        "alias": "Plex notify",
        "use_blueprint": {
            "path": "plex_security/notify_suspicious_access.yaml",
            "input": {"notify_service": "notify.mobile_app_phone", "ban_hours": 2},
        },
    }
    notifications = async_mock_service(hass, "notify", "mobile_app_phone")
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    assert state_of(hass, "automation.plex_notify") == "on"

    # A scan: the phone is told, with the two buttons.
    hass.bus.async_fire(
        "plex_security_suspicious_access",
        {"type": "scan", "ip": "203.0.113.99", "server": entry.title, "count": 12, "user": None},
    )
    # (The run now waits for a tap: block_till_done would wait with it, so poll instead.)
    await _until(lambda: len(notifications) == 1)
    sent = notifications[0].data
    assert sent["title"] == "Plex: scan"
    assert "203.0.113.99" in sent["message"]
    ban, ignore = sent["data"]["actions"]
    assert (ban["title"], ignore["title"]) == ("Ban 2 h", "Ignore")

    # A ban event of our own does not notify (not in the chosen types).
    hass.bus.async_fire("plex_security_suspicious_access", {"type": "banned", "ip": "203.0.113.98"})
    await asyncio.sleep(0.2)
    assert len(notifications) == 1

    # The owner taps "Ban 2 h": the address is banned through the integration's service.
    hass.bus.async_fire("mobile_app_notification_action", {"action": ban["action"]})

    async def banned() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await hass.async_add_executor_job(audited.get, "/api/v1/bans"))["bans"]
        return result

    async with asyncio.timeout(10):
        while not (bans := await banned()):
            await asyncio.sleep(0.05)
    assert [(b["ip"], b["origin"]) for b in bans] == [("203.0.113.99", "home_assistant")]
    assert 7190 < bans[0]["remaining_s"] <= 7200


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
    assert {c["type"] for c in cards} <= BUILT_IN_CARDS
    missing = sorted(e for e in entities if hass.states.get(e) is None)
    assert missing == []
