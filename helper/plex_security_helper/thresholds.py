"""The detector's thresholds, apart from the rest of the configuration.

`scan` needs only these; keeping them out of config.py spares it voluptuous and the TOML
loader at start-up (config.py re-exports the class).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Thresholds of the detector's rules (see docs/configuration.md)."""

    failed_auth_threshold: int
    failed_auth_window: int
    probe_threshold: int = 2
    scan_distinct_paths: int = 10
    scan_window: float = 60.0
    flood_per_minute: int = 600
    trust_after_signin: float = 86_400.0
    trusted_factor: int = 4
    max_tracked_sources: int = 100_000
