"""The config flow tells each way of failing apart, against real servers on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from aiohttp import web
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plex_security.const import CONF_VERIFY_SSL, DOMAIN
from tests.ha.conftest import entry_data, make_entry
from tests.helperproc import START_TIMEOUT, HelperProcess, free_port

WRONG = "wrong-token-typed-by-hand"


async def _submit(hass: HomeAssistant, data: dict[str, Any]) -> Any:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)


@pytest.fixture
def tls_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A helper serving HTTPS with a self-signed certificate."""
    proc = HelperProcess(tmp_path / "tls", tls=True)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def silent_port(socket_enabled: None) -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock.getsockname()[1]


@pytest.fixture
async def teapot(socket_enabled: None) -> AsyncIterator[int]:
    """A server that refuses /status with an error that is about the request, not the address."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"error": "teapot", "message": "short and stout"}, status=418)

    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


async def test_refused_and_timed_out_are_told_apart(
    hass: HomeAssistant, helper: HelperProcess, silent_port: int
) -> None:
    result = await _submit(hass, entry_data(helper, **{CONF_PORT: free_port()}))
    assert result["errors"] == {"base": "connection_refused"}
    with patch("custom_components.plex_security.api.REQUEST_TIMEOUT", 0.3):
        result = await _submit(hass, entry_data(helper, **{CONF_PORT: silent_port}))
    assert result["errors"] == {"base": "timeout"}


async def test_tls_mismatches(hass: HomeAssistant, helper: HelperProcess, tls_helper: HelperProcess) -> None:
    # Plain HTTP to a helper that serves HTTPS.
    result = await _submit(hass, entry_data(tls_helper))
    assert result["errors"] == {"base": "tls_mismatch"}
    # HTTPS to a plain-HTTP helper, verified and pinned.
    result = await _submit(hass, entry_data(helper, **{CONF_SSL: True}))
    assert result["errors"] == {"base": "tls_mismatch"}
    result = await _submit(hass, entry_data(helper, **{CONF_SSL: True, CONF_VERIFY_SSL: False}))
    assert result["errors"] == {"base": "tls_mismatch"}
    # A self-signed certificate with verification on: say how to pin it instead.
    result = await _submit(hass, entry_data(tls_helper, **{CONF_SSL: True}))
    assert result["errors"] == {"base": "certificate_invalid"}


@pytest.mark.parametrize("pasted", ["http://{host}:{port}/web/index.html", "{host}:{port}", " {host} "])
async def test_a_url_in_host_is_reduced_to_the_host(hass: HomeAssistant, helper: HelperProcess, pasted: str) -> None:
    port = helper.port if "{port}" in pasted else None
    data = entry_data(helper, **{CONF_HOST: pasted.format(host="127.0.0.1", port=port)})
    if port is not None:
        data[CONF_PORT] = 1  # the URL's port wins over the field
    result = await _submit(hass, data)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    assert (result["data"][CONF_HOST], result["data"][CONF_PORT]) == ("127.0.0.1", helper.port)


@pytest.mark.parametrize("host", ["http://127.0.0.1:99999/", "plex host", "https://", "a_b.example"])
async def test_a_host_that_is_no_host_is_explained(hass: HomeAssistant, helper: HelperProcess, host: str) -> None:
    result = await _submit(hass, entry_data(helper, **{CONF_HOST: host}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: "invalid_host"}


async def test_reconfigure_explains_a_host_that_is_no_host(hass: HomeAssistant, helper: HelperProcess) -> None:
    entry = make_entry(helper)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "plex host", CONF_PORT: helper.port, CONF_SSL: False, CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}


async def test_an_https_url_turns_tls_on(hass: HomeAssistant, tls_helper: HelperProcess) -> None:
    result = await _submit(
        hass, entry_data(tls_helper, **{CONF_HOST: f"https://127.0.0.1:{tls_helper.port}", CONF_VERIFY_SSL: False})
    )
    assert result["step_id"] == "confirm_fingerprint"


async def test_an_error_about_the_request_is_unexpected(
    hass: HomeAssistant, helper: HelperProcess, teapot: int
) -> None:
    result = await _submit(hass, entry_data(helper, **{CONF_PORT: teapot}))
    assert result["errors"] == {"base": "unknown"}


async def _wrong_tokens(hass: HomeAssistant, helper: HelperProcess, count: int) -> list[Any]:
    results = []
    for _ in range(count):
        results.append(await _submit(hass, entry_data(helper, **{CONF_TOKEN: WRONG})))
    return results


async def test_after_ten_wrong_tokens_the_flow_says_the_helper_refuses_this_address(
    hass: HomeAssistant, helper: HelperProcess
) -> None:
    results = await _wrong_tokens(hass, helper, 11)
    assert [r["errors"]["base"] for r in results] == ["invalid_auth"] * 10 + ["address_blocked"]
    placeholders = results[-1]["description_placeholders"]
    assert 590 <= int(placeholders["seconds"]) <= 600
    assert "too many wrong tokens" in placeholders["message"]


async def test_ten_wrong_tokens_in_the_flow_leave_the_working_entry_available(
    hass: HomeAssistant, helper: HelperProcess
) -> None:
    entry = make_entry(helper)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await _wrong_tokens(hass, helper, 11)
    await entry.runtime_data.coordinator.async_refresh()
    assert entry.runtime_data.coordinator.last_update_success
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"helper_refuses_{entry.entry_id}") is None


def _start_refusing(proc: HelperProcess) -> None:
    """Start *proc* with an [api] clients list that leaves out 127.0.0.1 (it answers 403)."""
    proc.extra_config = (
        f'[api]\nhost = "127.0.0.1"\nport = {proc.port}\ntoken = "{proc.token}"\nclients = ["192.0.2.1/32"]\n'
    )
    proc.write_config()
    proc.log_path.touch()
    stderr = (proc.root / "helper.stderr").open("ab")
    proc.proc = subprocess.Popen(
        [sys.executable, "-m", "plex_security_helper.cli", "serve", "--config", str(proc.config_path)],
        stdout=stderr,
        stderr=stderr,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            proc.get("/api/v1/health", auth=False)
        except urllib.error.HTTPError as err:
            assert err.code == 403
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise RuntimeError(proc.stderr())


def _accept_everyone(proc: HelperProcess) -> None:
    proc.stop()
    proc.config_path.write_text(proc.config_path.read_text().replace('clients = ["192.0.2.1/32"]', "clients = []"))
    proc.start()


async def test_a_helper_that_refuses_home_assistant_raises_a_repair(
    hass: HomeAssistant, tmp_path: Path, socket_enabled: None
) -> None:
    proc = HelperProcess(tmp_path / "refusing")
    await hass.async_add_executor_job(_start_refusing, proc)
    try:
        result = await _submit(hass, entry_data(proc))
        assert result["errors"] == {"base": "client_not_allowed"}

        entry: MockConfigEntry = make_entry(proc)
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_RETRY
        issue = ir.async_get(hass).async_get_issue(DOMAIN, f"helper_refuses_{entry.entry_id}")
        assert issue is not None
        assert issue.translation_key == "helper_refuses"
        assert (issue.translation_placeholders or {})["code"] == "client_not_allowed"

        # The owner adds Home Assistant's address: the next try loads and the repair is gone.
        await hass.async_add_executor_job(_accept_everyone, proc)
        await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        reloaded = hass.config_entries.async_get_entry(entry.entry_id)
        assert reloaded is not None
        assert reloaded.state is ConfigEntryState.LOADED
        assert ir.async_get(hass).async_get_issue(DOMAIN, f"helper_refuses_{entry.entry_id}") is None
    finally:
        await hass.async_add_executor_job(proc.stop)
