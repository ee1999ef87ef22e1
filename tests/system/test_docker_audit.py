"""The Docker audit against a real Docker engine started here, one container per finding."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plex_security_helper.audit.docker import DockerUnavailable, audit_docker
from plex_security_helper.audit.findings import Finding, Severity
from tests.conftest import unix_sockets_allowed
from tests.system.dockerlab import Engine, can_run, start_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    reason = can_run()
    if reason:
        pytest.skip(reason)
    eng = start_engine(tmp_path_factory.mktemp("dockerd"))
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def findings(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Finding]]:
    shared = tmp_path_factory.mktemp("mounts")
    open_dir = shared / "world writable"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    media = shared / "media"
    media.mkdir()
    os.chown(media, 911, 911)
    none = ("--network", "none")
    hardened = (*none, "--read-only", "--memory", "256m", "--pids-limit", "100", "--security-opt", "no-new-privileges")
    # This sandbox cannot grant every capability, so these two are created, not started: the
    # audit covers stopped containers too (a restart policy brings them back).
    engine.run("privileged", *none, "--privileged", start=False)
    engine.run("docker-sock", *none, "-v", f"{engine.socket}:/var/run/docker.sock")
    engine.run("etc-mount", *none, "-v", "/etc:/host-etc:ro")
    engine.run("world-writable", *none, "-v", f"{open_dir}:/data")
    engine.run("password-env", *none, "-e", "DB_PASSWORD=hunter2-secret", "-e", "TZ=Europe/Paris")
    engine.run("cap-sys-admin", *none, "--cap-add", "SYS_ADMIN", start=False)
    engine.run("host-network", "--network", "host")
    engine.run("plain-root", *none)
    engine.run(
        "puid-zero",
        *none,
        "-e",
        "PUID=0",
        "-e",
        "PGID=0",
        "--init",
        cmd=("su", "abc", "-s", "/bin/sh", "-c", "exec sleep 3600"),
    )
    # The s6 way: a root supervisor (docker-init here) and the workload as an unprivileged user.
    engine.run(
        "s6-style",
        *hardened,
        "--init",
        "-v",
        f"{media}:/media:ro",
        cmd=("su", "abc", "-s", "/bin/sh", "-c", "exec sleep 3600"),
    )
    engine.run("clean", *hardened, "--user", "911:911")
    with unix_sockets_allowed():
        result = asyncio.run(audit_docker(engine.socket))
    by_container: dict[str, list[Finding]] = {}
    for finding in result:
        by_container.setdefault(finding.subject, []).append(finding)
    return by_container


def _ids(findings: dict[str, list[Finding]], name: str) -> set[str]:
    return {f.id for f in findings.get(name, [])}


@pytest.mark.parametrize(
    ("container", "expected", "severity"),
    [
        ("privileged", "docker.5.5.privileged", Severity.CRITICAL),
        ("docker-sock", "docker.5.32.docker_sock", Severity.CRITICAL),
        ("etc-mount", "docker.5.6.sensitive_mount", Severity.HIGH),
        ("world-writable", "docker.mount_world_writable", Severity.MEDIUM),
        ("password-env", "docker.env_secrets", Severity.MEDIUM),
        ("cap-sys-admin", "docker.5.4.cap_add", Severity.HIGH),
        ("host-network", "docker.5.10.host_network", Severity.MEDIUM),
        ("plain-root", "docker.runs_as_root", Severity.MEDIUM),
        ("puid-zero", "docker.puid_root", Severity.MEDIUM),
    ],
)
def test_one_container_per_finding(
    findings: dict[str, list[Finding]], container: str, expected: str, severity: Severity
) -> None:
    hits = [f for f in findings.get(container, []) if f.id == expected]
    assert hits, f"{container}: {sorted(_ids(findings, container))}"
    assert hits[0].severity is severity
    assert hits[0].references or not expected.split(".")[1][0].isdigit()


def test_secrets_are_named_never_shown(findings: dict[str, list[Finding]]) -> None:
    env = next(f for f in findings["password-env"] if f.id == "docker.env_secrets")
    assert "DB_PASSWORD" in env.evidence
    assert "hunter2" not in str([f.as_json() for fs in findings.values() for f in fs])
    assert "TZ" not in env.evidence


def test_s6_style_privilege_drop_is_not_root_and_clean_container_has_nothing_above_info(
    findings: dict[str, list[Finding]],
) -> None:
    assert "docker.runs_as_root" not in _ids(findings, "s6-style")
    assert "docker.runs_as_root" in _ids(findings, "puid-zero") or "docker.puid_root" in _ids(findings, "puid-zero")
    assert [f.id for f in findings.get("clean", []) if f.severity is not Severity.INFO] == []
    assert [f.id for f in findings.get("s6-style", []) if f.severity is not Severity.INFO] == []
    # host network, privileged and the socket mount are not reported for the clean one either
    assert "docker.5.14.ports_all_interfaces" not in _ids(findings, "clean")


async def test_missing_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DockerUnavailable, match="no Docker engine socket"):
        await audit_docker(str(tmp_path / "docker.sock"))
    (tmp_path / "not-a-socket.sock").write_text("")
    with unix_sockets_allowed(), pytest.raises(DockerUnavailable, match="Docker engine at"):
        await audit_docker(str(tmp_path / "not-a-socket.sock"))


def test_init_finds_a_plex_container_and_its_config_folder(engine: Engine, tmp_path: Path) -> None:
    from plex_security_helper.layouts import IN_LIBRARY, docker_layouts

    config = tmp_path / "plex config"
    config.mkdir()
    engine.docker("tag", "plexsec/busybox:test", "plexinc/pms-docker:latest")
    engine.docker(
        "create", "--name", "pms", "--network", "none", "-v", f"{config}:/config", "plexinc/pms-docker:latest", "true"
    )
    with unix_sockets_allowed():
        found = asyncio.run(docker_layouts(engine.socket))
    assert [(lay.kind, lay.plex_dir) for lay in found] == [("docker:plexinc/pms-docker:latest", config / IN_LIBRARY)]
