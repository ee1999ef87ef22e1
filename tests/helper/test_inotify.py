"""The follower is woken by inotify as Plex writes; polling remains where inotify cannot help."""

from __future__ import annotations

import os
from pathlib import Path

from plex_security_helper.logwatch.inotify import watch_folder
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login


def test_a_write_a_rename_and_a_new_file_are_seen(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    log.write_text("")
    watch, why = watch_folder(tmp_path)
    assert watch is not None, why
    try:
        watch.drain()
        assert not watch.drain()  # nothing happened
        with log.open("a") as handle:
            handle.write("line\n")
        assert watch.drain()
        log.rename(tmp_path / "Plex Media Server.1.log")
        assert watch.drain()
        log.write_text("")
        assert watch.drain()
        assert not watch.drain()
    finally:
        watch.close()
    assert watch.fd == -1


def test_writes_to_the_other_logs_of_the_folder_do_not_wake_the_follower(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    scanner = tmp_path / "Plex Media Scanner.log"
    log.write_text("")
    scanner.write_text("")
    watch, why = watch_folder(tmp_path, log.name)
    assert watch is not None, why
    try:
        watch.drain()
        with scanner.open("a") as handle:
            handle.write("scanning\n")
        assert not watch.drain()  # Plex's scanner wrote: nothing for the follower
        with log.open("a") as handle:
            handle.write("line\n")
        assert watch.drain()
        scanner.rename(tmp_path / "Plex Media Scanner.1.log")
        assert watch.drain()  # a rename of any file may be the rotation
        assert not watch.drain()
    finally:
        watch.close()


def test_a_missing_folder_means_polling_with_a_reason(tmp_path: Path) -> None:
    watch, why = watch_folder(tmp_path / "not-there")
    assert watch is None
    assert os.strerror(2) in why


def test_an_attack_is_judged_without_waiting_for_the_poll(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "h")
    # A ten-second poll: the alert can only arrive within the long-poll's 6 s through inotify.
    helper.extra_config = f'[monitor]\nlog_path = "{helper.log_path}"\npoll_interval = 10.0\n'
    helper.start()
    try:
        status = helper.wait_for(lambda s: s["monitor"]["following"])
        assert status["monitor"]["watch"] == "inotify"
        helper.append(*[line for n in range(5) for line in failed_login("203.0.113.61", port=41000 + n)])
        body = helper.get("/api/v1/alerts?after=0&wait=6")
        assert "failed_login_burst" in [a["kind"] for a in body["alerts"]]
    finally:
        helper.stop()


def test_a_removed_folder_loses_the_watch(tmp_path: Path) -> None:
    folder = tmp_path / "Logs"
    folder.mkdir()
    watch, why = watch_folder(folder)
    assert watch is not None, why
    try:
        (folder / "Plex Media Server.log").write_text("x\n")
        assert watch.drain() and not watch.lost
        (folder / "Plex Media Server.log").unlink()
        folder.rmdir()
        assert watch.drain()
        assert watch.lost  # polling takes over; the monitor watches again once the folder is back
    finally:
        watch.close()
