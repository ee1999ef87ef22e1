"""A flood of half-open connections never starves a firewall change of descriptors (real nft)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from plex_security_helper.firewall.nft import NftFirewall
from tests.helper.test_hostile_clients import CHILD_NOFILE, HALF_OPEN, descriptors
from tests.helperproc import HelperProcess
from tests.system.netlab import Lab

pytestmark = pytest.mark.system


def test_a_ban_reaches_the_kernel_during_a_half_open_flood(lab: Lab, tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(
        tmp_path / "helper",
        nofile=CHILD_NOFILE,
        extra_config=f'[firewall]\nbackend = "nft"\nmode = "enforce"\nnetns = "{lab.plex}"\n',
    )
    helper.start()
    socks: list[socket.socket] = []
    try:
        with descriptors(HALF_OPEN + 256):
            try:
                for _ in range(HALF_OPEN):
                    sock = socket.create_connection(("127.0.0.1", helper.port), timeout=5)
                    with contextlib.suppress(OSError):
                        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    socks.append(sock)
                code, body = helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.81", "duration": 600})
                assert (code, body["enforced"]) == (201, True), body
                assert "203.0.113.81" in NftFirewall(netns=lab.plex).banned()
                assert helper.get("/api/v1/status")["firewall"]["error"] is None
            finally:
                for sock in socks:
                    sock.close()
        assert "Too many open files" not in helper.stderr()
    finally:
        helper.stop()
