"""Config flow against a real helper: success, wrong token, unreachable, odd answers, duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from aiohttp import web
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plex_security.const import (
    CONF_ATTACK_WINDOW,
    CONF_FINGERPRINT,
    CONF_LONG_POLL,
    CONF_SCAN_INTERVAL,
    CONF_VERIFY_SSL,
    DOMAIN,
)
from plex_security_helper.tlscert import fingerprint
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
        ({CONF_PORT: None}, "connection_refused"),
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


def _set_token(helper: HelperProcess, token: str) -> None:
    """Give the helper a new token (as an owner editing helper.toml would) and restart it."""
    helper.stop()
    text = helper.config_path.read_text().replace(f'token = "{helper.token}"', f'token = "{token}"')
    helper.config_path.write_text(text)
    helper.token = token
    helper.start()


async def test_rejected_token_starts_reauth_and_a_new_token_fixes_it(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    old = helper.token
    await hass.async_add_executor_job(_set_token, helper, "a-brand-new-token-0123456789")
    await config_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: old})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    with patch.object(hass.config_entries, "async_reload", wraps=hass.config_entries.async_reload) as reload:
        result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "a-brand-new-token-0123456789"})
        await hass.async_block_till_done()
    assert reload.call_count == 1  # one reload, not the flow's and the update listener's
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_TOKEN] == "a-brand-new-token-0123456789"
    assert config_entry.state is ConfigEntryState.LOADED


async def test_reauth_against_another_helper_is_refused(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    config_entry.add_to_hass(hass)
    other = HelperProcess(tmp_path / "other")
    await hass.async_add_executor_job(other.start)
    try:
        hass.config_entries.async_update_entry(config_entry, data={**config_entry.data, CONF_PORT: other.port})
        result = await config_entry.start_reauth_flow(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: other.token})
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "wrong_helper"
    finally:
        await hass.async_add_executor_job(other.stop)


async def test_reconfigure_moves_to_a_new_port(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    closed = free_port()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: closed, CONF_SSL: False, CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "connection_refused"}

    # The helper moves to another port; the entry follows it.
    await hass.async_add_executor_job(helper.stop)
    helper.config_path.write_text(helper.config_path.read_text().replace(f"port = {helper.port}", f"port = {closed}"))
    helper.port = closed
    await hass.async_add_executor_job(helper.start)
    with patch.object(hass.config_entries, "async_reload", wraps=hass.config_entries.async_reload) as reload:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: closed, CONF_SSL: False, CONF_VERIFY_SSL: True}
        )
        await hass.async_block_till_done()
    assert reload.call_count == 1
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_PORT] == closed
    assert config_entry.state is ConfigEntryState.LOADED


async def test_options_flow_sets_interval_long_poll_and_window(
    hass: HomeAssistant, helper: HelperProcess, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 60, CONF_LONG_POLL: False, CONF_ATTACK_WINDOW: 30}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_SCAN_INTERVAL: 60, CONF_LONG_POLL: False, CONF_ATTACK_WINDOW: 30}
    # Saving reloaded the entry with the new options.
    coordinator = config_entry.runtime_data.coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 60
    assert config_entry.runtime_data.alerts.long_poll is False


@pytest.fixture
def tls_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A helper serving HTTPS with a self-signed certificate, as `init --tls` makes it."""
    proc = HelperProcess(tmp_path / "tls", tls=True)
    proc.start()
    yield proc
    proc.stop()


async def test_self_signed_tls_is_pinned_by_fingerprint(hass: HomeAssistant, tls_helper: HelperProcess) -> None:
    expected = fingerprint(tls_helper.cert_path)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    data = entry_data(tls_helper, **{CONF_SSL: True, CONF_VERIFY_SSL: False})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], data)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm_fingerprint"
    assert result["description_placeholders"] == {"fingerprint": expected, "host": "127.0.0.1"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_FINGERPRINT] == expected
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED

    # The certificate is swapped (someone in the middle, or a new init): refused, not trusted.
    await hass.async_add_executor_job(tls_helper.stop)
    await hass.async_add_executor_job(tls_helper.new_certificate)
    await hass.async_add_executor_job(tls_helper.start)
    await entry.runtime_data.coordinator.async_refresh()
    assert entry.runtime_data.coordinator.last_update_success is False

    # Reconfigure confirms the new fingerprint explicitly.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: tls_helper.port, CONF_SSL: True, CONF_VERIFY_SSL: False}
    )
    assert result["step_id"] == "confirm_fingerprint"
    new = fingerprint(tls_helper.cert_path)
    assert new != expected
    assert (result["description_placeholders"] or {})["fingerprint"] == new
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_FINGERPRINT] == new
    assert entry.state is ConfigEntryState.LOADED


async def test_tls_without_a_tls_server_and_a_refusing_token(hass: HomeAssistant, tls_helper: HelperProcess) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    closed = entry_data(tls_helper, **{CONF_SSL: True, CONF_VERIFY_SSL: False, CONF_PORT: free_port()})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], closed)
    assert result["errors"] == {"base": "connection_refused"}
    wrong = entry_data(tls_helper, **{CONF_SSL: True, CONF_VERIFY_SSL: False, CONF_TOKEN: "wrong-token-0123456789"})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], wrong)
    assert result["step_id"] == "confirm_fingerprint"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "invalid_auth"}
