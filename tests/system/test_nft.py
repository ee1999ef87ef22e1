"""The helper's nftables ruleset against real packets between network namespaces."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from plex_security_helper.firewall.geoip import load_countries
from plex_security_helper.firewall.nft import PROFILES, NftFirewall, Ruleset
from tests.geodata import country_mmdb
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login
from tests.system.netlab import PLEX_V4, PUBLISHED_PORT, Lab, wan_v4, wan_v6


def _kernel_bans(lab: Lab) -> dict[str, int | None]:
    return NftFirewall(netns=lab.plex).banned()


def _wait_kernel_ban(lab: Lab, target: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while target not in _kernel_bans(lab):
        if time.monotonic() > deadline:
            raise AssertionError(f"{target} not in the kernel ban sets within {timeout}s")
        time.sleep(0.02)


def test_strict_profile_drops_the_11th_new_connection_and_refuses_the_6th_concurrent(lab: Lab) -> None:
    NftFirewall(netns=lab.plex).apply(Ruleset(plex_port=32400, rates=PROFILES["strict"], allow=()))
    accepted = lab.serve(lab.plex)

    assert lab.connect(wan_v4(10), 11, "seq") == ["ok"] * 10 + ["timeout"]
    assert lab.counter("rate_limited") >= 1
    assert accepted.read_text().split().count(wan_v4(10)) == 10

    assert lab.connect(wan_v4(11), 6, "hold") == ["ok"] * 5 + ["refused"]
    assert lab.counter("too_many_connections") == 1

    assert lab.connect(wan_v6(12), 11, "seq") == ["ok"] * 10 + ["timeout"]


def test_default_profile_lets_a_browser_opening_a_library_page_through(lab: Lab) -> None:
    NftFirewall(netns=lab.plex).apply(Ruleset(plex_port=32400, rates=PROFILES["default"], allow=()))
    lab.serve(lab.plex)
    browser = wan_v4(10)
    # Six parallel connections per host, page after page of posters, then a TV without
    # keep-alive that reconnects for every request, all from one household address.
    for _ in range(10):
        assert lab.connect(browser, 6, "parallel") == ["ok"] * 6
    assert lab.connect(browser, 40, "seq") == ["ok"] * 40
    assert lab.connect(browser, 24, "hold") == ["ok"] * 24
    assert lab.counter("rate_limited") == 0
    assert lab.counter("too_many_connections") == 0


def test_bans_drop_every_packet_on_input_and_forward_and_unban_restores(
    lab: Lab, enforcing_helper: Callable[..., HelperProcess]
) -> None:
    helper = enforcing_helper()
    accepted = lab.serve(lab.plex)
    published = lab.serve(lab.ctr)
    attacker, bystander = wan_v4(10), wan_v4(13)

    code, ban = helper.call("POST", "/api/v1/bans", {"ip": attacker, "duration": 600, "reason": "test"})
    assert code == 201, ban
    assert ban["enforced"] is True
    assert 590 <= (_kernel_bans(lab)[attacker] or 0) <= 600

    # 30 parallel attempts, each retransmitting its SYN: far beyond the log rule's burst of 5.
    assert lab.connect(attacker, 30, "parallel", timeout=1.5) == ["timeout"] * 30
    assert lab.counter("banned") >= 30
    assert attacker not in accepted.read_text().split()

    # Docker-published port: DNAT to the container, then the forward hook.
    assert lab.connect(attacker, 1, host=PLEX_V4, port=PUBLISHED_PORT) == ["timeout"]
    assert lab.connect(bystander, 1, host=PLEX_V4, port=PUBLISHED_PORT) == ["ok"]
    assert published.read_text().split() == [bystander]

    status = helper.get("/api/v1/status")
    assert status["firewall"]["active"] is True
    assert status["firewall"]["counters"]["banned"]["packets"] >= 31

    assert helper.call("DELETE", f"/api/v1/bans/{attacker}")[0] == 200
    assert attacker not in _kernel_bans(lab)
    assert lab.connect(attacker, 1) == ["ok"]

    # Allow-listing a banned address lifts the ban in the kernel at once.
    assert helper.call("POST", "/api/v1/bans", {"ip": attacker})[0] == 201
    assert lab.connect(attacker, 1) == ["timeout"]
    assert helper.call("POST", "/api/v1/allow", {"ip": attacker, "reason": "a friend"})[0] == 201
    assert attacker not in _kernel_bans(lab)
    assert lab.connect(attacker, 1) == ["ok"]

    v6 = wan_v6(20)
    assert helper.call("POST", "/api/v1/bans", {"ip": v6})[0] == 201
    assert lab.connect(v6, 3, "parallel") == ["timeout"] * 3
    assert lab.connect(wan_v6(21), 1) == ["ok"]


def test_detector_bans_attackers_but_never_an_allow_listed_address(
    lab: Lab, enforcing_helper: Callable[..., HelperProcess]
) -> None:
    friend, attacker = wan_v4(3), wan_v4(11)
    helper = enforcing_helper(f'allow = ["{friend}/32", "192.168.0.0/16"]\n')
    lab.serve(lab.plex)
    for port in range(40000, 40006):
        helper.append(*failed_login(attacker, port=port), *failed_login(friend, port=port))

    _wait_kernel_ban(lab, attacker)
    alerts = helper.get("/api/v1/alerts")["alerts"]
    assert {a["ip"] for a in alerts if a["kind"] == "failed_login_burst"} == {attacker, friend}
    assert lab.connect(attacker, 1) == ["timeout"]
    assert lab.connect(friend, 1) == ["ok"]
    bans = helper.get("/api/v1/bans")["bans"]
    assert [(b["ip"], b["origin"], b["enforced"]) for b in bans] == [(attacker, "detector", True)]
    assert friend not in _kernel_bans(lab)


def test_geoip_block_list_applies_to_the_plex_port(lab: Lab, enforcing_helper: Callable[..., HelperProcess]) -> None:
    zones = lab.root / "zones"
    zones.mkdir()
    (zones / "zz.zone").write_text("# ipdeny style\n192.0.2.0/28\nnot-a-network\n")
    helper = enforcing_helper(f'geoip_mode = "block"\ngeoip_source = "{zones}"\ngeoip_countries = ["ZZ"]\n')
    lab.serve(lab.plex)
    assert lab.connect(wan_v4(10), 1) == ["timeout"]  # 192.0.2.10 is in the blocked /28
    assert lab.connect(wan_v4(20), 1) == ["ok"]
    assert lab.counter("geo_blocked") >= 1
    assert helper.get("/api/v1/status")["firewall"]["geoip"] == {"mode": "block", "networks": 1}


def test_geoip_block_list_from_an_mmdb(lab: Lab, enforcing_helper: Callable[..., HelperProcess]) -> None:
    mmdb = country_mmdb(lab.root / "countries.mmdb", {"192.0.2.0/28": "ZZ", "192.0.2.16/28": "YY"})
    helper = enforcing_helper(f'geoip_mode = "block"\ngeoip_source = "{mmdb}"\ngeoip_countries = ["ZZ"]\n')
    lab.serve(lab.plex)
    assert lab.connect(wan_v4(10), 1) == ["timeout"]  # ZZ
    assert lab.connect(wan_v4(20), 1) == ["ok"]  # YY
    assert helper.get("/api/v1/status")["firewall"]["geoip"] == {"mode": "block", "networks": 1}


def test_geoip_sets_from_the_packaged_data_without_a_file(
    lab: Lab, enforcing_helper: Callable[..., HelperProcess]
) -> None:
    helper = enforcing_helper('geoip_mode = "block"\ngeoip_countries = ["nz"]\n')
    expected = load_countries(None, ["nz"])
    lab.serve(lab.plex)
    assert helper.get("/api/v1/status")["firewall"]["geoip"] == {"mode": "block", "networks": len(expected)}
    assert len(expected) > 100
    assert lab.connect(wan_v4(10), 1) == ["ok"]  # not New Zealand


def test_a_restart_after_a_reboot_brings_1000_bans_back_with_their_remaining_time(
    lab: Lab, enforcing_helper: Callable[..., HelperProcess]
) -> None:
    helper = enforcing_helper()
    targets = [f"198.51.100.{i}" for i in range(250)] + [f"203.0.113.{i}" for i in range(250)]
    targets += [f"2001:db8:ffff::{i:x}" for i in range(1, 501)]

    def ban(ip: str) -> int:
        return helper.call("POST", "/api/v1/bans", {"ip": ip, "duration": 7200})[0]

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(ban, targets)) == {201}
    assert len(_kernel_bans(lab)) == 1000

    helper.stop()
    lab.sh(lab.plex, "nft", "delete", "table", "inet", "plex_security")  # what a reboot leaves
    time.sleep(1.1)
    helper.start()

    kernel = _kernel_bans(lab)
    assert set(kernel) == set(targets)
    assert all(7000 < (left or 0) < 7200 for left in kernel.values())
    assert len(helper.get("/api/v1/bans")["bans"]) == 1000


def test_geoip_allow_list_lets_only_listed_networks_and_the_allow_list_reach_plex(lab: Lab) -> None:
    geo = (ipaddress.ip_network("192.0.2.0/28"), ipaddress.ip_network("2001:db8:1::/120"))
    allow = (ipaddress.ip_network("192.0.2.20/32"),)
    rules = Ruleset(plex_port=32400, rates=PROFILES["off"], allow=allow, geo_mode="allow", geo=geo, log_drops=False)
    NftFirewall(netns=lab.plex).apply(rules)
    lab.serve(lab.plex)
    assert lab.connect(wan_v4(10), 1) == ["ok"]  # in a listed country
    assert lab.connect(wan_v4(20), 1) == ["ok"]  # not listed, but allow-listed
    assert lab.connect(wan_v4(30), 1) == ["timeout"]
    assert lab.connect(wan_v6(0x10), 1) == ["ok"]
    assert lab.connect(wan_v6(0x120), 1) == ["timeout"]
    assert lab.counter("geo_blocked") >= 2
