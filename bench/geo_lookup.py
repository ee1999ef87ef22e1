"""Benchmark: the cost of one country lookup and the memory of the loaded geo data.

Looks up 200,000 random public IPv4 and IPv6 addresses (never contacted: only looked up in
the data) with the packaged data alone (``Geo.lookup``, and the package directly), and with a
user ``.mmdb`` of 20,000 networks cold (cache misses: parsing, both data sets, the insert) and
warm (cache hits). The fastest of three runs counts. Memory is the resident set
(``/proc/self/status`` VmRSS) before and after the package is loaded and the cache is filled.

Usage: bench/geo_lookup.py [--count N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "helper"), str(ROOT)]

LIMIT_US = 10.0


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _addresses(count: int) -> list[str]:
    rng = random.Random(18)
    out: list[str] = []
    while len(out) < count:
        if len(out) % 4 == 3:
            out.append(f"2a0{rng.randrange(10)}:{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}::1")
        else:
            first = rng.choice([n for n in range(1, 224) if n not in (10, 127)])
            out.append(f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    return out


def _best(runs: int, func: object, items: list[str]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for ip in items:
            func(ip)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


def _timed(func: object, items: list[str]) -> float:
    started = time.perf_counter()
    for ip in items:
        func(ip)  # type: ignore[operator]
    return (time.perf_counter() - started) / len(items) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    items = _addresses(args.count)
    before = _rss_kib()
    import iptocc

    raw = _best(3, iptocc.country_code, items)
    loaded = _rss_kib()  # after every address was looked up: the pages of the table in use
    from plex_security_helper.plex.geo import Geo
    from tests.geodata import write_mmdb

    packaged = _best(3, Geo().lookup, items)
    with tempfile.TemporaryDirectory() as tmp:
        rng = random.Random(7)
        nets = {f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24" for _ in range(20_000)}
        path = write_mmdb(Path(tmp) / "bench.mmdb", {n: {"country": {"iso_code": "DE"}} for n in nets})
        cold = float("inf")
        for _ in range(3):
            fresh = Geo([path], cache_size=args.count)
            cold = min(cold, _timed(fresh.lookup, items))
            fresh.close()
        geo = Geo([path], cache_size=args.count)
        empty = _rss_kib()
        for ip in items:
            geo.lookup(ip)
        filled = _rss_kib()
        warm = _best(3, geo.lookup, items)
    dist = importlib.metadata.distribution("iptocc")
    on_disk = sum((f.size or 0) for f in dist.files or [])
    print(f"data: iptocc {dist.version}, {on_disk / 1e6:.1f} MB on disk; {len(items)} distinct addresses, 1 in 4 IPv6")
    print(f"memory: the packaged data, loaded and used: +{(loaded - before) / 1024:.1f} MiB RSS")
    print(f"        cache of {args.count} answers (with a user .mmdb): +{(filled - empty) / 1024:.1f} MiB")
    print(f"lookup, packaged data (Geo.lookup):     {packaged:.2f} µs  (the package alone: {raw:.2f} µs)")
    print(f"lookup, user .mmdb, cache miss:         {cold:.2f} µs")
    print(f"lookup, user .mmdb, cache hit:          {warm:.2f} µs")
    verdict = "ok" if max(packaged, cold, warm) < LIMIT_US else "TOO SLOW"
    print(f"limit {LIMIT_US:.0f} µs a lookup: {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
