"""The fleet's pure parts (CrowdSec's shapes both ways), its config, its outbox, and its API face."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plex_security_helper.config import (
    ConfigError,
    CrowdsecConfig,
    FirewallConfig,
    default_config_text,
    parse_config,
)
from plex_security_helper.firewall.enforcer import Enforcer
from plex_security_helper.firewall.targets import InvalidTarget, parse_target
from plex_security_helper.fleet.decisions import (
    ENFORCE_PROXY,
    OP_ALERT,
    ban_item,
    decision_item,
    go_duration,
    lapi_alert,
    parse_decision,
)
from plex_security_helper.fleet.lapi import Lapi
from plex_security_helper.fleet.stream import StreamBouncer
from plex_security_helper.model import Alert, Ban, Origin
from plex_security_helper.store import OutboxItem, Store
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess, free_port
from tests.plexlines import failed_login

# Required properties of LAPI's swagger definitions (pkg/models/localapi_swagger.yaml, 1.4.6).
SWAGGER_REQUIRED = {
    "Alert": {
        "scenario", "scenario_hash", "scenario_version", "message", "events_count", "start_at", "stop_at",
        "capacity", "leakspeed", "simulated", "events", "source",
    },
    "Source": {"scope", "value"},
    "Decision": {"origin", "type", "scope", "value", "duration", "scenario"},
    "Event": {"timestamp", "meta"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600s", 3600), ("59m59.5s", 3599.5), ("1h2m3s", 3723), ("-8.28ms", -0.00828), ("250us", 0.00025), ("0", 0)],
)
def test_go_durations_as_lapi_writes_them(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1d", "s", "1h x", "3600", "1.2.3s", "-", "9" * 70 + "s"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        go_duration(text)


def _alert(kind: str = "failed_login_burst") -> Alert:
    now = time.time()
    paths = ["/library/sections", "/\x1b[31mevil\nline", *[f"/p{i}" for i in range(10)]]
    detail = {"verdict": "ban", "sample_paths": paths, "window_s": 600}
    return Alert(kind, "203.0.113.9", now, now - 30, now, 7, 50, detail, seq=4)


def test_a_detector_ban_becomes_a_swagger_shaped_alert_with_its_decision() -> None:
    now = time.time()
    ban = Ban("203.0.113.9", now, now + 3600, "failed_login_burst: 7 in 600 s", "detector", 1, True)
    item = ban_item(ban, _alert(), "helper-a")
    alert = lapi_alert(item.body, now + 10)
    assert alert is not None
    assert SWAGGER_REQUIRED["Alert"] <= set(alert)
    assert SWAGGER_REQUIRED["Source"] <= set(alert["source"])
    assert alert["source"] == {"scope": "Ip", "value": "203.0.113.9", "ip": "203.0.113.9"}
    [decision] = alert["decisions"]
    assert SWAGGER_REQUIRED["Decision"] <= set(decision)
    assert (decision["scenario"], decision["duration"], decision["type"]) == (
        "plex-security/failed_login_burst",
        "3590s",
        "ban",
    )
    assert alert["events_count"] == 7
    # A few evidence lines, control characters gone (they came from a client).
    assert len(alert["events"]) == 5
    assert all(SWAGGER_REQUIRED["Event"] <= set(e) for e in alert["events"])
    values = [m["value"] for e in alert["events"] for m in e["meta"]]
    assert "/?[31mevil?line" in values
    assert all(v.isprintable() for v in values)
    # Run out while LAPI was away: nothing to send.
    assert lapi_alert(item.body, now + 3600) is None


def test_a_manual_range_ban_for_the_proxy_names_its_origin_and_where_to_enforce() -> None:
    now = time.time()
    item = decision_item(
        parse_target("198.51.100.0/24"),
        until=now + 600,
        reason="seen through the proxy",
        origin="manual",
        kind=None,
        helper_id="h",
        enforce_at=ENFORCE_PROXY,
    )
    alert = lapi_alert(item.body, now)
    assert alert is not None
    assert alert["source"] == {"scope": "Range", "value": "198.51.100.0/24", "range": "198.51.100.0/24"}
    assert alert["decisions"][0]["scope"] == "Range"
    assert alert["scenario"] == "plex-security/manual"
    assert {"key": "enforce_at", "value": "proxy"} in alert["meta"]


def test_stream_entries_are_validated_and_sorted_by_origin() -> None:
    now = 1000.0
    entry = {"id": 7, "origin": "CAPI", "scenario": "ssh-bf", "scope": "Ip", "type": "ban", "value": "192.0.2.4"}
    decision = parse_decision({**entry, "duration": "1h"}, now)
    assert decision is not None
    assert (decision.origin, decision.expires, decision.target.text) == (Origin.COMMUNITY, 4600.0, "192.0.2.4")
    cscli = parse_decision({**entry, "origin": "cscli", "duration": "10m"}, now)
    assert cscli is not None and cscli.origin is Origin.FLEET
    assert parse_decision({**entry, "type": "captcha", "duration": "1h"}, now) is None
    assert parse_decision({**entry, "scope": "Username", "value": "bob", "duration": "1h"}, now) is None
    with pytest.raises(InvalidTarget):
        parse_decision({**entry, "value": "192.0.2.4; drop table", "duration": "1h"}, now)
    with pytest.raises(ValueError, match="id"):
        parse_decision({**entry, "id": "7", "duration": "1h"}, now)


BASE = {
    "helper": {"id": "h"},
    "api": {"token": "x" * 20},
    "monitor": {"log_path": "plex.log"},
    "storage": {"database": "state.db"},
}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"lapi_url": "ftp://lapi:8080"}, "http"),
        ({"lapi_url": "http://lapi:8080"}, "push"),
        ({"lapi_url": "http://lapi:8080", "password": "secret-secret"}, "machine_id"),
        ({"lapi_url": "http://lapi:8080", "machine_id": "a b", "password": "secret-secret"}, "machine"),
        ({"lapi_url": "http://lapi:8080", "bouncer_key": "short"}, "bouncer_key"),
        ({"lapi_url": "http://lapi:8080", "machine_id": "plex-a"}, "needs password"),
        ({"lapi_url": "http://lapi:8080", "machine_id": "a", "tls_cert": "c.pem"}, "tls_key"),
        ({"lapi_url": "http://lapi:8080", "bouncer_key": "k" * 32, "stream_interval": 0}, "stream_interval"),
    ],
)
def test_bad_crowdsec_sections_are_refused_with_the_place(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, "crowdsec": section}, Path("/etc/plex-security"))


def test_a_crowdsec_section_enables_push_and_pull_and_init_writes_it_commented() -> None:
    section = {"lapi_url": "http://lapi:8080/", "machine_id": "plex-a", "password": "p" * 16, "bouncer_key": "k" * 32}
    config = parse_config({**BASE, "crowdsec": section}, Path("/etc/plex-security")).crowdsec
    assert config is not None
    assert (config.lapi_url, config.push, config.pull, config.stream_interval) == ("http://lapi:8080", True, True, 10)
    assert "p" * 16 not in repr(config) and "k" * 32 not in repr(config)
    text = default_config_text(token="t" * 20, log_path="plex.log", database="state.db")
    assert "# [crowdsec]" in text and "# bouncer_key" in text


def test_the_outbox_keeps_messages_across_a_reopen_until_they_are_done(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    now = time.time()
    ban = Ban("203.0.113.5", now, now + 600, "r", "manual", 1, False)
    store.put_bans([ban], [ban_item(ban, None, "h")], now)
    store.add_outbox([OutboxItem(op="delete", body={"target": "203.0.113.6"})], now)
    store.close()

    store = Store(tmp_path / "state.db")
    due = store.outbox_due(now, 10)
    assert [(i.op, i.body["target"]) for i in due] == [(OP_ALERT, "203.0.113.5"), ("delete", "203.0.113.6")]
    store.outbox_retry([due[0].id], now + 30, "LAPI unreachable")
    assert [i.op for i in store.outbox_due(now + 1, 10)] == ["delete"]
    assert store.outbox_stats()[0] == 2
    store.outbox_done([i.id for i in due])
    assert store.outbox_stats() == (0, None, None)


@pytest.fixture
def fleet_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    """A monitor-mode helper whose LAPI is a port nothing listens on."""
    section = (
        f'[crowdsec]\nlapi_url = "http://127.0.0.1:{free_port()}"\nmachine_id = "plex-a"\n'
        'password = "not-a-real-password"\nretry_max = 1\n'
    )
    proc = HelperProcess(tmp_path / "helper", extra_config='[firewall]\nmode = "monitor"\n' + section)
    proc.start()
    yield proc
    proc.stop()


def test_bans_wait_in_the_outbox_while_lapi_is_unreachable_and_status_says_so(fleet_helper: HelperProcess) -> None:
    for port in range(41000, 41006):
        fleet_helper.append(*failed_login("203.0.113.40", port=port))
    code, queued = fleet_helper.call(
        "POST", "/api/v1/bans", {"ip": "203.0.113.41", "duration": 600, "enforce_at": "proxy"}
    )
    assert (code, queued) == (202, {"ip": "203.0.113.41", "enforce_at": "proxy", "duration": 600, "queued": True})
    spec = fleet_helper.get("/api/v1/openapi.json")
    validate_response(spec, "/api/v1/bans", 202, queued, method="post")
    assert fleet_helper.call("POST", "/api/v1/bans", {"ip": "127.0.0.1", "enforce_at": "proxy"})[1]["error"] == (
        "loopback"
    )

    status = fleet_helper.wait_for(lambda s: s["fleet"]["push_queue"] == 2 and s["fleet"]["lapi_reachable"] is False)
    validate_response(spec, "/api/v1/status", 200, status)
    assert status["fleet"]["push"]["error"].startswith("LAPI unreachable")
    assert "not-a-real-password" not in str(status) + fleet_helper.stderr()
    assert [b["ip"] for b in fleet_helper.get("/api/v1/bans")["bans"]] == ["203.0.113.40"]  # local ban at once


def test_proxy_decisions_need_the_fleet(helper: HelperProcess) -> None:
    code, body = helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.41", "enforce_at": "proxy"})
    assert (code, body["error"]) == (409, "no_fleet")
    assert helper.get("/api/v1/status")["fleet"]["configured"] is False


def test_metrics_are_prometheus_text_behind_the_token(helper: HelperProcess) -> None:
    for port in range(41000, 41006):
        helper.append(*failed_login("203.0.113.50", port=port))
    # The ban commits at once; the lines after it, without an alert, within half a second.
    helper.wait_for(lambda s: s["bans"]["active"] == 1 and s["monitor"]["lines_processed"] == 12)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(helper.url + "/api/v1/metrics", timeout=10)
    assert err.value.code == 401
    req = urllib.request.Request(helper.url + "/api/v1/metrics", headers={"Authorization": f"Bearer {helper.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    assert 'plex_security_log_lines_total{kind="all"} 12.0' in text
    assert "plex_security_parse_failures_total 0.0" in text
    assert 'plex_security_alerts_total{kind="failed_login_burst"} 1.0' in text
    assert 'kind="banned"' not in text  # ban events are counted as bans, not alerts
    assert 'plex_security_bans_active{origin="detector"} 1.0' in text
    assert "plex_security_fleet_push_queue 0.0" in text
    assert "plex_security_detection_to_ban_seconds_count 1.0" in text
    assert 'plex_security_api_request_seconds_count{route="/api/v1/status"}' in text


@dataclass
class _Holder:
    """What the stream needs of the monitor: its enforcer (real, monitor mode: nothing touches nft)."""

    enforcer: Enforcer


def _entry(ident: int, value: str, *, origin: str = "cscli", duration: str = "1h", kind: str = "ban") -> dict[str, Any]:
    return {"id": ident, "origin": origin, "scenario": "s", "scope": "Ip" if "/" not in value else "Range",
            "type": kind, "value": value, "duration": duration}  # fmt: skip


def test_the_stream_refuses_protected_and_overlapping_decisions_once_and_keeps_the_rest_by_origin() -> None:
    enforcer = Enforcer(FirewallConfig(mode="monitor", protect=("198.51.100.7",), protect_gateway=False))
    config = CrowdsecConfig(lapi_url="http://127.0.0.1:9", bouncer_key="k" * 32)
    stream = StreamBouncer(Lapi(config, "test"), _Holder(enforcer), 1.0)  # type: ignore[arg-type]
    startup = {
        "new": [
            _entry(1, "203.0.113.1"),
            _entry(2, "203.0.113.2", origin="CAPI"),
            _entry(3, "198.51.100.7"),  # protected
            _entry(4, "192.168.1.20"),  # the LAN (allow-list)
            _entry(5, "203.0.113.0/28", origin="lists"),
            _entry(6, "203.0.113.8/29"),  # overlaps the /28
            _entry(7, "203.0.113.3", kind="captcha"),
            _entry(8, "not an address"),
            _entry(9, "203.0.113.4", duration="-2s"),  # already over
        ],
        "deleted": [],
    }
    for _ in range(2):  # a resync repeats the startup list: nothing is counted twice
        stream.apply(startup, full=True)
    assert stream.counts() == {"crowdsec": 1, "capi": 2}
    assert sorted((r["ip"], r["reason"]) for r in stream.status()["refused"]) == [
        ("192.168.1.20", "allow_listed"),
        ("198.51.100.7", "protected"),
        ("203.0.113.8/29", "overlaps"),
    ]
    assert (stream.refused_total, stream.malformed) == (3, 2)
    assert stream.status()["enforcing"] is False

    stream.apply({"new": [], "deleted": [_entry(1, "203.0.113.1"), _entry(3, "198.51.100.7")]}, full=False)
    assert stream.counts() == {"capi": 2}
    assert {r["ip"] for r in stream.status()["refused"]} == {"192.168.1.20", "203.0.113.8/29"}
    assert stream.holds("203.0.113.2") and not stream.holds("203.0.113.1")
