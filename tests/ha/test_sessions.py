"""Streams in Home Assistant: the stream sensors, stop_stream ending the emulator's session with
its message, and a device.new webhook reaching the event entity."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er

from custom_components.plex_security.const import CONF_LONG_POLL, CONF_SCAN_INTERVAL, DOMAIN
from plex_security_helper.demo.plexemu import EmuSession, PlexState
from tests.geodata import country_mmdb
from tests.ha.conftest import HELPER_ID, audited_helper, call_service, make_entry, phone_and_blueprint, state_of
from tests.helperproc import HelperProcess

SECRET = "ha-webhook-secret-0123456789"


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _loaded(
    hass: HomeAssistant, proc: HelperProcess, ready: Callable[[dict[str, Any]], bool] | None = None
) -> AsyncIterator[None]:
    """Start *proc* (until its /status is *ready*), load an entry for it that long-polls; undo both after."""
    await hass.async_add_executor_job(proc.start)
    try:
        if ready is not None:
            await hass.async_add_executor_job(proc.wait_for, ready, 10.0)
        entry = make_entry(proc, **{CONF_LONG_POLL: True, CONF_SCAN_INTERVAL: 1})
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        yield
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await hass.async_add_executor_job(proc.stop)


@pytest.fixture
async def streaming(
    tmp_path: Path, plex: tuple[PlexState, int], hass: HomeAssistant, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[PlexState, HelperProcess]]:
    state, port = plex
    state.sessions = [
        EmuSession("ha-away", "eve", "198.51.100.5"),
        EmuSession("ha-home", "owner", "192.168.1.20", local=True),
    ]
    proc = audited_helper(tmp_path / "helper", port)
    limit = getattr(request, "param", 0)  # remote streams one user may have (0: no limit)
    proc.extra_config += (
        f'[sessions]\ninterval = 1\nmax_remote_streams_per_user = {limit}\n[webhook]\nsecret = "{SECRET}"\n'
    )
    async with _loaded(hass, proc):
        yield state, proc


def _entity(hass: HomeAssistant, domain: str, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(domain, DOMAIN, f"{HELPER_ID}_{key}")
    assert entity_id is not None, key
    return entity_id


async def test_stream_sensors_and_stop_stream(hass: HomeAssistant, streaming: tuple[PlexState, HelperProcess]) -> None:
    state, _ = streaming
    remote, local = _entity(hass, "sensor", "streams_remote"), _entity(hass, "sensor", "streams_local")
    await _until(lambda: state_of(hass, remote) == "1")
    assert state_of(hass, local) == "1"

    response = await call_service(hass, "stop_stream", {"session_id": "ha-away", "message": "Sharing is off."})
    assert response == {"stopped": [{"server": "Plex Security (127.0.0.1)", "session_id": "ha-away"}]}
    assert state.terminated == {"ha-away": "Sharing is off."}
    assert [s.session_id for s in state.sessions] == ["ha-home"]
    await _until(lambda: state_of(hass, remote) == "0")

    with pytest.raises(ServiceValidationError, match="ha-away"):
        await call_service(hass, "stop_stream", {"session_id": "ha-away"})


async def test_a_device_new_webhook_fires_the_event_entity(
    hass: HomeAssistant, streaming: tuple[PlexState, HelperProcess]
) -> None:
    _, proc = streaming
    entity_id = _entity(hass, "event", "suspicious_access")
    body = (
        b'--b\r\nContent-Disposition: form-data; name="payload"\r\nContent-Type: application/json\r\n\r\n'
        + json.dumps(
            {"event": "device.new", "Account": {"title": "owner"}, "Player": {"title": "Smart TV", "uuid": "tv-9"}}
        ).encode()
        + b"\r\n--b--\r\n"
    )

    def post() -> None:
        req = urllib.request.Request(f"{proc.url}/api/v1/webhook/{SECRET}", data=body, method="POST")
        req.add_header("Content-Type", "multipart/form-data; boundary=b")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    await hass.async_add_executor_job(post)

    def fired() -> bool:
        found = hass.states.get(entity_id)
        return found is not None and found.attributes.get("event_type") == "new_device"

    await _until(fired)  # the long-poll delivers it (about a second at most; not timed here)
    found = hass.states.get(entity_id)
    assert found is not None
    assert found.attributes["user"] == "owner" and found.attributes["seq"] >= 1


@pytest.mark.parametrize("streaming", [1], indirect=True)
async def test_a_stream_alert_offers_stop_stream_and_a_tap_stops_it(
    hass: HomeAssistant, streaming: tuple[PlexState, HelperProcess]
) -> None:
    state, _ = streaming
    notifications = await phone_and_blueprint(hass)
    # A second remote stream of eve's, with a limit of one: account sharing, on the next poll.
    state.sessions.append(EmuSession("ha-second", "eve", "203.0.113.40", machine_identifier="emu-player-2"))
    await _until(lambda: any(n.data["title"].startswith("Plex: Too many") for n in notifications))
    sent = next(n.data for n in notifications if n.data["title"].startswith("Plex: Too many"))
    titles = [a["title"] for a in sent["data"]["actions"]]
    assert titles == ["Ban 2 h", "Stop stream", "Ignore"]
    stop = sent["data"]["actions"][1]

    hass.bus.async_fire("mobile_app_notification_action", {"action": stop["action"]})
    await _until(lambda: bool(state.terminated))
    assert list(state.terminated.values()) == ["This stream was stopped by the server owner."]
    assert set(state.terminated) <= {"ha-away", "ha-second"}
    await _until(lambda: any(n.data["message"] == "clear_notification" for n in notifications))


@pytest.fixture
async def account(
    tmp_path: Path, plex: tuple[PlexState, int], hass: HomeAssistant
) -> AsyncIterator[tuple[PlexState, HelperProcess]]:
    """A helper that reads the owner's plex.tv account (the emulator) every second."""
    state, port = plex
    state.devices = {"Phone": time.time() - 86_400}
    proc = audited_helper(tmp_path / "helper", port)
    proc.extra_config += (
        f'[sessions]\nenabled = false\n[plex_tv]\nenabled = true\nurl = "http://127.0.0.1:{port}"\ninterval = 1\n'
    )
    async with _loaded(hass, proc, lambda s: bool(s["plex_tv"]["available"])):
        yield state, proc


async def test_a_new_device_offers_remove_and_a_tap_removes_it(
    hass: HomeAssistant, account: tuple[PlexState, HelperProcess]
) -> None:
    state, _ = account
    notifications = await phone_and_blueprint(hass)
    state.devices["Unknown Smart TV"] = time.time()  # authorized on the account since the last look
    await _until(lambda: any(n.data["title"] == "Plex: New device on the account" for n in notifications))
    sent = next(n.data for n in notifications if n.data["title"] == "Plex: New device on the account")
    assert sent["message"].startswith("Unknown Smart TV on ")
    assert [a["title"] for a in sent["data"]["actions"]] == ["Remove device", "Ignore"]

    hass.bus.async_fire("mobile_app_notification_action", {"action": sent["data"]["actions"][0]["action"]})
    await _until(lambda: bool(state.removed_devices))
    assert state.removed_devices == ["Unknown Smart TV"] and set(state.devices) == {"Phone"}
    # Removed: the helper no longer lists it, so a second removal is a clear error.
    with pytest.raises(ServiceValidationError, match="dev-1"):
        await call_service(hass, "remove_device", {"device_id": "dev-1"})


async def test_each_remote_user_gets_a_last_country_sensor(
    hass: HomeAssistant, tmp_path: Path, plex: tuple[PlexState, int]
) -> None:
    state, port = plex
    state.sessions = [
        EmuSession("c-1", "eve", "198.51.100.5"),
        EmuSession("c-home", "owner", "192.168.1.20", local=True),
    ]
    proc = audited_helper(tmp_path / "helper", port)
    mmdb = country_mmdb(tmp_path / "countries.mmdb")  # documentation ranges: DE, US, JP, AU
    proc.extra_config += f'[sessions]\ninterval = 1\n[geo]\nmmdb = ["{mmdb}"]\n'
    async with _loaded(hass, proc):
        registry = er.async_get(hass)

        def country_of(user: str) -> str | None:
            entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{HELPER_ID}_user_country_{user}")
            found = hass.states.get(entity_id) if entity_id else None
            return found.state if found else None

        await _until(lambda: country_of("eve") == "US")
        assert country_of("owner") is None  # only streams from outside the LAN place a user
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{HELPER_ID}_user_country_eve")
        assert entity_id == "sensor.plex_security_127_0_0_1_eve_last_country"
        # eve travels: the same sensor follows; a second remote user appears as a new sensor.
        state.sessions = [EmuSession("c-2", "eve", "203.0.113.8"), EmuSession("c-3", "bob", "192.0.2.77")]
        await _until(lambda: country_of("eve") == "JP" and country_of("bob") == "DE")
