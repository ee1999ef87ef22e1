"""/api/v1/audit and the plex/audit sections of /status, with the Plex emulator as a process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess, free_port

PLEX_TOKEN = "plex-owner-token-abcdef0123"


@pytest.fixture(params=[30], ids=["cooldown-30"])
def audited(request: pytest.FixtureRequest, tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    port = free_port()
    plex = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plex_security_helper.cli",
            "demo-plex",
            "--port",
            str(port),
            "--token",
            PLEX_TOKEN,
            "--version",
            "1.19.2.2600-abc",
            "--unclaimed",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    helper = HelperProcess(
        tmp_path / "helper",
        extra_config=(
            f'[audit]\nplex_url = "http://127.0.0.1:{port}"\nplex_token = "{PLEX_TOKEN}"\ndocker = false\n'
            f"cooldown = {request.param}\n"
            '[audit.accept]\n"plex.gdm_enabled" = "the LAN needs discovery"\n'
        ),
    )
    helper.root.mkdir(parents=True)
    (helper.root / "Preferences.xml").write_text(
        '<Preferences allowedNetworks="192.168.1.0/24,198.51.100.0/24" logDebug="1" secureConnections="0"'
        f' DisableTLSv1_0="1" RelayEnabled="0" PlexOnlineToken="{PLEX_TOKEN}"/>'
    )
    (helper.root / "Preferences.xml").chmod(0o600)
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/identity", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and plex.poll() is None, "emulator did not start"
            time.sleep(0.05)
    helper.start()
    yield helper
    helper.stop()
    plex.terminate()
    plex.wait(timeout=10)


def _report(helper: HelperProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        body: dict[str, Any] = helper.get("/api/v1/audit")
        if body["report"] is not None:
            return body
        assert time.monotonic() < deadline, "no audit report"
        time.sleep(0.05)


def test_audit_report_status_sections_and_rate_limit(audited: HelperProcess) -> None:
    h = audited
    spec = h.get("/api/v1/openapi.json")
    body = _report(h)
    validate_response(spec, "/api/v1/audit", 200, body)
    findings = {f["key"]: f for f in body["report"]["findings"]}
    assert findings["plex.allowed_networks_public"]["severity"] == "critical"
    assert "198.51.100.0/24" in findings["plex.allowed_networks_public"]["evidence"]
    assert findings["plex.unclaimed"]["severity"] == "critical"  # unclaimed and mapped
    assert {k for k in findings if k.startswith("plex.vulnerable_version")} >= {
        "plex.vulnerable_version:PLEX-SSDP-REFLECTION",
        "plex.vulnerable_version:PLEX-2026-09",
    }
    assert "plex.vulnerable_version:CVE-2019-19141" not in findings  # fixed in 1.18.2.2041
    assert "plex.vulnerable_version:CVE-2020-5741" not in findings  # Windows only; this helper runs on Linux
    assert (
        "https://www.cve.org/CVERecord?id=CVE-2021-33959"
        in findings["plex.vulnerable_version:PLEX-SSDP-REFLECTION"]["references"]
    )
    assert findings["plex.tv_advisory:PLEX-TV-BREACH-2025"]["severity"] == "info"
    assert findings["plex.gdm_enabled"]["accepted"] is True
    assert findings["plex.gdm_enabled"]["accepted_reason"] == "the LAN needs discovery"
    assert body["report"]["score"] == 0
    assert body["report"]["not_checked"]["docker"].startswith("the Docker audit is off")

    status = h.get("/api/v1/status")
    validate_response(spec, "/api/v1/status", 200, status)
    assert status["plex"] == {
        "available": True,
        "version": "1.19.2.2600-abc",
        "claimed": False,
        "vulnerable": True,
        "remote_access": "mapped",
        "remote_access_exposed": True,
        "debug_logging": True,
        "allowed_networks_public": True,
    }
    assert status["audit"]["counts"]["critical"] >= 3
    assert status["audit"]["top"][0]["severity"] == "critical"
    assert "plex" not in status["unavailable"]

    code, limited = h.call("POST", "/api/v1/audit")
    assert (code, limited["error"]) == (429, "rate_limited")
    for doc in (body, status, h.get("/api/v1/audit")):
        assert PLEX_TOKEN not in str(doc)


@pytest.mark.parametrize("audited", [0], indirect=True, ids=["no-cooldown"])
def test_audit_on_demand_runs_again(audited: HelperProcess) -> None:
    first = _report(audited)["report"]
    code, body = audited.call("POST", "/api/v1/audit")
    assert code == 200, body
    assert body["report"]["started"] > first["started"]
    assert body["report"]["score"] == first["score"]
