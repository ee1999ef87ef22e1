"""One pipeline, three drivers: ``scan`` of the whole file, backfill at first start and live
appends in random chunk sizes give the same per-address report for the same log."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from plex_security_helper.logwatch.scan import scan_files
from plex_security_helper.model import AlertKind, Verdict
from plex_security_helper.thresholds import DetectConfig
from tests.helperproc import HelperProcess
from tests.mixedlog import mixed_log

INFO_KINDS = {str(k) for k in AlertKind.with_verdict(Verdict.INFO)}


def helper_report(helper: HelperProcess, ips: list[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for ip in ips:
        body = helper.get(f"/api/v1/ips/{ip}")
        seen = body["seen"] or {}
        rows[ip] = {
            "requests": seen.get("requests", 0),
            "failed_auth": seen.get("failed_auth", 0),
            "probes": seen.get("probes", 0),
            "alerts": seen.get("alerts", 0),
        }
    return rows


def wait_caught_up(helper: HelperProcess, access_lines: int) -> None:
    helper.wait_for(lambda s: s["monitor"]["access_lines"] >= access_lines and s["monitor"]["recording"], 60)


def test_scan_backfill_and_live_agree(tmp_path: Path, socket_enabled: None) -> None:
    lines = mixed_log(7)
    text = "".join(f"{line}\n" for line in lines)
    log = tmp_path / "mixed.log"
    log.write_text(text, encoding="utf-8")
    report = scan_files([log], DetectConfig())
    doc = report.as_json()
    expected = {
        row["ip"]: {k: row[k] for k in ("requests", "failed_auth", "probes", "alerts", "reasons")}
        for row in doc["addresses"]
    }
    ips = sorted(expected)
    # The mix is what it should be: attackers caught, users and the LAN not, forgery attributed.
    assert {"failed_login_burst"} <= set(expected["203.0.113.10"]["reasons"])
    assert "exploit" in expected["198.51.100.40"]["reasons"]
    assert expected["192.0.2.66"]["reasons"] == ["log_injection"]
    assert "198.51.100.99" not in expected  # the forged victim was never seen at all
    assert expected["203.0.113.60"]["failed_auth"] > 0  # a User-Agent is no sign-in
    assert all(not expected[f"192.0.2.{i}"]["reasons"] for i in range(10, 20) if f"192.0.2.{i}" in expected)

    root = tmp_path / "backfill"
    backfill = HelperProcess(
        root, extra_config=f'[monitor]\nlog_path = "{root / "Logs" / "Plex Media Server.log"}"\nbackfill = true\n'
    )
    backfill.write_config()
    backfill.log_path.write_text(text, encoding="utf-8")
    live = HelperProcess(tmp_path / "live")
    try:
        backfill.start()
        live.start()
        live.wait_for(lambda s: s["monitor"]["following"])
        data = text.encode()
        rnd, pos = random.Random(3), 0
        with live.log_path.open("ab") as handle:
            while pos < len(data):
                size = rnd.choice([1, 7, 100, 4096, 65536])
                handle.write(data[pos : pos + size])
                handle.flush()
                pos += size
                if rnd.random() < 0.05:
                    time.sleep(0.01)  # let the follower read a partial line now and then
        wait_caught_up(backfill, doc["parsed"])
        wait_caught_up(live, doc["parsed"])
        counts = {ip: {k: v for k, v in row.items() if k != "reasons"} for ip, row in expected.items()}
        assert helper_report(backfill, ips) == counts
        assert helper_report(live, ips) == counts
    finally:
        backfill.stop()
        live.stop()
