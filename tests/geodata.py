"""Small MaxMind DB files for tests: documentation ranges given countries and networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]

# The "internet" of the tests: each documentation range in its own country.
COUNTRIES = {"192.0.2.0/24": "DE", "198.51.100.0/24": "US", "203.0.113.0/24": "JP", "2001:db8::/32": "AU"}


def write_mmdb(path: Path, records: dict[str, dict[str, Any]], database_type: str = "GeoLite2-Country") -> Path:
    """An IPv6 database (IPv4 inside it, as MaxMind builds them) with *records* per network."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def country_mmdb(path: Path, countries: dict[str, str] = COUNTRIES) -> Path:
    """A country database in MaxMind's shape."""
    return write_mmdb(path, {net: {"country": {"iso_code": cc}} for net, cc in countries.items()})
