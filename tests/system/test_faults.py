"""Fault tests: a full disk, kill -9 in the middle of a flood, a failing firewall, a gigabyte of
garbage. Each ends with a clear status, the process alive, and nothing lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helperproc import HelperProcess
from tests.plexlines import failed_login


def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (tmpfs mounts, namespaces)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs for the database, unmounted afterwards."""
    _root()
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_recording_loses_nothing_and_recovers(
    small_disk: Path, tmp_path: Path, socket_enabled: None
) -> None:
    helper = HelperProcess(tmp_path / "helper", extra_config=f'[storage]\ndatabase = "{small_disk}/state.db"\n')
    helper.start()
    try:
        filler = small_disk / "filler"
        with filler.open("wb") as handle:  # take every free byte
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        attack = [line for port in range(40000, 40200) for line in failed_login("203.0.113.5", port=port)]
        helper.append(*attack)
        status = helper.wait_for(lambda s: s["monitor"]["recording"] is False, timeout=15)
        assert status["monitor"]["error"]
        assert helper.proc is not None and helper.proc.poll() is None

        filler.unlink()
        status = helper.wait_for(lambda s: s["monitor"]["recording"] and s["failed_logins"]["total"] == 200, 15)
        assert status["monitor"]["error"] is None
        # The lines whose commit failed were read once and count once in the rate.
        assert status["monitor"]["lines_per_minute"] == len(attack)
        alerts = helper.get("/api/v1/alerts?after=0")["alerts"]
        assert [(a["kind"], a["ip"]) for a in alerts] == [
            ("failed_login_burst", "203.0.113.5"),
            ("banned", "203.0.113.5"),
        ]
    finally:
        helper.stop()


def test_kill_9_in_the_middle_of_a_flood_loses_and_repeats_nothing(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.start()
    attackers = [f"198.51.100.{i}" for i in range(1, 201)]
    rnd = random.Random(9)

    def flood() -> None:
        for ip in attackers:
            helper.append(*[line for port in range(50000, 50005) for line in failed_login(ip, port=port)])
            if rnd.random() < 0.1:
                time.sleep(0.005)

    writer = threading.Thread(target=flood)
    writer.start()
    try:
        helper.wait_for(lambda s: s["alerts"]["count_24h"] >= 20, timeout=20)
        assert helper.proc is not None
        helper.proc.send_signal(signal.SIGKILL)
        helper.proc.wait(timeout=10)
        helper.proc = None
        writer.join(timeout=60)
        helper.start()
        status = helper.wait_for(lambda s: s["failed_logins"]["total"] == 1000, timeout=30)
        # One burst per attacker, and one spread alert for their /24 (200 of its addresses fail).
        assert status["alerts"]["count_24h"] == 201
        alerts = helper.get("/api/v1/alerts?after=0&limit=500")["alerts"]
        seqs = [a["seq"] for a in alerts]
        assert seqs == list(range(1, len(seqs) + 1))  # no gap, no repeat
        per_ip = Counter((a["kind"], a["ip"]) for a in alerts)
        assert set(per_ip.values()) == {1}
        assert {ip for kind, ip in per_ip if kind == "failed_login_burst"} == set(attackers)
        assert [kind for kind, _ in per_ip if kind == "network_spread"] == ["network_spread"]
        bans = helper.get("/api/v1/bans")["bans"]
        assert sorted(b["ip"] for b in bans) == sorted([*attackers, "198.51.100.0/24"])
    finally:
        writer.join(timeout=60)
        helper.stop()  # a failed assertion must not leave the helper running


def test_a_failing_firewall_is_reported_and_loses_no_ban(tmp_path: Path, socket_enabled: None) -> None:
    _root()
    helper = HelperProcess(
        tmp_path / "helper",
        extra_config='[firewall]\nbackend = "nft"\nmode = "enforce"\nnetns = "plexsec-no-such-namespace"\n',
    )
    helper.start()
    try:
        status = helper.get("/api/v1/status")
        assert "Cannot open network namespace" in status["firewall"]["error"]
        assert status["firewall"]["active"] is False
        code, body = helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.9"})
        assert (code, body["error"]) == (502, "backend_failed")
        assert helper.get("/api/v1/status")["bans"]["pending"] == 1
        assert helper.proc is not None and helper.proc.poll() is None
    finally:
        helper.stop()


def test_a_gigabyte_of_garbage_is_survived_with_bounded_memory(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.start()
    try:
        rnd = random.Random(1)
        junk = [bytes(rnd.getrandbits(8) for _ in range(n)).replace(b"\n", b" ") for n in (60, 120, 300, 5000)]
        block = b"".join(junk[i % len(junk)] + b"\n" for i in range(2000))
        block += b"Nov 20, 2026 08:00:00.000 [1] DEBUG - Request: [not-an-ip:99 (WAN)] GET /x (1 live)\n" * 50
        total = 1 << 30
        with helper.log_path.open("ab") as handle:
            written = blocks = 0
            while written < total:
                handle.write(block)
                written += len(block)
                blocks += 1
            handle.write(b"x" * (20 << 20) + b"\n")  # and one 20 MB line
        helper.append(*[line for port in range(40000, 40005) for line in failed_login("203.0.113.77", port=port)])
        status = helper.wait_for(lambda s: s["alerts"]["count_24h"] == 1, timeout=240)
        # Every line of the gigabyte was read (and the attack after it was still seen).
        assert status["monitor"]["lines_processed"] >= blocks * block.count(b"\n")
        assert status["monitor"]["parse_failures"] > 0
        assert status["monitor"]["oversized_lines"] >= 1
        assert helper.proc is not None and helper.proc.poll() is None
        peak_kb = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{helper.proc.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
        )
        assert peak_kb < 200 * 1024, f"peak RSS {peak_kb} kB"
    finally:
        helper.stop()


def test_a_corrupt_database_is_moved_aside_instead_of_a_crash_loop(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.write_config()
    (helper.root / "state.db").write_bytes(b"this is not a database" * 100)
    helper.start()
    try:
        status = helper.get("/api/v1/status")
        notice = status["monitor"]["database_notice"]
        assert "moved to state.db.corrupt-" in notice
        assert list(helper.root.glob("state.db.corrupt-*"))
        helper.append(*[line for port in range(40000, 40005) for line in failed_login("203.0.113.8", port=port)])
        helper.wait_for(lambda s: s["alerts"]["count_24h"] == 1)
    finally:
        helper.stop()
