"""The real fail2ban with the jail and filter we ship, and the helper's fail2ban backend."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plex_security_helper.cli import main as helper_main
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login
from tests.system.netlab import Lab, wan_v4

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


@pytest.fixture
def fail2ban(lab: Lab, tmp_path: Path) -> Iterator[Fail2ban]:
    if shutil.which("fail2ban-server") is None or not Path("/etc/fail2ban/action.d").is_dir():
        pytest.skip("scripts/test installs fail2ban")
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
    (conf / "jail.local").write_text(
        "[DEFAULT]\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\n"
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
    yield server
    server.stop()


def test_six_failed_logins_in_plex_format_get_the_client_banned_by_fail2ban(lab: Lab, fail2ban: Fail2ban) -> None:
    lab.serve(lab.plex)
    attacker, user = wan_v4(10), wan_v4(11)
    with fail2ban.log.open("a") as handle:
        for port in range(41000, 41006):
            handle.write("\n".join(failed_login(attacker, port=port)) + "\n")
        # A real user's Plexamp asking for levels without a token: benign, never counted.
        for port in range(42000, 42010):
            handle.write(
                "\n".join(failed_login(user, port=port)).replace("/library/sections", "/library/streams/7/levels")
                + "\n"
            )
    deadline = time.monotonic() + 20
    while attacker not in fail2ban.banned():
        assert time.monotonic() < deadline, "fail2ban did not ban within 20 s"
        time.sleep(0.2)
    # fail2ban's nftables action rejects (ours drops): either way nothing gets through.
    assert lab.connect(attacker, 1) == ["refused"]
    assert lab.connect(user, 1) == ["ok"]
    assert fail2ban.banned() == [attacker]


def test_helper_bans_and_unbans_through_fail2ban_and_reports_a_stopped_server(
    lab: Lab, fail2ban: Fail2ban, tmp_path: Path, socket_enabled: None
) -> None:
    lab.serve(lab.plex)
    helper = HelperProcess(
        tmp_path / "helper",
        extra_config=f'[firewall]\nbackend = "fail2ban"\nmode = "enforce"\nfail2ban_socket = "{fail2ban.socket}"\n',
    )
    helper.start()
    try:
        target = wan_v4(12)
        code, ban = helper.call("POST", "/api/v1/bans", {"ip": target, "duration": 600})
        assert code == 201, ban
        assert ban["enforced"] is True
        assert fail2ban.banned() == [target]
        assert lab.connect(target, 1) == ["refused"]
        status = helper.get("/api/v1/status")["firewall"]
        assert status["fail2ban"] == {"jail": JAIL, "currently_banned": 1}

        code, refused = helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.0/24"})
        assert (code, refused["error"]) == (409, "unsupported")

        assert helper.call("DELETE", f"/api/v1/bans/{target}")[0] == 200
        assert fail2ban.banned() == []
        assert lab.connect(target, 1) == ["ok"]

        fail2ban.stop()
        code, failed = helper.call("POST", "/api/v1/bans", {"ip": wan_v4(13)})
        assert (code, failed["error"]) == (502, "backend_failed")
        status = helper.get("/api/v1/status")
        assert status["bans"]["pending"] == 1  # recorded, retried when fail2ban is back
        assert status["firewall"]["error"]
    finally:
        helper.stop()
