"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytest_socket
from hypothesis import settings

from tests.helperproc import HelperProcess

# The suite's fuzz budget; bench/fuzz_long.py loads "long" for a long run.
settings.register_profile("suite", max_examples=400, deadline=None)
settings.register_profile("long", max_examples=200_000, deadline=None, print_blob=True)
settings.load_profile("suite")


@pytest.fixture
def helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A real helper process on loopback, stopped after the test.

    Sockets are enabled for tests that use it; connections stay limited to 127.0.0.1.
    """
    proc = HelperProcess(tmp_path / "helper")
    proc.start()
    yield proc
    proc.stop()


@contextmanager
def unix_sockets_allowed() -> Iterator[None]:
    """Let this process connect to unix sockets (a Docker engine's), still only 127.0.0.1 for TCP."""
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        pytest_socket.socket_allow_hosts(["127.0.0.1"])  # type: ignore[no-untyped-call]
