"""The helper's HTTP API, over real HTTP against a real helper process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from plex_security_helper.api.auth import BLOCK, MAX_FAILURES, WINDOW, BadTokenThrottle, RequestRate
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login


def _error(helper: HelperProcess, path: str, **kwargs: Any) -> tuple[int, Any]:
    with pytest.raises(urllib.error.HTTPError) as info:
        helper.get(path, **kwargs)
    return info.value.code, json.loads(info.value.read())


def test_health_needs_no_token_and_reveals_nothing(helper: HelperProcess) -> None:
    body = helper.get("/api/v1/health", auth=False)
    assert body == {"status": "ok", "version": "0.1.0", "api_version": 1}


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/alerts", "/api/v1/openapi.json", "/api/v1/nope"])
def test_every_other_route_needs_the_token(helper: HelperProcess, path: str) -> None:
    assert _error(helper, path, auth=False) == (
        401,
        {"error": "unauthorized", "message": "missing or invalid bearer token"},
    )
    code, body = _error(helper, path, token="almost-" + helper.token)
    assert code == 401
    assert helper.token not in str(body)


def test_openapi_document_is_valid_and_status_matches_it(helper: HelperProcess) -> None:
    spec = helper.get("/api/v1/openapi.json")
    validate(spec)
    validate_response(spec, "/api/v1/health", 200, helper.get("/api/v1/health", auth=False))
    status = helper.get("/api/v1/status")
    validate_response(spec, "/api/v1/status", 200, status)
    assert status["helper"]["id"] == helper.helper_id
    # No Plex next to this helper: the Plex section says so; the audit itself ran.
    assert "plex" in status["unavailable"]
    assert status["plex"]["reason"]
    assert status["firewall"]["mode"] == "monitor"
    assert status["bans"]["active"] == 0
    for section in status["unavailable"]:
        assert status[section]["available"] is False
    assert helper.token not in str(status)


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=x",
        "limit=0",
        "limit=501",
        "wait=61",
        "after=99999999999999999999",
        "after=%C2%B2",
        "limit=%D9%A3",
    ],
)
def test_alert_query_is_validated(helper: HelperProcess, query: str) -> None:
    code, body = _error(helper, f"/api/v1/alerts?{query}")
    assert code == 400
    assert body["error"] == "invalid_query"
    spec = helper.get("/api/v1/openapi.json")
    validate_response(spec, "/api/v1/alerts", 400, body)


def test_unknown_route_is_a_json_404(helper: HelperProcess) -> None:
    assert _error(helper, "/api/v1/../../etc/passwd")[0] == 404
    code, body = _error(helper, "/api/v1/nope")
    assert (code, body["error"]) == (404, "not_found")


def test_line_appended_shows_in_status_within_a_second(helper: HelperProcess) -> None:
    helper.append(*failed_login("203.0.113.7"))
    status = helper.wait_for(lambda s: s["failed_logins"]["total"] == 1, timeout=1.0)
    assert status["failed_logins"]["top"] == [{"ip": "203.0.113.7", "count": 1}]
    assert status["monitor"]["following"] is True
    assert status["monitor"]["debug_logging_seen"] is True


def test_unparsable_access_line_is_counted_not_fatal(helper: HelperProcess) -> None:
    helper.append("Nov 20, 2026 08:00:09.000 [1] DEBUG - Request: [999.1.1.1:41005 (WAN)] GET / (3 live) GZIP")
    helper.append("\x00\xff garbage " * 100, *failed_login("203.0.113.8"))
    status = helper.wait_for(lambda s: s["failed_logins"]["total"] == 1)
    assert status["monitor"]["parse_failures"] == 1
    assert status["monitor"]["lines_processed"] == 4


def test_lines_per_minute_counts_each_line_once(helper: HelperProcess) -> None:
    """Lines read by several small reads and committed together are counted once, not again
    by their commit (the rate read twice the lines before)."""
    for i in range(10):
        helper.append(*[line for k in range(5) for line in exchange(f"192.0.2.{i * 5 + k + 1}", 200, port=30000 + k)])
        time.sleep(0.1)
    status = helper.wait_for(lambda s: s["monitor"]["lines_processed"] == 100)
    assert status["monitor"]["lines_per_minute"] == 100


def test_burst_of_failures_raises_one_alert_and_long_poll_wakes(helper: HelperProcess) -> None:
    spec = helper.get("/api/v1/openapi.json")
    result: dict[str, Any] = {}

    def long_poll() -> None:
        started = time.monotonic()
        result["body"] = helper.get("/api/v1/alerts?after=0&wait=20")
        result["waited"] = time.monotonic() - started

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.3)
    assert "body" not in result  # still waiting: no alert yet
    for i in range(7):  # threshold 5: one alert for the burst, not three
        helper.append(*failed_login("203.0.113.9", port=41000 + i))
    poller.join(timeout=10)
    assert result["waited"] < 5
    body = result["body"]
    validate_response(spec, "/api/v1/alerts", 200, body)
    alerts = body["alerts"]
    # One alert for the burst, then the ban it led to (recorded only: monitor mode).
    assert [(a["seq"], a["kind"]) for a in alerts] == [(1, "failed_login_burst"), (2, "banned")]
    assert alerts[0]["ip"] == "203.0.113.9"
    assert alerts[0]["count"] == 5
    assert alerts[1]["detail"]["origin"] == "detector"
    assert alerts[1]["detail"]["enforced"] is False

    after = helper.get("/api/v1/alerts?after=2&wait=0")
    assert after["alerts"] == []


def test_restart_keeps_position_and_sequence(helper: HelperProcess) -> None:
    for i in range(5):
        helper.append(*failed_login("203.0.113.10", port=42000 + i))
    helper.wait_for(lambda s: s["alerts"]["last_seq"] == 2)  # the alert and its (recorded) ban
    helper.stop()
    # Written while the helper is down: read once after restart, not lost, not doubled.
    for i in range(5):
        helper.append(*failed_login("198.51.100.20", port=43000 + i))
    helper.append(*exchange("192.0.2.10", 200, user="alice"))
    helper.start()
    status = helper.wait_for(lambda s: s["alerts"]["last_seq"] == 4)
    assert status["failed_logins"]["total"] == 10
    assert status["alerts"]["count_24h"] == 2  # ban events are in the stream, not counted as alerts
    alerts = helper.get("/api/v1/alerts?after=0")["alerts"]
    assert [(a["seq"], a["kind"], a["ip"]) for a in alerts] == [
        (1, "failed_login_burst", "203.0.113.10"),
        (2, "banned", "203.0.113.10"),
        (3, "failed_login_burst", "198.51.100.20"),
        (4, "banned", "198.51.100.20"),
    ]


def test_wrong_tokens_are_throttled_then_blocked(helper: HelperProcess) -> None:
    for _ in range(MAX_FAILURES):
        assert _error(helper, "/api/v1/status", token="wrong-token-wrong-token")[0] == 401
    code, body = _error(helper, "/api/v1/status", token="wrong-token-wrong-token")
    assert (code, body["error"]) == (429, "too_many_failures")
    assert _error(helper, "/api/v1/status", auth=False)[0] == 429  # no token is a wrong token too
    # The right token is never refused: Home Assistant may share the guesser's address.
    assert helper.get("/api/v1/status")["helper"]["id"]
    assert helper.get("/api/v1/health", auth=False)["status"] == "ok"
    assert "blocked for 600 s" in helper.stderr()
    assert helper.token not in helper.stderr()


def test_throttle_counts_per_address_in_a_window_and_forgets() -> None:
    now = [1000.0]
    throttle = BadTokenThrottle(clock=lambda: now[0])
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("203.0.113.1")
    now[0] += WINDOW + 1  # the old guesses leave the window
    throttle.failed("203.0.113.1")
    assert throttle.blocked_for("203.0.113.1") == 0
    for _ in range(MAX_FAILURES):
        throttle.failed("203.0.113.2")
    assert throttle.blocked_for("203.0.113.2") == int(BLOCK) + 1
    assert throttle.blocked_for("203.0.113.3") == 0
    now[0] += BLOCK + 1
    assert throttle.blocked_for("203.0.113.2") == 0


def test_client_allow_list_refuses_everyone_else(tmp_path: Path, socket_enabled: None) -> None:
    proc = HelperProcess(tmp_path / "h", extra_config='[api]\nclients = ["192.0.2.10"]\n')
    proc.write_config()
    # [api] was replaced wholesale: put the rest of it back.
    text = proc.config_path.read_text().replace(
        '[api]\nclients = ["192.0.2.10"]\n',
        f'[api]\nhost = "127.0.0.1"\nport = {proc.port}\ntoken = "{proc.token}"\nclients = ["192.0.2.10"]\n',
    )
    proc.config_path.write_text(text)
    proc.log_path.touch()
    proc.proc = subprocess.Popen(
        [sys.executable, "-m", "plex_security_helper.cli", "serve", "--config", str(proc.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                code, body = _error(proc, "/api/v1/status")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (code, body["error"]) == (403, "client_not_allowed")
        assert _error(proc, "/api/v1/health", auth=False)[0] == 403
    finally:
        proc.stop()


def test_a_restart_forgets_nothing_the_detector_learnt(helper: HelperProcess) -> None:
    # alice's home network is learnt; three failures from an attacker start a window.
    helper.append(*exchange("192.0.2.10", 200, user="alice"))
    for i in range(3):
        helper.append(*failed_login("203.0.113.50", port=44000 + i))
    for i in range(5):
        helper.append(*failed_login("203.0.113.51", port=45000 + i))
    helper.wait_for(lambda s: s["failed_logins"]["total"] == 8)
    before = helper.get("/api/v1/alerts?after=0")["alerts"]
    assert [(a["kind"], a["ip"]) for a in before if a["kind"] != "banned"] == [("failed_login_burst", "203.0.113.51")]
    helper.stop()
    helper.start()
    # After the restart: alice from a new network is news; two more failures complete the burst;
    # one more failure from the address already reported is not a second alert.
    helper.append(*exchange("198.51.100.10", 200, user="alice"))
    for i in range(2):
        helper.append(*failed_login("203.0.113.50", port=44100 + i))
    helper.append(*failed_login("203.0.113.51", port=45100))
    helper.wait_for(lambda s: s["failed_logins"]["total"] == 11)
    after = helper.get(f"/api/v1/alerts?after={before[-1]['seq']}")["alerts"]
    kinds = [(a["kind"], a["ip"]) for a in after if a["kind"] != "banned"]
    assert kinds == [("new_location", "198.51.100.10"), ("failed_login_burst", "203.0.113.50")]


def test_request_rate_per_address_with_bursts() -> None:
    now = [0.0]
    rate = RequestRate(5, clock=lambda: now[0])
    assert [rate.allow("203.0.113.1") for _ in range(11)] == [True] * 10 + [False]  # a burst of 2 × rate
    assert rate.allow("203.0.113.2")  # per address
    now[0] += 1.0
    assert [rate.allow("203.0.113.1") for _ in range(6)] == [True] * 5 + [False]
    assert all(RequestRate(0).allow("x") for _ in range(1000))  # 0 turns it off


def test_init_protects_the_admin_ssh_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from plex_security_helper.cli import main
    from plex_security_helper.config import load_config

    monkeypatch.setenv("SSH_CLIENT", "198.51.100.23 52341 22")
    config = tmp_path / "helper.toml"
    assert main(["init", "--config", str(config), "--log-path", "/x/p.log", "--docker-socket", "/none"]) == 0
    assert load_config(config).firewall.protect == ("198.51.100.23/32",)
    assert "198.51.100.23" in capsys.readouterr().out


def test_a_blocked_token_guesser_is_handed_to_the_ban_policy(tmp_path: Path, socket_enabled: None) -> None:
    blocked: list[str] = []
    throttle = BadTokenThrottle(on_block=blocked.append)
    for _ in range(MAX_FAILURES + 3):
        throttle.failed("203.0.113.4")
    assert blocked == ["203.0.113.4"]  # once per block

    proc = HelperProcess(tmp_path / "h")
    proc.write_config()
    text = proc.config_path.read_text().replace("clients = []", "clients = []\nban_token_guessers = true")
    proc.config_path.write_text(text)
    proc.start()
    try:
        for _ in range(MAX_FAILURES):
            _error(proc, "/api/v1/status", token="wrong-token-wrong-token")
        deadline = time.monotonic() + 5
        while "not banning API token guesser 127.0.0.1" not in proc.stderr():
            assert time.monotonic() < deadline, proc.stderr()
            time.sleep(0.05)
        assert "loopback" in proc.stderr()  # the policy still protects loopback
    finally:
        proc.stop()
