"""The detector's thresholds: each defined once here, with its bounds and its meaning.

The configuration schema, the commented config that ``init`` writes and the docs derive from
``THRESHOLDS``; ``DetectConfig`` carries the values. Kept apart from config.py so that ``scan``
needs neither voluptuous nor the TOML loader at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Threshold:
    """One tunable: default, allowed range, and the sentence the config file shows."""

    default: int
    low: int
    high: int
    help: str


THRESHOLDS: dict[str, Threshold] = {
    "failed_auth_threshold": Threshold(
        5, 1, 10_000, "Unauthenticated 401/403 answers to one internet address (IPv6: one /64) within the window"
    ),
    "failed_auth_window": Threshold(600, 10, 86_400, "The window of the failed-login, probe and spread rules (s)"),
    "slow_failed_auth_threshold": Threshold(
        20, 2, 100_000, "Failed logins of one address within slow_window: slow guessing below the burst rule"
    ),
    "slow_window": Threshold(86_400, 3600, 7 * 86_400, "The slow-guessing window (s)"),
    "spread_sources": Threshold(
        8, 2, 10_000, "Distinct failing addresses (IPv6: /64s) of one network (IPv4 /24, IPv6 /48) that ban it"
    ),
    "spread_failures": Threshold(20, 2, 100_000, "…together with this many failed logins of that network"),
    "probe_threshold": Threshold(2, 1, 1000, "Attack paths (traversal, injection, admin panels) that make an attacker"),
    "scan_distinct_paths": Threshold(
        10, 2, 1000, "Distinct missing (404) paths within scan_window that make a scanner"
    ),
    "scan_window": Threshold(60, 1, 3600, "The scan window (s)"),
    "flood_per_minute": Threshold(600, 10, 1_000_000, "Requests per minute from one address that make a flood"),
    "trust_after_signin": Threshold(
        86_400, 0, 30 * 86_400, "An address that signed in successfully is trusted this long (s)…"
    ),
    "trusted_factor": Threshold(4, 1, 100, "…and needs this many times the evidence above"),
    "max_tracked_sources": Threshold(100_000, 1000, 10_000_000, "Addresses tracked at once (memory bound)"),
}


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Thresholds of the detector's rules (see docs/configuration.md)."""

    failed_auth_threshold: int = THRESHOLDS["failed_auth_threshold"].default
    failed_auth_window: int = THRESHOLDS["failed_auth_window"].default
    slow_failed_auth_threshold: int = THRESHOLDS["slow_failed_auth_threshold"].default
    slow_window: int = THRESHOLDS["slow_window"].default
    spread_sources: int = THRESHOLDS["spread_sources"].default
    spread_failures: int = THRESHOLDS["spread_failures"].default
    probe_threshold: int = THRESHOLDS["probe_threshold"].default
    scan_distinct_paths: int = THRESHOLDS["scan_distinct_paths"].default
    scan_window: int = THRESHOLDS["scan_window"].default
    flood_per_minute: int = THRESHOLDS["flood_per_minute"].default
    trust_after_signin: int = THRESHOLDS["trust_after_signin"].default
    trusted_factor: int = THRESHOLDS["trusted_factor"].default
    max_tracked_sources: int = THRESHOLDS["max_tracked_sources"].default


assert {f.name for f in fields(DetectConfig)} == set(THRESHOLDS), "every threshold is defined once, above"
