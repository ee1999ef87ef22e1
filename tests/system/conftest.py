"""Fixtures for system tests: namespaces, and helpers that enforce inside them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helperproc import HelperProcess
from tests.system.netlab import Lab, can_run


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Fresh namespaces for one test, removed afterwards."""
    reason = can_run()
    if reason:
        pytest.skip(reason)
    net = Lab(tmp_path)
    try:
        net.up()
        yield net
    finally:
        net.down()


@pytest.fixture
def enforcing_helper(lab: Lab, tmp_path: Path, socket_enabled: None) -> Iterator[Callable[..., HelperProcess]]:
    """Start helpers whose nftables table lives in the lab's Plex namespace."""
    started: list[HelperProcess] = []

    def start(firewall: str = "", name: str = "helper") -> HelperProcess:
        proc = HelperProcess(
            tmp_path / name,
            extra_config=f'[firewall]\nbackend = "nft"\nmode = "enforce"\nnetns = "{lab.plex}"\n{firewall}',
        )
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
