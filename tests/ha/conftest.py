"""Fixtures for the Home Assistant tests: a real HA core next to a real helper process."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plex_security.const import CONF_VERIFY_SSL, DOMAIN
from tests.helperproc import HelperProcess


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/plex_security."""


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


@pytest.fixture
def config_entry(helper: HelperProcess) -> MockConfigEntry:
    """An entry for the running helper, not yet added to Home Assistant."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plex Security (127.0.0.1)",
        data=entry_data(helper),
        unique_id=helper.helper_id,
    )
