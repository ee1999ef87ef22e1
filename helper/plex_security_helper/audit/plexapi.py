"""The local Plex API: identity (claimed, version), preferences and the remote-access mapping.

Everything has a timeout; an unreachable server becomes "not checked", never an exception.
The token goes only into the ``X-Plex-Token`` header; ``/myplex/account`` also returns the
owner's ``authToken``, which is dropped on reading.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import aiohttp

from .findings import Finding, Severity
from .versions import Version, Vulnerability, format_version, load_vulnerabilities, parse_version

TIMEOUT = 5.0
MAX_BODY = 1 << 20


class PlexUnavailable(Exception):
    """The Plex API could not be asked (down, refused the token, unexpected answer)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """``GET /identity``."""

    claimed: bool
    machine_identifier: str
    version: str


@dataclass(frozen=True, slots=True)
class Mapping:
    """The remote-access part of ``GET /myplex/account``."""

    mapping_state: str
    public_address: str
    public_port: int | None
    sign_in_state: str


def _attrs(body: bytes, content_type: str, container: str) -> dict[str, Any]:
    """The attributes of the top element, from JSON or (older servers) XML."""
    if "json" in content_type:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get(container), dict):
            raise PlexUnavailable(f"no {container} in the answer")
        result: dict[str, Any] = data[container]
        return result
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise PlexUnavailable("refusing an XML answer with declarations")
    root = ET.fromstring(body)  # noqa: S314 - declarations refused above, size bounded
    out: dict[str, Any] = dict(root.attrib)
    out["_children"] = [dict(child.attrib) for child in root]
    return out


class PlexClient:
    """Asks one Plex Media Server (normally http://127.0.0.1:32400)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token = token

    async def _get(self, path: str, container: str, *, auth: bool = True) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if auth and self._token:
            headers["X-Plex-Token"] = self._token
        try:
            async with asyncio.timeout(TIMEOUT):
                async with self._session.get(self._base + path, headers=headers, allow_redirects=False) as resp:
                    if resp.status == 401:
                        raise PlexUnavailable(f"{path}: the server refused the token")
                    if resp.status != 200:
                        raise PlexUnavailable(f"{path}: HTTP {resp.status}")
                    body = await resp.content.read(MAX_BODY + 1)
                    if len(body) > MAX_BODY:
                        raise PlexUnavailable(f"{path}: answer too large")
                    return _attrs(body, resp.headers.get("Content-Type", ""), container)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, ET.ParseError) as err:
            raise PlexUnavailable(f"{path}: {type(err).__name__}: {err}"[:200]) from None

    async def identity(self) -> Identity:
        """Claimed state and version; needs no token."""
        attrs = await self._get("/identity", "MediaContainer", auth=False)
        claimed = str(attrs.get("claimed", "0")).lower() in ("1", "true")
        return Identity(
            claimed=claimed,
            machine_identifier=str(attrs.get("machineIdentifier", ""))[:64],
            version=str(attrs.get("version", ""))[:64],
        )

    async def preferences(self) -> dict[str, str]:
        """``/:/prefs`` as id → value (the same names as Preferences.xml)."""
        attrs = await self._get("/:/prefs", "MediaContainer")
        settings = attrs.get("Setting", attrs.get("_children", []))
        return {str(s["id"]): str(s.get("value", "")) for s in settings if isinstance(s, dict) and "id" in s}

    async def mapping(self) -> Mapping:
        """Remote access: whether plex.tv reaches the server and on which public address."""
        attrs = await self._get("/myplex/account", "MyPlex")
        attrs.pop("authToken", None)  # the owner's token: never kept
        port = str(attrs.get("publicPort", ""))
        return Mapping(
            mapping_state=str(attrs.get("mappingState", "unknown"))[:32],
            public_address=str(attrs.get("publicAddress", ""))[:64],
            public_port=int(port) if port.isdigit() and int(port) < 65536 else None,
            sign_in_state=str(attrs.get("signInState", ""))[:32],
        )


def version_findings(version_text: str, platform: str = "linux") -> list[Finding]:
    """One finding per known vulnerability affecting *version_text*, plus the plex.tv-side rows as information."""
    version: Version | None = parse_version(version_text)
    if version is None:
        return [
            Finding(
                "plex.version_unknown",
                Severity.LOW,
                "The Plex version is unknown",
                f"unparseable version {version_text[:40]!r}",
                "Update Plex Media Server.",
            )
        ]
    found: list[Finding] = []
    for vuln in load_vulnerabilities():
        if vuln.side != "server":
            found.append(_service_finding(vuln))
        elif vuln.affects(version, platform):
            found.append(_version_finding(vuln, version))
    return found


_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM}


def _version_finding(vuln: Vulnerability, version: Version) -> Finding:
    """The running build is in the row's range: say which build fixes it, or that none does."""
    if vuln.fixed is not None:
        fixed = f"; fixed in {format_version(vuln.fixed)}"
        remediation = vuln.remediation or f"Update Plex Media Server to {format_version(vuln.fixed)} or newer."
    else:
        fixed = "; no fix published yet"
        remediation = vuln.remediation or "No fix published yet: update to the newest release and watch the advisory."
    note = f" ({vuln.note})" if vuln.note else ""
    return Finding(
        "plex.vulnerable_version",
        _SEVERITY.get(vuln.severity, Severity.LOW),
        f"Plex {format_version(version)} is affected by {vuln.id}",
        f"{vuln.title}{fixed}{note}",
        remediation,
        references=(*vuln.ids, *vuln.references),
        subject=vuln.id,
    )


def _service_finding(vuln: Vulnerability) -> Finding:
    """A plex.tv-side CVE or breach: no server build changes it, so it only informs."""
    return Finding(
        "plex.tv_advisory",
        Severity.INFO,
        f"plex.tv advisory {vuln.id} (no server version involved)",
        f"{vuln.title}" + (f" ({vuln.note})" if vuln.note else ""),
        vuln.remediation or "Nothing to update on the server.",
        references=(*vuln.ids, *vuln.references),
        subject=vuln.id,
    )


def exposure_findings(identity: Identity | None, mapping: Mapping | None) -> list[Finding]:
    """Unclaimed and exposed is the worst case: anyone can claim the server."""
    found: list[Finding] = []
    exposed = mapping is not None and mapping.mapping_state == "mapped"
    if identity is not None and not identity.claimed:
        found.append(
            Finding(
                "plex.unclaimed",
                Severity.CRITICAL if exposed else Severity.HIGH,
                "The server is not claimed" + (" and is reachable from the internet" if exposed else ""),
                "/identity reports claimed=0: whoever reaches it first can claim it and its media",
                "Claim it now: open http://<server>:32400/web from the LAN and sign in (or set PLEX_CLAIM).",
            )
        )
    if exposed and mapping is not None:
        where = f"{mapping.public_address}:{mapping.public_port}" if mapping.public_port else mapping.public_address
        found.append(
            Finding(
                "plex.remote_access_mapped",
                Severity.INFO,
                "Remote access is on and reachable",
                f"plex.tv reaches the server at {where or 'its public address'}",
                "Expected for a shared server: keep this helper's enforcement on.",
            )
        )
    return found
