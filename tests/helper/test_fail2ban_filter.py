"""The fail2ban filter we ship, run by the real fail2ban-regex on the annotated samples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helper.test_plexlog import SAMPLES, load_samples

FILTER = Path(__file__).resolve().parents[2] / "helper/plex_security_helper/data/fail2ban/filter.d/plex-security.conf"


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="scripts/test installs fail2ban")
def test_filter_matches_every_failed_login_and_only_refusals() -> None:
    out = subprocess.run(
        ["fail2ban-regex", "-o", "row", str(SAMPLES), str(FILTER)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    matched_ips = [line.split("'")[1] for line in out.splitlines() if line.startswith("[")]
    samples = load_samples(SAMPLES)
    ours = {expect["record"]["ip"] for _, expect, _ in samples if expect["record"] and expect.get("failed_auth")}
    refusals = {
        expect["record"]["ip"]
        for _, expect, line in samples
        if expect["record"] and expect["record"].get("status") in (401, 403)
    }
    # Everything our rule counts, fail2ban counts too; it cannot see the client class, so it
    # also counts LAN and orphan lines (its jail's ignoreip must cover the LAN).
    assert ours <= set(matched_ips)
    assert set(matched_ips) <= refusals
