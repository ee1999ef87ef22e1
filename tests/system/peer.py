"""TCP peers run inside test network namespaces: ``serve`` (the Plex port) and ``connect``.

Standalone (no imports from the project): it is started with ``ip netns exec``.
serve PORT READY ACCEPTED  - accept forever, write each client address to ACCEPTED, answer "ok".
connect HOST PORT SOURCE COUNT MODE TIMEOUT - MODE seq|parallel|hold; prints a JSON list of outcomes.
probe HOST PORT SOURCE SECONDS - connect until blocked; prints when the blocked attempt started.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path


def serve(port: int, ready: Path, accepted: Path) -> None:
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", port))
    srv.listen(512)
    ready.write_text("ready")
    lock = threading.Lock()

    def handle(conn: socket.socket, peer: str) -> None:
        with conn:
            with lock, accepted.open("a") as log:
                log.write(peer.removeprefix("::ffff:") + "\n")
            try:
                conn.sendall(b"ok\n")
                conn.settimeout(120)
                while conn.recv(1024):
                    pass
            except OSError:
                pass

    while True:
        conn, addr = srv.accept()
        threading.Thread(target=handle, args=(conn, addr[0]), daemon=True).start()


def _open(host: str, port: int, source: str, timeout: float) -> tuple[str, socket.socket | None]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
        if sock.recv(3) != b"ok\n":
            sock.close()
            return "reset", None
        return "ok", sock
    except TimeoutError:
        sock.close()
        return "timeout", None
    except ConnectionRefusedError:
        sock.close()
        return "refused", None
    except OSError:
        sock.close()
        return "reset", None


def _close(sock: socket.socket) -> None:
    """Close both ways and wait for the server's FIN, as a finished HTTP exchange would."""
    try:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(1024):
            pass
    except OSError:
        pass
    sock.close()


def connect(host: str, port: int, source: str, count: int, mode: str, timeout: float) -> list[str]:  # noqa: PLR0917
    results: list[str] = [""] * count
    held: list[socket.socket] = []
    if mode == "parallel":

        def one(i: int) -> None:
            outcome, sock = _open(host, port, source, timeout)
            results[i] = outcome
            if sock is not None:
                _close(sock)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results
    for i in range(count):
        outcome, sock = _open(host, port, source, timeout)
        results[i] = outcome
        if sock is not None:
            if mode == "hold":
                held.append(sock)
            else:
                _close(sock)
                # Real requests take milliseconds; the kernel's connection counter only forgets
                # closed connections once per jiffy, so back-to-back microsecond reconnects would
                # be counted as concurrent.
                time.sleep(0.01)
    time.sleep(0.05 if held else 0)
    for sock in held:
        _close(sock)
    return results


def probe(host: str, port: int, source: str, deadline_s: float) -> dict[str, float | int | None]:
    """Connect again and again until one attempt is blocked; when did that attempt start?

    Prints ``{"blocked_at": <CLOCK_MONOTONIC seconds or null>, "attempts": n}``; the clock is
    shared with the process that appended the deciding log line.
    """
    deadline = time.monotonic() + deadline_s
    attempts = 0
    print(json.dumps({"ready": time.monotonic()}), flush=True)
    while time.monotonic() < deadline:
        started = time.monotonic()
        attempts += 1
        outcome, sock = _open(host, port, source, 0.05)
        if sock is None:
            return {"blocked_at": started, "attempts": attempts, "outcome_refused": int(outcome == "refused")}
        _close(sock)
        time.sleep(0.001)
    return {"blocked_at": None, "attempts": attempts, "outcome_refused": 0}


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1] == "probe":
        print(json.dumps(probe(sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))), flush=True)
    else:
        _, _, host, port_s, source, count_s, mode, timeout_s = sys.argv
        print(json.dumps(connect(host, int(port_s), source, int(count_s), mode, float(timeout_s))))
