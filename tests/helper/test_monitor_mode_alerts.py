"""Monitor mode: an attacker that keeps going after its (recorded) ban alerts once per ban period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.helperproc import HelperProcess
from tests.plexlines import failed_login

FIRST, SECOND = "203.0.113.61", "198.51.100.62"


@pytest.fixture
def monitoring(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    proc = HelperProcess(tmp_path / "helper", extra_config='[firewall]\nmode = "monitor"\n')
    proc.start()
    yield proc
    proc.stop()


def _attack(helper: HelperProcess, ip: str, start: datetime, minutes: int, port: int) -> int:
    """Five wrong passwords a minute for *minutes* (Plex's log times move, the test does not wait)."""
    lines = [
        line
        for minute in range(minutes)
        for n in range(5)
        for line in failed_login(ip, when=start + timedelta(minutes=minute, seconds=n), port=port + 10 * minute + n)
    ]
    helper.append(*lines)
    return len(lines) // 2


def _kinds(helper: HelperProcess, ip: str) -> list[str]:
    alerts = helper.get("/api/v1/alerts?after=0&limit=500")["alerts"]
    return [a["kind"] for a in alerts if a["ip"] == ip]


def test_thirty_minutes_of_attack_are_one_alert_and_one_ban_per_attacker(monitoring: HelperProcess) -> None:
    start = datetime.now() - timedelta(minutes=31)
    requests = _attack(monitoring, FIRST, start, 30, 20000)
    requests += _attack(monitoring, SECOND, start + timedelta(minutes=10), 20, 30000)
    status = monitoring.wait_for(lambda s: s["failed_logins"]["total"] >= requests, timeout=20)
    assert status["bans"]["active"] == 2
    # Without the rule the detector alerts again every window (10 minutes): four times, three.
    assert _kinds(monitoring, FIRST) == ["failed_login_burst", "banned"]
    assert _kinds(monitoring, SECOND) == ["failed_login_burst", "banned"]

    # The ban period ends (lifted here): the next attack is news again.
    code, _ = monitoring.call("DELETE", f"/api/v1/bans/{FIRST}")
    assert code == 200
    more = _attack(monitoring, FIRST, datetime.now() - timedelta(seconds=30), 1, 40000)
    monitoring.wait_for(lambda s: s["failed_logins"]["total"] >= requests + more, timeout=20)
    monitoring.wait_for(lambda s: s["bans"]["active"] == 2, timeout=10)
    assert _kinds(monitoring, FIRST) == ["failed_login_burst", "banned", "unbanned", "failed_login_burst", "banned"]
