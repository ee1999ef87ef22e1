"""Offline geo data: the packaged table answers as the package does, the owner's .mmdb wins."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import iptocc
import pytest

from plex_security_helper.firewall.geoip import GeoError, load_countries
from plex_security_helper.model import Alert
from plex_security_helper.plex.geo import Geo, GeoDataError, mmdb_networks
from tests.geodata import country_mmdb, write_mmdb

# Well-known public resolvers: only looked up in the data, never contacted.
RESOLVERS = (
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2620:fe::fe",
)


def test_public_addresses_match_the_data_package() -> None:
    geo = Geo()
    answers = {ip: geo.country(ip) for ip in RESOLVERS}
    assert answers == {ip: iptocc.country_code(ip) for ip in RESOLVERS}
    assert all(cc is not None and len(cc) == 2 for cc in answers.values())
    assert geo.country("::ffff:8.8.8.8") == iptocc.country_code("8.8.8.8")  # mapped form, one answer


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.1.1", "127.0.0.1", "::1", "fe80::1", "192.0.2.1", "nonsense", ""])
def test_private_reserved_and_malformed_have_no_place(ip: str) -> None:
    assert Geo().lookup(ip).country is None


def test_the_owners_mmdb_gives_countries_networks_and_hosting(tmp_path: Path) -> None:
    countries = country_mmdb(tmp_path / "country.mmdb", {"192.0.2.0/24": "DE", "8.8.8.0/24": "CH"})
    asn = write_mmdb(
        tmp_path / "asn.mmdb",
        {
            "192.0.2.0/25": {"autonomous_system_number": 24940, "autonomous_system_organization": "Hetzner Online"},
            "192.0.2.128/25": {"autonomous_system_number": 64500, "autonomous_system_organization": "Home ISP"},
        },
        database_type="GeoLite2-ASN",
    )
    geo = Geo([countries, asn])
    hosted, home = geo.lookup("192.0.2.10"), geo.lookup("192.0.2.200")
    assert (hosted.country, hosted.asn, hosted.network_owner, hosted.hosting) == (
        "DE",
        24940,
        "Hetzner Online",
        "Hetzner",
    )
    assert (home.country, home.asn, home.hosting) == ("DE", 64500, None)
    assert geo.country("8.8.8.8") == "CH"  # the owner's file wins over the package
    assert geo.country("1.1.1.1") == iptocc.country_code("1.1.1.1")  # and the package fills the gaps
    status = geo.status()
    assert [f["type"] for f in status["mmdb"]] == ["GeoLite2-Country", "GeoLite2-ASN"]
    assert status["network_owner"] is True and status["package"].startswith("iptocc ")
    geo.close()


def test_ipinfo_lite_shape(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "ipinfo.mmdb",
        {"198.51.100.0/24": {"country_code": "fr", "asn": "AS16276", "as_name": "OVH SAS"}},
        database_type="ipinfo lite.mmdb",
    )
    place = Geo([path]).lookup("198.51.100.7")
    assert (place.country, place.asn, place.network_owner, place.hosting) == ("FR", 16276, "OVH SAS", "OVH")


def test_a_file_that_is_no_mmdb_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(GeoDataError):
        Geo([bad])
    with pytest.raises(GeoDataError):
        Geo([tmp_path / "missing.mmdb"])


def test_annotate_adds_the_country_once() -> None:
    geo = Geo()
    alert = Alert("probe", "8.8.8.8", time.time(), 0.0, 0.0, 1, 60, {"path": "/x"})
    annotated = geo.annotate(alert)
    assert annotated.detail == {"path": "/x", "country": iptocc.country_code("8.8.8.8")}
    kept = geo.annotate(Alert("new_country", "8.8.8.8", 0.0, 0.0, 0.0, 1, 30, {"country": "NZ"}))
    assert kept.detail["country"] == "NZ"


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    geo = Geo([country_mmdb(tmp_path / "c.mmdb")], cache_size=16)
    for n in range(100):
        assert geo.country(f"8.8.{n}.1") == iptocc.country_code(f"8.8.{n}.1")
    assert geo.country("8.8.99.1") == iptocc.country_code("8.8.99.1")  # a hit
    cache = geo.status()["cache"]
    assert (cache["size"], cache["max"], cache["misses"]) == (16, 16, 100)


def test_firewall_sets_from_an_mmdb(tmp_path: Path) -> None:
    path = country_mmdb(tmp_path / "c.mmdb")
    assert set(mmdb_networks(path, ["jp", "au"])) == {
        ipaddress.ip_network("203.0.113.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    }
    assert load_countries(path, ["de"]) == (ipaddress.ip_network("192.0.2.0/24"),)
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"x")
    with pytest.raises(GeoError):
        load_countries(bad, ["de"])


def test_firewall_sets_from_the_packaged_data() -> None:
    networks = load_countries(None, ["nz"])
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    assert len(v4) > 50 and len(v6) > 50
    # Every network's first and last address is New Zealand's in the package's own answers.
    sample = v4[:: max(1, len(v4) // 40)] + v6[:: max(1, len(v6) // 40)]
    for net in sample:
        assert iptocc.country_code(str(net.network_address)) == "NZ"
        assert iptocc.country_code(str(net.broadcast_address)) == "NZ"
    assert iptocc.country_code("8.8.8.8") != "NZ"
    assert not any(ipaddress.ip_address("8.8.8.8") in n for n in v4)
