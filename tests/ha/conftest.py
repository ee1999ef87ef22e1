"""Fixtures for the Home Assistant tests: a real HA core next to a real helper process.

The audited helper sees a Plex emulator (served from the test's own event loop on loopback)
and a fixed Preferences.xml, with Docker and host checks off, so its audit is deterministic
and entity snapshots are stable.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from aiohttp import web
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.types import SerializableData

from custom_components.plex_security.const import CONF_VERIFY_SSL, DOMAIN
from plex_security_helper.demo.plexemu import PlexState, create_plex_app
from tests.helperproc import HelperProcess, free_port

BLUEPRINT = (
    Path(__file__).resolve().parents[2]
    / "blueprints"
    / "automation"
    / "plex_security"
    / "notify_suspicious_access.yaml"
)
HELPER_ID = "0123456789abcdef0123456789abcdef"
ENTRY_ID = "01JPLEXSECURITYTESTENTRY01"
PLEX_TOKEN = "plex-owner-token-for-tests"
PREFERENCES = (
    '<Preferences allowedNetworks="192.168.1.0/24,198.51.100.0/24" logDebug="1" secureConnections="0"'
    ' DisableTLSv1_0="1" RelayEnabled="0" GdmEnabled="0" PlexOnlineToken="{token}"/>'
)


# Registry fields that only some tested Home Assistant versions have (2026.2 added object_id_base
# and suggested_object_id): left out, so that one set of snapshots holds on every tested version.
VERSION_DEPENDENT_FIELDS = ("object_id_base", "suggested_object_id")


class _Serializer(HomeAssistantSnapshotSerializer):
    @classmethod
    def _serializable_entity_registry_entry(cls, data: Any) -> SerializableData:
        serialized = super()._serializable_entity_registry_entry(data)
        assert isinstance(serialized, dict)
        for key in VERSION_DEPENDENT_FIELDS:
            serialized.pop(key, None)
        return serialized


class _Extension(HomeAssistantSnapshotExtension):
    serializer_class = _Serializer


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots that know Home Assistant's types and leave out ids, timestamps and version-only fields."""
    return snapshot.use_extension(_Extension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/plex_security."""


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Enable entities that are disabled by default (as core's fixture of the same name does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


def entry_data(helper: HelperProcess, **overrides: Any) -> dict[str, Any]:
    """Config-entry data that points at *helper*."""
    data: dict[str, Any] = {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: helper.port,
        CONF_TOKEN: helper.token,
        CONF_SSL: False,
        CONF_VERIFY_SSL: True,
    }
    data.update(overrides)
    return data


def make_entry(helper: HelperProcess, **options: Any) -> MockConfigEntry:
    """An entry for *helper*, not yet added to Home Assistant."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plex Security (127.0.0.1)",
        data=entry_data(helper),
        unique_id=helper.helper_id,
        entry_id=ENTRY_ID,
        options=options,
    )


@pytest.fixture
def config_entry(helper: HelperProcess) -> MockConfigEntry:
    """An entry for the running helper, not yet added to Home Assistant."""
    return make_entry(helper)


@pytest.fixture
async def plex(socket_enabled: None) -> AsyncIterator[tuple[PlexState, int]]:
    """The Plex emulator on loopback: claimed, a vulnerable version, remote access mapped."""
    state = PlexState(token=PLEX_TOKEN, version="1.43.3.10861-abc", claimed=True)
    runner = web.AppRunner(create_plex_app(state))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state, port
    await runner.cleanup()


def audited_helper(root: Path, plex_port: int, *, cooldown: int = 0) -> HelperProcess:
    """A helper with a fixed id whose audit reads the emulator and a fixed Preferences.xml."""
    proc = HelperProcess(
        root,
        fixed_id=HELPER_ID,
        extra_config=(
            f'[audit]\nplex_url = "http://127.0.0.1:{plex_port}"\nplex_token = "{PLEX_TOKEN}"\n'
            f"docker = false\nhost = false\ncooldown = {cooldown}\n"
        ),
    )
    root.mkdir(parents=True, exist_ok=True)
    prefs = root / "Preferences.xml"
    prefs.write_text(PREFERENCES.format(token=PLEX_TOKEN))
    prefs.chmod(0o600)
    return proc


@pytest.fixture
async def audited(tmp_path: Path, plex: tuple[PlexState, int], hass: HomeAssistant) -> AsyncIterator[HelperProcess]:
    """A started audited helper (stopped afterwards)."""
    proc = audited_helper(tmp_path / "helper", plex[1])
    await hass.async_add_executor_job(proc.start)
    yield proc
    await hass.async_add_executor_job(proc.stop)


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state string of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def call_service(hass: HomeAssistant, service: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call one of our services and return its response data."""
    response: Any = await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)
    assert isinstance(response, dict)
    return response


async def phone_and_blueprint(hass: HomeAssistant, ban_hours: int = 2) -> list[ServiceCall]:
    """A companion-app phone named "Phone" and the blueprint's automation notifying it."""
    phone_entry = MockConfigEntry(domain="mobile_app", title="Phone")
    phone_entry.add_to_hass(hass)
    phone = dr.async_get(hass).async_get_or_create(
        config_entry_id=phone_entry.entry_id, identifiers={("mobile_app", "phone-1")}, name="Phone"
    )
    target = Path(hass.config.path("blueprints/automation/plex_security"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    automation: dict[str, Any] = {
        "id": "plex_notify",
        "alias": "Plex notify",
        "use_blueprint": {
            "path": "plex_security/notify_suspicious_access.yaml",
            "input": {"notify_device": phone.id, "ban_hours": ban_hours},
        },
    }
    notifications = async_mock_service(hass, "notify", "mobile_app_phone")
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    assert state_of(hass, "automation.plex_notify") == "on"
    return notifications
