"""The fail2ban filter we ship, run by the real fail2ban-regex on the annotated samples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helper.test_plexlog import SAMPLES, load_samples

FILTER = Path(__file__).resolve().parents[2] / "helper/plex_security_helper/data/fail2ban/filter.d/plex-security.conf"


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="scripts/test installs fail2ban")
def test_filter_matches_exactly_the_lines_marked_for_fail2ban() -> None:
    out = subprocess.run(
        ["fail2ban-regex", "-o", "msg", str(SAMPLES), str(FILTER)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    matched = [line for line in out.splitlines() if line.strip()]
    samples = load_samples(SAMPLES)
    marked = [line for _, expect, line in samples if expect.get("fail2ban")]
    assert matched == marked
    # Everything our own rule counts as a failed login, fail2ban counts too.
    ours = [line for _, expect, line in samples if expect.get("failed_auth")]
    assert set(ours) <= set(matched)
    assert len(marked) >= 7
