"""Monitor ⇄ enforce at run time with real nftables in a namespace, kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from plex_security_helper.firewall.nft import NftFirewall
from tests.helperproc import HelperProcess
from tests.system.netlab import Lab, wan_v4

pytestmark = pytest.mark.system


def test_switch_to_enforce_loads_the_table_with_recorded_bans_and_back(
    lab: Lab, tmp_path: Path, socket_enabled: None
) -> None:
    helper = HelperProcess(
        tmp_path / "helper", extra_config=f'[firewall]\nbackend = "nft"\nmode = "monitor"\nnetns = "{lab.plex}"\n'
    )
    kernel = NftFirewall(netns=lab.plex)
    helper.start()
    try:
        attacker = wan_v4(10)
        code, ban = helper.call("POST", "/api/v1/bans", {"ip": attacker, "duration": 600})
        assert (code, ban["enforced"]) == (201, False)
        assert not kernel.loaded()

        code, changed = helper.call("PUT", "/api/v1/firewall", {"mode": "enforce", "origin": "home_assistant"})
        assert (code, changed["enforcing"], changed["error"]) == (200, True, None), changed
        assert kernel.loaded()
        assert attacker in kernel.banned()  # the ban recorded in monitor mode is now enforced
        assert helper.get("/api/v1/status")["firewall"]["active"] is True

        helper.stop()
        helper.start()
        assert helper.get("/api/v1/firewall")["enforcing"] is True
        assert attacker in kernel.banned()

        code, changed = helper.call("PUT", "/api/v1/firewall", {"mode": "monitor"})
        assert (code, changed["enforcing"]) == (200, False)
        assert not kernel.loaded()  # monitor mode drops nothing
        status = helper.get("/api/v1/status")["firewall"]
        assert (status["mode"], status["enforcing"]) == ("monitor", False)
    finally:
        helper.stop()
