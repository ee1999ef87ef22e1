"""Config flow against a real helper: success, wrong token, unreachable, odd answers, duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plex_security.const import DOMAIN
from tests.ha.conftest import entry_data
from tests.helperproc import HelperProcess, free_port


@pytest.fixture
async def odd_server() -> AsyncIterator[int]:
    """A server on loopback that answers 200 with a body that is not a helper status."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"helper": {"id": "x"}})

    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield port
    await runner.cleanup()


async def test_user_flow_creates_entry(hass: HomeAssistant, helper: HelperProcess) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], entry_data(helper))
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Plex Security (127.0.0.1)"
    assert result["data"] == entry_data(helper)
    assert result["result"].unique_id == helper.helper_id


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({CONF_TOKEN: "wrong-token-wrong-token"}, "invalid_auth"),
        ({CONF_PORT: None}, "cannot_connect"),
    ],
)
async def test_user_flow_errors_then_recovers(
    hass: HomeAssistant, helper: HelperProcess, bad: dict[str, object], error: str
) -> None:
    if bad.get(CONF_PORT, 0) is None:
        bad = {CONF_PORT: free_port()}
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], entry_data(helper, **bad))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], entry_data(helper))
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_unexpected_answer(hass: HomeAssistant, helper: HelperProcess, odd_server: int) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], entry_data(helper, port=odd_server))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}


async def test_user_flow_refuses_duplicate(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], entry_data(helper))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
