"""`plex-security-helper audit` in a terminal: areas not checked are said so, every finding shows its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from plex_security_helper.cli import main


def _config(tmp_path: Path, plex_dir: Path) -> Path:
    config = tmp_path / "helper.toml"
    log = plex_dir / "Logs" / "Plex Media Server.log"
    argv = ["init", "--config", str(config), "--log-path", str(log), "--docker-socket", "/nonexistent"]
    assert main(argv) == 0
    # No Plex answers on this port, and no Docker engine: neither can be checked.
    text = (
        config.read_text()
        .replace('plex_url = "http://127.0.0.1:32400"', 'plex_url = "http://127.0.0.1:9"')
        .replace('docker_socket = "/var/run/docker.sock"', f'docker_socket = "{tmp_path}/no.sock"')
    )
    config.write_text(text)
    return config


def test_no_plex_at_all_has_no_score_and_says_what_was_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], socket_enabled: None
) -> None:
    config = _config(tmp_path, tmp_path / "no-plex-here")
    capsys.readouterr()
    assert main(["audit", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("security score: none, Plex could not be checked")
    assert "/100" not in out
    assert "not checked: plex_preferences:" in out and "does not exist" in out
    assert "not checked: plex_api:" in out
    assert "preferences_missing" not in out  # not a finding: an area that was not checked


def test_every_finding_shows_its_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], socket_enabled: None) -> None:
    plex = tmp_path / "Plex Media Server"
    (plex / "Logs").mkdir(parents=True)
    prefs = plex / "Preferences.xml"
    prefs.write_text('<Preferences allowedNetworks="0.0.0.0/0" secureConnections="0"/>\n')
    prefs.chmod(0o644)
    config = _config(tmp_path, plex)
    capsys.readouterr()
    assert main(["audit", "--config", str(config), "--fix-script", str(tmp_path / "fix.sh")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("security score ") and "/100" in lines[0]
    findings = [
        i
        for i, line in enumerate(lines)
        if line[:1].isalpha() and not line.startswith(("security", "not checked", "remediation"))
    ]
    assert len(findings) >= 3
    for i in findings:
        assert lines[i + 2].startswith("         fix: "), lines[i : i + 3]
    world = next(i for i in findings if "preferences_world_readable" in lines[i])
    assert "Make it readable by the Plex user only." in lines[world + 2]
    assert f"a command for it is in {tmp_path / 'fix.sh'}" in lines[world + 2]
