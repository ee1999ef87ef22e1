"""The remediation script, run as its owner runs it (bash, as root) after symlinks were planted."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from plex_security_helper.audit.findings import AuditReport
from plex_security_helper.audit.fixscript import render
from plex_security_helper.audit.preferences import file_mode_findings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _plex_folder(root: Path) -> tuple[Path, Path]:
    plex = root / "Plex Media Server"
    (plex / "Logs").mkdir(parents=True)
    prefs = plex / "Preferences.xml"
    prefs.write_text('<Preferences PlexOnlineToken="x"/>\n')
    prefs.chmod(0o644)
    (plex / "Logs").chmod(0o755)
    return prefs, plex / "Logs"


def _script(tmp_path: Path, prefs: Path, logs: Path) -> Path:
    report = AuditReport(started=0.0)
    report.findings += file_mode_findings(prefs, logs)
    assert {f.id for f in report.findings} == {"plex.preferences_world_readable", "plex.logs_world_readable"}
    script = tmp_path / "fix.sh"
    script.write_text(render(report))
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "--shell=sh", str(script)], check=True)
    return script


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script)], check=True, capture_output=True, text=True, cwd=script.parent)


def test_planted_symlinks_in_place_of_the_targets_are_never_followed(tmp_path: Path) -> None:
    prefs, logs = _plex_folder(tmp_path / "var")
    script = _script(tmp_path, prefs, logs)
    # Meanwhile the plex account swaps both targets for symlinks to files it wants opened up.
    victim_file, victim_dir = tmp_path / "shadow", tmp_path / "etc"
    victim_file.write_text("root:secret\n")
    victim_file.chmod(0o640)
    victim_dir.mkdir()
    victim_dir.chmod(0o755)
    prefs.unlink()
    prefs.symlink_to(victim_file)
    logs.rmdir()
    logs.symlink_to(victim_dir)
    result = _run(script)
    assert (_mode(victim_file), _mode(victim_dir)) == (0o640, 0o755)
    assert result.stderr.count("is no longer what the audit saw") == 2


def test_a_folder_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    prefs, logs = _plex_folder(tmp_path / "var")
    script = _script(tmp_path, prefs, logs)
    # The whole Plex folder becomes a link to a look-alike tree elsewhere.
    decoy_prefs, decoy_logs = _plex_folder(tmp_path / "decoy")
    shutil.rmtree(prefs.parent)
    prefs.parent.symlink_to(decoy_prefs.parent)
    _run(script)
    assert (_mode(decoy_prefs), _mode(decoy_logs)) == (0o644, 0o755)


def test_a_target_with_another_owner_is_left_alone(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file away")
    prefs, logs = _plex_folder(tmp_path / "var")
    script = _script(tmp_path, prefs, logs)
    os.chown(prefs, 12345, 12345)  # e.g. a hard link to someone else's file
    _run(script)
    assert _mode(prefs) == 0o644
    assert _mode(logs) & 0o007 == 0  # the untouched one is still fixed


def test_the_script_fixes_the_targets_the_audit_saw(tmp_path: Path) -> None:
    prefs, logs = _plex_folder(tmp_path / "var")
    _run(_script(tmp_path, prefs, logs))
    assert (_mode(prefs), _mode(logs) & 0o007) == (0o600, 0)


def test_a_target_that_was_a_symlink_at_the_audit_gets_no_command(tmp_path: Path) -> None:
    prefs, logs = _plex_folder(tmp_path / "var")
    real = tmp_path / "real.xml"
    real.write_text("<Preferences/>\n")
    real.chmod(0o644)
    prefs.unlink()
    prefs.symlink_to(real)
    report = AuditReport(started=0.0)
    report.findings += file_mode_findings(prefs, logs)
    text = render(report)
    assert "is a symlink: not changed" in text
    assert f"chmod 600 -- {prefs}" not in text
