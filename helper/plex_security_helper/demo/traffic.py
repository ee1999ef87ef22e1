"""Write real-format Plex log lines of a small server's day, compressed into minutes.

Normal users stream and browse (signed in, from home and from the internet), a LAN TV
polls, Plexamp makes its benign token-less requests, a user shows up from a network she never
used, a brute forcer tries passwords and a scanner probes for admin paths. Times are the
host's local time, as Plex writes them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..logwatch.plexlog import MONTH_NAMES

USERS = [("192.0.2.10", "alice"), ("192.0.2.23", "bob"), ("198.51.100.40", "carol")]
LAN = [("192.168.1.20", "livingroom-tv")]
BRUTE_FORCERS = ["203.0.113.66", "2001:db8:bad::1"]
SCANNERS = ["198.51.100.99"]
# alice, travelling: a signed-in user from a network she never used (a new-location alert).
TRAVELLER = ("203.0.113.200", "alice")
OK_PATHS = [
    "/library/sections",
    "/hubs/search?query=the+office&limit=30",
    "/:/timeline?ratingKey=123&state=playing",
    "/video/:/transcode/universal/session/abc/base/00012.ts",
    "/library/metadata/4411/children",
    "/status/sessions",
]
PROBE_PATHS = ["/.env", "/wp-login.php", "/../../etc/passwd", "/cgi-bin/luci", "/admin", "/system/proxy"]


def _stamp(t: datetime) -> str:
    return f"{MONTH_NAMES[t.month - 1]} {t.day:02d}, {t.year} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"


@dataclass
class TrafficWriter:
    """Appends exchanges (Request + Completed lines) to a Plex log."""

    path: Path
    rnd: random.Random
    rid: int = 0x4000

    def exchange(self, ip: str, cls: str, status: int, path: str, user: str | None = None) -> list[str]:
        """Return the two lines of one request."""
        self.rid += 1
        t = datetime.now()
        thread = self.rnd.randint(140000000000000, 140999999999999)
        port = self.rnd.randint(30000, 65000)
        addr = f"[{ip}]" if ":" in ip else ip
        auth = f" Signed-in Token ({user})" if user else ""
        ms = self.rnd.randint(0, 300)
        size = self.rnd.randint(300, 90000)
        return [
            f"{_stamp(t)} [{thread}] DEBUG - Request: [{addr}:{port} ({cls})] GET {path} (4 live) "
            f"#{self.rid:x} GZIP{auth}",
            f"{_stamp(t)} [{thread}] DEBUG - Completed: [{addr}:{port}] {status} GET {path} (4 live) "
            f"#{self.rid:x} GZIP {ms}ms {size} bytes",
        ]

    def tick(self) -> list[str]:
        """One moment of traffic: mostly users, sometimes an attacker."""
        roll = self.rnd.random()
        if roll < 0.70:
            ip, user = self.rnd.choice(USERS + LAN)
            cls = "Subnet" if ip.startswith("192.168.") else "WAN"
            return self.exchange(ip, cls, 200, self.rnd.choice(OK_PATHS), user)
        if roll < 0.78:
            # Plexamp and expired tokens: benign 401s from real users' addresses.
            ip, _ = self.rnd.choice(USERS)
            return self.exchange(ip, "WAN", 401, "/:/timeline?ratingKey=123&state=stopped")
        if roll < 0.80:
            ip, user = TRAVELLER
            return self.exchange(ip, "WAN", 200, self.rnd.choice(OK_PATHS), user)
        if roll < 0.93:
            return self.exchange(self.rnd.choice(BRUTE_FORCERS), "WAN", 401, "/library/sections")
        return self.exchange(self.rnd.choice(SCANNERS), "WAN", 404, self.rnd.choice(PROBE_PATHS))

    def run(self, rate: float, duration: float | None) -> int:
        """Append about *rate* exchanges a second for *duration* seconds (None: until killed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        start = time.monotonic()
        while duration is None or time.monotonic() - start < duration:
            with self.path.open("a", encoding="utf-8") as log:
                log.write("".join(f"{line}\n" for line in self.tick()))
            written += 1
            time.sleep(1.0 / rate)
        return written
