"""The threat view's data (websocket ``plex_security/threats``) and the card the integration serves.

Who attacked (address, country when known, why, when), what is banned (reason, origin, time
left), the fleet's decisions enforced here (CrowdSec origin and scenario) and what the audit
found (with its fix), per helper, bounded. The card
(``frontend/plex-security-threats.js``) is loaded on every dashboard through
``add_extra_js_url``: no separate install, ``type: custom:plex-security-threats`` anywhere.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.components import websocket_api
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import async_response, websocket_command
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .alerts import alert_detail, alert_verdict, iso_time
from .api import HelperError
from .const import DOMAIN, VERDICT_INFO
from .coordinator import PlexSecurityConfigEntry
from .logbook import alert_title

CARD_URL = f"/{DOMAIN}/plex-security-threats.js"
CARD_FILE = Path(__file__).parent / "frontend" / "plex-security-threats.js"
MAX_ROWS = 50
RECENT_ALERTS = 200


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the card and load it on every dashboard (only with Home Assistant's frontend)."""
    if hass.http is None or "frontend" not in hass.config.components:
        return
    from homeassistant.components.frontend import add_extra_js_url  # noqa: PLC0415 (only with a frontend)
    from homeassistant.components.http import StaticPathConfig  # noqa: PLC0415

    await hass.http.async_register_static_paths([StaticPathConfig(CARD_URL, str(CARD_FILE), cache_headers=False)])
    add_extra_js_url(hass, CARD_URL)


def _attackers(hass: HomeAssistant, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest alert per address (judgements only, not ban records), newest first."""
    rows: dict[str, dict[str, Any]] = {}
    for alert in sorted(alerts, key=lambda a: int(a.get("seq") or 0), reverse=True):
        ip = str(alert.get("ip") or "")
        if not ip or alert_verdict(alert) == VERDICT_INFO:
            continue
        if ip in rows:
            rows[ip]["alerts"] += 1
            continue
        detail = alert_detail(alert)
        kind = str(alert.get("kind") or "")
        window = detail.get("window_s")
        rows[ip] = {
            "ip": ip,
            "country": detail.get("country"),
            "kind": kind,
            "title": alert_title(hass, kind),
            "verdict": alert_verdict(alert),
            "reason": detail.get("reason") or f"{alert.get('count')} requests" + (f" in {window} s" if window else ""),
            "user": detail.get("user"),
            "time": iso_time(alert.get("time")),
            "alerts": 1,
        }
    return list(rows.values())[:MAX_ROWS]


def _covering_ban(ip: str, bans: list[dict[str, Any]]) -> str | None:
    """The active ban (address or network) that covers *ip*, as the helper lists it."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for ban in bans:
        try:
            if address in ipaddress.ip_network(str(ban.get("ip")), strict=False):
                return str(ban["ip"])
        except ValueError:
            continue
    return None


def _bans(bans: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "ip": b.get("ip"),
            "reason": b.get("reason"),
            "origin": b.get("origin"),
            "remaining_s": b.get("remaining_s"),
            "expires": iso_time(b.get("expires")),
            "enforced": b.get("enforced"),
            "offences": b.get("offences"),
        }
        for b in bans[:MAX_ROWS]
        if isinstance(b, dict)
    ]


def _fleet(decisions: list[Any]) -> list[dict[str, Any]]:
    """Fleet decisions (CrowdSec) this helper enforces: where they come from and why."""
    return [
        {
            "ip": d.get("ip"),
            "origin": d.get("origin"),
            "lapi_origin": d.get("lapi_origin"),
            "scenario": d.get("scenario"),
            "remaining_s": d.get("remaining_s"),
        }
        for d in decisions[:MAX_ROWS]
        if isinstance(d, dict)
    ]


def _findings(report: Any) -> list[dict[str, Any]]:
    findings = report.get("findings") if isinstance(report, dict) else None
    return [
        {
            "id": f.get("id"),
            "severity": f.get("severity"),
            "title": f.get("title"),
            "subject": f.get("subject"),
            "remediation": f.get("remediation"),
        }
        for f in (findings or [])[:MAX_ROWS]
        if isinstance(f, dict) and not f.get("accepted")
    ]


async def _server(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> dict[str, Any]:
    """One helper's part of the view; a helper that cannot answer says so instead of failing the rest."""
    coordinator = entry.runtime_data.coordinator
    client = coordinator.client
    snapshot = coordinator.data
    switch = er.async_get(hass).async_get_entity_id("switch", DOMAIN, f"{snapshot.helper_id}_enforce")
    row: dict[str, Any] = {
        "config_entry_id": entry.entry_id,
        "title": entry.title,
        "firewall": {"state": snapshot.firewall_state, "mode": snapshot.firewall.get("mode")},
        "switch_entity": switch,
        "attackers": [],
        "bans": [],
        "fleet": [],
        "findings": [],
        "error": None,
    }
    try:
        alerts, _ = await client.alerts(max(0, snapshot.last_alert_seq - RECENT_ALERTS), 0, RECENT_ALERTS)
        listed = await client.bans()
        row["bans"] = _bans(listed.get("bans") or [])
        row["fleet"] = _fleet(listed.get("fleet") or [])
        row["attackers"] = [
            {**attacker, "banned_as": _covering_ban(attacker["ip"], row["bans"])}
            for attacker in _attackers(hass, alerts)
        ]
        row["findings"] = _findings((await client.audit()).get("report"))
    except HelperError as err:
        row["error"] = str(err)
    return row


@websocket_command({vol.Required("type"): f"{DOMAIN}/threats", vol.Optional("config_entry_id"): str})
@async_response
async def ws_threats(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Recent attackers, active bans and open findings of every loaded helper (or one)."""
    wanted = msg.get("config_entry_id")
    entries: list[PlexSecurityConfigEntry] = [
        e for e in hass.config_entries.async_loaded_entries(DOMAIN) if wanted in (None, e.entry_id)
    ]
    connection.send_result(msg["id"], {"servers": [await _server(hass, e) for e in entries]})


@callback
def async_setup_websocket(hass: HomeAssistant) -> None:
    """Register the websocket command once."""
    websocket_api.async_register_command(hass, ws_threats)
