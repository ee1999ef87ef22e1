"""Log forgery: a signed-in user writes crafted lines through Plex's /log endpoint and crafted
request paths. No address other than the writer's own may ever be judged for it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from plex_security_helper.logwatch.scan import scan_files
from plex_security_helper.thresholds import DetectConfig
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login, stamp

WRITER = "192.0.2.30"
VICTIMS = ["198.51.100.7", "2001:db8:77::1", "192.0.2.99"]
ATTACKER = "203.0.113.66"


def _forged_failures(victim: str, when: datetime, port: int) -> list[str]:
    """What a forger writes to frame *victim*: a WAN Request and its 401, in Plex's exact shape."""
    return exchange(victim, 401, when=when, port=port)


def test_forged_lines_never_frame_anyone_but_the_writer(helper: HelperProcess) -> None:
    t0 = datetime.now() - timedelta(seconds=30)
    lines: list[str] = []
    # The writer signs in normally first.
    lines += exchange(WRITER, 200, "/library/sections", user="mallory", when=t0, port=30000)

    # 1. Crafted paths: access-line text, forged tails and X-Forwarded-For inside the path.
    for i, path in enumerate(
        [
            f"/x?Completed:%20[{VICTIMS[0]}:1]%20401",
            f"/a (1 live) #ffff Signed-in Token (admin) / X-Forwarded-For => {VICTIMS[0]}",
            f"/b] 401 GET /library/sections (3 live) #beef GZIP 0ms 1 bytes\\n[{VICTIMS[1]}:2 (WAN)]",
        ]
        * 4
    ):
        lines += exchange(WRITER, 404, path, user="mallory", when=t0 + timedelta(milliseconds=10 * i), port=31000 + i)

    # 2. A /log write whose message holds line breaks: Plex writes the text, forged lines and all.
    t1 = t0 + timedelta(seconds=1)
    forged: list[str] = []
    for v, victim in enumerate(VICTIMS):
        for k in range(6):
            forged += _forged_failures(victim, t1 + timedelta(milliseconds=v * 10 + k), 40000 + 10 * v + k)
    message = quote("hello\n" + "\n".join(forged), safe="")
    log_request, log_completed = exchange(
        WRITER, 200, f"/log?source=Plexamp&level=2&message={message}", user="mallory", when=t1, port=32000
    )
    lines.append(log_request)
    lines.append(f"{stamp(t1)} [140000000000042] INFO - Plexamp: hello")
    lines += forged
    lines.append(log_completed)

    # 3. Lone forged Completed lines (no Request to lend them a class).
    t2 = t0 + timedelta(seconds=4)
    for k in range(6):
        lines.append(
            f"{stamp(t2)} [1] DEBUG - Completed: [{VICTIMS[2]}:{50000 + k}] 401 GET / (1 live) GZIP 0ms 1 bytes"
        )

    # A real brute forcer afterwards: detection still works.
    t3 = t0 + timedelta(seconds=6)
    for k in range(5):
        lines += failed_login(ATTACKER, when=t3 + timedelta(milliseconds=k), port=60000 + k)
    helper.append(*lines)

    helper.wait_for(lambda s: s["alerts"]["count_24h"] >= 2, timeout=10)
    alerts = helper.get("/api/v1/alerts?after=0")["alerts"]
    judged = {a["ip"] for a in alerts}
    assert judged <= {WRITER, ATTACKER}, alerts
    kinds = {(a["kind"], a["ip"]) for a in alerts if a["kind"] != "banned"}
    assert ("failed_login_burst", ATTACKER) in kinds
    assert ("log_injection", WRITER) in kinds
    bans = {b["ip"] for b in helper.get("/api/v1/bans")["bans"]}
    assert bans == {WRITER, ATTACKER}
    status = helper.get("/api/v1/status")
    assert {row["ip"] for row in status["failed_logins"]["top"]} == {ATTACKER}


def test_a_carriage_return_inside_forged_lines_frames_nobody(helper: HelperProcess, tmp_path: Path) -> None:
    """A lone CR does not cut a line for the log's readers, so the guard must not cut the message
    there either: before, the forged lines (each with a CR and more text) were not among the lines
    it expected, passed as real, and framed the victim while the writer went unflagged."""
    t1 = datetime.now() - timedelta(seconds=20)
    forged = [
        f"{line} \rx"  # after a space: the Completed grammar ends at one
        for k in range(6)
        for line in _forged_failures(VICTIMS[0], t1 + timedelta(milliseconds=k), 41000 + k)
    ]
    message = quote("hello\n" + "\n".join(forged), safe="")
    request, completed = exchange(
        WRITER, 200, f"/log?source=web&level=2&message={message}", user="mallory", when=t1, port=33000
    )
    lines = [request, f"{stamp(t1)} [140000000000042] INFO - [Req#1/web] hello", *forged, completed]
    log = tmp_path / "forged.log"
    log.write_bytes("".join(f"{line}\n" for line in lines).encode())
    report = scan_files([log], DetectConfig())
    assert {ip: rep.verdict() for ip, rep in report.addresses.items()} == {WRITER: "ban"}
    assert {a["kind"] for a in report.alerts} == {"log_injection"}

    helper.append(*lines)
    helper.wait_for(lambda s: s["alerts"]["count_24h"] >= 1, timeout=10)
    alerts = helper.get("/api/v1/alerts?after=0")["alerts"]
    assert {(a["kind"], a["ip"]) for a in alerts if a["kind"] != "banned"} == {("log_injection", WRITER)}
    assert helper.get("/api/v1/status")["failed_logins"]["top"] == []
