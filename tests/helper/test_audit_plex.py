"""The Plex audit: Preferences.xml fixtures, the Plex API through the emulator, versions at the
exact boundaries of the shipped table, and the remediation script."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from plex_security_helper.audit.findings import AuditReport, Finding, Severity
from plex_security_helper.audit.fixscript import render
from plex_security_helper.audit.plexapi import PlexClient, PlexUnavailable, exposure_findings, version_findings
from plex_security_helper.audit.preferences import (
    file_mode_findings,
    preferences_findings,
    public_facts,
    read_preferences,
)
from plex_security_helper.audit.versions import load_vulnerabilities, parse_version
from plex_security_helper.demo.plexemu import PlexState, create_plex_app
from tests.helperproc import free_port

SAFE = {
    "allowedNetworks": "192.168.1.0/255.255.255.0",
    "secureConnections": "0",
    "logDebug": "1",
    "DisableTLSv1_0": "1",
    "GdmEnabled": "0",
    "RelayEnabled": "0",
    "ManualPortMappingMode": "1",
    "PublishServerOnPlexOnlineKey": "1",
    "PlexOnlineToken": "SECRET-PLEX-TOKEN",
}


def _write(path: Path, attrs: dict[str, str]) -> Path:
    body = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<Preferences {body}/>\n')
    return path


def _ids(findings: list[Finding]) -> dict[str, Severity]:
    return {f.id: f.severity for f in findings}


def test_a_well_configured_server_has_no_findings(tmp_path: Path) -> None:
    prefs, problems = read_preferences(_write(tmp_path / "Preferences.xml", SAFE))
    assert problems == []
    assert prefs is not None
    assert preferences_findings(prefs) == []
    assert public_facts(prefs)["claimed_locally"] is True
    assert "SECRET" not in str(public_facts(prefs))


@pytest.mark.parametrize(
    ("changes", "finding", "severity"),
    [
        ({"allowedNetworks": "192.168.1.0/24,0.0.0.0/0"}, "plex.allowed_networks_public", Severity.CRITICAL),
        ({"allowedNetworks": "203.0.113.0/255.255.255.0"}, "plex.allowed_networks_public", Severity.CRITICAL),
        ({"allowedNetworks": "2001:db8::/32"}, "plex.allowed_networks_public", Severity.CRITICAL),
        ({"allowedNetworks": "198.51.100.7"}, "plex.allowed_networks_public", Severity.CRITICAL),
        ({"allowedNetworks": "10.0.0.0/8"}, "plex.allowed_networks_wide", Severity.MEDIUM),
        ({"allowedNetworks": "192.168.1.0/24,lan"}, "plex.allowed_networks_invalid", Severity.LOW),
        ({"secureConnections": "2"}, "plex.secure_connections_disabled", Severity.HIGH),
        ({"secureConnections": "1"}, "plex.secure_connections_preferred", Severity.LOW),
        ({"disableRemoteSecurity": "1"}, "plex.remote_security_disabled", Severity.CRITICAL),
        ({"logDebug": "0"}, "plex.debug_logging_off", Severity.HIGH),
        ({"logTokens": "1"}, "plex.log_tokens", Severity.HIGH),
        ({"TranscoderH264OptionsOverride": "-x"}, "plex.transcoder_options_set", Severity.HIGH),
        (
            {"customConnections": "https://a.example:443,http://b.example:32400"},
            "plex.custom_connections_plain_http",
            Severity.MEDIUM,
        ),
        ({"ManualPortMappingMode": "0", "LastAutomaticMappedPort": "41234"}, "plex.upnp_mapping", Severity.MEDIUM),
        ({"DlnaEnabled": "1"}, "plex.dlna_enabled", Severity.MEDIUM),
        ({"GdmEnabled": "1"}, "plex.gdm_enabled", Severity.LOW),
        ({"DisableTLSv1_0": "0"}, "plex.tls10_allowed", Severity.LOW),
        ({"RelayEnabled": "1"}, "plex.relay_enabled", Severity.INFO),
        ({"WebHooksEnabled": "1"}, "plex.webhooks_enabled", Severity.INFO),
        ({"allowMediaDeletion": "1"}, "plex.media_deletion_allowed", Severity.INFO),
    ],
)
def test_every_key_and_value_class(tmp_path: Path, changes: dict[str, str], finding: str, severity: Severity) -> None:
    prefs, _ = read_preferences(_write(tmp_path / "Preferences.xml", {**SAFE, **changes}))
    assert prefs is not None
    found = _ids(preferences_findings(prefs))
    assert found == {finding: severity}
    assert "SECRET" not in str([f.as_json() for f in preferences_findings(prefs)])


def test_defaults_of_missing_keys_are_judged(tmp_path: Path) -> None:
    prefs, _ = read_preferences(_write(tmp_path / "Preferences.xml", {"PlexOnlineToken": "x"}))
    assert prefs is not None
    found = _ids(preferences_findings(prefs))
    # Plex's defaults: debug log off, secure connections preferred, GDM and relay on, TLS 1.0 allowed.
    assert set(found) == {
        "plex.debug_logging_off",
        "plex.secure_connections_preferred",
        "plex.gdm_enabled",
        "plex.relay_enabled",
        "plex.tls10_allowed",
    }


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('<Preferences logDebug="1"', "not well-formed"),
        ('<Other logDebug="1"/>', "root element is <Other>"),
        ("", "not well-formed"),
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            '<Preferences a="&lol2;"/>',
            "DOCTYPE or ENTITY",
        ),
        ('<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Preferences a="&xxe;"/>', "DOCTYPE or ENTITY"),
        ('<Preferences a="' + "x" * (1 << 20) + '"/>', "larger than"),
    ],
)
def test_malformed_and_hostile_files_are_findings_not_crashes(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "Preferences.xml"
    path.write_text(content)
    prefs, problems = read_preferences(path)
    assert prefs is None
    assert [(p.id, p.severity) for p in problems] == [("plex.preferences_malformed", Severity.HIGH)]
    assert why in problems[0].evidence
    assert "root:" not in problems[0].evidence


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert [p.id for p in read_preferences(tmp_path / "nope.xml")[1]] == ["plex.preferences_missing"]
    folder = tmp_path / "Preferences.xml"
    folder.mkdir()
    assert [p.id for p in read_preferences(folder)[1]] == ["plex.preferences_unreadable"]


def test_file_modes_of_preferences_and_logs(tmp_path: Path) -> None:
    plex = tmp_path / "Plex Media Server"
    logs = plex / "Logs"
    logs.mkdir(parents=True)
    prefs = _write(plex / "Preferences.xml", SAFE)
    prefs.chmod(0o644)
    logs.chmod(0o755)
    found = _ids(file_mode_findings(prefs, logs))
    assert found == {"plex.preferences_world_readable": Severity.HIGH, "plex.logs_world_readable": Severity.MEDIUM}
    prefs.chmod(0o640)
    logs.chmod(0o750)
    assert _ids(file_mode_findings(prefs, logs)) == {"plex.preferences_group_readable": Severity.LOW}
    prefs.chmod(0o600)
    assert file_mode_findings(prefs, logs) == []


def test_the_remediation_script_quotes_hostile_paths_and_passes_shellcheck(tmp_path: Path) -> None:
    plex = tmp_path / "Plex Media Server" / "it's $(rm -rf ~) `x`"
    logs = plex / "Logs"
    logs.mkdir(parents=True)
    prefs = _write(plex / "Preferences.xml", {**SAFE, "logDebug": "0"})
    prefs.chmod(0o666)
    logs.chmod(0o777)
    report = AuditReport(started=0.0, finished=1.0)
    report.findings += file_mode_findings(prefs, logs)
    loaded, _ = read_preferences(prefs)
    assert loaded is not None
    report.findings += preferences_findings(loaded)
    script = tmp_path / "fix.sh"
    script.write_text(render(report))
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "--shell=sh", str(script)], check=True)
    # Running it (it only chmods) fixes exactly the two files and nothing else happens.
    subprocess.run(["sh", str(script)], check=True, cwd=tmp_path)
    assert prefs.stat().st_mode & 0o777 == 0o600
    assert logs.stat().st_mode & 0o007 == 0
    assert logs.is_dir()


def _below(v: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The last build before *v* (``1.19.3`` → ``1.19.2.99999``)."""
    return (*v[:3], v[3] - 1) if v[3] else (v[0], v[1], v[2] - 1, 99999)


def _flagged(version: str) -> set[str]:
    """Ids of the rows reported as affecting *version* (plex.tv rows never are)."""
    return {f.subject for f in version_findings(version) if f.id == "plex.vulnerable_version"}


@pytest.mark.parametrize("entry", load_vulnerabilities(), ids=lambda v: v.id)
def test_versions_at_the_exact_boundaries(entry: object) -> None:
    from plex_security_helper.audit.versions import Vulnerability, format_version

    assert isinstance(entry, Vulnerability)
    assert entry.references, "every row cites its advisory"
    if entry.side == "plex.tv":  # informational on every build, never "affecting" one
        for version in ("0.9.9.2", "1.19.2.9999", "1.43.4.10903"):
            assert entry.id not in _flagged(version)
            info = [f for f in version_findings(version) if f.subject == entry.id]
            assert [(f.id, f.severity) for f in info] == [("plex.tv_advisory", Severity.INFO)]
            assert set(entry.references) <= set(info[0].references)
        return
    if entry.platform == "windows":  # a Linux server is never flagged for Windows-only flaws
        assert entry.fixed is not None
        below = _below(entry.fixed)
        assert entry.affects(below, "windows")
        assert not entry.affects(below, "linux")
        assert entry.id not in _flagged(format_version(below))
        return
    if entry.fixed is not None:
        fixed = entry.fixed
        below = _below(fixed)
        assert entry.id not in _flagged(format_version(fixed))
        if entry.affected_min is None or below >= entry.affected_min:
            assert entry.id in _flagged(format_version(below))
    if entry.affected_max is not None:
        last = entry.affected_max
        after = (*last[:3], last[3] + 1)
        assert entry.id in _flagged(format_version(last))
        assert entry.id not in _flagged(format_version(after))
    if entry.affected_min is not None and entry.affected_min > (0, 0, 0, 0):
        before = _below(entry.affected_min)
        assert entry.id not in _flagged(format_version(before))


def test_version_parsing_and_a_current_server() -> None:
    assert parse_version("1.18.1.1973-0f4abfbcc") == (1, 18, 1, 1973)
    assert parse_version("1.19.3") == (1, 19, 3, 0)
    assert parse_version("garbage") is None
    assert [f.id for f in version_findings("nonsense")] == ["plex.version_unknown"]
    current = version_findings("1.43.4.10903-e5521bd8c")
    assert current and {f.id for f in current} == {"plex.tv_advisory"}  # information only
    assert {f.severity for f in current} == {Severity.INFO}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        # The advisory's fix landed in 10861, not in the first 1.43.3 build.
        ("1.43.2.10500", {"PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.43.3.10828-00f62d37d", {"PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.43.3.10860", {"PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.43.3.10861-07dfddaeb", {"PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.43.3.10895", {"PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.43.3.10896-cb3ebc72d", {"PLEX-2026-ZENOFEX-10903"}),
        ("1.43.4.10902", {"PLEX-2026-ZENOFEX-10903"}),
        ("1.43.4.10903-e5521bd8c", set()),
        # No fix published for the /myplex/account flaws: affected through the last named build.
        ("1.42.2.10156", {"CVE-2025-69414", "PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        ("1.42.1.10060", {"CVE-2025-69414", "PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"}),
        (
            "1.42.0.9999",
            {"CVE-2025-34158", "CVE-2025-69414", "PLEX-2026-09", "PLEX-2026-ZENOFEX-10896", "PLEX-2026-ZENOFEX-10903"},
        ),
    ],
)
def test_builds_around_each_fix(version: str, expected: set[str]) -> None:
    assert _flagged(version) == expected


def test_findings_carry_references_and_say_when_no_fix_exists() -> None:
    by_id = {f.subject: f for f in version_findings("1.42.2.10156")}
    myplex = by_id["CVE-2025-69414"]
    assert "no fix published yet" in myplex.evidence
    assert "No fixed build is published" in myplex.remediation
    assert {"CVE-2025-69414", "CVE-2025-69415", "https://www.cve.org/CVERecord?id=CVE-2025-69415"} <= set(
        myplex.references
    )
    advisory = by_id["PLEX-2026-09"]
    assert "fixed in 1.43.3.10861" in advisory.evidence
    assert advisory.remediation == "Update Plex Media Server to 1.43.3.10861 or newer."
    assert "CVE-2026-96652" in advisory.references
    assert any(r.startswith("https://") for r in advisory.references)
    # Windows-only rows stay out of a Linux audit, and a Windows audit sees them.
    assert "CVE-2020-5741" not in _flagged("1.19.2.2600")
    assert "CVE-2020-5741" in {f.subject for f in version_findings("1.19.2.2600", "windows")}


def test_the_shipped_comment_documents_every_field_the_rows_use() -> None:
    from importlib import resources

    doc = json.loads((resources.files("plex_security_helper") / "data" / "plex_cves.json").read_text())
    used = {key for row in doc["vulnerabilities"] for key in row} - {"id", "title"}
    assert {key for key in used if f"'{key}'" not in doc["comment"]} == set()


def test_the_table_refuses_rows_that_would_mislead() -> None:
    def table(**row: object) -> str:
        return json.dumps({"vulnerabilities": [{"id": "X", "severity": "high", "title": "t", **row}]})

    with pytest.raises(ValueError, match="flag every build"):
        load_vulnerabilities(table(fixed=None))
    with pytest.raises(ValueError, match="no server versions"):
        load_vulnerabilities(table(side="plex.tv", fixed="1.2.3.4"))
    with pytest.raises(ValueError, match="side"):
        load_vulnerabilities(table(side="cloud", fixed="1.2.3.4"))
    with pytest.raises(ValueError, match="unparseable"):
        load_vulnerabilities(table(fixed="latest"))
    assert load_vulnerabilities(table(side="plex.tv"))[0].affects((0, 0, 0, 1)) is False


@pytest.fixture
async def plex(socket_enabled: None) -> AsyncIterator[tuple[PlexState, str]]:
    state = PlexState(token="plex-owner-token-0123", prefs={**SAFE, "logDebug": "0"})
    runner = web.AppRunner(create_plex_app(state))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("accept_json", [True, False])
async def test_the_api_through_the_emulator(plex: tuple[PlexState, str], accept_json: bool) -> None:
    state, url = plex
    async with aiohttp.ClientSession() as session:
        state.xml_only = not accept_json  # an older server answers XML whatever was asked
        client = PlexClient(session, url, state.token)
        async with session.get(f"{url}/identity", headers={"Accept": "application/json"}) as resp:
            assert ("json" in resp.content_type) is accept_json
        identity = await client.identity()
        assert (identity.claimed, identity.version) == (True, state.version)
        prefs = await client.preferences()
        assert prefs["logDebug"] == "0"
        mapping = await client.mapping()
        assert (mapping.mapping_state, mapping.public_port) == ("mapped", 32400)
        assert "authToken" not in str(mapping)
        assert state.token not in str(mapping)

        bad = PlexClient(session, url, "wrong-token")
        with pytest.raises(PlexUnavailable, match="refused the token"):
            await bad.preferences()
        down = PlexClient(session, f"http://127.0.0.1:{free_port()}", state.token)
        with pytest.raises(PlexUnavailable, match="/identity"):
            await down.identity()


@pytest.mark.parametrize(
    ("claimed", "mapping_state", "expected"),
    [
        (True, "mapped", {"plex.remote_access_mapped": Severity.INFO}),
        (True, "unmapped", {}),
        (False, "unmapped", {"plex.unclaimed": Severity.HIGH}),
        (False, "mapped", {"plex.unclaimed": Severity.CRITICAL, "plex.remote_access_mapped": Severity.INFO}),
    ],
)
async def test_claimed_and_mapping_states(
    plex: tuple[PlexState, str], claimed: bool, mapping_state: str, expected: dict[str, Severity]
) -> None:
    state, url = plex
    state.claimed = claimed
    state.mapping_state = mapping_state
    async with aiohttp.ClientSession() as session:
        client = PlexClient(session, url, state.token)
        found = exposure_findings(await client.identity(), await client.mapping())
    assert _ids(found) == expected


@pytest.mark.parametrize(
    ("version", "vulnerable"), [("1.19.2.9999-x", True), ("1.43.2.9999-x", True), ("1.43.4.10903-x", False)]
)
async def test_version_from_the_emulator(plex: tuple[PlexState, str], version: str, vulnerable: bool) -> None:
    state, url = plex
    state.version = version
    async with aiohttp.ClientSession() as session:
        identity = await PlexClient(session, url, None).identity()  # /identity needs no token
    assert bool(_flagged(identity.version)) is vulnerable


async def test_the_emulator_writes_plex_format_log_lines(plex: tuple[PlexState, str], tmp_path: Path) -> None:
    from plex_security_helper.logwatch.join import RequestJoiner
    from plex_security_helper.logwatch.plexlog import LogParser

    state, url = plex
    state.log_path = tmp_path / "Plex Media Server.log"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/library/sections") as resp:
            assert resp.status == 401
        async with session.get(f"{url}/library/sections", headers={"X-Plex-Token": state.token}) as resp:
            assert resp.status == 200
    parser, joiner = LogParser(), RequestJoiner()
    events = [
        e for line in state.log_path.read_text().splitlines() if (r := parser.parse(line)) and (e := joiner.feed(r))
    ]
    assert [(e.status, e.signed_in, e.ip) for e in events] == [(401, False, "127.0.0.1"), (200, True, "127.0.0.1")]
