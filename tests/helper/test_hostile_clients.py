"""The API against clients that try to starve it: half-open connections, wrong-token floods."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from plex_security_helper.api.auth import MAX_FAILURES, BadTokenThrottle
from plex_security_helper.api.server import PER_ADDRESS, ConnectionGate
from tests.helperproc import HelperProcess

HALF_OPEN = 1100
CHILD_NOFILE = 1024  # what a unit without LimitNOFILE gets


@pytest.fixture
def limited_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    proc = HelperProcess(tmp_path / "helper", nofile=CHILD_NOFILE)
    proc.start()
    yield proc
    proc.stop()


@contextlib.contextmanager
def descriptors(count: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"the test needs {count} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_half_open_connections_never_starve_the_api_or_the_firewall(limited_helper: HelperProcess) -> None:
    assert limited_helper.proc is not None
    pid = limited_helper.proc.pid
    socks: list[socket.socket] = []
    with descriptors(HALF_OPEN + 256):
        try:
            for _ in range(HALF_OPEN):
                sock = socket.create_connection(("127.0.0.1", limited_helper.port), timeout=5)
                # Headers started, never finished: aiohttp alone would wait for the rest forever.
                with contextlib.suppress(OSError):
                    sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(sock)
            # Every one of them was accepted by the kernel; the helper holds only a bounded share
            # (once it has closed those it accepted in the last batch).
            deadline = time.monotonic() + 10
            while _open_fds(pid) >= PER_ADDRESS + 128:
                assert time.monotonic() < deadline, _open_fds(pid)
                time.sleep(0.05)
            status = limited_helper.get("/api/v1/status")
            assert status["helper"]["id"]
            code, ban = limited_helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.99", "duration": 600})
            assert code in (200, 201), ban
            assert "203.0.113.99" in json.dumps(limited_helper.get("/api/v1/bans"))
            # The connections the helper let go are closed on its side: the client reads EOF.
            closed = 0
            for sock in socks[:100]:
                sock.settimeout(5)
                try:
                    closed += sock.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed == 100
        finally:
            for sock in socks:
                sock.close()
    assert "Too many open files" not in limited_helper.stderr()


def test_a_connection_without_headers_is_closed_at_its_deadline() -> None:
    # The deadline, driven by hand: the gate closes an idle connection, never a busy one.
    now = [0.0]
    gate = ConnectionGate(per_address=2, total=3, clock=lambda: now[0])

    class Transport:
        def __init__(self, address: str) -> None:
            self.address = address
            self.aborted = False

        def get_extra_info(self, name: str) -> object:
            return (self.address, 1234) if name == "peername" else None

        def abort(self) -> None:
            self.aborted = True

    a1, a2, a3 = Transport("192.0.2.1"), Transport("192.0.2.1"), Transport("192.0.2.1")
    assert gate.admit(a1) and gate.admit(a2)  # type: ignore[arg-type]
    gate.begin(a1)  # type: ignore[arg-type]
    assert gate.admit(a3)  # type: ignore[arg-type]  # the address's oldest idle one made room
    assert (a1.aborted, a2.aborted) == (False, True)
    gate.begin(a3)  # type: ignore[arg-type]
    a4 = Transport("192.0.2.1")
    assert not gate.admit(a4)  # type: ignore[arg-type]  # both busy: refused at once
    b1, b2 = Transport("198.51.100.1"), Transport("198.51.100.2")
    assert gate.admit(b1)  # type: ignore[arg-type]
    gate.end(a3)  # type: ignore[arg-type]
    assert gate.admit(b2)  # type: ignore[arg-type]  # total reached: the busiest address's idle one goes
    assert a3.aborted and not a1.aborted
    assert gate.as_json()["open"] == 3


def test_a_wrong_token_flood_never_refuses_the_right_token(helper: HelperProcess) -> None:
    stop = threading.Event()
    answers: dict[int, int] = {}

    def flood() -> None:
        while not stop.is_set():
            req = urllib.request.Request(helper.url + "/api/v1/status")
            req.add_header("Authorization", "Bearer wrong-token-wrong-token")
            try:
                urllib.request.urlopen(req, timeout=10).close()
                code = 200
            except urllib.error.HTTPError as err:
                code = err.code
            except OSError:
                code = 0
            answers[code] = answers.get(code, 0) + 1

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while answers.get(429, 0) < 50:  # the flood is blocked...
            assert time.monotonic() < deadline, answers
            time.sleep(0.05)
        for _ in range(30):  # ...and, from the same address meanwhile, the right token works
            assert helper.get("/api/v1/status")["helper"]["id"]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert answers.get(401, 0) >= MAX_FAILURES
    assert set(answers) <= {401, 429}, answers


def test_an_api_client_address_is_never_handed_to_the_ban() -> None:
    blocked: list[str] = []
    throttle = BadTokenThrottle(on_block=blocked.append)
    throttle.succeeded("192.0.2.50")  # Home Assistant's address presented the right token
    for _ in range(MAX_FAILURES * 2):
        throttle.failed("192.0.2.50")
        throttle.failed("203.0.113.5")
    assert blocked == ["203.0.113.5"]
    assert throttle.blocked_for("192.0.2.50") > 0  # its wrong tokens are still throttled


def test_long_polls_are_capped_per_address_and_in_all() -> None:
    from plex_security_helper.api.routes import WAITERS_PER_ADDRESS, WAITERS_TOTAL, LongPolls

    polls = LongPolls()
    assert all(polls.take("192.0.2.1") for _ in range(WAITERS_PER_ADDRESS))
    assert not polls.take("192.0.2.1")  # this one answers at once instead of waiting
    polls.give("192.0.2.1")
    assert polls.take("192.0.2.1")
    others = [polls.take(f"198.51.100.{i}") for i in range(WAITERS_TOTAL)]
    assert others.count(False) == WAITERS_PER_ADDRESS  # the total cap counts every address


def test_slow_headers_and_slow_bodies_are_cut_off_at_their_deadlines(helper: HelperProcess) -> None:
    from plex_security_helper.api.server import BODY_TIMEOUT, HEADER_TIMEOUT

    slow_headers = socket.create_connection(("127.0.0.1", helper.port), timeout=HEADER_TIMEOUT + 20)
    slow_headers.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    slow_body = socket.create_connection(("127.0.0.1", helper.port), timeout=BODY_TIMEOUT + 20)
    slow_body.sendall(
        b"POST /api/v1/bans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {helper.token}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"ip": "203.0.'
    )
    try:
        # The helper closes the first unanswered, and answers the second 408 (the ban never made).
        assert slow_headers.recv(4096) == b""
        answer = b""
        while chunk := slow_body.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"the request body did not arrive in time" in answer
    finally:
        slow_headers.close()
        slow_body.close()
    assert helper.get("/api/v1/bans")["bans"] == []


def test_connections_stuck_before_the_tls_handshake_are_counted_too(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper", nofile=CHILD_NOFILE, tls=True)
    helper.start()
    assert helper.proc is not None
    socks: list[socket.socket] = []
    try:
        with descriptors(HALF_OPEN + 256):
            try:
                for _ in range(HALF_OPEN):
                    socks.append(socket.create_connection(("127.0.0.1", helper.port), timeout=5))  # no ClientHello
                deadline = time.monotonic() + 10
                while _open_fds(helper.proc.pid) >= PER_ADDRESS + 128:
                    assert time.monotonic() < deadline, _open_fds(helper.proc.pid)
                    time.sleep(0.05)
                assert helper.get("/api/v1/status")["helper"]["id"]
            finally:
                for sock in socks:
                    sock.close()
    finally:
        helper.stop()
    assert "Too many open files" not in helper.stderr()
