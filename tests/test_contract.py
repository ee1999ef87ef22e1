"""The integration's copy of the alert vocabulary matches the helper's model, kind by kind.

The integration never imports the helper; this test does, and fails when a kind added to
``model.AlertKind`` is missing from the integration's event types, verdicts, translations,
icons, logbook text or the notification blueprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from homeassistant.util.yaml import load_yaml_dict

from custom_components.plex_security.const import ALERT_VERDICTS, EVENT_TYPES, FIREWALL_MODES, FIREWALL_PROFILES
from custom_components.plex_security.logbook import alert_message
from plex_security_helper.api.firewall import MODES
from plex_security_helper.firewall.nft import PROFILES
from plex_security_helper.model import AlertKind

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "custom_components" / "plex_security"
BLUEPRINT = ROOT / "blueprints" / "automation" / "plex_security" / "notify_suspicious_access.yaml"
KINDS = [kind.value for kind in AlertKind]


def _titles(name: str) -> dict[str, str]:
    data = json.loads((COMPONENT / name).read_text())
    titles: dict[str, str] = data["entity"]["event"]["suspicious_access"]["state_attributes"]["event_type"]["state"]
    return titles


def test_event_types_and_verdicts_are_the_helpers() -> None:
    assert list(EVENT_TYPES) == KINDS
    assert {kind.value: kind.verdict.value for kind in AlertKind} == ALERT_VERDICTS


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_translated_titles_are_the_models_labels(name: str) -> None:
    assert _titles(name) == {kind.value: kind.label for kind in AlertKind}


def test_every_kind_has_an_icon() -> None:
    icons = json.loads((COMPONENT / "icons.json").read_text())
    states = icons["entity"]["event"]["suspicious_access"]["state_attributes"]["event_type"]["state"]
    assert set(states) == set(KINDS)
    assert all(str(icon).startswith("mdi:") for icon in states.values())


@pytest.mark.parametrize("kind", list(AlertKind), ids=str)
def test_logbook_names_type_address_and_outcome(kind: AlertKind) -> None:
    data: dict[str, Any] = {"type": kind.value, "ip": "203.0.113.7", "count": 5, "window_s": 60}
    message = alert_message(kind.label, data)
    assert message.startswith(f"{kind.label} ")
    assert "203.0.113.7" in message
    if kind.verdict.value == "ban":
        assert message.endswith("ban follows")


def test_blueprint_offers_every_kind() -> None:
    blueprint: Any = load_yaml_dict(str(BLUEPRINT))
    selector = blueprint["blueprint"]["input"]["event_types"]
    options = selector["selector"]["select"]["options"]
    assert [o["value"] for o in options] == KINDS
    assert {o["value"]: o["label"] for o in options} == {kind.value: kind.label for kind in AlertKind}
    # By default every judgement notifies, the ban records that follow them do not.
    assert selector["default"] == [k.value for k in AlertKind if k.verdict.value != "info"]


def test_firewall_modes_and_profiles_are_the_helpers() -> None:
    assert set(FIREWALL_PROFILES) == set(PROFILES)
    assert list(FIREWALL_MODES) == list(MODES)
    strings = json.loads((COMPONENT / "strings.json").read_text())
    assert set(strings["entity"]["select"]["firewall_profile"]["state"]) == set(PROFILES)
