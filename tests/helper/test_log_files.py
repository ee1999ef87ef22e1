"""The follower opens only regular files of the log folder, and never blocks on anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plex_security_helper.logwatch.tail import LogFollower, Refused, open_in_folder
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login


def _attack_lines() -> list[str]:
    return [line for port in range(40000, 40006) for line in failed_login("203.0.113.30", port=port)]


def test_a_fifo_in_place_of_the_log_never_hangs_the_worker(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.write_config()
    os.mkfifo(helper.log_path)  # nobody ever writes to it: a blocking open would never return
    helper.start()
    try:
        status = helper.wait_for(lambda s: s["monitor"]["refused"] is not None)
        assert "is a FIFO, not a regular file" in status["monitor"]["refused"]
        assert status["monitor"]["following"] is False
        # Every route that needs the worker still answers.
        assert helper.get("/api/v1/alerts?after=0")["alerts"] == []
        assert helper.get("/api/v1/bans")["bans"] == []
        # A regular file in its place is followed, and the refusal is over.
        helper.log_path.unlink()
        helper.log_path.write_text("")
        helper.wait_for(lambda s: s["monitor"]["following"])
        helper.append(*_attack_lines())
        status = helper.wait_for(lambda s: s["failed_logins"]["total"] == 6)
        assert status["monitor"]["refused"] is None
    finally:
        helper.stop()


def test_a_fifo_swapped_in_at_rotation_is_refused(helper: HelperProcess) -> None:
    helper.append(*_attack_lines()[:2])
    helper.wait_for(lambda s: s["failed_logins"]["total"] == 1)
    helper.log_path.rename(helper.log_path.with_name("Plex Media Server.1.log"))
    os.mkfifo(helper.log_path)
    status = helper.wait_for(lambda s: s["monitor"]["refused"] is not None)
    assert "FIFO" in status["monitor"]["refused"]
    assert helper.get("/api/v1/status")["failed_logins"]["total"] == 1


def test_a_symlink_out_of_the_log_folder_is_not_read(tmp_path: Path, socket_enabled: None) -> None:
    outside = tmp_path / "secret.log"
    outside.write_text("".join(f"{line}\n" for line in _attack_lines()))
    helper = HelperProcess(tmp_path / "helper", extra_config="")
    helper.write_config()
    helper.log_path.symlink_to(outside)
    config = helper.config_path.read_text().replace("backfill = false", "backfill = true")
    helper.config_path.write_text(config)
    helper.start()
    try:
        status = helper.wait_for(lambda s: s["monitor"]["refused"] is not None)
        assert "symlink out of the log folder" in status["monitor"]["refused"]
        assert status["monitor"]["lines_processed"] == 0
        assert status["failed_logins"]["total"] == 0
    finally:
        helper.stop()


def test_only_regular_files_of_the_folder_open(tmp_path: Path) -> None:
    logs = tmp_path / "Logs"
    logs.mkdir()
    real = logs / "real.log"
    real.write_text("a line\n")
    (logs / "sibling.log").symlink_to("real.log")  # a link to a file of the same folder is fine
    with open_in_folder(logs / "sibling.log") as handle:
        assert handle.read() == b"a line\n"
    (logs / "out.log").symlink_to(tmp_path / "elsewhere")
    (logs / "dev.log").symlink_to("/dev/zero")
    (logs / "up.log").symlink_to("../Logs/real.log")
    (logs / "chain.log").symlink_to("sibling.log")
    (logs / "folder.log").mkdir()
    for name in ("out.log", "dev.log", "up.log", "chain.log", "folder.log"):
        with pytest.raises(Refused):
            open_in_folder(logs / name)
    with pytest.raises(FileNotFoundError):
        open_in_folder(logs / "missing.log")
    follower = LogFollower(logs / "dev.log", None, backfill=True)
    assert follower.read_lines() == []
    assert follower.refused is not None and "symlink out of the log folder" in follower.refused
