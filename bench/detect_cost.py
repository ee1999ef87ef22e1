"""Benchmark: what hostile paths cost the detector, in time and in memory.

1. The probe rules on 8 KB and 64 KB hostile paths (``select+select+…`` and friends): the time
   ratio is about 1 when every rule looks at a bounded prefix (the retired
   ``select(?:\\s|\\+|%20).*from`` took 2 s on 64 KB, quadratic), and the old pattern's ratio is
   printed next to it for scale.
2. Memory per tracked source under a spread of long paths: 9 distinct 8 KB 404 paths per IPv6
   /64 across 2,000 /64s (the case that cost 157 MiB), measured with tracemalloc.

Usage: bench/detect_cost.py [--sources N]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "helper"))

from plex_security_helper.logwatch import detect  # noqa: E402
from plex_security_helper.logwatch.pipeline import Pipeline  # noqa: E402
from plex_security_helper.thresholds import DetectConfig  # noqa: E402
from tests.plexlines import exchange  # noqa: E402

OLD_SQL = re.compile(r"select(?:\s|\+|%20).*from", re.IGNORECASE)


def timed(func: object, arg: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func(arg)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def probe_scaling() -> None:
    shapes = {
        "select+ (SQL)": "select+",
        "../ (traversal)": "..%2f",
        "%2e (encoded dots)": "%2e",
        "a (plain)": "a",
    }
    print("probe rules, hostile paths (best of 3):")
    for name, unit in shapes.items():
        small = "/x?q=" + unit * (8192 // len(unit))
        large = "/x?q=" + unit * (65536 // len(unit))
        t8, t64 = timed(detect._probe, small), timed(detect._probe, large)
        print(f"  {name:<20} 8 KB {t8 * 1e6:8.1f} µs   64 KB {t64 * 1e6:8.1f} µs   ratio {t64 / max(t8, 1e-9):5.2f}")
    small = "/x?q=" + "select+" * 1170
    large = "/x?q=" + "select+" * 2340  # 16 KB: the old pattern needs seconds at 64 KB
    t8, t16 = timed(OLD_SQL.search, small, 1), timed(OLD_SQL.search, large, 1)
    ratio = t16 / t8
    print(
        f"  retired pattern      8 KB {t8 * 1e3:8.1f} ms   16 KB {t16 * 1e3:8.1f} ms   ratio {ratio:5.2f} (quadratic)"
    )


def memory_per_source(sources: int) -> None:
    cfg = DetectConfig()
    pipeline = Pipeline(cfg)
    t0 = datetime(2026, 11, 20, 8, 0, 0)
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    for n in range(sources):
        ip = f"2001:db8:{n // 65536:x}:{n % 65536:x}::1"
        lines = [
            line
            for k in range(9)
            for line in exchange(ip, 404, f"/{k}/" + "a" * 8000, when=t0 + timedelta(seconds=n, milliseconds=k))
        ]
        pipeline.feed(lines)
        pipeline.take()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(base, "filename"))
    tracked = pipeline.detector.tracked_sources
    print(
        f"memory under a spread of long paths: {sources:,} /64s x 9 distinct 8 KB 404 paths ->"
        f" {grown / 2**20:.1f} MiB, {grown / max(tracked, 1):,.0f} bytes per tracked source ({tracked:,} tracked)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=2000)
    args = parser.parse_args()
    probe_scaling()
    memory_per_source(args.sources)


if __name__ == "__main__":
    main()
