"""The README's install, run as written in Debian 12, Debian 13 and Ubuntu 24.04 root filesystems.

Each release's own python3 runs it (Debian's 3.11 and 3.13, Ubuntu's 3.12).

scripts/test builds each root filesystem once with debootstrap (scripts/lib/env.sh, ensure_rootfs);
each run mounts an overlay on it, so the cache stays clean. The README's lines run in a chroot;
the helper then starts the way its systemd unit starts it (the unit's user, groups, capabilities,
umask and descriptor limit, read from the installed unit) in a network namespace of its own, and
the README's last line, ``plex-security-helper status``, has to answer with the config's token.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
ROOTFS_CACHE = Path(os.environ.get("ROOTFS_CACHE", "/var/cache/plex-security-tests"))
# Each release scripts/lib/env.sh builds (ROOTFS_RELEASES), with the python3 it ships.
RELEASES = {"debian12": (3, 11), "debian13": (3, 13), "ubuntu2404": (3, 12)}
SRC = "/usr/src/plex_security"  # where the repository copy sits inside the root filesystem
PLEX_DIR = "/var/lib/plexmediaserver/Library/Application Support/Plex Media Server"
UNIT = "/etc/systemd/system/plex-security-helper.service"
CONFIG = "/etc/plex-security/helper.toml"
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "PIP_CERT": "/etc/ssl/certs/host-ca.crt",  # the host's bundle: whatever PyPI's path trusts here
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "180",
}
START_TIMEOUT = 60.0


def readme_install_lines() -> list[str]:
    """The command lines of the README's install block (between its markers)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- install:", 1)[1].split("<!-- /install -->", 1)[0]
    body = block.split("```", 2)[1]
    return [line.strip() for line in body.splitlines() if line.strip()]


@dataclass
class Rootfs:
    """An overlay on a cached Debian root filesystem, with /proc and /dev, and a namespace."""

    root: Path
    netns: str
    release: str

    def chroot(self, command: str, *, netns: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["chroot", str(self.root), "/bin/sh", "-c", f"cd {SRC} && {command}"]
        if netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        done = subprocess.run(argv, env=CHROOT_ENV, capture_output=True, text=True, check=False, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"{command!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def _copy_repository(target: Path) -> None:
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache")
    target.mkdir(parents=True)
    shutil.copytree(REPO / "helper", target / "helper", ignore=ignore)
    shutil.copy2(REPO / "README.md", target / "README.md")


@pytest.fixture
def rootfs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rootfs]:
    """The release the test names by indirect parametrisation (Debian 12 when it names none)."""
    release = getattr(request, "param", "debian12")
    lower = ROOTFS_CACHE / release
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot, mounts, network namespaces)")
    if not (lower / ".stamp").is_file():
        pytest.skip(f"no {release} root filesystem at {lower} (scripts/test builds it with debootstrap)")
    for tool in ("ip", "nft", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    upper, work, root = tmp_path / "upper", tmp_path / "work", tmp_path / "root"
    for folder in (upper, work, root):
        folder.mkdir()
    mounted: list[Path] = []
    netns = f"pxsi{os.getpid() % 100000}"
    try:
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(root)], check=True)
        mounted.append(root)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        mounted.append(root / "proc")
        subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True)
        mounted.append(root / "dev")
        shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf", follow_symlinks=True)
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/host-ca.crt")
        _copy_repository(root / SRC.lstrip("/"))
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
        yield Rootfs(root, netns, release)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        for point in reversed(mounted):
            subprocess.run(["umount", "-l", str(point)], check=False)


def _plex_is_installed(fs: Rootfs) -> None:
    """What Plex's own package leaves behind: the plex user and group, its folder, a log."""
    fs.chroot("groupadd --system plex && useradd --system --gid plex --no-create-home plex")
    logs = fs.path(PLEX_DIR) / "Logs"
    logs.mkdir(parents=True)
    (logs / "Plex Media Server.log").write_text("")
    (fs.path(PLEX_DIR) / "Preferences.xml").write_text('<?xml version="1.0"?>\n<Preferences logDebug="1"/>\n')
    fs.chroot(f"chown -R plex:plex /var/lib/plexmediaserver && chmod -R g+rX,o-rwx '{PLEX_DIR}'")
    os.chmod(fs.path(PLEX_DIR) / "Preferences.xml", 0o600)


def _unit(fs: Rootfs) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in fs.path(UNIT).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), value.strip())
    return found


def _start_like_the_unit(fs: Rootfs) -> subprocess.Popen[bytes]:
    """``serve`` as systemd would start it: the unit's user, groups, capabilities, umask, limit."""
    unit = _unit(fs)
    caps = ",".join(f"+{c.removeprefix('CAP_').lower()}" for c in unit["AmbientCapabilities"].split())
    bounding = ",".join(f"+{c.removeprefix('CAP_').lower()}" for c in unit["CapabilityBoundingSet"].split())
    state = f"/var/lib/{unit['StateDirectory']}"
    fs.chroot(f"install -d -o {unit['User']} -g {unit['Group']} -m {unit['StateDirectoryMode']} {state}")
    assert unit["NoNewPrivileges"] == "yes"
    setpriv = (
        f"setpriv --reuid={unit['User']} --regid={unit['Group']} --groups={unit['SupplementaryGroups']}"
        f" --inh-caps=-all,{caps} --ambient-caps=-all,{caps} --bounding-set=-all,{bounding} --no-new-privs"
    )
    limit = unit["LimitNOFILE"]
    command = f"umask {unit['UMask']} && exec prlimit --nofile={limit}:{limit} {setpriv} {unit['ExecStart']}"
    log = (fs.root.parent / "serve.log").open("wb")
    return subprocess.Popen(
        ["ip", "netns", "exec", fs.netns, "chroot", str(fs.root), "/bin/sh", "-c", command],
        env=CHROOT_ENV,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _status_when_up(fs: Rootfs, proc: subprocess.Popen[bytes], command: str) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        done = fs.chroot(command, netns=True, check=False)
        if done.returncode == 0:
            return done.stdout
        log = (fs.root.parent / "serve.log").read_text(errors="replace")
        assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{log}"
        assert done.returncode == 3, done.stderr  # 3: not answering yet; anything else is a failure
        assert time.monotonic() < deadline, f"no answer within {START_TIMEOUT} s:\n{done.stderr}\n{log}"
        time.sleep(0.5)


def _helper_process(fs: Rootfs) -> int:
    """The pid of the running helper (the Python under setpriv) in the host's view."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            any(part.endswith(b"/opt/plex-security/bin/plex-security-helper") for part in cmdline)
            and b"serve" in cmdline
        ) and os.readlink(entry / "root") == str(fs.root):
            return int(entry.name)
    raise AssertionError("no helper process found")


@pytest.mark.parametrize("rootfs", list(RELEASES), indirect=True)
def test_the_readme_install_on_each_release(rootfs: Rootfs) -> None:
    fs = rootfs
    python = fs.chroot("python3 -c 'import sys; print(sys.version_info[:2])'").stdout.strip()
    assert python == str(RELEASES[fs.release])  # the release's own python3, not one the test brought
    _plex_is_installed(fs)
    lines = readme_install_lines()
    assert lines[-2].startswith("sudo systemctl") and lines[-1] == "sudo plex-security-helper status"
    token_shown = ""
    for line in lines[:-2]:
        command = line.replace("sudo ", "").replace("--host 192.168.1.5", "--host 127.0.0.1")
        if command.startswith("apt-get install"):
            # Done when the root filesystem was built from the release's packages: check it is there.
            for package in command.split()[3:]:
                fs.chroot(f"dpkg-query -W -f='${{Status}}' {package} | grep -q 'install ok installed'")
            continue
        out = fs.chroot(command).stdout
        if "API token for Home Assistant:" in out:
            token_shown = out.split("API token for Home Assistant:", 1)[1].split()[0]
    # init: the config belongs to the service user (the unit runs as it), nobody else reads it.
    config = fs.path(CONFIG)
    st = config.stat()
    owner = fs.chroot("id -u plex-security").stdout.strip()
    assert (str(st.st_uid), stat.S_IMODE(st.st_mode)) == (owner, 0o600)
    assert token_shown and f'token = "{token_shown}"' in config.read_text()
    assert f'log_path = "{PLEX_DIR}/Logs/Plex Media Server.log"' in config.read_text()

    proc = _start_like_the_unit(fs)
    try:
        out = _status_when_up(fs, proc, lines[-1].replace("sudo ", ""))
        assert "following" in out and f"{PLEX_DIR}/Logs/Plex Media Server.log" in out, out
        assert token_shown not in out
        doc = json.loads(_status_when_up(fs, proc, "plex-security-helper status --json"))
        assert doc["monitor"]["following"] is True and doc["monitor"]["refused"] is None
        # Running as the unit says: its user, the plex group, CAP_NET_ADMIN and nothing else.
        pid = _helper_process(fs)
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        assert status["Uid"].split()[0] == owner
        plex_gid = fs.chroot("getent group plex | cut -d: -f3").stdout.strip()
        assert plex_gid in status["Groups"].split()
        assert int(status["CapEff"], 16) == 1 << 12  # CAP_NET_ADMIN only
        assert status["NoNewPrivs"].strip() == "1"
        database = fs.path("/var/lib/plex-security/plex-security.db")
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
    finally:
        _stop(proc)

    # Enforcing with only those capabilities: the unit's user loads the table and bans in the kernel.
    text = config.read_text()
    assert 'mode = "monitor"' in text
    config.write_text(text.replace('mode = "monitor"', 'mode = "enforce"', 1))
    proc = _start_like_the_unit(fs)
    try:
        _status_when_up(fs, proc, "plex-security-helper status")
        banned = fs.chroot("plex-security-helper ban 203.0.113.7 --duration 1h --reason install-test", netns=True)
        assert banned.stdout.startswith("banned 203.0.113.7 for "), banned.stdout
        # Listed by the release's own nft: an older one (the host's) may not read what a newer wrote.
        kernel = fs.chroot("nft -j list set inet plex_security ban4", netns=True).stdout
        assert "203.0.113.7" in kernel
        bans = fs.chroot("plex-security-helper bans", netns=True).stdout
        assert any(line.startswith("203.0.113.7 ") and " yes " in line for line in bans.splitlines()), bans
    finally:
        _stop(proc)


_UNNEEDED = ("usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/info/", "var/cache/")


def _slim(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave documentation and caches out of the image (the engine copies it per container)."""
    return None if any(info.name.startswith(p) for p in _UNNEEDED) else info


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_same_root_filesystem_as_a_container_with_host_networking(
    rootfs: Rootfs, tmp_path: Path, socket_enabled: None
) -> None:
    import tempfile
    import urllib.request

    from tests.system import dockerlab

    reason = dockerlab.can_run()
    if reason:
        pytest.skip(reason)
    fs = rootfs
    # The README's venv, installed with Debian's python3 into the root filesystem, becomes the image.
    fs.chroot("python3 -m venv /opt/plex-security && /opt/plex-security/bin/pip install --quiet ./helper")
    shutil.rmtree(fs.path(SRC))
    image_tar = tmp_path / "debian12-helper.tar"
    with tarfile.open(image_tar, "w") as archive:
        for entry in sorted(fs.root.iterdir()):
            if entry.name not in ("proc", "dev", "sys", "run", "tmp"):
                archive.add(entry, arcname=entry.name, filter=_slim)
        for empty in ("proc", "dev", "sys", "run", "tmp"):
            info = tarfile.TarInfo(empty)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if empty == "tmp" else 0o755
            archive.addfile(info)
    plex = tmp_path / "plex"
    (plex / "Logs").mkdir(parents=True)
    (plex / "Logs" / "Plex Media Server.log").write_text("")
    config = tmp_path / "config"
    config.mkdir()
    # A short folder for the engine: its sockets' paths must fit in 108 bytes.
    engine = dockerlab.start_engine(Path(tempfile.mkdtemp(prefix="pxd", dir="/tmp")))
    try:
        image = "plexsec/debian12-helper:test"
        engine.docker(
            "import",
            "--change",
            'ENTRYPOINT ["/opt/plex-security/bin/plex-security-helper"]',
            str(image_tar),
            image,
        )
        image_tar.unlink()
        volumes = ["-v", f"{config}:/config", "-v", f"{plex}:/plex:ro"]
        # deploy/compose.yaml's first run: init inside the container.
        out = engine.docker(
            "run", "--rm", *volumes, image, "init", "--config", "/config/helper.toml",
            "--log-path", "/plex/Logs/Plex Media Server.log", "--host", "127.0.0.1",
        )  # fmt: skip
        token = out.split("API token for Home Assistant:", 1)[1].split()[0]
        port = _free_port()  # host networking: keep clear of whatever else listens on this host
        text = (config / "helper.toml").read_text()
        (config / "helper.toml").write_text(text.replace("port = 8788", f"port = {port}", 1))
        # deploy/compose.yaml's service: host network, only NET_ADMIN, no new privileges, read-only.
        engine.docker(
            "run", "-d", "--name", "helper", "--network", "host", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN",
            "--security-opt", "no-new-privileges:true", "--read-only", *volumes,
            image, "serve", "--config", "/config/helper.toml",
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/status")
        req.add_header("Authorization", f"Bearer {token}")
        while True:
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    status = json.loads(resp.read())
                break
            except OSError:
                assert time.monotonic() < deadline, engine.docker("logs", "helper")
                time.sleep(0.5)
        assert status["monitor"]["following"] is True
        assert status["monitor"]["log_path"] == "/plex/Logs/Plex Media Server.log"
        # The container runs as root with umask 022: its state is still for its eyes only.
        for name in ("helper.toml", "plex-security.db"):
            assert stat.S_IMODE((config / name).stat().st_mode) == 0o600, name
    finally:
        engine.stop()
