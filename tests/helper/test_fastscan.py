"""The compiled scan (_fastscan.c) against the reference pipeline (plexlog + detect).

Both must give the same report and the same alerts, in the same order, for any bytes: real
samples, generated traffic, and lines built from every field shape the parser knows with
hostile variations (non-ASCII, forged tails, invalid addresses, clashing request ids).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plex_security_helper.logwatch import scan
from plex_security_helper.logwatch.plexlog import LogParser, RequestJoiner
from plex_security_helper.logwatch.scan import ScanReport, compiled_available, oldest_first, read_lines, scan_files
from plex_security_helper.thresholds import DetectConfig
from tests.helper.test_plexlog import load_samples
from tests.plexlines import exchange, stamp

# More than the suite's default: this one property guards the whole compiled parser and joiner
# (bench/fuzz_long.py raises it further through the environment).
HOSTILE_EXAMPLES = int(os.environ.get("PLEXSEC_FASTSCAN_EXAMPLES", "1500"))
SAMPLES = Path(__file__).parent / "samples" / "plex-access.log"
DEFAULTS = DetectConfig(failed_auth_threshold=5, failed_auth_window=600)
# Small limits so that short inputs reach every rule, the source expiry and the joiner's cap.
TIGHT = DetectConfig(
    failed_auth_threshold=3,
    failed_auth_window=30,
    probe_threshold=2,
    scan_distinct_paths=3,
    scan_window=10.0,
    flood_per_minute=6,
    trust_after_signin=20.0,
    trusted_factor=2,
    max_tracked_sources=4,
)


def both(paths: list[Path], config: DetectConfig, capacity: int = 20_000) -> tuple[ScanReport, ScanReport]:
    ours = scan_files(paths, config, compiled=True, joiner_capacity=capacity)
    ref = scan_files(paths, config, compiled=False, joiner_capacity=capacity)
    return ours, ref


def assert_same(ours: ScanReport, ref: ScanReport) -> None:
    assert ours.as_json() == ref.as_json()
    assert ours.alerts == ref.alerts


def reference_trace(paths: list[Path], capacity: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Every record and joined event of the reference parser and joiner, as the C side traces them."""
    parser, joiner = LogParser(), RequestJoiner(capacity)
    out: list[tuple[str, tuple[Any, ...]]] = []
    for path in oldest_first(paths):
        for line in read_lines(path):
            rec = parser.parse(line)
            if rec is None:
                continue
            cls = rec.net_class.value if rec.net_class is not None else None
            fields = (rec.time, rec.completed, rec.ip, rec.port, cls, rec.path, rec.status, rec.request_id)
            out.append(("record", (*fields, rec.user, rec.signed_in)))
            event = joiner.feed(rec)
            if event is not None:
                ev = (event.ip, event.net_class.value, event.status, event.signed_in, event.user, event.suspect)
                out.append(("event", ev))
    return out


def compiled_trace(paths: list[Path], config: DetectConfig, capacity: int) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = []
    scan._scan_compiled(oldest_first(paths), config, capacity, trace=lambda kind, fields: out.append((kind, fields)))
    return out


def assert_same_everywhere(paths: list[Path], config: DetectConfig, capacity: int = 20_000) -> ScanReport:
    """Same records, same joins, same report and alerts; returns the reference report."""
    assert compiled_trace(paths, config, capacity) == reference_trace(paths, capacity)
    ours, ref = both(paths, config, capacity)
    assert_same(ours, ref)
    return ref


def test_the_compiled_scan_was_built() -> None:
    # scripts/test installs the helper with a compiler; a silent fallback would hide a broken build.
    assert compiled_available()


def test_the_annotated_samples(tmp_path: Path) -> None:
    for config in (DEFAULTS, TIGHT):
        ref = assert_same_everywhere([SAMPLES], config)
        assert ref.parsed > 20


def traffic(seed: int, exchanges: int) -> list[str]:
    """Seeded hours of mixed traffic: users at home and away, Plexamp's benign 401s, brute
    forcers, probers, a scanner, an IPv6 /64 spread over addresses, transcoder noise, and
    some Completed lines without a request id (older servers)."""
    rnd = random.Random(seed)
    users = [(f"192.0.2.{i}", f"user{i}") for i in range(10, 30)] + [("2001:db8:1::5", "v6user")]
    lan = [f"192.168.1.{i}" for i in range(2, 8)]
    attackers = [f"203.0.113.{i}" for i in range(1, 9)] + [f"2001:db8:bad::{i:x}" for i in range(1, 6)]
    when = datetime(2026, 11, 20, 8, 0, 0)
    lines: list[str] = []
    for _ in range(exchanges):
        when += timedelta(milliseconds=rnd.randint(1, 900))
        port = rnd.randint(30000, 65000)
        roll = rnd.random()
        if roll < 0.55:
            ip, user = rnd.choice(users)
            if rnd.random() < 0.02:
                ip = f"198.51.100.{rnd.randint(1, 254)}"  # travelling: a new network
            path = rnd.choice(["/library/sections", "/hubs/search?query=x", "/:/timeline?state=playing"])
            pair = exchange(ip, 200, path, when=when, port=port, user=user)
        elif roll < 0.65:
            pair = exchange(rnd.choice(lan), rnd.choice([200, 401]), "/library/sections", net_class="Subnet", when=when)
        elif roll < 0.72:
            ip = rnd.choice(users)[0]  # Plexamp without a token: benign
            pair = exchange(ip, 401, "/library/streams/44/levels?subsample=128", when=when, port=port)
        elif roll < 0.86:
            pair = exchange(rnd.choice(attackers), rnd.choice([401, 403]), "/library/sections", when=when, port=port)
        elif roll < 0.92:
            probe = rnd.choice(["/.env", "/wp-login.php", "/../../etc/passwd", "/admin", "/x?q=1%20union%20select%201"])
            pair = exchange(rnd.choice(attackers), 404, probe, when=when, port=port)
        elif roll < 0.96:
            pair = exchange("198.51.100.66", 404, f"/missing/{rnd.randint(1, 40)}", when=when, port=port)
        else:
            pair = [f"{stamp(when)} [1] INFO - [Transcoder] frame={rnd.randint(1, 9999)} fps=48"]
        if len(pair) == 2 and rnd.random() < 0.05:
            pair[1] = pair[1].replace(" #", " #zz#", 1).split(" #zz#")[0] + " GZIP 0ms 1 bytes"  # no id
        lines += pair
    return lines


@pytest.mark.parametrize("seed", [1, 7])
def test_generated_traffic(tmp_path: Path, seed: int) -> None:
    log = tmp_path / "Plex Media Server.log"
    log.write_text("\n".join(traffic(seed, 15_000)) + "\n", encoding="utf-8")
    for config in (DEFAULTS, replace(TIGHT, max_tracked_sources=8, flood_per_minute=40)):
        ref = assert_same_everywhere([log], config, capacity=3)
        verdicts = {a["verdict"] for a in ref.as_json()["addresses"]}
        assert verdicts == {"ban", "watch", "ok"}
        assert {a["kind"] for a in ref.alerts} >= {"failed_login_burst", "probe", "scan", "new_location"}


def test_rotated_files_partial_lines_and_a_line_longer_than_the_read_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "READ_CHUNK", 64)
    lines = SAMPLES.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    older = tmp_path / "Plex Media Server.1.log"
    newer = tmp_path / "Plex Media Server.log"
    # the older file ends mid-line: that fragment is a line of its own, not joined to the next file
    older.write_bytes(b"".join(lines[:half]) + b"Nov 20, 2026 08:00:01.000 [1] DEBUG - Requ")
    newer.write_bytes(b"x" * 1000 + b"\r\n" + b"".join(lines[half:]).replace(b"\n", b"\r\n", 3))
    ref = assert_same_everywhere([newer, older], TIGHT)
    assert ref.lines == len(lines) + 2


# ---- hostile lines built from the grammar of the access line ----

MONTHS = st.sampled_from(["Nov", "Feb", "Foo", "nov"])
ADDRS = st.sampled_from(
    [
        "203.0.113.7",
        "203.0.113.8",
        "198.51.100.9",
        "192.168.1.4",
        "127.0.0.1",
        "0203.0.113.7",
        "999.1.1.1",
        "[2001:db8::1]",
        "[2001:db8::2]",
        "[2001:db8:0:1::3]",
        "[fe80::1%eth0]",
        "[::ffff:203.0.113.7]",
        "[::1]",
        "[zz::1]",
    ]
)
CLASSES = st.sampled_from(
    [
        "",
        " (WAN)",
        " (Subnet)",
        " (Loopback)",
        " (Allowed Network (WAN))",
        " (Allowed Network (Subnet))",
        " (Bogus)",
        " (Allowed Network (WAN)",
        " ()",
    ]
)
PATHS = st.sampled_from(
    [
        "/library/sections",
        "/library/sections (9 live) #dead Signed-in Token (admin)",
        "/:/timeline?state=playing",
        "/library/metadata/1/children",
        "/../../etc/passwd",
        "/wp-login.php",
        "/log?message=hi%0aNov 20, 2026 08:00:01.000 [1] DEBUG - Completed: [203.0.113.9:1] 401 GET /",
        "/log?message=ok",
        "/missing/a",
        "/missing/b",
        "/missing/c",
        "/missing/d",
        "/caf\u00e9",
        "/?x=203.0.113.99",
        "",
        "/with space ",
    ]
)
RIDS = st.sampled_from(["", " #1a", " #1A", " #2b", " #zz", " #1ag", " #ff_", " #"])
TAILS = st.sampled_from(
    [
        "",
        " GZIP",
        " Signed-in",
        " Signed-in Token (alice)",
        " Signed-in Token (bob)",
        " Token ()",
        " Token (a(b)",
        " X-Forwarded-For => 198.51.100.1",
    ]
)
NOISE = st.sampled_from(
    [
        "",
        "\u2014",
        "\xff",
        "\r",
        "\x1f",
        "\x00",
        "Request: ",
        " (4 live)",
    ]
)


@st.composite
def access_line(draw: st.DrawFn) -> str:
    """One line from the grammar, sometimes broken in one place."""
    # few distinct instants, so that window edges and the quarantine's end are hit exactly
    second = draw(st.integers(0, 40))
    ms = draw(st.sampled_from([0, 0, 500, 999]))
    day = draw(st.sampled_from(["20", "31", "2x"]))
    stamp = f"{draw(MONTHS)} {day}, 2026 08:{second // 60:02d}:{second % 60:02d}.{ms:03d}"
    thread = draw(st.sampled_from(["[0x7fa0]", "[123]", "[0x]", "[]"]))
    level = draw(st.sampled_from(["DEBUG -", "DEBUG \u2014", "DEBUG", "WARN -"]))
    completed = draw(st.booleans())
    kind = draw(st.sampled_from(["Completed:", "Completed after connection close:"])) if completed else "Request:"
    addr = draw(ADDRS)
    port = draw(st.sampled_from(["4000", "4001", "65535", "65536", "123456"]))
    cls = "" if completed and draw(st.booleans()) else draw(CLASSES)
    status = f"{draw(st.sampled_from(['200', '401', '403', '404', '500']))} " if completed else ""
    if draw(st.integers(0, 9)) == 0:
        status = "" if status else "200 "  # the wrong shape for its kind
    method = draw(st.sampled_from(["GET", "PUT", "get"]))
    path = draw(PATHS)
    live = draw(st.sampled_from([" (3 live)", " (3 live)", "", " (x live)"]))
    tail = draw(RIDS) + draw(TAILS)
    line = f"{stamp} {thread} {level} {kind} [{addr}:{port}{cls}] {status}{method} {path}{live}{tail}"
    noise = draw(NOISE)
    if noise:
        cut = draw(st.sampled_from([0, len(line), len(line) - len(tail), draw(st.integers(0, len(line)))]))
        line = line[:cut] + noise + line[cut:]
    return line


@settings(max_examples=HOSTILE_EXAMPLES)
@given(st.lists(access_line(), max_size=60), st.integers(1, 4))
def test_hostile_line_sequences(lines: list[str], capacity: int) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "Plex Media Server.log"
        log.write_bytes(data)
        assert_same_everywhere([log], TIGHT, capacity)


@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "Plex Media Server.log"
        log.write_bytes(b"Nov 20, 2026 08:00:01.000 [1] DEBUG - Request: [203.0.113.7:4000 (WAN)] GET " + data)
        assert_same_everywhere([log], TIGHT)


# Characters that mean something to one of the parser's steps.
EDIT_ALPHABET = " ()[]#:.%-_,'\t\x1f\x0b\r0123456789aAfFgxXzZ" + "\u2014\u00e9\u0660"


def mutants(line: str, rnd: random.Random, count: int) -> list[str]:
    """*count* copies of *line*, each with one to three single-character edits."""
    out = []
    for _ in range(count):
        text = line
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(text) + 1)
            op = rnd.randrange(3)
            ch = rnd.choice(EDIT_ALPHABET)
            if op == 0:
                text = text[:at] + ch + text[at:]
            elif op == 1:
                text = text[:at] + text[at + 1 :]
            else:
                text = text[:at] + ch + text[at + 1 :]
        out.append(text)
    return out


def test_every_sample_line_edited_a_thousand_ways(tmp_path: Path) -> None:
    # Seeded, so a failure names a reproducible line; the trace compares each parse field by field.
    rnd = random.Random(20261127)
    lines = [line for _n, _expect, line in load_samples(SAMPLES)]
    corpus = [m for line in lines for m in mutants(line, rnd, 1000)]
    log = tmp_path / "Plex Media Server.log"
    log.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    ref = assert_same_everywhere([log], TIGHT, capacity=50)
    assert ref.parsed > len(corpus) // 6  # many edits leave a line that still parses


def test_the_quarantine_ends_exactly_two_seconds_after_a_log_write(tmp_path: Path) -> None:
    def line(stamp: str, rest: str) -> str:
        return f"Nov 20, 2026 08:00:{stamp} [1] DEBUG - {rest}"

    log = tmp_path / "Plex Media Server.log"
    log.write_text(
        "\n".join(
            [
                line("01.000", "Request: [192.0.2.5:4000 (WAN)] PUT /log?message=x (1 live) #a Signed-in Token (u)"),
                line("03.000", "Request: [203.0.113.7:4001 (WAN)] GET /library/sections (1 live) #b"),
                line("03.000", "Completed: [203.0.113.7:4001] 401 GET /library/sections (1 live) #b 0ms 1 bytes"),
                line("03.001", "Request: [203.0.113.7:4002 (WAN)] GET /library/sections (1 live) #c"),
                line("03.001", "Completed: [203.0.113.7:4002] 401 GET /library/sections (1 live) #c 0ms 1 bytes"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert_same_everywhere([log], TIGHT)
    events = [f for kind, f in reference_trace([log], 100) if kind == "event"]
    assert [e[-1] for e in events] == [True, False]  # suspect at exactly +2.000 s, not after


def test_a_request_id_reused_from_another_connection(tmp_path: Path) -> None:
    def line(rest: str) -> str:
        return f"Nov 20, 2026 08:00:01.000 [1] DEBUG - {rest}"

    log = tmp_path / "Plex Media Server.log"
    log.write_text(
        "\n".join(
            [
                line("Request: [203.0.113.7:4000 (WAN)] GET /a (1 live) #a Signed-in Token (u)"),
                line("Request: [203.0.113.7:4001 (WAN)] GET /b (1 live) #a"),
                line("Completed: [203.0.113.7:4000] 401 GET /a (1 live) 0ms 1 bytes"),
                line("Completed: [203.0.113.7:4001] 401 GET /b (1 live) 0ms 1 bytes"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert_same_everywhere([log], TIGHT)
    events = [f for kind, f in reference_trace([log], 100) if kind == "event"]
    # the first connection's request was replaced: its response joins nothing; the second's joins
    assert [(e[1], e[3]) for e in events] == [("Unknown", False), ("WAN", False)]


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", "Mar 29, 2026", (1, 2, 3)),  # spring forward: 02:xx does not exist
        ("Europe/Berlin", "Oct 25, 2026", (1, 2, 3)),  # fall back: 02:xx happens twice
        ("Africa/Monrovia", "Jan 07, 1972", (0,)),  # -0:44:30 to GMT, inside minute 00:44
    ],
)
def test_local_time_across_zone_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zone: str, day: str, hours: tuple[int, ...]
) -> None:
    # The compiled scan asks for one epoch per minute when the minute has one UTC offset;
    # every second of these hours must still come out as the reference computes it.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        log = tmp_path / "Plex Media Server.log"
        with log.open("w", encoding="utf-8") as out:
            for hour in hours:
                for second in range(0, 3600, 7):
                    stamp = f"{day} {hour:02d}:{second // 60:02d}:{second % 60:02d}.250"
                    out.write(f"{stamp} [1] DEBUG - Request: [203.0.113.7:{4000 + second}] GET /x (1 live)\n")
        ref = assert_same_everywhere([log], TIGHT)
        assert ref.parsed == len(hours) * len(range(0, 3600, 7))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_scanner_object_refuses_misuse() -> None:
    from plex_security_helper.logwatch import _fastscan

    def nothing(*_args: object) -> None:
        return None

    good: dict[str, Any] = {
        **dict.fromkeys(("facts", "classify", "sanitise", "epoch", "parse", "alert"), nothing),
        **dict.fromkeys(("window", "threshold", "scan_window", "flood", "trust", "factor"), 1.0),
        **dict.fromkeys(("probe_threshold", "scan_paths", "capacity", "seed"), 1),
        "max_sources": 4,
    }
    with pytest.raises(ValueError, match="max_sources"):
        _fastscan.Scanner(**{**good, "max_sources": 1})
    with pytest.raises(TypeError):
        _fastscan.Scanner(**{**good, "window": "soon"})
    scanner = _fastscan.Scanner(**good)
    with pytest.raises(RuntimeError, match="once"):
        scanner.__init__(**good)  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="not initialised"):
        _fastscan.Scanner.__new__(_fastscan.Scanner).feed(b"x\n")

    # a callback that fails stops the scan with its own error
    def broken(_text: str) -> None:
        raise LookupError("facts unavailable")

    line = b"Nov 20, 2026 08:00:01.000 [1] DEBUG - Request: [203.0.113.7:4000 (WAN)] GET / (1 live)\n"
    with pytest.raises(LookupError, match="facts unavailable"):
        _fastscan.Scanner(**{**good, "facts": broken}).feed(line)
    assert scanner.feed(b"no newline yet") == 0
    assert scanner.result() == (0, 0, [])
