"""Packaging: a fresh venv install, the systemd unit, the container's command line, init's layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from plex_security_helper.layouts import _repository, local_layouts
from tests.helperproc import free_port

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "helper" / "plex_security_helper" / "data" / "systemd" / "plex-security-helper.service"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_install_from_the_source_folder_into_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT / "helper")], check=True, timeout=600)
    cli = venv / "bin" / "plex-security-helper"
    help_text = subprocess.run([str(cli), "--help"], check=True, capture_output=True, text=True).stdout
    for command in ("init", "serve", "scan", "audit", "fail2ban-config"):
        assert command in help_text
    config = tmp_path / "etc" / "helper.toml"
    out = subprocess.run(
        [
            str(cli),
            "init",
            "--config",
            str(config),
            "--log-path",
            "/var/log/plex.log",
            "--docker-socket",
            str(tmp_path / "none.sock"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "API token for Home Assistant: " in out
    assert config.stat().st_mode & 0o777 == 0o600
    # The package carries its data: the fail2ban files and the CVE table.
    shipped = subprocess.run([str(cli), "fail2ban-config"], check=True, capture_output=True, text=True).stdout
    assert "[plex-security]" in shipped and "failregex" in shipped
    cves = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from plex_security_helper.audit.versions import load_vulnerabilities as l; print(len(l()))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert int(cves) >= 10


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    # The unit names the README's venv, /opt/plex-security; point it at this installation.
    installed = shutil.which("plex-security-helper") or str(Path(sys.executable).parent / "plex-security-helper")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/plex-security/bin/plex-security-helper", installed))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = UNIT.read_text()
    for hardening in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
        "User=plex-security",
    ):
        assert hardening in text


def _instruction(name: str) -> list[str]:
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith(f"{name} "):
            value: list[str] = json.loads(line.removeprefix(f"{name} "))
            return value
    raise AssertionError(f"no {name} in the Dockerfile")


def test_the_container_command_line_runs(tmp_path: Path, socket_enabled: None) -> None:
    if shutil.which("hadolint"):
        subprocess.run(["hadolint", str(DOCKERFILE)], check=True)
    entrypoint, command = _instruction("ENTRYPOINT"), _instruction("CMD")
    assert command[:2] == ["serve", "--config"] and command[2].startswith("/config/")
    config_dir = tmp_path / "config"
    config = str(config_dir / Path(command[2]).name)
    exe = [shutil.which(entrypoint[0]) or str(Path(sys.executable).parent / entrypoint[0]), *entrypoint[1:]]
    subprocess.run(
        [
            *exe,
            "init",
            "--config",
            config,
            "--log-path",
            str(tmp_path / "Plex Media Server.log"),
            "--docker-socket",
            str(tmp_path / "none.sock"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    text = Path(config).read_text()
    Path(config).write_text(text.replace("port = 8788", f"port = {port}"))
    proc = subprocess.Popen([*exe, *[config if a == command[2] else a for a in command]], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as resp:
                    assert json.loads(resp.read())["status"] == "ok"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the container command did not serve"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_init_finds_native_snap_and_in_container_layouts(tmp_path: Path) -> None:
    assert local_layouts(tmp_path) == []
    native = tmp_path / "var/lib/plexmediaserver/Library/Application Support/Plex Media Server"
    (native / "Logs").mkdir(parents=True)
    inside = tmp_path / "config/Library/Application Support/Plex Media Server"
    inside.mkdir(parents=True)
    (inside / "Preferences.xml").write_text("<Preferences/>")
    found = local_layouts(tmp_path)
    assert [(lay.kind, lay.plex_dir) for lay in found] == [("native", native), ("container", inside)]
    assert found[0].log_path == native / "Logs" / "Plex Media Server.log"
    assert _repository("lscr.io/linuxserver/plex:latest") == "lscr.io/linuxserver/plex"
    assert _repository("registry.local:5000/plexinc/pms-docker") == "registry.local:5000/plexinc/pms-docker"
    assert _repository("plexinc/pms-docker@sha256:abc") == "plexinc/pms-docker"


def test_the_helper_parses_as_python_3_11() -> None:
    # The helper runs on the host's Python (Debian 12 has 3.11); ruff's py311 target checks the rest.
    import ast
    import tomllib

    helper = Path(__file__).resolve().parents[2] / "helper"
    meta = tomllib.loads((helper / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"] == ">=3.11"
    assert meta["tool"]["ruff"]["target-version"] == "py311"
    sources = sorted((helper / "plex_security_helper").rglob("*.py"))
    assert len(sources) > 30
    for source in sources:
        ast.parse(source.read_text(encoding="utf-8"), str(source), feature_version=(3, 11))
