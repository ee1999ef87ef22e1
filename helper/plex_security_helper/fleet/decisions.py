"""CrowdSec's vocabulary, both ways: our bans as LAPI alerts, LAPI decisions as ban targets.

The shapes follow LAPI's published swagger (``pkg/models/localapi_swagger.yaml``: ``Alert``,
``Source``, ``Decision``, ``Event``, ``Meta``), checked against crowdsec 1.4.6. Whatever comes
back from LAPI is validated like any other input (addresses through ``parse_target``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..firewall.targets import Target, parse_target
from ..model import Alert, Ban, Origin
from ..store import OutboxItem

# The LAPI origin of a machine's decisions (what CrowdSec's own agents send: `cscli decisions
# list` shows these without --all) and the scenario prefix that names ours among them.
LAPI_ORIGIN = "crowdsec"
SCENARIO_PREFIX = "plex-security/"
# LAPI origins of CrowdSec's community blocklists.
COMMUNITY_ORIGINS = frozenset({"CAPI", "lists"})
OP_ALERT = "alert"
OP_DELETE = "delete"
# Ban.enforce_at's values: "host" is dropped by the host that decided; "proxy" means the client
# came through a trusted reverse proxy, and only the proxy's own bouncer can drop it.
ENFORCE_HOST = "host"
ENFORCE_PROXY = "proxy"
MAX_EVIDENCE = 5
MAX_TEXT = 200
_UNSAFE = re.compile(r"[^\x20-\x7e]")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def scenario(name: str) -> str:
    """``plex-security/<alert kind>`` (or ``/<origin>`` for a manual ban)."""
    return SCENARIO_PREFIX + name


def sanitise(text: object, limit: int = MAX_TEXT) -> str:
    """Printable ASCII only, bounded: evidence came from clients and goes into other tools' UIs."""
    return _UNSAFE.sub("?", str(text))[:limit]


def rfc3339(when: float) -> str:
    """LAPI's time format (UTC, whole seconds)."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope(target: Target) -> tuple[str, dict[str, str]]:
    if target.single:
        return "Ip", {"scope": "Ip", "value": target.text, "ip": target.text}
    return "Range", {"scope": "Range", "value": target.text, "range": target.text}


def decision_item(
    target: Target,
    *,
    until: float,
    reason: str,
    origin: str,
    kind: str | None,
    helper_id: str,
    alert: Alert | None = None,
    enforce_at: str = ENFORCE_HOST,
) -> OutboxItem:
    """The outbox message for one decision; the duration is worked out when it is sent."""
    evidence = [sanitise(p) for p in (alert.detail.get("sample_paths") or [])][:MAX_EVIDENCE] if alert else []
    return OutboxItem(
        op=OP_ALERT,
        body={
            "target": target.text,
            "until": until,
            "reason": sanitise(reason),
            "origin": origin,
            "scenario": scenario(kind or origin),
            "helper": sanitise(helper_id, 64),
            "count": alert.count if alert else 1,
            "first_seen": alert.first_seen if alert else None,
            "last_seen": alert.last_seen if alert else None,
            "evidence": evidence,
            "enforce_at": enforce_at,
        },
    )


def ban_item(ban: Ban, alert: Alert | None, helper_id: str) -> OutboxItem:
    """The message for one of our bans."""
    return decision_item(
        parse_target(ban.target),
        until=ban.expires,
        reason=ban.reason,
        origin=ban.origin,
        kind=alert.kind if alert else None,
        helper_id=helper_id,
        alert=alert,
        enforce_at=ban.enforce_at,
    )


def delete_item(target: str) -> OutboxItem:
    """Lift one target's decisions fleet-wide."""
    return OutboxItem(op=OP_DELETE, body={"target": parse_target(target).text})


def lapi_alert(body: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The ``Alert`` (swagger) for one outbox message, or None when its decision has run out."""
    seconds = int(body["until"] - now)
    if seconds < 1:
        return None
    target = parse_target(body["target"])
    scope, source = _scope(target)
    first = body.get("first_seen") or now
    last = body.get("last_seen") or now
    events = [
        {
            "timestamp": rfc3339(last),
            "meta": [{"key": "path", "value": path}, {"key": "source_ip", "value": target.text}],
        }
        for path in body.get("evidence", [])
    ]
    return {
        "scenario": body["scenario"],
        "scenario_hash": "",
        "scenario_version": "1",
        "message": f"{body['helper']}: {body['reason']}"[:MAX_TEXT],
        "events_count": max(1, int(body.get("count") or 1)),
        "start_at": rfc3339(first),
        "stop_at": rfc3339(last),
        "capacity": 0,
        "leakspeed": "0s",
        "simulated": False,
        "remediation": True,
        "events": events,
        "source": source,
        "meta": [
            {"key": "helper", "value": body["helper"]},
            {"key": "origin", "value": body["origin"]},
            {"key": "enforce_at", "value": body.get("enforce_at", ENFORCE_HOST)},
        ],
        "labels": [f"enforce_at:{body.get('enforce_at', ENFORCE_HOST)}"],
        "decisions": [
            {
                "duration": f"{seconds}s",
                "type": "ban",
                "scope": scope,
                "value": target.text,
                "origin": LAPI_ORIGIN,
                "scenario": body["scenario"],
            }
        ],
    }


def go_duration(text: str) -> float:
    """Seconds in a Go duration such as ``59m59.58s`` or ``-8.2ms`` (how LAPI sends them)."""
    if not isinstance(text, str) or not 0 < len(text) <= 64:
        raise ValueError("not a duration")
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(body):
        if match.start() != pos:
            raise ValueError(f"not a duration: {text!r}")
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        if body == "0":
            return 0.0
        raise ValueError(f"not a duration: {text!r}")
    return sign * total


@dataclass(frozen=True, slots=True)
class FleetDecision:
    """One LAPI decision we may enforce."""

    id: int
    target: Target
    origin: Origin  # FLEET or COMMUNITY
    lapi_origin: str
    scenario: str
    expires: float

    def as_json(self, now: float) -> dict[str, Any]:
        """The shape ``/status`` and the metrics use."""
        return {
            "ip": self.target.text,
            "origin": self.origin.value,
            "lapi_origin": self.lapi_origin,
            "scenario": self.scenario,
            "remaining_s": max(0, int(self.expires - now)),
        }


def parse_decision(raw: Any, now: float) -> FleetDecision | None:
    """A stream entry as a decision; None for kinds we do not enforce (captcha, usernames…).

    Raises ValueError for an entry that is malformed.
    """
    if not isinstance(raw, dict):
        raise ValueError("a decision must be an object")
    if str(raw.get("type", "")).lower() != "ban" or str(raw.get("scope", "")).lower() not in ("ip", "range"):
        return None
    ident = raw.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool) or ident < 0:
        raise ValueError("a decision needs a numeric id")
    target = parse_target(str(raw.get("value", "")))
    lapi_origin = sanitise(raw.get("origin", ""), 64)
    return FleetDecision(
        id=ident,
        target=target,
        origin=Origin.COMMUNITY if lapi_origin in COMMUNITY_ORIGINS else Origin.FLEET,
        lapi_origin=lapi_origin,
        scenario=sanitise(raw.get("scenario", ""), MAX_TEXT),
        expires=now + go_duration(str(raw.get("duration", "0s"))),
    )
