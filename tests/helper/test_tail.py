"""The log follower on real files: rotation, copy-truncate, restarts, partial and huge lines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plex_security_helper.logwatch.tail import LogFollower, rotated_name


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as handle:
        handle.write(text)


def following(log: Path) -> LogFollower:
    """A follower that has opened *log* (created empty) and stands at its end."""
    write(log, "")
    follower = LogFollower(log, None)
    assert follower.read_lines() == []
    return follower


def test_starts_at_end_unless_backfill(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    write(log, "old 1\nold 2\n")
    live = LogFollower(log, None)
    assert live.read_lines() == []
    write(log, "new\n")
    assert live.read_lines() == ["new"]

    backfill = LogFollower(log, None, backfill=True)
    assert backfill.read_lines() == []  # opening
    assert backfill.read_lines() == ["old 1", "old 2", "new"]


def test_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    log.touch()
    follower = LogFollower(log, None)
    follower.read_lines()
    write(log, "complete\nhalf a li")
    assert follower.read_lines() == ["complete"]
    position = follower.position
    assert position is not None and position.offset == len("complete\n")
    write(log, "ne\n")
    assert follower.read_lines() == ["half a line"]


def test_rotation_reads_old_tail_then_new_file(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    follower = following(log)
    write(log, "a\n")
    assert follower.read_lines() == ["a"]
    write(log, "b\n")  # written just before the rename, not yet read
    log.rename(rotated_name(log))
    write(log, "c\n", "w")
    assert follower.read_lines() == ["b", "c"]
    assert follower.rotations == 1
    write(log, "d\n")
    assert follower.read_lines() == ["d"]


def test_copy_truncate(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    follower = following(log)
    write(log, "one\ntwo\n")
    assert follower.read_lines() == ["one", "two"]
    os.truncate(log, 0)
    write(log, "three\n")
    assert follower.read_lines() == ["three"]
    assert follower.truncations == 1


def test_missing_file_then_created(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    follower = LogFollower(log, None)
    assert follower.read_lines() == []
    assert not follower.following
    write(log, "first\n")
    follower.read_lines()
    assert follower.read_lines() == ["first"]


def test_restart_mid_file_resumes_exactly(tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    first = following(log)
    write(log, "1\n2\n3")
    assert first.read_lines() == ["1", "2"]
    saved = first.position
    first.close()
    write(log, "\n4\n")
    second = LogFollower(log, saved)
    second.read_lines()
    assert second.read_lines() == ["3", "4"]


def test_restart_after_rotation_while_down(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    first = following(log)
    write(log, "a\n")
    assert first.read_lines() == ["a"]
    saved = first.position
    first.close()
    write(log, "b\n")
    log.rename(rotated_name(log))
    write(log, "c\n", "w")
    second = LogFollower(log, saved)
    assert second.read_lines() == ["b"]
    assert second.read_lines() == ["c"]


def test_ten_megabyte_line_is_dropped_with_bounded_memory(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    write(log, "")
    follower = LogFollower(log, None, chunk_size=64 * 1024, max_line=256 * 1024)
    follower.read_lines()
    write(log, "before\n" + "x" * (10 * 1024 * 1024) + "\nafter\n")
    lines: list[str] = []
    for _ in range(10):
        lines += follower.read_lines(max_bytes=2 * 1024 * 1024)
        if "after" in lines:
            break
    assert lines == ["before", "after"]
    assert follower.oversized_lines == 1
    assert len(follower._partial) == 0


def drain(follower: LogFollower, calls: int = 50, max_bytes: int = 8 << 20) -> list[str]:
    lines: list[str] = []
    for _ in range(calls):
        lines += follower.read_lines(max_bytes=max_bytes)
    return lines


def test_backfill_reads_rotated_files_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    write(rotated_name(log, 3), "three-a\nthree-b\n")
    write(rotated_name(log, 2), "two-a\ntwo-b")  # a finished file's last line needs no newline
    write(rotated_name(log, 1), "one\n")
    write(log, "live\n")
    follower = LogFollower(log, None, backfill=True)
    assert drain(follower) == ["three-a", "three-b", "two-a", "two-b", "one", "live"]
    write(log, "later\n")
    assert follower.read_lines() == ["later"]

    plain = LogFollower(log, None)  # without backfill history stays unread
    assert drain(plain) == []


def test_restart_in_the_middle_of_a_backfill_after_two_rotations(tmp_path: Path) -> None:
    log = tmp_path / "Plex Media Server.log"
    expected = []
    for number in (2, 1):
        text = "".join(f"r{number}-{i:04d}\n" for i in range(400))
        write(rotated_name(log, number), text)
        expected += text.splitlines()
    write(log, "live-1\n")
    expected.append("live-1")
    first = LogFollower(log, None, backfill=True, chunk_size=256)
    got = first.read_lines(max_bytes=512)  # a few lines of the oldest file only
    assert 0 < len(got) < 400
    saved = first.position
    first.close()
    # Plex rotates twice while the helper is down: the file it stopped in is now the .4
    for turn in (2, 3):
        for number in (4, 3, 2, 1):
            if rotated_name(log, number).exists():
                rotated_name(log, number).rename(rotated_name(log, number + 1))
        log.rename(rotated_name(log, 1))
        write(log, f"live-{turn}\n")
        expected.append(f"live-{turn}")
    second = LogFollower(log, saved, chunk_size=256)
    got += drain(second, calls=400, max_bytes=512)
    assert got == expected  # nothing lost, nothing twice


def test_backfill_when_the_live_file_vanishes_while_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "Plex Media Server.log"
    write(rotated_name(log, 1), "old\n")
    write(log, "")
    real_open = Path.open

    def open_but_not_the_live_file(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == log:
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_but_not_the_live_file)
    follower = LogFollower(log, None, backfill=True)
    assert drain(follower, calls=3) == ["old"]  # the rotated file alone, no crash
    monkeypatch.undo()
    write(log, "new\n")  # the live file again: followed from its start
    assert drain(follower, calls=3) == ["new"]
