"""A private Docker engine for the audit tests, and a busybox image made with ``docker import``.

The engine gets its own data root, exec root, pid file and socket under a temporary folder, no
bridge and no iptables, so it never meets another engine or the host's network. It is stopped
by its pid, and the test waits for it to exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

IMAGE = "plexsec/busybox:test"
APPLETS = ("sh", "sleep", "su", "id", "cat", "ps")


def can_run() -> str | None:
    """Why a Docker engine cannot be started here, or None."""
    if os.geteuid() != 0:
        return "needs root to start a Docker engine"
    for tool in ("dockerd", "docker", "busybox"):
        if shutil.which(tool) is None:
            return f"needs {tool} (scripts/test installs docker.io and busybox-static)"
    return None


@dataclass
class Engine:
    """A running dockerd and its socket."""

    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return str(self.root / "docker.sock")

    def docker(self, *args: str) -> str:
        done = subprocess.run(
            ["docker", "-H", f"unix://{self.socket}", *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, ["docker", *args[:3]], done.stdout, done.stderr)
        return done.stdout.strip()

    def run(self, name: str, *args: str, cmd: tuple[str, ...] = ("sleep", "3600"), start: bool = True) -> str:
        """Start (or only create) a container; return its id."""
        try:
            if not start:
                return self.docker("create", "--name", name, *args, IMAGE, *cmd)
            return self.docker("run", "-d", "--name", name, *args, IMAGE, *cmd)
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"docker run {name}: {err.stderr}") from None

    def stop(self) -> None:
        try:
            for cid in self.docker("ps", "-aq").split():
                self.docker("rm", "-f", cid)
        except subprocess.SubprocessError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # dockerd leaves its default network namespace bind-mounted under the exec root.
        prefix = str(self.root) + "/"
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def build_rootfs(root: Path) -> Path:
    """A tar of a tiny root filesystem: busybox-static, a few applets, root and an 'abc' user (911)."""
    fs = root / "rootfs"
    (fs / "bin").mkdir(parents=True)
    (fs / "etc").mkdir()
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", fs / "bin" / "busybox")
    for applet in APPLETS:
        (fs / "bin" / applet).symlink_to("busybox")
    (fs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nabc:x:911:911::/config:/bin/sh\n")
    (fs / "etc" / "group").write_text("root:x:0:\nabc:x:911:\n")
    tar = root / "rootfs.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(fs, arcname=".")
    return tar


def start_engine(root: Path) -> Engine:
    """Start dockerd under *root* and import the test image."""
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{root / 'docker.sock'}",
        ],
        stdout=log,
        stderr=log,
    )
    engine = Engine(root, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            engine.docker("info", "--format", "{{.ServerVersion}}")
            break
        except subprocess.SubprocessError:
            if proc.poll() is not None or time.monotonic() > deadline:
                engine.stop()
                raise RuntimeError("dockerd did not start: " + (root / "dockerd.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    engine.docker("import", str(build_rootfs(root)), IMAGE)
    return engine
