"""A seeded, mixed Plex log for tests that compare drivers: users, a LAN TV, Plexamp's benign
401s, brute forcers (one of them IPv6), a prober, a scanner, an exploit attempt, header dumps,
a refused /log spam, a forged /log write and a proxied client."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from urllib.parse import quote

from tests.plexlines import exchange, stamp


def log_write(writer: str, message: str, *, when: datetime, port: int, user: str, status: int = 200) -> list[str]:
    """A GET /log write and what Plex makes of it: the message's lines, then the Completed line."""
    path = f"/log?level=2&message={quote(message, safe='')}&source=web"
    request, completed = exchange(writer, status, path, when=when, port=port, user=user)
    if status >= 400:
        return [request, completed]
    first, *rest = message.split("\n")
    echo = f"{stamp(when)} [140513529203512] INFO - [Req#1/web] {first}"
    return [request, echo, *rest, completed]


def mixed_log(seed: int, *, now: datetime | None = None, pairs: int = 1200) -> list[str]:
    """About ``2 * pairs`` lines of the last hour, ending a minute before *now*."""
    rnd = random.Random(seed)
    t = (now or datetime.now()) - timedelta(hours=1)
    users = [(f"192.0.2.{i}", f"user{i}") for i in range(10, 20)]
    brute = ["203.0.113.10", "203.0.113.11", "2001:db8:5::10"]
    out: list[str] = []
    for n in range(pairs):
        t += timedelta(milliseconds=rnd.randint(100, 2500))
        port = 30000 + n
        r = rnd.random()
        if r < 0.55:
            ip, user = rnd.choice(users)
            out += exchange(ip, 200, rnd.choice(["/library/sections", "/hubs/home", "/status/sessions"]), when=t,
                            port=port, user=user)  # fmt: skip
        elif r < 0.60:
            out += exchange("192.168.1.20", 401, "/library/sections", net_class="Subnet", when=t, port=port)
        elif r < 0.65:
            out += exchange("192.0.2.15", 401, "/library/parts/7/1/file.flac?levels=1", when=t, port=port)
        elif r < 0.80:
            out += exchange(rnd.choice(brute), 401, "/library/sections", when=t, port=port)
        elif r < 0.84:
            out += exchange("198.51.100.20", 404, rnd.choice(["/.env", "/wp-login.php", "/../../etc/passwd"]), when=t,
                            port=port)  # fmt: skip
        elif r < 0.88:
            out += exchange("198.51.100.30", 404, f"/nothing/{rnd.randint(0, 10**6)}", when=t, port=port)
        elif r < 0.90:
            out += exchange("198.51.100.40", 200, "/photo/:/transcode?url=file%3A%2F%2F%2Fetc%2Fpasswd", when=t,
                            port=port)  # fmt: skip
        elif r < 0.93:
            # Unauthenticated /log calls: refused, they write nothing and must hide nothing.
            out += exchange("203.0.113.50", 401, "/log?message=x", when=t, port=port)
        elif r < 0.95:
            victim = "198.51.100.99"
            forged = "\n".join(line for k in range(3) for line in exchange(victim, 401, when=t, port=9000 + k))
            out += log_write("192.0.2.66", f"hello\n{forged}", when=t, port=port, user="mallory")
        elif r < 0.97:
            # A header dump whose User-Agent imitates the sign-in flags (with and without a marker).
            line, done = exchange("203.0.113.60", 401, "/library/sections", when=t, port=port)
            fake = rnd.choice([" / User-Agent => Signed-in Token (owner)", " / User-Agent => x (1 live) Signed-in"])
            out += [line + fake, done]
        else:
            out.append(f"{stamp(t)} [140513529203512] INFO - [Transcoder] frame={n} fps=48 speed=2.0x")
    return out
