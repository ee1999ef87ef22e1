"""/api/v1/bans against a real helper in monitor mode: validation, policy, records, escalation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plex_security_helper.store import Alert, Store
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login

MONITOR = """
[firewall]
mode = "monitor"
protect = ["198.51.100.200"]
ban_time = 600
"""


@pytest.fixture
def monitor_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    proc = HelperProcess(tmp_path / "helper", extra_config=MONITOR)
    proc.start()
    yield proc
    proc.stop()


def test_ban_list_unban_round_trip_matches_the_contract(monitor_helper: HelperProcess) -> None:
    h = monitor_helper
    spec = h.get("/api/v1/openapi.json")
    code, ban = h.call("POST", "/api/v1/bans", {"ip": "203.0.113.7", "duration": 3600, "reason": "test"})
    assert code == 201, ban
    validate_response(spec, "/api/v1/bans", 201, ban, method="post")
    assert ban["ip"] == "203.0.113.7"
    assert ban["origin"] == "manual"
    assert ban["enforced"] is False  # monitor mode records what it would do
    assert 3590 <= ban["remaining_s"] <= 3600

    code, net = h.call("POST", "/api/v1/bans", {"ip": "2001:db8:4::/48", "origin": "home_assistant"})
    assert code == 201, net
    assert net["remaining_s"] > 590  # the policy's first ban time

    listing = h.get("/api/v1/bans")
    validate_response(spec, "/api/v1/bans", 200, listing)
    assert {b["ip"] for b in listing["bans"]} == {"203.0.113.7", "2001:db8:4::/48"}
    assert listing["mode"] == "monitor"

    status = h.get("/api/v1/status")
    validate_response(spec, "/api/v1/status", 200, status)
    assert status["bans"]["active"] == 2
    assert status["bans"]["by_origin"] == {"manual": 1, "home_assistant": 1}

    code, lifted = h.call("DELETE", "/api/v1/bans/2001:db8:4::%2F48")
    assert code == 200, lifted
    assert lifted["unbanned"]["ip"] == "2001:db8:4::/48"
    code, again = h.call("DELETE", "/api/v1/bans/2001:db8:4::/48")
    assert (code, again["error"]) == (404, "not_banned")
    assert [b["ip"] for b in h.get("/api/v1/bans")["bans"]] == ["203.0.113.7"]


@pytest.mark.parametrize(
    ("body", "code", "error"),
    [
        ({"ip": "203.0.113.300"}, 400, "invalid_address"),
        ({"ip": "203.0.113.7/24"}, 400, "invalid_address"),  # host bits: says which network was meant
        ({"ip": "evil.example"}, 400, "invalid_address"),
        ({"ip": "203.0.113.7 ; rm -rf /"}, 400, "invalid_address"),
        ({"ip": "fe80::1%eth0"}, 400, "invalid_address"),
        ({"ip": "203.0.113.7", "duration": 5}, 400, "invalid_body"),
        ({"ip": "203.0.113.7", "duration": True}, 400, "invalid_body"),
        ({"ip": "203.0.113.7", "origin": "detector"}, 400, "invalid_body"),
        ({"ip": "203.0.113.7", "extra": 1}, 400, "invalid_body"),
        ({"duration": 60}, 400, "invalid_body"),
        ([], 400, "invalid_body"),
        ({"ip": "127.0.0.1", "force": True}, 409, "loopback"),
        ({"ip": "::ffff:127.0.0.1"}, 409, "loopback"),
        ({"ip": "198.51.100.200", "force": True}, 409, "protected"),
        ({"ip": "198.51.100.0/24"}, 409, "protected"),  # covers the protected address
        ({"ip": "192.168.1.20"}, 409, "allow_listed"),
        ({"ip": "192.168.0.0/16", "force": True}, 409, "allow_listed"),  # force is for one address
        ({"ip": "0.0.0.0/0"}, 409, "too_broad"),
        ({"ip": "2000::/3"}, 409, "too_broad"),
    ],
)
def test_invalid_and_refused_bans_say_why_and_record_nothing(
    monitor_helper: HelperProcess, body: object, code: int, error: str
) -> None:
    got_code, got = monitor_helper.call("POST", "/api/v1/bans", body)
    assert (got_code, got["error"]) == (code, error), got
    assert got["message"]
    assert monitor_helper.get("/api/v1/bans")["bans"] == []


def test_forced_ban_of_one_allow_listed_address_and_hostile_bodies(monitor_helper: HelperProcess) -> None:
    h = monitor_helper
    code, ban = h.call("POST", "/api/v1/bans", {"ip": "192.168.1.20", "force": True})
    assert code == 201, ban
    assert h.call("POST", "/api/v1/bans", raw=b"{not json")[1]["error"] == "invalid_body"
    assert h.call("POST", "/api/v1/bans", raw=b"\xff\xfe")[1]["error"] == "invalid_body"
    assert h.call("DELETE", "/api/v1/bans/..%2F..%2Fetc%2Fpasswd")[1]["error"] == "invalid_address"
    code, _ = h.call("POST", "/api/v1/bans", raw=b'{"ip": "' + b"1" * 100_000 + b'"}')
    assert code == 413
    code, overlap = h.call("POST", "/api/v1/bans", {"ip": "203.0.113.0/24"})
    assert code == 201
    code, overlap = h.call("POST", "/api/v1/bans", {"ip": "203.0.113.128/25"})
    assert (code, overlap["error"]) == (409, "overlaps")


def test_detector_bans_are_recorded_and_grow_for_repeat_offenders(monitor_helper: HelperProcess) -> None:
    h = monitor_helper
    for port in range(40000, 40005):
        h.append(*failed_login("203.0.113.9", port=port))
        h.append(*failed_login("192.168.1.50", port=port))  # LAN: never judged
    bans = _wait_bans(h, 1)
    first = bans["203.0.113.9"]
    assert first["origin"] == "detector"
    assert first["reason"].startswith("failed_login_burst")
    assert first["offences"] == 1
    assert 590 <= first["remaining_s"] <= 600
    assert "192.168.1.50" not in bans

    # Lifted by hand, then the same address offends again: the second ban is twice as long.
    assert h.call("DELETE", "/api/v1/bans/203.0.113.9")[0] == 200
    time.sleep(0.1)
    code, second = h.call("POST", "/api/v1/bans", {"ip": "203.0.113.9"})
    assert code == 201
    assert second["offences"] == 2
    assert 1190 <= second["remaining_s"] <= 1200


def _wait_bans(h: HelperProcess, count: int, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bans = {b["ip"]: b for b in h.get("/api/v1/bans")["bans"]}
        if len(bans) >= count:
            return bans
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} bans within {timeout}s")


def test_allow_list_lifts_bans_and_blocks_new_ones(monitor_helper: HelperProcess) -> None:
    h = monitor_helper
    spec = h.get("/api/v1/openapi.json")
    assert h.call("POST", "/api/v1/bans", {"ip": "203.0.113.77"})[0] == 201
    code, allowed = h.call("POST", "/api/v1/allow", {"ip": "203.0.113.64/26", "reason": "office"})
    assert code == 201, allowed
    validate_response(spec, "/api/v1/allow", 201, allowed, method="post")
    assert allowed["unbanned"] == ["203.0.113.77"]
    assert h.get("/api/v1/bans")["bans"] == []
    code, refused = h.call("POST", "/api/v1/bans", {"ip": "203.0.113.77"})
    assert (code, refused["error"]) == (409, "allow_listed")
    listing = h.get("/api/v1/allow")
    validate_response(spec, "/api/v1/allow", 200, listing)
    assert {"ip": "203.0.113.64/26", "origin": "runtime", "reason": "office"}.items() <= listing["allow"][-1].items()
    assert any(row["origin"] == "config" and row["ip"] == "192.168.0.0/16" for row in listing["allow"])
    kinds = [a["kind"] for a in h.get("/api/v1/alerts?after=0")["alerts"]]
    assert kinds == ["banned", "unbanned"]

    # Survives a restart, and can be removed again.
    h.stop()
    h.start()
    assert h.call("POST", "/api/v1/bans", {"ip": "203.0.113.77"})[1]["error"] == "allow_listed"
    assert h.call("DELETE", "/api/v1/allow/203.0.113.64%2F26")[0] == 200
    assert h.call("DELETE", "/api/v1/allow/203.0.113.64/26")[1]["error"] == "not_allowed"
    assert h.call("DELETE", "/api/v1/allow/192.168.0.0/16")[1]["error"] == "not_allowed"
    assert h.call("POST", "/api/v1/bans", {"ip": "203.0.113.77"})[0] == 201
    for body, error in (({"ip": "10.0.0.0/8"}, "too_broad"), ({"ip": "x"}, "invalid_address"), ({}, "invalid_body")):
        assert h.call("POST", "/api/v1/allow", body)[1]["error"] == error


def test_alerts_stored_just_before_a_crash_are_banned_at_the_next_start(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper", extra_config=MONITOR)
    helper.write_config()
    # What a helper killed between storing its alerts and banning leaves behind.
    now = time.time()

    def stored_alert(kind: str, ip: str, age: float, verdict: str) -> Alert:
        detail = {"verdict": verdict, "source": ip, "window_s": 600}
        return Alert(kind, ip, now - age, now - age - 60, now - age, 5, 100, detail)

    store = Store(helper.root / "state.db")
    store.commit_batch(
        [],
        [
            stored_alert("failed_login_burst", "203.0.113.44", 60, "ban"),
            stored_alert("failed_login_burst", "203.0.113.45", 3 * 86_400, "ban"),  # history: informs only
            stored_alert("new_location", "203.0.113.46", 60, "watch"),
        ],
        None,
    )
    store.close()
    helper.start()
    try:
        assert [b["ip"] for b in helper.get("/api/v1/bans")["bans"]] == ["203.0.113.44"]
        # A ban lifted on purpose stays lifted across the next restart.
        assert helper.call("DELETE", "/api/v1/bans/203.0.113.44")[0] == 200
        helper.stop()
        helper.start()
        assert helper.get("/api/v1/bans")["bans"] == []
    finally:
        helper.stop()
