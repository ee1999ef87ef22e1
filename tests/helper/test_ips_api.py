"""/api/v1/ips/{ip}: per-address totals kept in the store, counted once across restarts."""

from __future__ import annotations

from typing import Any

import iptocc

from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login

PATH = "/api/v1/ips/{ip}"


def report(helper: HelperProcess, ip: str) -> Any:
    spec = helper.get("/api/v1/openapi.json")
    body = helper.get(f"/api/v1/ips/{ip}")
    validate_response(spec, PATH, 200, body)
    return body


def test_an_attacker_a_user_and_a_stranger(helper: HelperProcess) -> None:
    helper.wait_for(lambda s: s["monitor"]["following"])
    lines = [line for n in range(6) for line in failed_login("203.0.113.70", port=42000 + n)]
    lines += exchange("203.0.113.70", 404, "/.env", port=42010)
    lines += exchange("192.0.2.80", 200, "/library/sections", user="alice", port=42011)
    helper.append(*lines)
    helper.wait_for(lambda s: s["monitor"]["access_lines"] >= 16)
    helper.get("/api/v1/alerts?after=0&wait=5")

    attacker = report(helper, "203.0.113.70")
    seen = attacker["seen"]
    assert (seen["requests"], seen["failed_auth"], seen["probes"]) == (7, 6, 1)
    assert seen["alerts"] >= 1 and seen["last_alert"] == "failed_login_burst"
    assert seen["first_seen"] <= seen["last_seen"]
    assert attacker["failed_auth_recent"] == 6
    assert attacker["alerts"][0]["ip"] == "203.0.113.70"
    assert [b["ip"] for b in attacker["bans"]] == ["203.0.113.70"]  # recorded (monitor mode)
    assert attacker["allowed"] is False

    user = report(helper, "192.0.2.80")
    assert user["seen"]["requests"] == 1 and user["seen"]["failed_auth"] == 0
    assert user["alerts"] == [] and user["bans"] == []

    stranger = report(helper, "198.51.100.99")
    assert stranger["seen"] is None and stranger["failed_auth_recent"] == 0
    assert report(helper, "192.168.1.5")["allowed"] is True  # the LAN is allow-listed by default

    # Nothing is counted twice after a restart (totals commit with the log position).
    helper.stop()
    helper.start()
    helper.wait_for(lambda s: s["monitor"]["following"])
    assert report(helper, "203.0.113.70")["seen"] == seen


def test_not_one_address_is_refused(helper: HelperProcess) -> None:
    spec = helper.get("/api/v1/openapi.json")
    for bad in ("not-an-ip", "203.0.113.0%2F24", "1.2.3.4.5", "%00"):
        status, body = helper.call("GET", f"/api/v1/ips/{bad}")
        assert status in (400, 404), bad
        if status == 400:
            validate_response(spec, PATH, 400, body)
            assert body["error"] == "invalid_address"


def test_an_address_has_its_country_and_status_the_data_age(helper: HelperProcess) -> None:
    body = report(helper, "9.9.9.9")  # looked up in the data only
    assert body["place"] == {
        "country": iptocc.country_code("9.9.9.9"),
        "asn": None,
        "network_owner": None,
        "hosting": None,
    }
    assert report(helper, "192.168.1.5")["place"]["country"] is None
    spec = helper.get("/api/v1/openapi.json")
    status = helper.get("/api/v1/status")
    validate_response(spec, "/api/v1/status", 200, status)
    assert status["geo"]["package"].startswith("iptocc ") and status["geo"]["age_days"] >= 0
