"""Real-format Plex Media Server log lines for tests (shapes from shared/reference/plex.md)."""

from __future__ import annotations

import itertools
from datetime import datetime

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_rid = itertools.count(0x1A2B)


def stamp(when: datetime | None = None) -> str:
    """Plex's local-time stamp: ``Nov 27, 2026 21:00:00.123``."""
    t = when or datetime.now()
    return f"{MONTHS[t.month - 1]} {t.day:02d}, {t.year} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"


def exchange(
    ip: str,
    status: int,
    path: str = "/library/sections",
    *,
    net_class: str = "WAN",
    when: datetime | None = None,
    port: int = 51515,
    user: str | None = None,
    thread: str = "140513529203512",
) -> list[str]:
    """A Request line and its Completed line, joined by a request id like newer servers write."""
    rid = f"{next(_rid):x}"
    addr = f"[{ip}]" if ":" in ip else ip
    ts = stamp(when)
    auth = f" Signed-in Token ({user})" if user else ""
    return [
        f"{ts} [{thread}] DEBUG - Request: [{addr}:{port} ({net_class})] GET {path} (3 live) #{rid} GZIP{auth}",
        f"{ts} [{thread}] DEBUG - Completed: [{addr}:{port}] {status} GET {path} (3 live) #{rid} GZIP 0ms 416 bytes",
    ]


def failed_login(ip: str, *, when: datetime | None = None, port: int = 51515) -> list[str]:
    """An unauthenticated request from the internet that Plex refused with 401."""
    return exchange(ip, 401, when=when, port=port)
