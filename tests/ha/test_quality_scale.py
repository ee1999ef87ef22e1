"""The packaging claims: manifest keys for HACS, every quality-scale rule listed, translations complete."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.util.yaml import load_yaml_dict
from PIL import Image

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / "plex_security"
RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery-update-info",
        "discovery",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}


def test_every_rule_is_done_or_says_why_not() -> None:
    rules = load_yaml_dict(str(COMPONENT / "quality_scale.yaml"))["rules"]
    expected = {rule for tier in RULES.values() for rule in tier}
    assert set(rules) == expected
    for name, status in rules.items():
        if isinstance(status, dict):
            # Exempt or not done yet: either way, say why.
            assert status["status"] in ("exempt", "todo") and status["comment"], name
        else:
            assert status == "done", name


def test_manifest_and_hacs_files() -> None:
    manifest = json.loads((COMPONENT / "manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    for key in ("documentation", "issue_tracker", "codeowners", "iot_class", "version", "config_flow"):
        assert manifest[key], key
    hacs = json.loads((COMPONENT.parents[1] / "hacs.json").read_text())
    assert hacs["name"] == manifest["name"]
    with Image.open(COMPONENT / "brand" / "icon.png") as icon:
        assert icon.size == (256, 256)


def test_translations_are_literal_and_complete() -> None:
    strings = json.loads((COMPONENT / "strings.json").read_text())
    english = json.loads((COMPONENT / "translations" / "en.json").read_text())
    assert strings == english
    assert "[%key:" not in json.dumps(english)  # custom integrations get no key resolution
    icons = json.loads((COMPONENT / "icons.json").read_text())
    for platform, entities in english["entity"].items():
        assert set(entities) == set(icons["entity"][platform]), platform
    services = load_yaml_dict(str(COMPONENT / "services.yaml"))
    assert set(services) == set(english["services"]) == set(icons["services"])
    for name, service in services.items():
        assert set(service["fields"]) == set(english["services"][name]["fields"]), name
