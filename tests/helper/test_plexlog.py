"""The parser against annotated real-format lines, hostile ones included, and fuzzed input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plex_security_helper.logwatch.detect import is_failed_auth
from plex_security_helper.logwatch.join import RequestJoiner
from plex_security_helper.logwatch.plexlog import LogParser

SAMPLES = Path(__file__).parent / "samples" / "plex-access.log"


def load_samples(path: Path) -> list[tuple[int, dict[str, Any], str]]:
    """(line number, expectation, line) for every annotated line."""
    out: list[tuple[int, dict[str, Any], str]] = []
    expect: dict[str, Any] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# expect:"):
            expect = json.loads(line.removeprefix("# expect:"))
        elif line.startswith("#") or not line.strip():
            continue
        else:
            assert expect is not None, f"line {number} has no expectation"
            out.append((number, expect, line))
            expect = None
    return out


def test_every_annotated_line() -> None:
    samples = load_samples(SAMPLES)
    assert len(samples) >= 29
    parser = LogParser(ZoneInfo("UTC"))
    joiner = RequestJoiner()
    for number, expect, line in samples:
        rec = parser.parse(line)
        if expect["record"] is None:
            assert rec is None, f"line {number} should not parse: {rec}"
            continue
        assert rec is not None, f"line {number} should parse"
        for key, want in expect["record"].items():
            got = getattr(rec, key)
            assert got == want, f"line {number}: {key} is {got!r}, expected {want!r}"
        event = joiner.feed(rec)
        if rec.completed:
            assert event is not None
            assert is_failed_auth(event) == expect["failed_auth"], f"line {number}: failed_auth"
            assert event.ip == rec.ip
        else:
            assert "failed_auth" not in expect


def test_local_time_is_converted_to_utc() -> None:
    line = "Nov 20, 2026 08:00:01.250 [1] DEBUG - Request: [192.0.2.1:41000 (WAN)] GET / (1 live) GZIP"
    rec = LogParser(ZoneInfo("Europe/Amsterdam")).parse(line)
    assert rec is not None
    assert rec.time == datetime(2026, 11, 20, 7, 0, 1, 250000, tzinfo=UTC).timestamp()


@given(st.text(max_size=300))
def test_parser_never_raises_on_any_text(text: str) -> None:
    LogParser(ZoneInfo("UTC")).parse(text)


PREFIX = "Nov 20, 2026 08:00:01.000 [1] DEBUG - "


@given(
    st.sampled_from(["Request: [203.0.113.5:4000 (WAN)] GET ", "Completed: [203.0.113.5:4000] 401 GET "]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), min_size=1, max_size=200),
)
def test_no_address_but_the_bracket_field(head: str, path: str) -> None:
    """Whatever the client puts into the path, the record's address is the bracket's."""
    line = f"{PREFIX}{head}{path} (3 live) GZIP 0ms 1 bytes"
    rec = LogParser(ZoneInfo("UTC")).parse(line)
    assert rec is not None
    assert rec.ip == "203.0.113.5"
    assert rec.client is None


@pytest.mark.parametrize("bad", ["", "\x00" * 50, "Nov 20, 2026 08:00:01.000 [1] DEBUG - Request: [", "é" * 1000])
def test_garbage_is_not_an_access_line(bad: str) -> None:
    assert LogParser(ZoneInfo("UTC")).parse(bad) is None


def test_a_request_with_an_id_joins_a_completed_without_one() -> None:
    parser, joiner = LogParser(ZoneInfo("UTC")), RequestJoiner()
    request = f"{PREFIX}Request: [203.0.113.5:4000 (WAN)] GET /library/sections (1 live) #a1 GZIP"
    completed = f"{PREFIX}Completed: [203.0.113.5:4000] 401 GET /library/sections (1 live) GZIP 0ms 1 bytes"
    other = "Nov 20, 2026 08:00:01.000 [1] DEBUG - Request: [203.0.113.6:4000 (Subnet)] GET / (1 live) #a2 GZIP"
    for line in (request, other):
        rec = parser.parse(line)
        assert rec is not None
        assert joiner.feed(rec) is None
    done = parser.parse(completed)
    assert done is not None
    event = joiner.feed(done)
    assert event is not None
    assert (event.net_class.value, event.ip) == ("WAN", "203.0.113.5")  # not the other client's class
    assert is_failed_auth(event)


REAL = Path(__file__).parent / "samples" / "real-lines.log"


def test_real_public_lines_parse_as_annotated() -> None:
    """Lines people posted publicly (sources named in the file), 2014 to 2026, every shape."""
    samples = load_samples(REAL)
    assert len(samples) >= 100
    sources = [line for line in REAL.read_text(encoding="utf-8").splitlines() if line.startswith("# source:")]
    assert len(sources) >= 10
    parser = LogParser(ZoneInfo("UTC"))
    parsed = 0
    for number, expect, line in samples:
        rec = parser.parse(line)
        if expect["record"] is None:
            assert rec is None, f"line {number} should not parse: {rec}"
            continue
        assert rec is not None, f"line {number} should parse: {line}"
        parsed += 1
        for key, want in expect["record"].items():
            assert getattr(rec, key) == want, f"line {number}: {key} is {getattr(rec, key)!r}, expected {want!r}"
    assert parsed >= 60


@given(
    st.sampled_from(
        [
            "Request: [203.0.113.5:4000 (WAN)] GET ",
            "Completed: [203.0.113.5:4000] 401 GET ",
            "Request: [[2001:db8::5]:4000 (Allowed Network (WAN))] PUT ",
        ]
    ),
    st.text(alphabet=st.sampled_from(list("/ab?&=%#()0123456789 live-SignedTokn")), min_size=1, max_size=60),
    st.sampled_from(
        [
            " (3 live) #a1 GZIP 0ms 1 bytes",
            " (3 live) #a1 GZIP 0ms 1 bytes (4 live) 0ms 1 bytes",
            " (3 live) GZIP Signed-in Token (u) / X => (1 live)",
            "",
        ]
    ),
)
def test_the_fast_expression_agrees_with_the_general_one(head: str, path: str, tail: str) -> None:
    """Where the fast form (paths without spaces) matches, the general form matches the same way."""
    from plex_security_helper.logwatch.plexlog import _LINE, _LINE_FAST

    line = f"{PREFIX}{head}{path}{tail}"
    fast = _LINE_FAST.match(line)
    # The parser's condition for the fast form: a Completed line with no marker after the match.
    if fast is not None and (fast.group(12) is None or line.find(" live)", fast.end()) < 0):
        general = _LINE.match(line)
        assert general is not None and general.groups() == fast.groups()
