"""`plex-security-helper status | bans | ban | unban` against a real helper, with the config's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from plex_security_helper.admin import parse_duration, table
from plex_security_helper.cli import main
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_bans_ban_unban(helper: HelperProcess, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(helper.config_path)
    helper.append(*[line for port in range(40000, 40006) for line in failed_login("203.0.113.20", port=port)])
    helper.wait_for(lambda s: s["failed_logins"]["total"] == 6)
    code, out, _ = _run(capsys, "status", "--config", config)
    assert code == 0
    assert "following" in out and str(helper.log_path) in out
    assert "6 failed in 24 h from 1 addresses: 203.0.113.20 (6)" in out
    assert helper.token not in out

    code, out, _ = _run(capsys, "ban", "198.51.100.0/24", "--duration", "2h", "--reason", "scanner", "--config", config)
    assert (code, out.strip()) == (0, "banned 198.51.100.0/24 for 2 h (offence 1)")
    code, out, _ = _run(capsys, "bans", "--config", config)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["address", "left", "origin", "offences", "enforced", "since", "reason"]
    row = next(line for line in lines if line.startswith("198.51.100.0/24"))
    assert "manual" in row and "scanner" in row
    assert any(line.startswith("203.0.113.20 ") and "detector" in line for line in lines)

    code, _, err = _run(capsys, "ban", "127.0.0.1", "--config", config)
    assert code == 1 and "loopback is never banned" in err  # the helper's policy applies to the admin too
    code, out, _ = _run(capsys, "unban", "198.51.100.0/24", "--config", config)
    assert (code, out.strip()) == (0, "unbanned 198.51.100.0/24")
    code, _, err = _run(capsys, "unban", "198.51.100.0/24", "--config", config)
    assert code == 1 and "404" in err
    code, _, err = _run(capsys, "ban", "not-an-ip", "--config", config)
    assert code == 2 and "not an address or network" in err


def test_a_helper_that_is_not_running_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], socket_enabled: None
) -> None:
    proc = HelperProcess(tmp_path / "h")
    proc.write_config()  # configured, never started
    for argv in (["status"], ["bans"], ["ban", "203.0.113.1"], ["unban", "203.0.113.1"]):
        code, out, err = _run(capsys, *argv, "--config", str(proc.config_path))
        assert (code, out) == (3, "")
        assert f"the helper is not running: nothing answers on http://127.0.0.1:{proc.port}" in err
    code, _, err = _run(capsys, "status", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "configuration file not found" in err


def test_a_changed_token_is_explained(helper: HelperProcess, capsys: pytest.CaptureFixture[str]) -> None:
    text = helper.config_path.read_text().replace(helper.token, "x" * 43)
    helper.config_path.write_text(text)
    code, _, err = _run(capsys, "status", "--config", str(helper.config_path))
    assert code == 1 and "refused this configuration's token" in err


def test_status_over_tls_trusts_the_helper_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], socket_enabled: None
) -> None:
    proc = HelperProcess(tmp_path / "h", tls=True)
    proc.start()
    try:
        code, out, _ = _run(capsys, "status", "--config", str(proc.config_path), "--json")
        assert code == 0 and '"helper":' in out
    finally:
        proc.stop()


def test_durations_and_tables() -> None:
    assert [parse_duration(t) for t in ("3600", "90m", "12h", "7d", "2w")] == [3600, 5400, 43200, 604800, 1209600]
    for bad in ("", "h", "1.5h", "-3", "1y", "²"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert table(["a", "bb"], [["xxx", "y"]]).splitlines() == ["a    bb", "---  --", "xxx  y"]
