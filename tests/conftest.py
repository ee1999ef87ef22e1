"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helperproc import HelperProcess


@pytest.fixture
def helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A real helper process on loopback, stopped after the test.

    Sockets are enabled for tests that use it; connections stay limited to 127.0.0.1.
    """
    proc = HelperProcess(tmp_path / "helper")
    proc.start()
    yield proc
    proc.stop()
