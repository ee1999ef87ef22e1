"""Country (and, where the data allows, network owner) of an address, offline.

Default data: the ``iptocc`` package (MIT/Apache-2.0, rebuilt nightly from the five Regional
Internet Registries' delegation files, IPv4 and IPv6 in a Rust table inside the wheel, about
0.1 µs a lookup). It knows the country a block was *assigned* to, not who runs it, so network
owners (ASN) and hosting networks need a user-supplied MaxMind/DB-IP/IPinfo ``.mmdb``
(``[geo] mmdb``), read with ``maxminddb``; a country in the user's file wins over the package.

Nothing is downloaded, ever. Answers are cached (bounded LRU): the same few addresses recur.
"""

from __future__ import annotations

import functools
import importlib.metadata
import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import iptocc
import maxminddb

from ..model import Alert

_LOGGER = logging.getLogger(__name__)
CACHE_SIZE = 65_536
MAX_MMDB = 4
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GeoDataError(Exception):
    """A user-supplied database is missing or is not a MaxMind DB file."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where an address is registered and, if known, whose network it is."""

    country: str | None  # ISO 3166-1 alpha-2, upper case; None for private or unknown addresses
    asn: int | None = None
    network_owner: str | None = None
    hosting: str | None = None  # the operator, when the network is a known cloud/hosting one

    def as_json(self) -> dict[str, Any]:
        """The shape served in ``/ips``, sessions and alert details."""
        return {
            "country": self.country,
            "asn": self.asn,
            "network_owner": self.network_owner,
            "hosting": self.hosting,
        }


NOWHERE = Place(None)


def _hosting_asns() -> dict[int, str]:
    raw = json.loads(resources.files("plex_security_helper").joinpath("data/hosting_asns.json").read_text("utf-8"))
    return {int(asn): str(name) for asn, name in raw["asns"].items()}


def _package_built() -> float | None:
    """When the packaged data was built: the wheel's SBOM timestamp (the data is built with it)."""
    try:
        dist = importlib.metadata.distribution("iptocc")
        text = dist.read_text("sboms/iptocc-py.cyclonedx.json")
        stamp = json.loads(text)["metadata"]["timestamp"] if text else None
        return datetime.fromisoformat(str(stamp)[:19] + "+00:00").timestamp() if stamp else None
    except (importlib.metadata.PackageNotFoundError, ValueError, KeyError, TypeError):
        return None


def _mmdb_place(record: Any) -> tuple[str | None, int | None, str | None]:
    """(country, asn, owner) from a MaxMind/DB-IP record (nested) or an IPinfo lite one (flat)."""
    if not isinstance(record, dict):
        return None, None, None
    country: Any = None
    for key in ("country", "registered_country"):
        part = record.get(key)
        if isinstance(part, dict) and isinstance(part.get("iso_code"), str):
            country = part["iso_code"]
            break
    country = country or record.get("country_code")
    asn: Any = record.get("autonomous_system_number", record.get("asn"))
    if isinstance(asn, str) and asn.upper().startswith("AS") and asn[2:].isdigit():
        asn = int(asn[2:])
    owner = record.get("autonomous_system_organization", record.get("as_name"))
    return (
        country.upper()[:2] if isinstance(country, str) and len(country) == 2 else None,
        asn if isinstance(asn, int) and 0 < asn < 2**32 else None,
        owner[:200] if isinstance(owner, str) else None,
    )


def parse_address(text: str) -> Address | None:
    """The address in *text* (IPv4-mapped IPv6 as IPv4), or None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip()[:64])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Geo:
    """Looks addresses up in the packaged data and the owner's ``.mmdb`` files."""

    def __init__(self, mmdb: Iterable[Path] = (), cache_size: int = CACHE_SIZE) -> None:
        self._readers: list[tuple[Path, maxminddb.Reader]] = []
        for path in list(mmdb)[:MAX_MMDB]:
            try:
                self._readers.append((path, maxminddb.open_database(str(path))))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as err:
                raise GeoDataError(f"cannot open the geo database {path}: {err}") from None
        self._hosting = _hosting_asns()
        self._built = _package_built()
        self._countries: dict[str | None, Place] = {None: NOWHERE}
        # Bounded, oldest out first: a plain dict (an LRU's linked entries cost the collector).
        self._cache: dict[str, Place] = {}
        self._cache_size = cache_size
        self._misses = 0

    def close(self) -> None:
        """Release the memory maps of the user's files."""
        for _, reader in self._readers:
            reader.close()
        self._readers.clear()

    def lookup(self, ip: str) -> Place:
        """The place of *ip* (text as Plex or a client wrote it); :data:`NOWHERE` when unknown.

        Private and reserved addresses have no place unless the owner's own file gives one.
        Without such files the package answers directly (it is faster than any cache).
        """
        text = ip[:64]
        if ":" in text and "." in text:  # IPv4-mapped IPv6: the package wants the IPv4 form
            address = parse_address(text)
            text = str(address) if address is not None else ""
        if not self._readers:
            return self._place(iptocc.country_code(text))
        found = self._cache.get(text)
        if found is None:
            self._misses += 1
            found = self._lookup(text)
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest answer goes first
            self._cache[text] = found
        return found

    def country(self, ip: str) -> str | None:
        """Only the country code."""
        return self.lookup(ip).country

    def _place(self, country: str | None, asn: int | None = None, owner: str | None = None) -> Place:
        """One shared Place per country when nothing else is known (a cache entry costs a pointer)."""
        if asn is None and owner is None:
            found = self._countries.get(country)
            if found is None:
                found = self._countries[country] = Place(country)
            return found
        return Place(country=country, asn=asn, network_owner=owner, hosting=self._hosting.get(asn or 0))

    def _lookup(self, text: str) -> Place:
        country = asn = owner = None
        for _, reader in self._readers:
            try:
                c, a, o = _mmdb_place(reader.get(text))
            except ValueError:  # not an address
                return NOWHERE
            country, asn, owner = country or c, asn or a, owner or o
        # The package has no answer for private, reserved or malformed text.
        return self._place(country or iptocc.country_code(text), asn, owner)

    def annotate(self, alert: Alert) -> Alert:
        """*alert* with ``country`` (and the network owner where known) in its detail.

        For the code that makes alerts: call it just before storing; an alert that already
        carries a country (a session alert) keeps it.
        """
        if "country" in alert.detail:
            return alert
        place = self.lookup(alert.ip)
        detail = dict(alert.detail, country=place.country)
        if place.asn is not None:
            detail.update(asn=place.asn, network_owner=place.network_owner)
        if place.hosting is not None:
            detail["hosting"] = place.hosting
        return replace(alert, detail=detail)

    def status(self, now: float | None = None) -> dict[str, Any]:
        """The ``geo`` section of ``/status``: which data answers and how old it is."""
        now = time.time() if now is None else now
        files = []
        for path, reader in self._readers:
            meta = reader.metadata()
            files.append(
                {
                    "path": str(path),
                    "type": str(meta.database_type)[:64],
                    "built": float(meta.build_epoch),
                    "age_days": round((now - meta.build_epoch) / 86_400, 1),
                }
            )
        return {
            "available": True,
            "package": f"iptocc {importlib.metadata.version('iptocc')}",
            "built": self._built,
            "age_days": round((now - self._built) / 86_400, 1) if self._built else None,
            "mmdb": files,
            "network_owner": any(f["type"] and "asn" in str(f["type"]).lower() for f in files)
            or any("ipinfo" in str(f["type"]).lower() for f in files),
            "cache": {"size": len(self._cache), "max": self._cache_size, "misses": self._misses},
        }


# Blocks the Regional Internet Registries hand out (IANA's IPv6 unicast allocations to RIRs);
# packaged-data firewall sets are probed over these at /24 (IPv4) and /32 (IPv6) granularity.
_V6_RIR_BLOCKS = (
    "2001::/16",
    "2003::/18",
    "2400::/12",
    "2600::/12",
    "2800::/12",
    "2a00::/12",
    "2a10::/12",
    "2c00::/12",
)
_PROBE_CHUNK = 65_536


def _runs(ccs: list[str | None], wanted: set[str]) -> Iterator[tuple[int, int]]:
    """(first, index after last) of the consecutive probes whose country is wanted."""
    begin: int | None = None
    for i, cc in enumerate(ccs):
        hit = cc is not None and cc.lower() in wanted
        if hit and begin is None:
            begin = i
        elif not hit and begin is not None:
            yield begin, i
            begin = None
    if begin is not None:
        yield begin, len(ccs)


@functools.lru_cache(maxsize=4)
def packaged_networks(countries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks the packaged data assigns to *countries*, for GeoIP firewall sets.

    The package answers lookups only, so its table is read back by probing every /24 of the
    IPv4 unicast space and every /32 of the RIRs' IPv6 blocks (a few seconds, once per process;
    the probe texts are built from precomputed halves, which is most of the cost).
    """
    wanted = {c.lower() for c in countries}
    found: list[Network] = []
    v4_tail = [f".{i >> 8}.{i & 255}.0" for i in range(_PROBE_CHUNK)]
    for a in range(1, 224):
        head = str(a)
        ccs = iptocc.country_code([head + tail for tail in v4_tail])
        base = a << 24
        for begin, end in _runs(ccs, wanted):
            found.extend(
                ipaddress.summarize_address_range(
                    ipaddress.IPv4Address(base | (begin << 8)), ipaddress.IPv4Address(base | (end << 8) - 1)
                )
            )
    v6_tail = [f":{i:x}::" for i in range(_PROBE_CHUNK)]
    for block in _V6_RIR_BLOCKS:
        net = ipaddress.IPv6Network(block)
        first_hi = int(net.network_address) >> 112
        count = 1 << (32 - net.prefixlen)  # /32s in the block
        for hi in range(first_hi, first_hi + max(1, count >> 16)):
            tails = v6_tail[: min(_PROBE_CHUNK, count)]
            lo0 = (int(net.network_address) >> 96) & 0xFFFF if count < _PROBE_CHUNK else 0
            head = f"{hi:x}"
            texts = [head + tail for tail in v6_tail[lo0 : lo0 + len(tails)]]
            ccs = iptocc.country_code(texts)
            for begin, end in _runs(ccs, wanted):
                low = (hi << 112) | ((lo0 + begin) << 96)
                high = ((hi << 112) | ((lo0 + end) << 96)) - 1
                found.extend(ipaddress.summarize_address_range(ipaddress.IPv6Address(low), ipaddress.IPv6Address(high)))
    v4 = ipaddress.collapse_addresses(n for n in found if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in found if isinstance(n, ipaddress.IPv6Network))
    return (*v4, *v6)


def mmdb_networks(path: Path, countries: Iterable[str]) -> Iterator[Network]:
    """The networks a country ``.mmdb`` (MaxMind, DB-IP or IPinfo shape) assigns to *countries*."""
    wanted = {c.upper() for c in countries}
    try:
        with maxminddb.open_database(str(path)) as reader:
            for network, record in reader:
                if _mmdb_place(record)[0] in wanted:
                    yield network
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as err:
        raise GeoDataError(f"cannot read the geo database {path}: {err}") from None


_installed: Geo | None = None


def install(geo: Geo | None) -> None:
    """Make *geo* the one :func:`annotate` uses (the app does this at start; None at stop)."""
    global _installed  # noqa: PLW0603 - one data set per process, opened once
    _installed = geo


def annotate(alert: Alert) -> Alert:
    """*alert* with its address's country in the detail (unchanged before the app installed geo data)."""
    return _installed.annotate(alert) if _installed is not None else alert
