"""The ``/api/v1`` contract as an OpenAPI 3.0 document (tests validate responses against it)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..firewall.nft import PROFILES
from ..model import CALLER_ORIGINS, AlertKind, Origin
from ..plex.plextv import DEVICE_ID
from ..plex.sessions import MAX_MESSAGE, MAX_USERS_SHOWN, SESSION_ID

_ERROR = {"$ref": "#/components/schemas/Error"}
_NUM_OR_NULL = {"type": "number", "nullable": True}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_UNAUTHORIZED = _json(_ERROR, "Missing or invalid bearer token")

_ALERT: dict[str, Any] = {
    "type": "object",
    "required": ["seq", "kind", "ip", "time", "first_seen", "last_seen", "count", "score", "detail"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "kind": {"type": "string", "enum": [str(k) for k in AlertKind]},
        "ip": {"type": "string"},
        "time": {"type": "number"},
        "first_seen": {"type": "number"},
        "last_seen": {"type": "number"},
        "count": {"type": "integer", "minimum": 0},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "detail": {"type": "object"},
    },
}
_COUNTER = {
    "type": "object",
    "required": ["packets", "bytes"],
    "properties": {"packets": {"type": "integer"}, "bytes": {"type": "integer"}},
}
_INT_OR_NULL = {"type": "integer", "nullable": True}
FIREWALL_MODES = ("monitor", "enforce")
_FIREWALL_SETTING: dict[str, Any] = {
    "type": "object",
    "required": ["mode", "profile", "backend", "enforcing", "error", "changed_by", "changed_from", "changed_at"],
    "properties": {
        "mode": {"type": "string", "enum": list(FIREWALL_MODES)},
        "profile": {"type": "string", "enum": sorted(PROFILES)},
        "backend": {"type": "string", "enum": ["nft", "fail2ban", "none"]},
        "enforcing": {"type": "boolean"},
        "error": {"type": "string", "nullable": True},
        "changed_by": {"type": "string", "nullable": True, "enum": [*CALLER_ORIGINS, None]},
        "changed_from": {"type": "string", "nullable": True},
        "changed_at": _NUM_OR_NULL,
    },
}
_FIREWALL: dict[str, Any] = {
    "type": "object",
    "required": ["available", "backend", "mode", "enforcing", "plex_port", "limits", "active", "counters", "error"],
    "properties": {
        "available": {"type": "boolean"},
        "backend": {"type": "string", "enum": ["nft", "fail2ban", "none"]},
        "mode": {"type": "string", "enum": ["monitor", "enforce"]},
        "enforcing": {"type": "boolean"},
        "plex_port": {"type": "integer"},
        "profile": {"type": "string"},
        "limits": {
            "type": "object",
            "properties": {
                "new_per_minute": _INT_OR_NULL,
                "burst": {"type": "integer"},
                "max_concurrent": _INT_OR_NULL,
            },
        },
        "geoip": {"type": "object"},
        "active": {"type": "boolean"},
        "counters": {"type": "object", "additionalProperties": _COUNTER},
        "fail2ban": {"type": "object"},
        "error": {"type": "string", "nullable": True},
    },
}
_BAN: dict[str, Any] = {
    "type": "object",
    "required": ["ip", "created", "expires", "remaining_s", "reason", "origin", "offences", "enforced", "enforce_at"],
    "properties": {
        "ip": {"type": "string"},
        "created": {"type": "number"},
        "expires": {"type": "number"},
        "remaining_s": {"type": "integer", "minimum": 0},
        "reason": {"type": "string"},
        "origin": {"type": "string", "enum": [str(o) for o in Origin]},
        "offences": {"type": "integer", "minimum": 1},
        "enforced": {"type": "boolean"},
        "enforce_at": {"type": "string", "enum": ["host", "proxy"]},
    },
}
_ALLOW: dict[str, Any] = {
    "type": "object",
    "required": ["ip", "origin", "reason", "created"],
    "properties": {
        "ip": {"type": "string"},
        "origin": {"type": "string", "enum": ["config", "runtime"]},
        "reason": {"type": "string"},
        "created": {"type": "number", "nullable": True},
    },
}
_BANS_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["available", "active", "by_origin", "pending", "recent"],
    "properties": {
        "available": {"type": "boolean"},
        "active": {"type": "integer"},
        "by_origin": {"type": "object", "additionalProperties": {"type": "integer"}},
        "pending": {"type": "integer"},
        "recent": {"type": "array", "items": {"$ref": "#/components/schemas/Ban"}},
    },
}
_SEVERITIES = ["critical", "high", "medium", "low", "info"]
_COUNTS = {
    "type": "object",
    "required": _SEVERITIES,
    "properties": {k: {"type": "integer", "minimum": 0} for k in _SEVERITIES},
}
_AUDIT_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["available"],
    "properties": {
        "available": {"type": "boolean"},
        "reason": {"type": "string"},
        "score": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True},
        "counts": _COUNTS,
        "last_run": {"type": "number"},
        "running": {"type": "boolean"},
        "top": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "key", "severity", "title"],
                "properties": {
                    "id": {"type": "string"},
                    "key": {"type": "string"},
                    "severity": {"type": "string", "enum": _SEVERITIES},
                    "title": {"type": "string"},
                },
            },
        },
        "not_checked": {"type": "array", "items": {"type": "string"}},
        "serious": {"type": "array", "items": {"type": "string"}},
        "open": {"type": "array", "items": {"type": "string"}},
    },
}
_PLEX_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["available"],
    "properties": {
        "available": {"type": "boolean"},
        "reason": {"type": "string"},
        "version": {"type": "string", "nullable": True},
        "claimed": {"type": "boolean", "nullable": True},
        "vulnerable": {"type": "boolean"},
        "remote_access": {"type": "string", "nullable": True},
        "remote_access_exposed": {"type": "boolean"},
        "debug_logging": {"type": "boolean", "nullable": True},
        "allowed_networks_public": {"type": "boolean"},
    },
}
_FINDING: dict[str, Any] = {
    "type": "object",
    "required": ["id", "key", "severity", "title", "subject", "evidence", "remediation", "references", "accepted"],
    "properties": {
        "id": {"type": "string"},
        "key": {"type": "string"},
        "severity": {"type": "string", "enum": _SEVERITIES},
        "title": {"type": "string"},
        "subject": {"type": "string"},
        "evidence": {"type": "string"},
        "remediation": {"type": "string"},
        "references": {"type": "array", "items": {"type": "string"}},
        "accepted": {"type": "boolean"},
        "accepted_reason": {"type": "string", "nullable": True},
    },
}
_AUDIT_DOC: dict[str, Any] = {
    "type": "object",
    "required": ["running", "report"],
    "properties": {
        "running": {"type": "boolean"},
        "report": {
            "type": "object",
            "nullable": True,
            "required": ["started", "finished", "score", "counts", "findings", "not_checked", "facts"],
            "properties": {
                "started": {"type": "number"},
                "finished": {"type": "number"},
                "score": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True},
                "counts": _COUNTS,
                "findings": {"type": "array", "items": _FINDING},
                "not_checked": {"type": "object", "additionalProperties": {"type": "string"}},
                "facts": {"type": "object"},
            },
        },
    },
}
_FLEET_DECISION: dict[str, Any] = {
    "type": "object",
    "required": ["ip", "origin", "lapi_origin", "scenario", "remaining_s"],
    "properties": {
        "ip": {"type": "string"},
        "origin": {"type": "string", "enum": [Origin.FLEET.value, Origin.COMMUNITY.value]},
        "lapi_origin": {"type": "string"},
        "scenario": {"type": "string"},
        "remaining_s": {"type": "integer", "minimum": 0},
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}
_BOOL_OR_NULL = {"type": "boolean", "nullable": True}
_FLEET_SECTION: dict[str, Any] = {
    "type": "object",
    "description": "CrowdSec's Local API: this helper's pushes and the fleet's decisions it enforces",
    "required": ["available", "configured", "lapi_reachable", "credentials_ok", "push_queue", "refused"],
    "properties": {
        "available": {"type": "boolean"},
        "configured": {"type": "boolean"},
        "lapi_url": {"type": "string", "nullable": True},
        "lapi_reachable": _BOOL_OR_NULL,
        "credentials_ok": _BOOL_OR_NULL,
        "push_queue": {"type": "integer", "minimum": 0},
        "oldest_queued_s": _NUM_OR_NULL,
        "last_stream": _NUM_OR_NULL,
        "refused": {"type": "array", "items": _FLEET_DECISION},
        "push": {
            "type": "object",
            "nullable": True,
            "properties": {
                "lapi_reachable": _BOOL_OR_NULL,
                "credentials_ok": _BOOL_OR_NULL,
                "last_push": _NUM_OR_NULL,
                "pushed": {"type": "integer"},
                "rejected": {"type": "integer"},
                "expired_unsent": {"type": "integer"},
                "error": {"type": "string", "nullable": True},
            },
        },
        "pull": {
            "type": "object",
            "nullable": True,
            "properties": {
                "lapi_reachable": _BOOL_OR_NULL,
                "credentials_ok": _BOOL_OR_NULL,
                "last_stream": _NUM_OR_NULL,
                "enforcing": {"type": "boolean"},
                "decisions": {"type": "object", "additionalProperties": {"type": "integer"}},
                "refused": {"type": "array", "items": _FLEET_DECISION},
                "refused_total": {"type": "integer"},
                "malformed": {"type": "integer"},
                "error": {"type": "string", "nullable": True},
            },
        },
    },
}
_PLACE: dict[str, Any] = {
    "type": "object",
    "required": ["country", "asn", "network_owner", "hosting"],
    "properties": {
        "country": {"type": "string", "nullable": True, "pattern": "^[A-Z]{2}$"},
        "asn": _INT_OR_NULL,
        "network_owner": {"type": "string", "nullable": True},
        "hosting": {"type": "string", "nullable": True, "description": "The operator of a known hosting network"},
    },
}
_GEO_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["available", "package", "built", "age_days", "mmdb"],
    "properties": {
        "available": {"type": "boolean"},
        "package": {"type": "string"},
        "built": _NUM_OR_NULL,
        "age_days": _NUM_OR_NULL,
        "mmdb": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "type", "built", "age_days"],
                "properties": {
                    "path": {"type": "string"},
                    "type": {"type": "string"},
                    "built": {"type": "number"},
                    "age_days": {"type": "number"},
                },
            },
        },
        "network_owner": {"type": "boolean"},
        "cache": {"type": "object", "additionalProperties": {"type": "integer", "nullable": True}},
    },
}
_STR_OR_NULL = {"type": "string", "nullable": True}
_SESSIONS_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["available"],
    "properties": {
        "available": {"type": "boolean"},
        "reason": {"type": "string"},
        "updated": {"type": "number"},
        "remote": {"type": "integer", "minimum": 0},
        "local": {"type": "integer", "minimum": 0},
        "users": {
            "type": "array",
            "maxItems": MAX_USERS_SHOWN,
            "description": "Each user's latest country of a remote stream, most recent first",
            "items": {
                "type": "object",
                "required": ["user", "country", "seen"],
                "properties": {"user": {"type": "string"}, "country": {"type": "string"}, "seen": {"type": "number"}},
            },
        },
        "error": _STR_OR_NULL,
    },
}
_STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "user", "address", "remote", "country"],
    "properties": {
        "session_id": {"type": "string"},
        "user": {"type": "string"},
        "address": {"type": "string"},
        "remote": {"type": "boolean"},
        "location": {"type": "string"},
        "product": {"type": "string"},
        "platform": {"type": "string"},
        "device": {"type": "string"},
        "player": {"type": "string"},
        "state": {"type": "string"},
        "bandwidth": _INT_OR_NULL,
        "transcode": _STR_OR_NULL,
        "title": {"type": "string"},
        "country": _STR_OR_NULL,
        "network_owner": _STR_OR_NULL,
        "hosting": _STR_OR_NULL,
    },
}
_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["helper", "monitor", "failed_logins", "alerts", "unavailable"],
    "properties": {
        "helper": {
            "type": "object",
            "required": ["id", "version", "api_version", "started"],
            "properties": {
                "id": {"type": "string"},
                "version": {"type": "string"},
                "api_version": {"type": "integer"},
                "started": {"type": "number"},
            },
        },
        "monitor": {
            "type": "object",
            "required": ["available", "log_path", "following", "lines_processed", "debug_logging_seen"],
            "properties": {
                "available": {"type": "boolean"},
                "log_path": {"type": "string"},
                "following": {"type": "boolean"},
                "watch": {"type": "string", "enum": ["inotify", "poll"]},
                "lines_processed": {"type": "integer"},
                "access_lines": {"type": "integer"},
                "lines_per_minute": {"type": "integer"},
                "lines_per_second": {"type": "number"},
                "parse_failures": {"type": "integer"},
                "oversized_lines": {"type": "integer"},
                "rotations": {"type": "integer"},
                "last_line_time": _NUM_OR_NULL,
                "debug_logging_seen": {"type": "boolean"},
                "recording": {"type": "boolean"},
                "database_notice": {"type": "string", "nullable": True},
                "refused": {"type": "string", "nullable": True},
                "error": {"type": "string", "nullable": True},
            },
        },
        "failed_logins": {
            "type": "object",
            "required": ["window_s", "total", "addresses", "top"],
            "properties": {
                "window_s": {"type": "integer"},
                "total": {"type": "integer"},
                "addresses": {"type": "integer"},
                "top": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["ip", "count"],
                        "properties": {"ip": {"type": "string"}, "count": {"type": "integer"}},
                    },
                },
            },
        },
        "alerts": {
            "type": "object",
            "required": ["last_seq", "count_24h", "last"],
            "properties": {
                "last_seq": {"type": "integer"},
                "count_24h": {"type": "integer"},
                "last": {**_ALERT, "nullable": True},
                "last_attack": {**_ALERT, "nullable": True},
            },
        },
        "plex": _PLEX_SECTION,
        "bans": _BANS_SECTION,
        "firewall": _FIREWALL,
        "audit": _AUDIT_SECTION,
        "fleet": _FLEET_SECTION,
        "geo": _GEO_SECTION,
        "sessions": _SESSIONS_SECTION,
        "plex_tv": {
            "type": "object",
            "required": ["available"],
            "properties": {
                "available": {"type": "boolean"},
                "reason": {"type": "string"},
                "checked": {"type": "number"},
                "devices": {"type": "integer", "minimum": 0},
                "error": _STR_OR_NULL,
            },
        },
        "unavailable": {"type": "array", "items": {"type": "string"}},
    },
}


def _ip_body(**extra: dict[str, Any]) -> dict[str, Any]:
    """A JSON body with an address or network, a reason, and *extra* properties; nothing else."""
    properties = {
        "ip": {"type": "string", "minLength": 1, "maxLength": 64},
        "reason": {"type": "string", "maxLength": 200},
        **extra,
    }
    schema = {"type": "object", "required": ["ip"], "additionalProperties": False, "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _int_query(name: str, low: int, high: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": low, "maximum": high},
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "plex-security-helper", "version": __version__},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
            "Alert": _ALERT,
            "Ban": _BAN,
            "Status": _STATUS,
            "Place": _PLACE,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/health": {
            "get": {
                "operationId": "health",
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status", "version", "api_version"],
                            "properties": {
                                "status": {"type": "string", "enum": ["ok"]},
                                "version": {"type": "string"},
                                "api_version": {"type": "integer"},
                            },
                        },
                        "The helper is alive",
                    )
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "operationId": "status",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Status"}, "Snapshot"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/alerts": {
            "get": {
                "operationId": "alerts",
                "parameters": [
                    _int_query("after", 0, 2**62, "Return alerts with a sequence above this"),
                    _int_query("limit", 1, 500, "At most this many alerts"),
                    _int_query("wait", 0, 60, "Seconds to wait for a new alert when none is there"),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["alerts", "last_seq"],
                            "properties": {
                                "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                                "last_seq": {"type": "integer"},
                            },
                        },
                        "Alerts after the cursor, oldest first",
                    ),
                    "400": _json(_ERROR, "Invalid query"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/bans": {
            "get": {
                "operationId": "list_bans",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["mode", "backend", "enforcing", "bans"],
                            "properties": {
                                "mode": {"type": "string", "enum": ["monitor", "enforce"]},
                                "backend": {"type": "string"},
                                "enforcing": {"type": "boolean"},
                                "bans": {"type": "array", "items": {"$ref": "#/components/schemas/Ban"}},
                                "fleet": {"type": "array", "items": _FLEET_DECISION},
                            },
                        },
                        "Active bans, newest first, and the fleet decisions enforced here (CrowdSec)",
                    ),
                    "401": _UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "ban",
                "requestBody": _ip_body(
                    duration={"type": "integer", "minimum": 60, "maximum": 31_536_000},
                    origin={"type": "string", "enum": list(CALLER_ORIGINS)},
                    force={"type": "boolean"},
                    enforce_at={
                        "type": "string",
                        "enum": ["host", "proxy"],
                        "description": "proxy: no ban on this host, a CrowdSec decision for the proxy's bouncer",
                    },
                ),
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/Ban"}, "Banned (or recorded, in monitor mode)"),
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["ip", "enforce_at", "duration", "queued"],
                            "properties": {
                                "ip": {"type": "string"},
                                "enforce_at": {"type": "string", "enum": ["proxy"]},
                                "duration": {"type": "integer"},
                                "queued": {"type": "boolean"},
                            },
                        },
                        "Queued for CrowdSec's LAPI (enforce_at=proxy)",
                    ),
                    "400": _json(_ERROR, "Invalid body or address"),
                    "401": _UNAUTHORIZED,
                    "409": _json(
                        _ERROR, "Refused by the policy (loopback, protected, allow_listed, too_broad, no_fleet, ...)"
                    ),
                    "502": _json(_ERROR, "The firewall backend failed; the ban is recorded and retried"),
                },
            },
        },
        "/api/v1/bans/{target}": {
            "delete": {
                "operationId": "unban",
                "parameters": [
                    {
                        "name": "target",
                        "in": "path",
                        "required": True,
                        "description": "Address or CIDR network as listed",
                        "schema": {"type": "string", "maxLength": 64},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["unbanned"],
                            "properties": {"unbanned": {"$ref": "#/components/schemas/Ban"}},
                        },
                        "The lifted ban",
                    ),
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["ip", "fleet", "queued"],
                            "properties": {
                                "ip": {"type": "string"},
                                "fleet": {"type": "boolean"},
                                "queued": {"type": "boolean"},
                            },
                        },
                        "A fleet decision (CrowdSec): its deletion at LAPI is queued, then it lifts everywhere",
                    ),
                    "400": _json(_ERROR, "Not an address or network"),
                    "401": _UNAUTHORIZED,
                    "404": _json(_ERROR, "Not banned"),
                    "502": _json(_ERROR, "The firewall backend failed"),
                },
            }
        },
        "/api/v1/ips/{ip}": {
            "get": {
                "operationId": "address_report",
                "parameters": [
                    {
                        "name": "ip",
                        "in": "path",
                        "required": True,
                        "description": "One IPv4 or IPv6 address",
                        "schema": {"type": "string", "maxLength": 64},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["ip", "seen", "failed_auth_recent", "window_s", "alerts", "bans", "allowed"],
                            "properties": {
                                "ip": {"type": "string"},
                                "seen": {
                                    "type": "object",
                                    "nullable": True,
                                    "description": "Running totals since the address was first seen",
                                    "required": [
                                        "first_seen",
                                        "last_seen",
                                        "requests",
                                        "failed_auth",
                                        "probes",
                                        "alerts",
                                        "last_alert",
                                    ],
                                    "properties": {
                                        "first_seen": {"type": "number"},
                                        "last_seen": {"type": "number"},
                                        "requests": {"type": "integer"},
                                        "failed_auth": {"type": "integer"},
                                        "probes": {"type": "integer"},
                                        "alerts": {"type": "integer"},
                                        "last_alert": {"type": "string", "nullable": True},
                                    },
                                },
                                "failed_auth_recent": {"type": "integer"},
                                "window_s": {"type": "integer"},
                                "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                                "bans": {"type": "array", "items": {"$ref": "#/components/schemas/Ban"}},
                                "allowed": {"type": "boolean"},
                                "place": {"$ref": "#/components/schemas/Place"},
                            },
                        },
                        "What is known about the address",
                    ),
                    "400": _json(_ERROR, "Not one address"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/allow": {
            "get": {
                "operationId": "list_allow",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["allow"],
                            "properties": {"allow": {"type": "array", "items": _ALLOW}},
                        },
                        "Configured and run-time allow-list entries",
                    ),
                    "401": _UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "allow",
                "requestBody": _ip_body(),
                "responses": {
                    "201": _json(
                        {
                            **_ALLOW,
                            "properties": {
                                **_ALLOW["properties"],
                                "unbanned": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "Allowed; the bans it covers are lifted",
                    ),
                    "400": _json(_ERROR, "Invalid body or address"),
                    "401": _UNAUTHORIZED,
                    "409": _json(_ERROR, "Too broad"),
                },
            },
        },
        "/api/v1/allow/{target}": {
            "delete": {
                "operationId": "disallow",
                "parameters": [
                    {"name": "target", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
                ],
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["removed"], "properties": {"removed": {"type": "string"}}},
                        "Removed",
                    ),
                    "400": _json(_ERROR, "Not an address or network"),
                    "401": _UNAUTHORIZED,
                    "404": _json(_ERROR, "Not a run-time allow-list entry"),
                },
            }
        },
        "/api/v1/audit": {
            "get": {
                "operationId": "audit",
                "responses": {
                    "200": _json(_AUDIT_DOC, "The latest audit report (null before the first one finished)"),
                    "401": _UNAUTHORIZED,
                },
            },
            "post": {
                "operationId": "run_audit",
                "responses": {
                    "200": _json(_AUDIT_DOC, "A fresh audit report"),
                    "401": _UNAUTHORIZED,
                    "429": _json(_ERROR, "An audit ran less than 30 s ago (Retry-After says when)"),
                },
            },
        },
        "/api/v1/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format: lines, parse failures, alerts by kind, bans by origin,"
                        " fleet push queue, detection-to-ban and API latency histograms",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/sessions": {
            "get": {
                "operationId": "list_sessions",
                "responses": {
                    "200": _json(
                        {
                            **_SESSIONS_SECTION,
                            "required": ["available", "sessions"],
                            "properties": {
                                **_SESSIONS_SECTION["properties"],
                                "sessions": {"type": "array", "items": _STREAM},
                            },
                        },
                        "The streams of the last poll of Plex's sessions",
                    ),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/sessions/{session_id}/stop": {
            "post": {
                "operationId": "stop_session",
                "parameters": [
                    {
                        "name": "session_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": SESSION_ID.pattern},
                    }
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["stopped", "message"],
                            "properties": {"stopped": {"type": "string"}, "message": {"type": "string"}},
                        },
                        "Plex stopped the stream and showed the message",
                    ),
                    "400": _json(_ERROR, "Invalid session id or message"),
                    "401": _UNAUTHORIZED,
                    "404": _json(_ERROR, "No such session in the last poll, or Plex no longer has it"),
                    "409": _json(_ERROR, "Sessions are off in the configuration"),
                    "502": _json(_ERROR, "Plex could not be asked"),
                },
            }
        },
        "/api/v1/plex-tv/devices/{device_id}/remove": {
            "post": {
                "operationId": "remove_device",
                "description": "Remove a device the last plex.tv listing showed (its token stops working)",
                "parameters": [
                    {
                        "name": "device_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": DEVICE_ID.pattern},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["removed", "name"],
                            "properties": {"removed": {"type": "string"}, "name": {"type": "string"}},
                        },
                        "plex.tv removed the device",
                    ),
                    "400": _json(_ERROR, "Invalid device id"),
                    "401": _UNAUTHORIZED,
                    "404": _json(_ERROR, "No such device in the last listing, or plex.tv no longer has it"),
                    "409": _json(_ERROR, "The plex.tv account is not read ([plex_tv] enabled = false)"),
                    "502": _json(_ERROR, "plex.tv could not be asked"),
                },
            }
        },
        "/api/v1/webhook/{secret}": {
            "post": {
                "operationId": "plex_webhook",
                "security": [],
                "description": "Plex's webhooks; the secret in the path is the credential ([webhook] secret)",
                "parameters": [
                    {
                        "name": "secret",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["payload"],
                                "properties": {
                                    "payload": {"type": "string", "description": "The event as JSON"},
                                    "thumb": {"type": "string", "format": "binary"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["accepted", "seq"],
                            "properties": {"accepted": {"type": "string"}, "seq": _INT_OR_NULL},
                        },
                        "Accepted; seq is the alert a device.new became",
                    ),
                    "400": _json(_ERROR, "Not a Plex webhook"),
                    "404": _json(_ERROR, "No such webhook (wrong secret, or webhooks are off)"),
                    "413": _json(_ERROR, "Larger than [webhook] max_bytes"),
                    "415": _json(_ERROR, "Not multipart"),
                },
            }
        },
        "/api/v1/firewall": {
            "get": {
                "operationId": "firewall",
                "responses": {"200": _json(_FIREWALL_SETTING, "Mode, profile and their last run-time change")},
            },
            "put": {
                "operationId": "set_firewall",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": False,
                                "properties": {
                                    "mode": {"type": "string", "enum": list(FIREWALL_MODES)},
                                    "profile": {"type": "string", "enum": sorted(PROFILES)},
                                    "origin": {"type": "string", "enum": list(CALLER_ORIGINS)},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_FIREWALL_SETTING, "Applied now and kept across restarts"),
                    "400": _json(_ERROR, "Invalid body (give mode, profile or both)"),
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "responses": {
                    "200": _json({"type": "object"}, "This document"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
    },
}


def _with_common_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation can also answer these (middlewares run before any handler)."""
    common = {
        "400": _json(_ERROR, "Invalid request"),
        "401": _UNAUTHORIZED,
        "403": _json(_ERROR, "The client address is not in the API's allow-list"),
        "405": _json(_ERROR, "Method not allowed (Allow lists the methods)"),
        "413": _json(_ERROR, "Body too large"),
        "429": _json(_ERROR, "Too many wrong tokens from this address, or an audit ran moments ago"),
    }
    for path, item in doc["paths"].items():
        for operation in item.values():
            for code, response in common.items():
                if path == "/api/v1/health" and code in ("401", "429"):
                    continue
                operation["responses"].setdefault(code, response)
    return doc


_with_common_errors(OPENAPI)
