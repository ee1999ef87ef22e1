"""A long fuzz run of the properties the test suite checks briefly: the log parser, the compiled
the config loader and ban targets (addresses, CIDRs), with many more
examples and no deadline.

Usage: bench/fuzz_long.py [--examples N]   (default 200,000 per property; prints examples/s)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402, F401 - registers the profiles first
from tests.helper import test_config, test_firewall_parts, test_plexlog  # noqa: E402

PROPERTIES: list[tuple[str, Callable[[], None]]] = [
    ("parser never raises, never invents an address", test_plexlog.test_parser_never_raises_on_any_text),
    ("parser on access-line shapes", test_plexlog.test_no_address_but_the_bracket_field),
    ("config documents accepted or refused cleanly", test_config.test_any_document_is_accepted_or_refused_cleanly),
    ("ban targets parse only real networks", test_firewall_parts.test_parse_target_accepts_only_what_ipaddress_accepts),
    ("generated networks round-trip", test_firewall_parts.test_generated_networks_round_trip_or_name_the_right_network),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200_000)
    args = parser.parse_args()
    failed = 0
    for name, prop in PROPERTIES:
        settings.register_profile(
            "fuzz-long", max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck)
        )
        settings.load_profile("fuzz-long")
        run = prop
        start = time.perf_counter()
        try:
            run()
            verdict = "ok"
        except Exception as err:  # noqa: BLE001 - report and go on with the next property
            verdict = f"FAILED: {err!r}"[:300]
            failed += 1
        elapsed = time.perf_counter() - start
        print(f"{name:<48} {args.examples:>9,} examples  {args.examples / elapsed:>8,.0f}/s  {verdict}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
