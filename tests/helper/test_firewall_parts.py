"""Ban targets, policy, ban times, gateways and GeoIP files: the parts the firewall is built from."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plex_security_helper.firewall.geoip import GeoError, load_countries
from plex_security_helper.firewall.policy import BanPolicy, BanRefused, BanTimes, default_gateways
from plex_security_helper.firewall.targets import InvalidTarget, parse_target


@pytest.mark.parametrize(
    ("text", "canonical", "single"),
    [
        ("203.0.113.7", "203.0.113.7", True),
        ("203.0.113.7/32", "203.0.113.7", True),
        ("203.0.113.0/24", "203.0.113.0/24", False),
        ("2001:DB8::1", "2001:db8::1", True),
        ("2001:db8:0:0::/64", "2001:db8::/64", False),
        ("::ffff:203.0.113.7", "203.0.113.7", True),
        ("::ffff:203.0.113.0/120", "203.0.113.0/24", False),
    ],
)
def test_targets_are_canonical(text: str, canonical: str, single: bool) -> None:
    target = parse_target(text)
    assert (target.text, target.single) == (canonical, single)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("203.0.113.7/24", "did you mean 203.0.113.0/24"),
        ("", "expected an IP address"),
        ("203.0.113.7\n", "not an IP address"),
        ("fe80::1%eth0", "not an IP address"),
        ("２０３.0.113.7", "not an IP address"),
        ("1" * 65, "expected an IP address"),
    ],
)
def test_invalid_targets_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        parse_target(text)


@given(st.text(max_size=80))
def test_parse_target_accepts_only_what_ipaddress_accepts(text: str) -> None:
    try:
        target = parse_target(text)
    except InvalidTarget:
        return
    # Whatever is accepted is a real network whose canonical text parses back to itself.
    assert parse_target(target.text) == target
    assert ipaddress.ip_network(target.text) == target.network


@given(st.ip_addresses(), st.integers(min_value=0, max_value=128))
def test_generated_networks_round_trip_or_name_the_right_network(addr: object, prefix: int) -> None:
    ip = ipaddress.ip_address(str(addr))
    prefix = min(prefix, ip.max_prefixlen)
    text = f"{ip}/{prefix}"
    try:
        target = parse_target(text)
    except InvalidTarget as err:
        assert "did you mean" in str(err)
        return
    assert target.network.num_addresses >= 1


def test_policy_order_and_force() -> None:
    policy = BanPolicy(["192.168.0.0/16", "fc00::/7"], ["198.51.100.5"], BanTimes())
    policy.check(parse_target("203.0.113.7"))
    policy.check(parse_target("192.168.1.9"), force=True)
    policy.check(parse_target("10.0.0.0/8"), force=True)  # not in this allow-list; wide, forced
    cases = {
        "0.0.0.0/0": "too_broad",
        "127.0.0.2": "loopback",
        "198.51.100.0/29": "protected",
        "192.168.1.9": "allow_listed",
        "fd00::/64": "allow_listed",
    }
    for text, code in cases.items():
        with pytest.raises(BanRefused) as err:
            policy.check(parse_target(text))
        assert err.value.code == code, text
    with pytest.raises(BanRefused, match="loopback"):
        policy.check(parse_target("127.0.0.1"), force=True)
    assert policy.allowed(parse_target("192.168.3.4"))
    assert not policy.allowed(parse_target("203.0.113.4"))


def test_api_clients_become_protected_management_addresses() -> None:
    policy = BanPolicy([], [], BanTimes())
    for text in ("203.0.113.50", "::ffff:203.0.113.50", "not-an-address", "2001:db8::7"):
        policy.protect_address(text)
    assert [str(n) for n in policy.protect] == ["203.0.113.50/32", "2001:db8::7/128"]
    with pytest.raises(BanRefused) as err:
        policy.check(parse_target("203.0.113.0/24"))
    assert err.value.code == "protected"


def test_ban_times_grow_and_cap() -> None:
    times = BanTimes(base=3600, factor=2.0, maximum=86_400)
    assert [times.duration(n) for n in (1, 2, 3, 5, 6, 50)] == [3600, 7200, 14_400, 57_600, 86_400, 86_400]


def test_default_gateways_from_proc_route_files(tmp_path: Path) -> None:
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n"
        "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
    )
    route6 = tmp_path / "route6"
    route6.write_text(
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
    )
    assert default_gateways(route, route6) == ["192.168.1.1", "fe80::1"]
    assert default_gateways(tmp_path / "missing", tmp_path / "missing6") == []


def test_geoip_zone_folders_ipverse_and_dbip_csv(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "zz.zone").write_text("192.0.2.0/25\n192.0.2.128/25\n# comment\ngarbage\n")
    (zones / "yy").mkdir()
    (zones / "yy" / "ipv6-aggregated.txt").write_text("2001:db8::/32\n")
    nets = load_countries(zones, ["ZZ", "yy", "xx"])
    assert [str(n) for n in nets] == ["192.0.2.0/24", "2001:db8::/32"]  # collapsed

    csv = tmp_path / "dbip-country-lite.csv"
    csv.write_text(
        "198.51.100.0,198.51.100.255,ZZ\n203.0.113.0,203.0.113.9,AA\nbad,row,ZZ\n2001:db8::,2001:db8::ffff,ZZ\n"
    )
    assert [str(n) for n in load_countries(csv, ["zz"])] == ["198.51.100.0/24", "2001:db8::/112"]
    assert [str(n) for n in load_countries(csv, ["aa"])] == ["203.0.113.0/29", "203.0.113.8/31"]

    with pytest.raises(GeoError, match="does not exist"):
        load_countries(tmp_path / "nope", ["zz"])


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=20),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_ban_durations_are_whole_seconds_in_range_or_refused(value: object) -> None:
    import voluptuous as vol

    from plex_security_helper.api.bans import BAN_BODY
    from plex_security_helper.firewall.enforcer import MAX_DURATION, MIN_DURATION

    try:
        body = BAN_BODY({"ip": "203.0.113.7", "duration": value})
    except vol.Invalid:
        return
    assert type(body["duration"]) is int
    assert MIN_DURATION <= body["duration"] <= MAX_DURATION
