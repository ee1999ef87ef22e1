"""The fleet on CrowdSec's real Local API (Debian's crowdsec 1.4.6), two helpers and a proxy bouncer.

LAPI runs as LAPI only under the test's temp dir; helpers A and B each push their bans as a
machine and stream the fleet's decisions as a bouncer into their own table; proxy host C runs
Debian's crowdsec-firewall-bouncer (nftables mode) in front of a TCP service.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plex_security_helper.firewall.nft import NftFirewall
from plex_security_helper.fleet.decisions import go_duration
from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess
from tests.plexlines import failed_login
from tests.system.crowdsec import Lapi, can_run
from tests.system.fleetlab import HOSTS, FleetLab, attacker
from tests.system.netlab import can_run as can_run_netns

pytestmark = pytest.mark.system
STREAM_INTERVAL = 1  # seconds; CrowdSec's bouncers default to 10, the README's bench compares both
PROTECTED = attacker(30)  # an owner's management address, protected on both helpers
LAPI_PORT_IN_C = 8080
WAIT = 30.0
OUTAGE = 60.0  # LAPI stopped during an attack


@dataclass
class Fleet:
    lab: FleetLab
    lapi: Lapi
    a: HelperProcess
    b: HelperProcess


def _helper(root: Path, lab: FleetLab, lapi: Lapi, name: str) -> HelperProcess:
    password = lapi.add_machine(f"plex-{name}")
    key = lapi.add_bouncer(f"plex-{name}")
    log_path = root / name / "Logs" / "Plex Media Server.log"
    return HelperProcess(
        root / name,
        extra_config=(
            f'[monitor]\nlog_path = "{log_path}"\ntrusted_proxies = ["{HOSTS["c"]}"]\n'
            f'[firewall]\nbackend = "nft"\nmode = "enforce"\nnetns = "{lab.ns(name)}"\nprotect = ["{PROTECTED}"]\n'
            f'[crowdsec]\nlapi_url = "{lapi.url}"\nmachine_id = "plex-{name}"\npassword = "{password}"\n'
            f'bouncer_key = "{key}"\nstream_interval = {STREAM_INTERVAL}\nretry_max = 2\n'
        ),
    )


@pytest.fixture
def fleet(tmp_path: Path, socket_enabled: None) -> Iterator[Fleet]:
    reason = can_run_netns() or can_run()
    if reason:
        pytest.skip(reason)
    lab = FleetLab(tmp_path)
    lapi = Lapi(tmp_path / "lapi")
    helpers: list[HelperProcess] = []
    try:
        lab.up()
        lapi.start()
        for name in ("a", "b"):
            helper = _helper(tmp_path, lab, lapi, name)
            helper.start()
            helpers.append(helper)
            lab.serve(name, 32400)
        yield Fleet(lab, lapi, helpers[0], helpers[1])
    finally:
        for helper in helpers:
            helper.stop()
        lapi.stop()
        lab.down()


def _fleet_set(lab: FleetLab, host: str) -> dict[str, int | None]:
    return NftFirewall(netns=lab.ns(host)).banned("fleet")


def _wait(what: str, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _attack(helper: HelperProcess, ip: str) -> None:
    for port in range(41000, 41006):
        helper.append(*failed_login(ip, port=port))


def test_a_ban_on_one_host_is_enforced_on_the_other_and_cscli_decisions_reach_both(fleet: Fleet) -> None:
    lab, lapi, a, b = fleet.lab, fleet.lapi, fleet.a, fleet.b
    guesser, listed = attacker(11), attacker(12)
    assert lab.connect(guesser, "b") == ["ok"]

    _attack(a, guesser)
    lab.wait_connect(guesser, "a", "timeout", timeout=10)  # A's own ban: at once, no LAPI round trip
    assert [(x["ip"], x["origin"]) for x in a.get("/api/v1/bans")["bans"]] == [(guesser, "detector")]
    lab.wait_connect(guesser, "b", "timeout")  # B: through LAPI, at its next pull
    assert guesser in _fleet_set(lab, "b")
    listing = b.get("/api/v1/bans")
    assert listing["bans"] == []  # B holds it as a fleet decision, not a ban of its own
    assert [(d["ip"], d["origin"], d["scenario"]) for d in listing["fleet"]] == [
        (guesser, "crowdsec", "plex-security/failed_login_burst")
    ]
    ours = [d for d in lapi.decisions() if d["value"] == guesser]
    assert [(d["scenario"], d["origin"], d["type"]) for d in ours] == [
        ("plex-security/failed_login_burst", "crowdsec", "ban")
    ]
    assert 3000 < go_duration(ours[0]["duration"]) <= 3600

    # A decision made on the LAPI host with cscli: both helpers enforce it; deleting it lifts it.
    lapi.cscli("decisions", "add", "-i", listed, "-d", "10m", "-R", "test: listed by the owner")
    for host in ("a", "b"):
        lab.wait_connect(listed, host, "timeout")
    lapi.cscli("decisions", "delete", "-i", listed)
    for host in ("a", "b"):
        lab.wait_connect(listed, host, "ok")
        assert listed not in _fleet_set(lab, host)

    # Home Assistant's unban on B of a decision B did not make lifts it at LAPI, so everywhere.
    lapi.cscli("decisions", "add", "-i", listed, "-d", "10m", "-R", "test: listed again")
    lab.wait_connect(listed, "a", "timeout")
    b.wait_for(lambda s: s["fleet"]["pull"]["decisions"].get("crowdsec") == 2, timeout=WAIT)
    code, body = b.call("DELETE", f"/api/v1/bans/{listed}")
    assert (code, body) == (202, {"ip": listed, "fleet": True, "queued": True})
    for host in ("a", "b"):
        lab.wait_connect(listed, host, "ok")

    # Unbanning on A lifts the address fleet-wide (its LAPI decisions are deleted).
    assert a.call("DELETE", f"/api/v1/bans/{guesser}")[0] == 200
    _wait("the decision is gone from LAPI", lambda: not [d for d in lapi.decisions() if d["value"] == guesser])
    for host in ("a", "b"):
        lab.wait_connect(guesser, host, "ok")

    # A fleet decision against a protected address is refused by both helpers and reported.
    lapi.cscli("decisions", "add", "-i", PROTECTED, "-d", "10m", "-R", "test: a mistake")
    for helper in (a, b):
        status = helper.wait_for(lambda s: s["fleet"]["refused"], timeout=WAIT)
        [refused] = status["fleet"]["refused"]
        assert (refused["ip"], refused["reason"], refused["lapi_origin"]) == (PROTECTED, "protected", "cscli")
        assert status["fleet"]["lapi_reachable"] is True and status["fleet"]["credentials_ok"] is True
        validate_response(helper.get("/api/v1/openapi.json"), "/api/v1/status", 200, status)
    for host in ("a", "b"):
        assert PROTECTED not in _fleet_set(lab, host)
        assert lab.connect(PROTECTED, host) == ["ok"]

    metrics = _metrics(a)
    assert 'plex_security_alerts_total{kind="failed_login_burst"} 1.0' in metrics
    assert "plex_security_detection_to_ban_seconds_count 1.0" in metrics
    assert 'plex_security_fleet_pushed_total{op="alert"} 1.0' in metrics
    assert "plex_security_fleet_push_queue 0.0" in metrics


def test_lapi_down_during_an_attack_loses_no_decision(fleet: Fleet) -> None:
    lab, lapi, a = fleet.lab, fleet.lapi, fleet.a
    sources = [attacker(n) for n in (14, 15, 16)]
    lapi.stop()  # for a minute, as the acceptance says
    down_since = time.monotonic()
    for ip in sources:
        _attack(a, ip)
    for ip in sources:
        lab.wait_connect(ip, "a", "timeout", timeout=10)  # the local ban does not wait for LAPI
    status = a.wait_for(lambda s: s["fleet"]["push_queue"] == 3 and s["fleet"]["lapi_reachable"] is False, 10)
    assert status["fleet"]["push"]["error"]
    assert all(lab.connect(ip, "b") == ["ok"] for ip in sources)

    a.stop()  # and a restart while LAPI is away: the outbox is in SQLite
    a.start()
    assert a.get("/api/v1/status")["fleet"]["push_queue"] == 3
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))
    lapi.start()

    _wait("every decision reached LAPI", lambda: {d["value"] for d in lapi.decisions()} >= set(sources))
    a.wait_for(lambda s: s["fleet"]["push_queue"] == 0 and s["fleet"]["lapi_reachable"] is True, WAIT)
    for ip in sources:
        lab.wait_connect(ip, "b", "timeout")
    assert sorted(d["scenario"] for d in lapi.decisions()) == ["plex-security/failed_login_burst"] * 3


def test_the_proxy_bouncer_drops_a_forwarded_client_the_helper_decided_on(fleet: Fleet, tmp_path: Path) -> None:
    lab, lapi, a = fleet.lab, fleet.lapi, fleet.a
    client, banned_by_hand, bystander = attacker(20), attacker(22), attacker(21)
    lab.serve("c", 8443)
    lab.forward("c", LAPI_PORT_IN_C, lapi.port)
    _proxy_bouncer(lab, lapi, tmp_path)
    for ip in (client, banned_by_hand, bystander):
        assert lab.connect(ip, "c", 8443) == ["ok"]

    # A's Plex sees the client only through proxy C (a trusted proxy): its packets come from C,
    # so A records the ban for the proxy and C's bouncer drops the client.
    lines = []
    for n in range(6):
        request, completed = failed_login(HOSTS["c"], port=34000 + n)
        lines += [f"{request} / X-Forwarded-For => {client}", completed]
    a.append(*lines)
    lab.wait_connect(client, "c", "timeout", port=8443)
    assert [(b["ip"], b["enforce_at"]) for b in a.get("/api/v1/bans")["bans"]] == [(client, "proxy")]
    [decision] = [d for d in lapi.decisions() if d["value"] == client]
    assert decision["scenario"] == "plex-security/failed_login_burst"

    # The owner bans a proxied client by hand: no ban on A, a decision for C.
    code, queued = a.call(
        "POST",
        "/api/v1/bans",
        {"ip": banned_by_hand, "duration": 600, "reason": "forwarded client", "enforce_at": "proxy"},
    )
    assert (code, queued["enforce_at"]) == (202, "proxy"), queued
    lab.wait_connect(banned_by_hand, "c", "timeout", port=8443)
    assert [d["scenario"] for d in lapi.decisions() if d["value"] == banned_by_hand] == ["plex-security/manual"]
    assert lab.connect(bystander, "c", 8443) == ["ok"]


def _proxy_bouncer(lab: FleetLab, lapi: Lapi, tmp_path: Path) -> None:
    """Debian's crowdsec-firewall-bouncer in C (nftables mode, its own config file)."""
    key = lapi.add_bouncer("proxy-c")
    config = tmp_path / "crowdsec-firewall-bouncer.yaml"
    config.write_text(
        f"""mode: nftables
pid_dir: {tmp_path}/
update_frequency: 1s
daemonize: false
log_mode: file
log_dir: {tmp_path}/
log_level: info
api_url: http://127.0.0.1:{LAPI_PORT_IN_C}/
api_key: {key}
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: crowdsec-blacklists
blacklists_ipv6: crowdsec6-blacklists
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: crowdsec
    chain: crowdsec-chain
  ipv6:
    enabled: true
    set-only: false
    table: crowdsec6
    chain: crowdsec6-chain
prometheus:
  enabled: false
"""
    )
    bouncer = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("c"), "crowdsec-firewall-bouncer", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "bouncer.stderr").open("ab"),
    )
    lab.procs.append(bouncer)


def _metrics(helper: HelperProcess) -> str:
    req = urllib.request.Request(helper.url + "/api/v1/metrics", headers={"Authorization": f"Bearer {helper.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return str(resp.read().decode())


def test_a_helper_with_a_tls_client_certificate_pushes_as_a_machine(tmp_path: Path, socket_enabled: None) -> None:
    reason = can_run()
    if reason:
        pytest.skip(reason)
    lapi = Lapi(tmp_path / "lapi", tls=True)
    tls = tmp_path / "lapi" / "tls"
    helper = HelperProcess(
        tmp_path / "helper",
        extra_config=(
            '[firewall]\nmode = "monitor"\n'
            f'[crowdsec]\nlapi_url = "{lapi.url}"\ntls_cert = "{tls}/machine.pem"\n'
            f'tls_key = "{tls}/machine-key.pem"\nca_cert = "{lapi.ca}"\nretry_max = 1\n'
        ),
    )
    try:
        lapi.start()
        helper.start()
        assert helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.90", "duration": 600})[0] == 201
        helper.wait_for(lambda s: s["fleet"]["push_queue"] == 0 and s["fleet"]["credentials_ok"] is True, WAIT)
        assert [(d["value"], d["scenario"]) for d in lapi.decisions()] == [("203.0.113.90", "plex-security/manual")]
        # LAPI registered the machine from its certificate (CN@address), no password anywhere.
        assert "plex-tls@127.0.0.1" in lapi.cscli("machines", "list")
    finally:
        helper.stop()
        lapi.stop()
