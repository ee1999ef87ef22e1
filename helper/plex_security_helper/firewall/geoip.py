"""Country networks for the GeoIP sets: the packaged geo data by default, or the owner's file.

Files: ipdeny/ipverse zone files, a db-ip lite CSV, or a country ``.mmdb`` (MaxMind, DB-IP,
IPinfo). Nothing is downloaded: the helper never reaches out to the internet on its own.
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..plex.geo import GeoDataError, mmdb_networks, packaged_networks
from .targets import Network

MAX_NETWORKS = 2_000_000


class GeoError(Exception):
    """The country file is missing or unreadable."""


def _zone_file(path: Path) -> Iterator[Network]:
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                yield ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue  # a stray line is skipped, not fatal


def _dbip_csv(path: Path, countries: set[str]) -> Iterator[Network]:
    with path.open(encoding="ascii", errors="replace", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 3 or row[2].strip().lower() not in countries:
                continue
            try:
                first, last = ipaddress.ip_address(row[0].strip()), ipaddress.ip_address(row[1].strip())
                yield from ipaddress.summarize_address_range(first, last)
            except (ValueError, TypeError):
                continue


def _zone_paths(source: Path, countries: Iterable[str]) -> Iterator[Path]:
    for cc in countries:
        for name in (f"{cc}.zone", f"{cc}-aggregated.zone", f"{cc.upper()}.zone"):
            candidate = source / name
            if candidate.is_file():
                yield candidate
                break
        for family in ("ipv4", "ipv6"):  # ipverse's country-ip-blocks layout
            candidate = source / cc / f"{family}-aggregated.txt"
            if candidate.is_file():
                yield candidate


def load_countries(source: Path | None, countries: Iterable[str]) -> tuple[Network, ...]:
    """The collapsed networks of *countries* (two-letter codes) in *source* (None: the packaged data)."""
    wanted = {c.lower() for c in countries}
    if source is None:
        return packaged_networks(tuple(sorted(wanted)))
    try:
        if source.suffix.lower() == ".mmdb":
            networks = list(mmdb_networks(source, wanted))
        elif source.is_dir():
            networks = [n for p in _zone_paths(source, sorted(wanted)) for n in _zone_file(p)]
        elif source.suffix.lower() == ".csv":
            networks = list(_dbip_csv(source, wanted))
        elif source.is_file():
            networks = list(_zone_file(source))
        else:
            raise GeoError(f"country file {source} does not exist")
    except OSError as err:
        raise GeoError(f"cannot read country file {source}: {err.strerror}") from None
    except GeoDataError as err:
        raise GeoError(str(err)) from None
    if len(networks) > MAX_NETWORKS:
        raise GeoError(f"country file {source} holds more than {MAX_NETWORKS} networks")
    v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    return (*v4, *v6)
