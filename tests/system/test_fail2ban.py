"""The real fail2ban with the jail and filter we ship, and the helper's fail2ban backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helperproc import HelperProcess
from tests.plexlines import failed_login
from tests.system.f2b import JAIL, Fail2ban, fail2ban_missing, start_fail2ban
from tests.system.netlab import Lab, wan_v4


@pytest.fixture
def fail2ban(lab: Lab, tmp_path: Path) -> Iterator[Fail2ban]:
    reason = fail2ban_missing()
    if reason:
        pytest.skip(reason)
    server = start_fail2ban(lab, tmp_path)
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
