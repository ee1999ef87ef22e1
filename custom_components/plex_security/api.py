"""Typed client of the helper's ``/api/v1``; the integration's only way to reach the helper."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from .const import LONG_POLL_SECONDS, REQUEST_TIMEOUT


class HelperError(Exception):
    """The helper answered with something this client cannot use."""


class HelperConnectionError(HelperError):
    """The helper could not be reached; ``reason`` says how (a config-flow error key)."""

    def __init__(self, message: str, reason: str = "cannot_connect") -> None:
        super().__init__(message)
        self.reason = reason


class HelperAuthError(HelperError):
    """The helper rejected the token."""


class HelperRequestError(HelperError):
    """The helper refused a request and said why (``code`` is stable, e.g. ``allow_listed``)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def refuses_address(self) -> bool:
        """The helper refuses the caller's address (throttle or client allow-list), not the request."""
        return self.status == 403 or (self.status == 429 and self.code in ("too_many_failures", "rate_limited"))


def connection_reason(err: BaseException, use_tls: bool) -> str:
    """Why a connection failed, told apart so the owner knows what to change."""
    if isinstance(err, TimeoutError):
        return "timeout"
    if isinstance(err, aiohttp.ServerFingerprintMismatch):
        return "fingerprint_mismatch"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return "certificate_invalid"
    if isinstance(err, aiohttp.ClientSSLError) or (isinstance(err, ssl.SSLError) and use_tls):
        return "tls_mismatch"  # HTTPS asked of a plain-HTTP helper
    if isinstance(err, aiohttp.ServerDisconnectedError) and not use_tls:
        return "tls_mismatch"  # plain HTTP sent to a helper that speaks HTTPS: it hangs up
    if isinstance(err, aiohttp.ClientConnectorError) and isinstance(err.os_error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(err, ConnectionRefusedError):
        return "connection_refused"
    return "cannot_connect"


def _get(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The parts of ``GET /api/v1/status`` the entities read."""

    helper_id: str
    version: str
    failed_logins_24h: int
    failed_addresses_24h: int
    alerts_24h: int
    last_alert_seq: int
    last_alert: dict[str, Any] | None
    last_attack: dict[str, Any] | None
    lines_per_minute: int
    following: bool
    debug_logging_seen: bool
    last_line_time: float | None
    monitor_error: str | None
    active_bans: int
    firewall: dict[str, Any]
    plex: dict[str, Any]
    audit: dict[str, Any]
    fleet: dict[str, Any] = field(default_factory=lambda: {"configured": False})
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    fetched: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        """Build from the JSON body; a missing required key is a contract violation."""
        try:
            helper = data["helper"]
            monitor = data["monitor"]
            alerts = data["alerts"]
            return cls(
                helper_id=str(helper["id"]),
                version=str(helper["version"]),
                failed_logins_24h=int(data["failed_logins"]["total"]),
                failed_addresses_24h=int(data["failed_logins"]["addresses"]),
                alerts_24h=int(alerts["count_24h"]),
                last_alert_seq=int(alerts["last_seq"]),
                last_alert=alerts.get("last") if isinstance(alerts.get("last"), dict) else None,
                last_attack=alerts.get("last_attack") if isinstance(alerts.get("last_attack"), dict) else None,
                lines_per_minute=int(monitor.get("lines_per_minute", 0)),
                following=bool(monitor["following"]),
                debug_logging_seen=bool(monitor["debug_logging_seen"]),
                last_line_time=monitor.get("last_line_time"),
                monitor_error=monitor.get("error"),
                active_bans=int(_get(data, "bans", "active") or 0),
                firewall=data.get("firewall") or {"available": False},
                plex=data.get("plex") or {"available": False},
                audit=data.get("audit") or {"available": False},
                fleet=data.get("fleet") or {"configured": False},
                raw=data,
                fetched=time.time(),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise HelperError(f"unexpected status document: {err!r}") from err

    @property
    def monitor_lag(self) -> float | None:
        """Seconds between the newest log line read and this snapshot."""
        if self.last_line_time is None:
            return None
        return max(0.0, round(self.fetched - float(self.last_line_time), 1))

    @property
    def firewall_state(self) -> str:
        """Off (no backend or no firewall section), monitor, enforcing, or error."""
        if not self.firewall.get("available") or self.firewall.get("backend") == "none":
            return "off"
        if self.firewall.get("mode") != "enforce":
            return "monitor"
        if self.firewall.get("error") or not (self.firewall.get("enforcing") and self.firewall.get("active")):
            return "error"
        return "enforcing"

    @property
    def firewall_drops(self) -> int | None:
        """Packets the helper's table dropped or refused, all counters together (0 in monitor mode)."""
        if self.firewall_state == "monitor":
            return 0
        counters = self.firewall.get("counters")
        if not isinstance(counters, dict) or not counters:
            return None
        return sum(int(c.get("packets", 0)) for c in counters.values() if isinstance(c, dict))

    def open_findings(self, severity: str) -> int | None:
        """Open audit findings of one severity (None before the first audit)."""
        counts = self.audit.get("counts")
        return int(counts.get(severity, 0)) if isinstance(counts, dict) else None


class HelperClient:
    """Talks to one helper with Home Assistant's shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        host: str,
        port: int,
        token: str,
        use_tls: bool = False,
        verify_ssl: bool = True,
        fingerprint: str | None = None,
    ) -> None:
        self._session = session
        self._token = token
        # A pinned fingerprint (the helper's self-signed certificate) replaces CA checks.
        self._ssl: bool | aiohttp.Fingerprint = (
            aiohttp.Fingerprint(bytes.fromhex(fingerprint.replace(":", ""))) if use_tls and fingerprint else verify_ssl
        )
        self._use_tls = use_tls
        scheme = "https" if use_tls else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.base_url = f"{scheme}://{netloc}:{port}"

    async def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, timeout: float = 0
    ) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1{path}"
        timeout = timeout or REQUEST_TIMEOUT
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with asyncio.timeout(timeout):
                async with self._session.request(method, url, headers=headers, json=body, ssl=self._ssl) as resp:
                    if resp.status == 401:
                        raise HelperAuthError("the helper rejected the token")
                    try:
                        data = await resp.json(content_type=None)
                    except ValueError:
                        data = None
                    if not isinstance(data, dict):
                        raise HelperError(f"the helper answered HTTP {resp.status} without a JSON object for {path}")
                    if resp.status >= 400:
                        retry = resp.headers.get("Retry-After", "")
                        raise HelperRequestError(
                            resp.status,
                            str(data.get("error", "http_error")),
                            str(data.get("message", f"HTTP {resp.status}")),
                            int(retry) if retry.isdigit() else None,
                        )
                    return data
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise HelperConnectionError(
                f"cannot reach the helper at {self.base_url}: {err!r}", connection_reason(err, self._use_tls)
            ) from err

    async def status(self) -> Snapshot:
        """Fetch the status snapshot."""
        return Snapshot.from_json(await self._request("GET", "/status"))

    async def alerts(self, after: int, wait: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Alerts (and ban events) after a cursor; ``wait`` long-polls up to that many seconds."""
        wait = max(0, min(wait, LONG_POLL_SECONDS))
        data = await self._request(
            "GET", f"/alerts?after={after}&limit={limit}&wait={wait}", timeout=REQUEST_TIMEOUT + wait
        )
        alerts = data.get("alerts")
        if not isinstance(alerts, list):
            raise HelperError("the helper sent no alert list")
        return [a for a in alerts if isinstance(a, dict)], int(data.get("last_seq", 0))

    async def bans(self) -> dict[str, Any]:
        """Active bans, newest first."""
        return await self._request("GET", "/bans")

    async def audit(self) -> dict[str, Any]:
        """The latest audit report (``report`` is null before the first audit)."""
        return await self._request("GET", "/audit")

    async def ban(self, ip: str, *, duration: int | None, reason: str, force: bool = False) -> dict[str, Any]:
        """Ban an address or network on this helper."""
        body: dict[str, Any] = {"ip": ip, "reason": reason, "origin": "home_assistant", "force": force}
        if duration is not None:
            body["duration"] = duration
        return await self._request("POST", "/bans", body=body)

    async def unban(self, ip: str) -> dict[str, Any]:
        """Lift a ban."""
        return await self._request("DELETE", f"/bans/{quote(ip, safe='')}")

    async def allow(self, ip: str, reason: str) -> dict[str, Any]:
        """Allow-list an address or network (lifts the bans it covers)."""
        return await self._request("POST", "/allow", body={"ip": ip, "reason": reason})

    async def lookup(self, ip: str) -> dict[str, Any]:
        """What the helper knows about one address."""
        return await self._request("GET", f"/ips/{quote(ip, safe='')}")

    async def set_firewall(self, *, mode: str | None = None, profile: str | None = None) -> dict[str, Any]:
        """Switch monitor/enforce or the rate profile; the helper records that Home Assistant did."""
        body: dict[str, Any] = {"origin": "home_assistant"}
        if mode is not None:
            body["mode"] = mode
        if profile is not None:
            body["profile"] = profile
        return await self._request("PUT", "/firewall", body=body)

    async def run_audit(self) -> dict[str, Any]:
        """Audit now; returns the report."""
        data = await self._request("POST", "/audit", timeout=120)
        report = data.get("report")
        if not isinstance(report, dict):
            raise HelperError("the helper sent no audit report")
        return report

    async def stop_session(self, session_id: str, message: str) -> dict[str, Any]:
        """Stop one Plex stream; the viewer sees *message*."""
        return await self._request("POST", f"/sessions/{quote(session_id, safe='')}/stop", body={"message": message})

    async def remove_device(self, device_id: str) -> dict[str, Any]:
        """Remove a device from the owner's plex.tv account (its token stops working)."""
        return await self._request("POST", f"/plex-tv/devices/{quote(device_id, safe='')}/remove")


async def fetch_fingerprint(host: str, port: int, context: ssl.SSLContext, timeout: float = REQUEST_TIMEOUT) -> str:
    """SHA-256 of the certificate a TLS server presents, as colon-separated hex.

    *context* must not verify (Home Assistant's ``get_default_no_verify_context()``: built once,
    outside the event loop); the owner compares the fingerprint with what ``init`` printed.
    """
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError, ssl.SSLError) as err:
        raise HelperConnectionError(f"no TLS server at {host}:{port}: {err!r}", connection_reason(err, True)) from err
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
