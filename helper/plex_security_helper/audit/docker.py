"""Docker containers against the CIS Docker Benchmark's runtime checks (section 5) and the seed's.

Ids follow CIS v1.6.0 (``docker.5.32.docker_sock``); references name the v1.3.1 id as well
(one lower). "Runs as root" looks at the *effective* users of the container's processes, so
images that start as root and drop to a user the way s6 does (linuxserver.io, plexinc) are not
flagged while ``PUID=0`` is. Environment secrets are reported by variable name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import stat
from pathlib import Path
from typing import Any

import aiodocker

from .findings import Finding, Severity
from .fixscript import guarded_chmod

TIMEOUT = 10.0
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
SECRET_NAME = re.compile(r"PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|CLAIM", re.IGNORECASE)
# Process supervisors that stay root by design while the workload runs as a user.
SUPERVISORS = frozenset(
    {"s6-svscan", "s6-supervise", "s6-linux-init", "s6-rc", "docker-init", "tini", "dumb-init", "catatonit", "init"}
)
ROOT_ENV = ("PUID", "PGID", "PLEX_UID", "PLEX_GID")


class DockerUnavailable(Exception):
    """No engine at the configured socket."""


def _cis(v16: str) -> tuple[str, ...]:
    major, minor = v16.split(".")
    return (f"CIS Docker Benchmark v1.6.0 {v16}", f"CIS Docker Benchmark v1.3.1 {major}.{int(minor) - 1}")


def _f(  # noqa: PLR0917 - a compact row per check
    cis: str,
    slug: str,
    severity: Severity,
    name: str,
    title: str,
    evidence: str,
    remediation: str,
    fix: tuple[str, ...] = (),
) -> Finding:
    return Finding(
        f"docker.{cis}.{slug}" if cis else f"docker.{slug}",
        severity,
        title,
        evidence,
        remediation,
        references=_cis(cis) if cis else (),
        subject=name,
        fix=fix,
    )


def _mount_sources(info: dict[str, Any]) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = info.get("Mounts") or []
    return [m for m in mounts if m.get("Type") == "bind" and m.get("Source")]


def config_findings(info: dict[str, Any]) -> list[Finding]:
    """Findings from ``docker inspect`` alone."""
    name = str(info.get("Name", "")).lstrip("/") or str(info.get("Id", ""))[:12]
    host: dict[str, Any] = info.get("HostConfig") or {}
    q = shlex.quote(name)
    out: list[Finding] = []
    if host.get("Privileged"):
        out.append(
            _f(
                "5.5",
                "privileged",
                Severity.CRITICAL,
                name,
                "Container runs privileged",
                "HostConfig.Privileged=true: all capabilities and all host devices",
                "Recreate it without --privileged; pass only the devices it needs (e.g. /dev/dri).",
            )
        )
    caps = [str(c) for c in host.get("CapAdd") or []]
    if caps:
        bad = any(c.upper().removeprefix("CAP_") in ("SYS_ADMIN", "ALL", "SYS_MODULE", "SYS_PTRACE") for c in caps)
        out.append(
            _f(
                "5.4",
                "cap_add",
                Severity.HIGH if bad else Severity.MEDIUM,
                name,
                "Container has added Linux capabilities",
                f"CapAdd: {', '.join(caps)}",
                "Recreate it without --cap-add unless a capability is really needed.",
            )
        )
    for mount in _mount_sources(info):
        source = str(mount["Source"]).rstrip("/") or "/"
        if source in DOCKER_SOCKETS or Path(source).name == "docker.sock":
            out.append(
                _f(
                    "5.32",
                    "docker_sock",
                    Severity.CRITICAL,
                    name,
                    "The Docker socket is mounted",
                    f"{source} → {mount.get('Destination')}: the container controls the engine, i.e. the host",
                    "Recreate it without the docker.sock mount (use a socket proxy with read-only rules if"
                    " a tool really needs it).",
                )
            )
        elif source in SENSITIVE_DIRS:  # the folders themselves, as docker-bench checks
            out.append(
                _f(
                    "5.6",
                    "sensitive_mount",
                    Severity.HIGH,
                    name,
                    "A sensitive host folder is mounted",
                    f"{source} → {mount.get('Destination')} ({'rw' if mount.get('RW') else 'ro'})",
                    "Mount only the media and config folders the container needs.",
                )
            )
        if mount.get("Propagation") in ("shared", "rshared"):
            out.append(
                _f(
                    "5.20",
                    "shared_propagation",
                    Severity.MEDIUM,
                    name,
                    "A mount propagates to the host",
                    f"{source}: propagation {mount.get('Propagation')}",
                    "Use private propagation.",
                )
            )
    if host.get("NetworkMode") == "host":
        out.append(
            _f(
                "5.10",
                "host_network",
                Severity.MEDIUM,
                name,
                "Container uses the host's network",
                "NetworkMode=host: every port it opens (DLNA, GDM, companion) is opened on the host",
                "Publish only 32400 (-p 32400:32400), or accept this deviation if you need discovery.",
            )
        )
    for key, cis, slug, sev in (
        ("PidMode", "5.16", "host_pid", Severity.HIGH),
        ("IpcMode", "5.17", "host_ipc", Severity.MEDIUM),
        ("UTSMode", "5.21", "host_uts", Severity.MEDIUM),
        ("UsernsMode", "5.31", "host_userns", Severity.LOW),
    ):
        if host.get(key) == "host":
            out.append(
                _f(
                    cis,
                    slug,
                    sev,
                    name,
                    f"Container shares the host's {key[:-4]} namespace",
                    f"{key}=host",
                    f"Recreate it without --{key[:-4].lower()}=host.",
                )
            )
    opts = [str(o) for o in host.get("SecurityOpt") or []]
    if any(o.replace(":", "=") == "seccomp=unconfined" for o in opts):
        out.append(
            _f(
                "5.22",
                "seccomp_unconfined",
                Severity.HIGH,
                name,
                "Seccomp is off",
                "SecurityOpt seccomp=unconfined",
                "Remove --security-opt seccomp=unconfined.",
            )
        )
    if any(o.replace(":", "=") == "apparmor=unconfined" for o in opts) or info.get("AppArmorProfile") == "unconfined":
        out.append(
            _f(
                "5.2",
                "apparmor_unconfined",
                Severity.MEDIUM,
                name,
                "AppArmor is off",
                "apparmor=unconfined",
                "Remove --security-opt apparmor=unconfined.",
            )
        )
    if not any(o.replace(":", "=") in ("no-new-privileges", "no-new-privileges=true") for o in opts):
        out.append(
            _f(
                "5.26",
                "no_new_privileges",
                Severity.LOW,
                name,
                "Processes may gain privileges",
                "no-new-privileges is not set",
                "Recreate it with --security-opt no-new-privileges (s6-based images support it).",
            )
        )
    if not host.get("ReadonlyRootfs"):
        out.append(
            _f(
                "5.13",
                "writable_rootfs",
                Severity.INFO,
                name,
                "The root filesystem is writable",
                "ReadonlyRootfs=false",
                "Informational: Plex images need a writable root filesystem.",
            )
        )
    if not host.get("Memory"):
        out.append(
            _f(
                "5.11",
                "no_memory_limit",
                Severity.LOW,
                name,
                "No memory limit",
                "HostConfig.Memory=0",
                "Limit memory so a runaway transcode cannot starve the host.",
                fix=(f"docker update --memory 4g --memory-swap 4g {q}",),
            )
        )
    pids = host.get("PidsLimit")
    if not pids or pids < 0:
        out.append(
            _f(
                "5.29",
                "no_pids_limit",
                Severity.LOW,
                name,
                "No PIDs limit",
                f"PidsLimit={pids}",
                "Limit the number of processes.",
                fix=(f"docker update --pids-limit 2048 {q}",),
            )
        )
    devices = [str(d.get("PathOnHost")) for d in host.get("Devices") or []]
    if devices:
        out.append(
            _f(
                "5.18",
                "host_devices",
                Severity.LOW,
                name,
                "Host devices are passed in",
                f"Devices: {', '.join(devices)}",
                "Expected for hardware transcoding (/dev/dri); accept the deviation if so.",
            )
        )
    wide = []
    for port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or []:
            if binding.get("HostIp", "") in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
                wide.append(f"{binding.get('HostPort')}->{port}")
    if wide:
        out.append(
            _f(
                "5.14",
                "ports_all_interfaces",
                Severity.LOW,
                name,
                "Ports are published on every interface",
                f"{', '.join(sorted(wide))} on 0.0.0.0",
                "Bind side ports to the LAN address (-p 192.168.1.5:32469:32469); 32400 needs to be reachable.",
            )
        )
    env = [str(e) for e in (info.get("Config") or {}).get("Env") or []]
    secrets = sorted(
        {e.split("=", 1)[0] for e in env if "=" in e and e.split("=", 1)[1] and SECRET_NAME.search(e.split("=", 1)[0])}
    )
    if secrets:
        out.append(
            _f(
                "",
                "env_secrets",
                Severity.MEDIUM,
                name,
                "Secrets in environment variables",
                f"variables {', '.join(secrets)} hold values (names only shown); `docker inspect` reveals them",
                "Move them to Docker secrets or a file mounted read-only.",
            )
        )
    root_env = sorted(e.split("=", 1)[0] for e in env if e.split("=", 1)[0] in ROOT_ENV and e.split("=", 1)[-1] == "0")
    if root_env:
        out.append(
            _f(
                "",
                "puid_root",
                Severity.MEDIUM,
                name,
                "The image is told to run its workload as root",
                f"{', '.join(f'{v}=0' for v in root_env)}",
                "Use the id of an unprivileged user (e.g. PUID=1000).",
            )
        )
    out += _mount_mode_findings(name, info)
    return out


def _mount_mode_findings(name: str, info: dict[str, Any]) -> list[Finding]:
    """The seed's checks on bind-mount sources: world-writable, or root-owned and written to."""
    out: list[Finding] = []
    for mount in _mount_sources(info):
        source = Path(str(mount["Source"]))
        if str(source) in DOCKER_SOCKETS or source.name == "docker.sock":
            continue
        try:
            st = source.stat()
        except OSError:
            continue
        if st.st_mode & stat.S_IWOTH and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            out.append(
                _f(
                    "",
                    "mount_world_writable",
                    Severity.MEDIUM,
                    name,
                    "A mounted folder is world-writable",
                    f"{source} has mode {stat.S_IMODE(st.st_mode):04o}: any local user can plant files the"
                    " container reads",
                    "Remove write access for others.",
                    fix=guarded_chmod("o-w", source),
                )
            )
        elif mount.get("RW") and st.st_uid == 0 and str(source) not in SENSITIVE_DIRS:
            out.append(
                _f(
                    "",
                    "mount_root_owned",
                    Severity.LOW,
                    name,
                    "The container writes into a root-owned folder",
                    f"{source} is owned by root and mounted read-write",
                    "Give the folder to the container's user (PUID/PGID) instead of running as root.",
                )
            )
    return out


def process_findings(name: str, top: dict[str, Any]) -> list[Finding]:
    """Effective users of the container's processes (``GET /containers/{id}/top``)."""
    titles = [str(t).upper() for t in top.get("Titles") or []]
    try:
        uid_col = titles.index("EUID")
        cmd_col = titles.index("COMMAND")
    except ValueError:
        return []
    rooted = []
    for row in top.get("Processes") or []:
        if len(row) <= max(uid_col, cmd_col):
            continue
        command = Path(str(row[cmd_col]).split()[0] if str(row[cmd_col]).split() else "").name
        if str(row[uid_col]).strip() == "0" and command not in SUPERVISORS:
            rooted.append(command or "?")
    if not rooted:
        return []
    return [
        _f(
            "",
            "runs_as_root",
            Severity.MEDIUM,
            name,
            "The container's workload runs as root",
            f"processes with effective uid 0: {', '.join(sorted(set(rooted))[:8])}",
            "Run it as an unprivileged user (--user, or PUID/PGID for linuxserver.io images).",
        )
    ]


def judge(containers: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[Finding]:
    """Findings for (inspect, top) pairs. Blocking (it stats mount sources): run it in a thread."""
    found: list[Finding] = []
    for info, top in containers:
        found += config_findings(info)
        if top is not None:
            found += process_findings(str(info.get("Name", "")).lstrip("/"), top)
    return found


async def audit_docker(socket: str) -> list[Finding]:
    """Inspect every running container. Raises DockerUnavailable when there is no engine."""
    if not await asyncio.to_thread(Path(socket).exists):
        raise DockerUnavailable(f"no Docker engine socket at {socket}")
    collected: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    try:
        async with asyncio.timeout(TIMEOUT * 3):
            docker = aiodocker.Docker(url=f"unix://{socket}")
            try:
                # Stopped containers too: a restart policy or the next boot starts them again.
                for container in await docker.containers.list(all=True):
                    info = await container.show()
                    top: dict[str, Any] | None = None
                    if (info.get("State") or {}).get("Running"):
                        with contextlib.suppress(aiodocker.DockerError):  # stopped between show and top
                            top = await container.top(ps_args="-eo pid,euid,comm")
                    collected.append((info, top))
            finally:
                await docker.close()
    except (aiodocker.DockerError, OSError, TimeoutError, ValueError) as err:
        raise DockerUnavailable(f"Docker engine at {socket}: {type(err).__name__}: {err}"[:200]) from None
    return await asyncio.to_thread(judge, collected)
