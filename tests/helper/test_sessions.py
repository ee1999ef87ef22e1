"""Sessions: a real helper polls the Plex emulator, judges who streams from where, stops a stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plex_security_helper.config import SessionsConfig
from plex_security_helper.demo.plexemu import EmuSession, PlexState
from plex_security_helper.model import Alert
from plex_security_helper.plex.sessions import SessionJudge, Stream, country_km, parse_sessions
from tests.geodata import country_mmdb
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexemu_thread import running_emulator

PLEX_TOKEN = "plex-owner-token-0123"


@pytest.fixture
def plex(tmp_path: Path, socket_enabled: None) -> Iterator[tuple[PlexState, HelperProcess]]:
    state = PlexState(token=PLEX_TOKEN)
    with running_emulator(state) as url:
        mmdb = country_mmdb(tmp_path / "countries.mmdb")  # documentation ranges: DE, US, JP, AU
        helper = HelperProcess(
            tmp_path / "helper",
            extra_config=(
                f'[audit]\nplex_url = "{url}"\nplex_token = "{PLEX_TOKEN}"\ndocker = false\nhost = false\n'
                f'[geo]\nmmdb = ["{mmdb}"]\n'
                "[sessions]\ninterval = 1\nmax_remote_streams_per_user = 2\n"
            ),
        )
        helper.root.mkdir()
        helper.start()
        try:
            yield state, helper
        finally:
            helper.stop()


def _alerts(helper: HelperProcess, after: int, kind: str) -> tuple[list[dict[str, Any]], int]:
    """Long-poll until an alert of *kind* arrives after *after* (bounded); all of them and the cursor."""
    found: list[dict[str, Any]] = []
    cursor = after
    for _ in range(10):
        body = helper.get(f"/api/v1/alerts?after={cursor}&wait=5")
        found += body["alerts"]
        cursor = body["last_seq"]
        if any(a["kind"] == kind for a in found):
            break
    return found, cursor


def _sessions(helper: HelperProcess, predicate: Any) -> dict[str, Any]:
    spec = helper.get("/api/v1/openapi.json")
    for _ in range(100):
        body: dict[str, Any] = helper.get("/api/v1/sessions")
        validate_response(spec, "/api/v1/sessions", 200, body)
        if predicate(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"sessions never matched: {body}")


def test_a_user_from_a_second_country(plex: tuple[PlexState, HelperProcess]) -> None:
    state, helper = plex
    state.sessions = [EmuSession("s-home", "alice", "192.0.2.10")]  # DE
    first = _sessions(helper, lambda b: b["available"] and b["sessions"])
    assert first["sessions"][0]["country"] == "DE" and first["remote"] == 1
    last = helper.get("/api/v1/alerts")["last_seq"]
    state.sessions = [EmuSession("s-away", "alice", "203.0.113.9", product="Plex for Android")]  # JP
    alerts, _ = _alerts(helper, last, "new_country")
    kinds = {a["kind"]: a for a in alerts}
    assert kinds["new_country"]["detail"]["country"] == "JP"
    assert kinds["new_country"]["detail"]["known_countries"] == ["DE"]
    assert kinds["new_country"]["detail"]["user"] == "alice" and kinds["new_country"]["ip"] == "203.0.113.9"
    travel = kinds["impossible_travel"]["detail"]
    assert (travel["previous_country"], travel["country"]) == ("DE", "JP") and travel["km"] > 5000
    assert kinds["new_country"]["detail"]["verdict"] == "watch"
    assert helper.get("/api/v1/bans")["bans"] == []  # a signed-in user is never banned for it
    status = helper.get("/api/v1/status")
    validate_response(helper.get("/api/v1/openapi.json"), "/api/v1/status", 200, status)
    (latest,) = status["sessions"]["users"]  # each user's latest country, for Home Assistant
    assert (latest["user"], latest["country"]) == ("alice", "JP")


def test_three_remote_streams_with_a_limit_of_two(plex: tuple[PlexState, HelperProcess]) -> None:
    state, helper = plex
    state.sessions = [
        EmuSession("b1", "bob", "198.51.100.1"),
        EmuSession("b2", "bob", "198.51.100.2"),
        EmuSession("b3", "bob", "203.0.113.3"),
        EmuSession("b4", "bob", "192.168.1.20", local=True),  # at home: not counted
        EmuSession("c1", "carol", "192.0.2.30"),
    ]
    alerts, _ = _alerts(helper, 0, "account_sharing")
    sharing = [a for a in alerts if a["kind"] == "account_sharing"]
    assert len(sharing) == 1
    detail = sharing[0]["detail"]
    assert (detail["user"], detail["streams"], detail["limit"]) == ("bob", 3, 2)
    assert detail["addresses"] == ["198.51.100.1", "198.51.100.2", "203.0.113.3"]
    body = _sessions(helper, lambda b: len(b["sessions"]) == 5)
    assert (body["remote"], body["local"]) == (4, 1)


def test_two_remote_streams_are_within_the_limit(plex: tuple[PlexState, HelperProcess]) -> None:
    state, helper = plex
    state.sessions = [EmuSession("d1", "dave", "198.51.100.1"), EmuSession("d2", "dave", "198.51.100.2")]
    first = _sessions(helper, lambda b: len(b["sessions"]) == 2)
    _sessions(helper, lambda b: b["updated"] > first["updated"])  # at least one more poll
    assert not [a for a in helper.get("/api/v1/alerts?wait=1")["alerts"] if a["kind"] == "account_sharing"]


def test_stop_a_stream_through_the_api(plex: tuple[PlexState, HelperProcess]) -> None:
    state, helper = plex
    state.sessions = [EmuSession("s-stop", "eve", "198.51.100.50")]
    _sessions(helper, lambda b: b["sessions"])
    status, body = helper.call("POST", "/api/v1/sessions/s-stop/stop", {"message": "Sharing is not allowed."})
    assert (status, body) == (200, {"stopped": "s-stop", "message": "Sharing is not allowed."})
    assert state.terminated == {"s-stop": "Sharing is not allowed."}
    assert state.sessions == []
    assert helper.call("POST", "/api/v1/sessions/s-stop/stop", {"message": "again"})[0] == 404
    assert helper.call("POST", "/api/v1/sessions/bad%20id/stop", {})[0] == 400
    assert helper.call("POST", "/api/v1/sessions/x/stop", {"message": "x" * 201})[0] == 400
    assert helper.call("POST", "/api/v1/sessions/x/stop", {"message": "hi", "more": 1})[0] == 400
    assert PLEX_TOKEN not in str(helper.get("/api/v1/sessions")) + str(helper.get("/api/v1/status"))


def test_both_answer_shapes_parse() -> None:
    xml = (
        b'<?xml version="1.0"?><MediaContainer size="1"><Video sessionKey="1" title="Film" type="movie">'
        b'<User id="3" title="frank"/><Player address="192.0.2.4" local="0" product="Plexamp" state="playing"/>'
        b'<Session id="abc" bandwidth="900" location="wan"/><TranscodeSession videoDecision="transcode"/>'
        b'</Video><Video><User title="no-session"/></Video></MediaContainer>'
    )
    (stream,) = parse_sessions(xml, "text/xml")
    assert (stream.user, stream.address, stream.remote, stream.bandwidth, stream.transcode) == (
        "frank",
        "192.0.2.4",
        True,
        900,
        "transcode",
    )
    with pytest.raises(Exception, match="declarations"):
        parse_sessions(b'<!DOCTYPE x [<!ENTITY a "b">]><MediaContainer/>', "text/xml")


def _s(sid: str, user: str, ip: str, country: str | None, *, local: bool = False, hosting: str | None = None) -> Stream:
    return Stream(
        session_id=sid,
        user=user,
        user_id=None,
        address=ip,
        local=local,
        location="lan" if local else "wan",
        product="Plex Web",
        platform="Chrome",
        device="PC",
        player="Chrome",
        machine_identifier="m",
        state="playing",
        bandwidth=None,
        transcode=None,
        title="x",
        country=country,
        hosting=hosting,
    )


def kinds(alerts: list[Alert]) -> list[str]:
    return sorted(a.kind for a in alerts)


def test_the_judge_learns_first_alerts_once_and_tells_sharing_from_travel() -> None:
    judge = SessionJudge(SessionsConfig(max_remote_streams_per_user=2, travel_hours=6, travel_km=2000))
    # A new user's first streams are learnt, even from two countries at once.
    alerts, seen = judge.judge([_s("1", "u", "192.0.2.1", "DE"), _s("2", "u", "203.0.113.1", "JP")], 0.0)
    assert alerts == [] and sorted(c for _, c, _, _ in seen) == ["DE", "JP"]
    # One place again: no travel from an unknown position, no new country.
    assert judge.judge([_s("1", "u", "192.0.2.1", "DE")], 60.0)[0] == []
    assert judge.judge([_s("1", "u", "192.0.2.1", "DE")], 120.0)[0] == []  # the same poll again: nothing
    # Japan an hour later: impossible travel; Japan is known, so no new country.
    assert kinds(judge.judge([_s("3", "u", "203.0.113.1", "JP")], 3600.0)[0]) == ["impossible_travel"]
    assert judge.judge([_s("3", "u", "203.0.113.1", "JP")], 3700.0)[0] == []  # said once
    # Australia a day later: a new country, but no longer impossible.
    assert kinds(judge.judge([_s("4", "u", "2001:db8::1", "AU")], 90_000.0)[0]) == ["new_country"]
    # Three remote streams (one at home does not count): sharing once, again after it ended.
    three = [_s(str(n), "v", f"198.51.100.{n}", "US") for n in range(3)] + [_s("h", "v", "10.0.0.2", None, local=True)]
    assert kinds(judge.judge(three, 100_000.0)[0]) == ["account_sharing"]
    assert judge.judge(three, 100_060.0)[0] == []
    assert judge.judge(three[:2], 100_120.0)[0] == []
    assert kinds(judge.judge(three, 100_180.0)[0]) == ["account_sharing"]
    # A hosting network: once per session.
    hosted = [_s("x", "w", "192.0.2.9", "DE", hosting="Hetzner")]
    assert kinds(judge.judge(hosted, 0.0)[0]) == ["hosting_stream"]
    assert judge.judge(hosted, 60.0)[0] == []


def test_country_distances() -> None:
    km = country_km("DE", "JP")
    assert km is not None and 8000 < km < 10_000
    assert country_km("DE", "AT") is not None and country_km("DE", "AT") < 1000  # type: ignore[operator]
    assert country_km("DE", "ZZ") is None


def test_a_users_countries_survive_a_restart(plex: tuple[PlexState, HelperProcess]) -> None:
    state, helper = plex
    state.sessions = [EmuSession("r1", "grace", "198.51.100.20")]  # US
    _sessions(helper, lambda b: b["sessions"] and b["sessions"][0]["country"] == "US")
    helper.stop()
    state.sessions = [EmuSession("r2", "grace", "2001:db8::20")]  # AU
    helper.start()
    alerts, _ = _alerts(helper, 0, "new_country")
    (alert,) = [a for a in alerts if a["kind"] == "new_country"]
    assert alert["detail"]["known_countries"] == ["US"] and alert["detail"]["country"] == "AU"
