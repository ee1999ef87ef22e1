"""A day of Plex traffic: real users are never judged hostile, attackers are, and on time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plex_security_helper.logwatch.plexlog import LogParser
from plex_security_helper.logwatch.scan import ScanReport, oldest_first, scan_lines
from plex_security_helper.thresholds import DetectConfig
from tests.plexlines import exchange

T0 = datetime(2026, 11, 20, 8, 0, 0)
DEFAULTS = DetectConfig(failed_auth_threshold=5, failed_auth_window=600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def day_of_traffic() -> tuple[list[str], dict[str, str]]:
    """Lines of a morning on a small server, and the line at which each attacker must be caught."""
    lines: list[str] = []
    decisive: dict[str, str] = {}
    # alice streams all morning, signed in, from the internet.
    for i in range(0, 3600, 10):
        lines += exchange(
            "192.0.2.10",
            200,
            f"/video/:/transcode/universal/session/a/base/{i:05d}.ts",
            when=at(i),
            user="alice",
            port=50000 + i % 1000,
        )
    # bob watched yesterday evening; this morning his token has expired and his TV retries
    # every 40 seconds for ten minutes before he signs in again.
    lines += exchange("192.0.2.23", 200, "/library/sections", when=at(-40000), user="bob")
    for i in range(15):
        lines += exchange("192.0.2.23", 401, "/library/sections", when=at(600 + 40 * i), port=40000 + i)
    lines += exchange("192.0.2.23", 200, "/library/sections", when=at(1300), user="bob")
    # carol's Plexamp asks for loudness levels without a token, dozens of times.
    for i in range(30):
        lines += exchange(
            "198.51.100.40",
            401,
            f"/library/streams/{100 + i}/levels?subsample=128",
            when=at(100 + 15 * i),
            port=41000 + i,
        )
        lines += exchange(
            "198.51.100.40", 401, "/:/timeline?ratingKey=7&state=playing", when=at(101 + 15 * i), port=42000 + i
        )
    # The living-room TV on the LAN with a stale token.
    for i in range(40):
        lines += exchange("192.168.1.20", 401, "/library/sections", net_class="Subnet", when=at(5 * i), port=43000 + i)
    # A brute forcer guesses tokens every 20 s: caught at its 5th failure.
    for i in range(12):
        pair = exchange("203.0.113.66", 401, "/library/sections", when=at(900 + 20 * i), port=44000 + i)
        lines += pair
        if i == 4:
            decisive["203.0.113.66"] = pair[1]
    # An IPv6 brute forcer rotating addresses inside its /64.
    for i in range(6):
        pair = exchange(f"2001:db8:bad::{i + 1:x}", 401, "/library/sections", when=at(1000 + 10 * i), port=45000 + i)
        lines += pair
        if i == 4:
            decisive["2001:db8:bad::5"] = pair[1]
    # A vulnerability scanner: caught at its second attack path.
    for i, path in enumerate(["/.env", "/wp-login.php", "/../../etc/passwd", "/system/proxy?url=http://x/"]):
        pair = exchange("198.51.100.99", 404, path, when=at(1200 + 3 * i), port=46000 + i)
        lines += pair
        if i == 1:
            decisive["198.51.100.99"] = pair[1]
    # A crawler of distinct missing paths (CrowdSec http-probing style).
    for i in range(12):
        pair = exchange("203.0.113.80", 404, f"/random/{i}/thing", when=at(1500 + 2 * i), port=47000 + i)
        lines += pair
        if i == 9:
            decisive["203.0.113.80"] = pair[1]
    lines.sort(key=lambda line: LogParser().parse(line).time)  # type: ignore[union-attr]
    return lines, decisive


def test_users_are_never_banned_attackers_are_on_time() -> None:
    lines, decisive = day_of_traffic()
    report = scan_lines(lines, DEFAULTS)
    verdicts = {row["ip"]: row["verdict"] for row in report.as_json()["addresses"]}
    for user_ip in ("192.0.2.10", "192.0.2.23", "198.51.100.40", "192.168.1.20"):
        assert verdicts[user_ip] != "ban", user_ip
    assert verdicts["192.0.2.10"] == "ok"
    for attacker in ("203.0.113.66", "198.51.100.99", "203.0.113.80", "2001:db8:bad::5"):
        assert verdicts[attacker] == "ban", attacker

    parser = LogParser()
    first_ban: dict[str, dict[str, Any]] = {}
    for alert in report.alerts:
        if alert["detail"]["verdict"] == "ban":
            first_ban.setdefault(alert["ip"], alert)
    for ip, line in decisive.items():
        rec = parser.parse(line)
        assert rec is not None
        assert first_ban[ip]["time"] == rec.time, f"{ip} decided late or early"
    assert first_ban["2001:db8:bad::5"]["detail"]["source"] == "2001:db8:bad::/64"
    assert first_ban["203.0.113.66"]["kind"] == "failed_login_burst"
    assert first_ban["198.51.100.99"]["kind"] == "probe"
    assert first_ban["203.0.113.80"]["kind"] == "scan"
    # One alert per burst: the brute forcer's twelve failures give one ban alert.
    assert sum(1 for a in report.alerts if a["ip"] == "203.0.113.66") == 1


def test_new_location_for_a_signed_in_user() -> None:
    lines = exchange("192.0.2.10", 200, "/library/sections", when=at(0), user="alice")
    lines += exchange("192.0.2.11", 200, "/library/sections", when=at(10), user="alice")  # same /24
    lines += exchange("203.0.113.200", 200, "/library/sections", when=at(20), user="alice")
    lines += exchange("203.0.113.200", 200, "/hubs", when=at(30), user="alice")
    report = scan_lines(lines, DEFAULTS)
    moves = [a for a in report.alerts if a["kind"] == "new_location"]
    assert len(moves) == 1
    assert moves[0]["ip"] == "203.0.113.200"
    assert moves[0]["detail"]["user"] == "alice"
    assert moves[0]["detail"]["network"] == "203.0.113.0/24"
    assert moves[0]["detail"]["verdict"] == "watch"


def test_allowed_network_from_public_address_is_reported() -> None:
    lines = exchange("198.51.100.5", 200, "/library/sections", net_class="Allowed Network (WAN)", when=at(0))
    lines += exchange("192.168.1.5", 200, "/library/sections", net_class="Allowed Network (Subnet)", when=at(1))
    report = scan_lines(lines, DEFAULTS)
    assert [(a["kind"], a["ip"]) for a in report.alerts] == [("auth_bypass", "198.51.100.5")]


def test_flood_from_an_unknown_address() -> None:
    config = DetectConfig(failed_auth_threshold=5, failed_auth_window=600, flood_per_minute=100)
    lines: list[str] = []
    for i in range(150):
        lines += exchange("203.0.113.90", 200, "/identity", when=at(i * 0.2), port=30000 + i)
    report = scan_lines(lines, config)
    assert [a["kind"] for a in report.alerts] == ["flood"]


def test_rotated_files_are_read_oldest_first() -> None:
    names = [Path(n) for n in ["Plex Media Server.log", "Plex Media Server.2.log", "Plex Media Server.1.log"]]
    assert [p.name for p in oldest_first(names)] == [
        "Plex Media Server.2.log",
        "Plex Media Server.1.log",
        "Plex Media Server.log",
    ]


def test_scan_cli_json_shape(tmp_path: Path) -> None:
    lines, _ = day_of_traffic()
    split = len(lines) // 2
    (tmp_path / "Plex Media Server.1.log").write_text("\n".join(lines[:split]) + "\n")
    (tmp_path / "Plex Media Server.log").write_text("\n".join(lines[split:]) + "\nnot a plex line\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "plex_security_helper.cli",
            "scan",
            "--json",
            str(tmp_path / "Plex Media Server.log"),
            str(tmp_path / "Plex Media Server.1.log"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    doc = json.loads(out)
    assert out.count("\n") == 1
    assert set(doc) == {"lines", "parsed", "addresses"}
    assert doc["lines"] == len(lines) + 1
    assert doc["parsed"] == len(lines)
    for row in doc["addresses"]:
        assert set(row) == {"ip", "verdict", "failed_auth", "probes", "requests", "alerts", "reasons"}
        assert row["verdict"] in {"ban", "watch", "ok"}
    # Split across rotated files, the verdicts are those of one continuous log.
    whole = ScanReport.as_json(scan_lines(lines, DEFAULTS))
    assert doc["addresses"] == whole["addresses"]


def test_scan_cli_refuses_missing_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plex_security_helper.cli", "scan", str(tmp_path / "nope.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "not a readable file" in proc.stderr
