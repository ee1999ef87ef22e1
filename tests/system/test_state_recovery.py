"""A database lost to a broken disk while enforcing: the bans come back from the kernel's set."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plex_security_helper.firewall.nft import NftFirewall
from tests.helperproc import HelperProcess
from tests.system.netlab import Lab

pytestmark = pytest.mark.system


def test_bans_in_the_kernel_survive_a_database_that_is_lost(
    lab: Lab, enforcing_helper: Callable[..., HelperProcess]
) -> None:
    helper = enforcing_helper()
    for ip in ("203.0.113.70", "198.51.100.0/24"):
        code, body = helper.call("POST", "/api/v1/bans", {"ip": ip, "duration": 7200, "reason": "before the crash"})
        assert code == 201, body
    helper.stop()
    database = helper.root / "state.db"
    # Power lost on an SD card: the header survives, every page after it is garbage.
    data = bytearray(database.read_bytes())
    assert len(data) > 4096
    data[4096:] = bytes((i * 131 + 7) % 256 for i in range(len(data) - 4096))
    data[100:4096] = bytes(4096 - 100)  # the schema page too: nothing of the old file is readable
    database.write_bytes(bytes(data))
    assert set(NftFirewall(netns=lab.plex).banned()) >= {"203.0.113.70", "198.51.100.0/24"}
    helper.start()
    notice = helper.get("/api/v1/status")["monitor"]["database_notice"]
    assert "rebuilt with 2 bans" in notice, notice
    bans = {b["ip"]: (b["origin"], b["enforced"]) for b in helper.get("/api/v1/bans")["bans"]}
    assert bans == {"203.0.113.70": ("recovered", True), "198.51.100.0/24": ("recovered", True)}
    remaining = {b["ip"]: b["remaining_s"] for b in helper.get("/api/v1/bans")["bans"]}
    assert all(6000 < left <= 7200 for left in remaining.values()), remaining
    # Still in force in the kernel after the rebuilt database re-applied them.
    assert set(NftFirewall(netns=lab.plex).banned()) >= {"203.0.113.70", "198.51.100.0/24"}
