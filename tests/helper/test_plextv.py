"""The owner's plex.tv account through the emulator: 2FA off and an account idle 200 days are findings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from plex_security_helper.demo.plexemu import PlexState
from plex_security_helper.plex.plextv import Device, PlexTv
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexemu_thread import running_emulator

TOKEN = "plex-online-token-0123"
DAY = 86_400


def audited(helper: HelperProcess) -> Any:
    """The report of the audit the helper runs at start (bounded wait)."""
    for _ in range(100):
        report = helper.get("/api/v1/audit")["report"]
        if report is not None:
            return report
        time.sleep(0.1)
    raise AssertionError("no audit report")


@pytest.fixture
def account(tmp_path: Path, socket_enabled: None) -> Iterator[tuple[PlexState, HelperProcess]]:
    now = time.time()
    state = PlexState(
        token=TOKEN,
        two_factor=False,
        shared_users={"gone-friend": now - 200 * DAY, "active-friend": now - 2 * DAY},
        devices={"Old Tablet": now - 400 * DAY, "Phone": now - DAY},
    )
    with running_emulator(state) as url:
        # The token comes from Preferences.xml (PlexOnlineToken), as on a real server.
        (tmp_path / "Preferences.xml").write_text(f'<?xml version="1.0"?><Preferences PlexOnlineToken="{TOKEN}"/>')
        helper = HelperProcess(
            tmp_path,
            extra_config=(
                f'[audit]\nplex_url = "{url}"\ndocker = false\nhost = false\n'
                f'[plex_tv]\nenabled = true\nurl = "{url}"\ninterval = 1\ninactive_days = 90\ndevice_stale_days = 180\n'
                "[sessions]\nenabled = false\n"
            ),
        )
        helper.start()
        try:
            yield state, helper
        finally:
            helper.stop()


def test_two_factor_off_and_stale_users_and_devices(account: tuple[PlexState, HelperProcess]) -> None:
    _, helper = account
    report = audited(helper)
    found = {(f["id"], f["subject"]) for f in report["findings"] if f["id"].startswith("plex_tv.")}
    assert found == {
        ("plex_tv.two_factor_off", ""),
        ("plex_tv.user_inactive", "gone-friend"),
        ("plex_tv.device_stale", "dev-0"),
    }
    assert "plex_tv" not in report["not_checked"]
    assert report["facts"]["plex_tv"]["two_factor"] is False
    everything = str(helper.get("/api/v1/audit")) + str(helper.get("/api/v1/status")) + helper.stderr()
    assert TOKEN not in everything and "device-token-never-read" not in everything


def test_off_by_default(helper: HelperProcess) -> None:
    report = audited(helper)
    assert "enabled = false" in report["not_checked"]["plex_tv"]
    assert not [f for f in report["findings"] if f["id"].startswith("plex_tv.")]


def test_a_newly_authorized_device_is_an_alert(account: tuple[PlexState, HelperProcess]) -> None:
    state, helper = account
    status = helper.wait_for(lambda s: s["plex_tv"]["available"], timeout=10)
    assert status["plex_tv"]["devices"] == 2  # the first look learnt them, without alerts
    validate_response(helper.get("/api/v1/openapi.json"), "/api/v1/status", 200, status)
    assert [a for a in helper.get("/api/v1/alerts?after=0&wait=2")["alerts"] if a["kind"] == "new_device"] == []
    state.devices["Unknown Smart TV"] = time.time()
    found: list[dict[str, Any]] = []
    cursor = 0
    for _ in range(10):
        body = helper.get(f"/api/v1/alerts?after={cursor}&wait=5")
        found += [a for a in body["alerts"] if a["kind"] == "new_device"]
        cursor = body["last_seq"]
        if found:
            break
    (alert,) = found
    assert alert["detail"]["device"] == "Unknown Smart TV" and alert["detail"]["source"] == "plex.tv"


def test_a_listed_device_can_be_removed_and_only_a_listed_one(account: tuple[PlexState, HelperProcess]) -> None:
    state, helper = account
    helper.wait_for(lambda s: s["plex_tv"]["available"], timeout=10)
    state.devices["Unknown Smart TV"] = time.time()
    helper.wait_for(lambda s: s["plex_tv"]["devices"] == 3, timeout=10)
    new_id = "dev-2"  # the emulator's clientIdentifier of the third device by name
    spec = helper.get("/api/v1/openapi.json")
    path = f"/api/v1/plex-tv/devices/{new_id}/remove"
    status, body = helper.call("POST", path)
    assert status == 200, body
    validate_response(spec, "/api/v1/plex-tv/devices/{device_id}/remove", 200, body, method="post")
    assert body == {"removed": new_id, "name": "Unknown Smart TV"}
    assert state.removed_devices == ["Unknown Smart TV"] and "Unknown Smart TV" not in state.devices
    # Gone now: not listed any more. Ids the listing never showed are not passed on to plex.tv.
    assert helper.call("POST", path)[0] == 404
    assert helper.call("POST", "/api/v1/plex-tv/devices/made-up-id/remove")[0] == 404
    assert helper.call("POST", "/api/v1/plex-tv/devices/a%20b/remove")[0] == 400
    assert state.removed_devices == ["Unknown Smart TV"]
    assert TOKEN not in helper.stderr()


def test_removing_a_device_needs_the_account_read(helper: HelperProcess) -> None:
    status, body = helper.call("POST", "/api/v1/plex-tv/devices/dev-0/remove")
    assert (status, body["error"]) == (409, "plex_tv_off")


def test_only_ascii_digit_keys_reach_plex_tv(tmp_path: Path, socket_enabled: None) -> None:
    """A device key is plex.tv's ASCII-digit id; "²" passes str.isdigit and must go nowhere."""
    log = tmp_path / "emulator.log"  # the emulator writes a Request line per request it gets
    state = PlexState(token=TOKEN, devices={"Phone": time.time()}, log_path=log)

    async def remove(url: str, key: str) -> None:
        async with aiohttp.ClientSession() as session:
            await PlexTv(session, url, TOKEN).remove_device(key)

    with running_emulator(state) as url:
        for key in ("²", "١٢", "12/../3", ""):
            with pytest.raises(LookupError):
                asyncio.run(remove(url, key))
        assert state.devices.keys() == {"Phone"} and state.removed_devices == []
        assert not log.exists() or "DELETE" not in log.read_text()  # not one of them was sent
        (device,) = [d for d in asyncio.run(_devices(url))]
        asyncio.run(remove(url, device.key))  # the real key does reach it
    assert state.removed_devices == ["Phone"]
    assert "DELETE /devices/" in log.read_text()


async def _devices(url: str) -> list[Device]:
    async with aiohttp.ClientSession() as session:
        return await PlexTv(session, url, TOKEN).devices()


def test_numbers_in_plex_tv_answers_are_ascii_digits_or_nothing() -> None:
    """str.isdigit takes "²": such a lastSeenAt is no time, not a crash of the whole listing."""
    from plex_security_helper.plex.plextv import _epoch

    assert [_epoch(v) for v in ("1700000000", "²", "١٢", "", None, "17e8")] == [1.7e9, None, None, None, None, None]
