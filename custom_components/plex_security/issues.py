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
}


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
                translation_placeholders={
                    "server": entry.title,
                    "version": str(snapshot.plex.get("version") or "?"),
                },
            )
        else:
            ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry.entry_id))


@callback
def clear_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Remove every issue of a deleted entry."""
    for key in (*ISSUES, REFUSED_ISSUE):
        ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry_id))
