"""Repair issues for critical findings; each clears itself once the snapshot no longer shows it."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .api import Snapshot
from .const import DOMAIN, REFUSED_ISSUE
from .coordinator import PlexSecurityConfigEntry

ISSUES: dict[str, tuple[ir.IssueSeverity, Callable[[Snapshot], bool]]] = {
    "allowed_networks_public": (ir.IssueSeverity.CRITICAL, lambda s: s.plex.get("allowed_networks_public") is True),
    "unclaimed_exposed": (
        ir.IssueSeverity.CRITICAL,
        lambda s: s.plex.get("claimed") is False and s.plex.get("remote_access_exposed") is True,
    ),
    "vulnerable_version": (ir.IssueSeverity.ERROR, lambda s: s.plex.get("vulnerable") is True),
    "monitor_blind": (
        ir.IssueSeverity.WARNING,
        lambda s: s.plex.get("debug_logging") is False or not s.following,
    ),
    "fleet_credentials_rejected": (ir.IssueSeverity.ERROR, lambda s: s.fleet.get("credentials_ok") is False),
    "probable_proxy": (ir.IssueSeverity.WARNING, lambda s: bool(_probable_proxies(s))),
    "plex_tv_two_factor_off": (ir.IssueSeverity.ERROR, lambda s: "plex_tv.two_factor_off" in _open_findings(s)),
    "plex_tv_inactive_users": (ir.IssueSeverity.WARNING, lambda s: "plex_tv.user_inactive" in _open_findings(s)),
    # The helper moved a damaged database aside and rebuilt it (bans kept, history lost): said
    # until the helper restarts, so that the owner learns the disk may be failing.
    "database_rebuilt": (ir.IssueSeverity.WARNING, lambda s: bool(_monitor(s).get("database_notice"))),
    # A batch waits for the database (a full disk, a locked file): nothing is lost, nothing new
    # is recorded or banned until it is committed.
    "not_recording": (ir.IssueSeverity.ERROR, lambda s: _monitor(s).get("recording") is False),
}


def _monitor(snapshot: Snapshot) -> dict[str, object]:
    """The helper's monitor section ({} when missing)."""
    monitor = snapshot.raw.get("monitor")
    return monitor if isinstance(monitor, dict) else {}


def _probable_proxies(snapshot: Snapshot) -> list[str]:
    """Private addresses Plex calls WAN that carry several users, not yet trusted as proxies."""
    found = _monitor(snapshot).get("probable_proxies")
    return [str(ip) for ip in found][:10] if isinstance(found, list) else []


def _open_findings(snapshot: Snapshot) -> set[str]:
    """The ids of the audit's open findings."""
    ids = snapshot.audit.get("open") or snapshot.audit.get("serious") or []
    return {str(i) for i in ids} if isinstance(ids, list) else set()


def _placeholders(key: str, server: str, snapshot: Snapshot) -> dict[str, str]:
    """The texts an issue's translation fills in."""
    values = {"server": server, "version": str(snapshot.plex.get("version") or "?")}
    if key == "probable_proxy":
        values["addresses"] = ", ".join(_probable_proxies(snapshot))
    elif key == "database_rebuilt":
        values["notice"] = str(_monitor(snapshot).get("database_notice") or "")[:300]
    elif key == "not_recording":
        values["error"] = str(_monitor(snapshot).get("error") or "unknown")[:300]
    return values


def issue_id(key: str, entry_id: str) -> str:
    """One issue per kind and helper."""
    return f"{key}_{entry_id}"


@callback
def update_issues(hass: HomeAssistant, entry: PlexSecurityConfigEntry) -> None:
    """Raise or clear each repair issue from the latest snapshot."""
    coordinator = entry.runtime_data.coordinator
    if not coordinator.last_update_success or coordinator.data is None:
        return
    snapshot = coordinator.data
    for key, (severity, active) in ISSUES.items():
        if active(snapshot):
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id(key, entry.entry_id),
                is_fixable=False,
                is_persistent=False,
                severity=severity,
                translation_key=key,
                translation_placeholders=_placeholders(key, entry.title, snapshot),
            )
        else:
            ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry.entry_id))


@callback
def clear_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Remove every issue of a deleted entry."""
    for key in (*ISSUES, REFUSED_ISSUE):
        ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry_id))
