"""A real fail2ban-server with the shipped jail and filter, inside a lab namespace (tests and bench)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from plex_security_helper.cli import main as helper_main
from tests.system.netlab import Lab

JAIL = "plex-security"


@dataclass
class Fail2ban:
    """A fail2ban-server running inside the lab's Plex namespace."""

    lab: Lab
    socket: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def client(self, *args: str) -> str:
        return subprocess.run(
            ["fail2ban-client", "-s", str(self.socket), *args], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def banned(self) -> list[str]:
        for line in self.client("status", JAIL).splitlines():
            if "Banned IP list:" in line:
                return line.split("Banned IP list:", 1)[1].split()
        return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def fail2ban_missing() -> str | None:
    """Why fail2ban cannot run here, or None."""
    if shutil.which("fail2ban-server") is None or not Path("/etc/fail2ban/action.d").is_dir():
        return "scripts/test installs fail2ban"
    return None


def start_fail2ban(lab: Lab, tmp_path: Path, backend: str | None = None) -> Fail2ban:
    """Start fail2ban in the lab's Plex namespace; *backend* overrides the shipped jail's."""
    conf = tmp_path / "fail2ban"
    # The distribution's own configuration, without its enabled jails (sshd on Debian).
    shutil.copytree("/etc/fail2ban", conf)
    for extra in ("jail.d", "fail2ban.d"):
        shutil.rmtree(conf / extra, ignore_errors=True)
        (conf / extra).mkdir()
    run = tmp_path / "run"
    run.mkdir()
    # A path with spaces, like the real Plex log folder.
    log = tmp_path / "Plex Media Server" / "Logs" / "Plex Media Server.log"
    log.parent.mkdir(parents=True)
    log.touch()
    assert helper_main(["fail2ban-config", "--write", str(conf), "--log-path", str(log)]) == 0
    (conf / "fail2ban.local").write_text(
        f"[Definition]\nloglevel = INFO\nlogtarget = {run}/fail2ban.log\nsocket = {run}/f2b.sock\n"
        f"pidfile = {run}/f2b.pid\ndbfile = {run}/f2b.sqlite3\ndbpurgeage = 1d\n"
    )
    override = f"\n[{JAIL}]\nbackend = {backend}\n" if backend else ""
    (conf / "jail.local").write_text(
        "[DEFAULT]\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\n" + override
    )
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.plex,
            "fail2ban-server",
            "-f",
            "-x",
            "-c",
            str(conf),
            "-s",
            f"{run}/f2b.sock",
            "-p",
            f"{run}/f2b.pid",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(run / "server.stderr").open("wb"),
    )
    server = Fail2ban(lab, run / "f2b.sock", log, proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.client("ping")
            server.banned()  # the jail is up
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("fail2ban-server did not start: " + (run / "server.stderr").read_text()) from None
            time.sleep(0.2)
    return server
