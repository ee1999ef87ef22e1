"""Typed client of the helper's ``/api/v1``; the integration's only way to reach the helper."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from .const import REQUEST_TIMEOUT


class HelperError(Exception):
    """The helper answered with something this client cannot use."""


class HelperConnectionError(HelperError):
    """The helper could not be reached."""


class HelperAuthError(HelperError):
    """The helper rejected the token."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The parts of ``GET /api/v1/status`` the entities read."""

    helper_id: str
    version: str
    failed_logins_24h: int
    failed_addresses_24h: int
    alerts_24h: int
    last_alert_seq: int
    lines_per_minute: int
    following: bool
    debug_logging_seen: bool
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        """Build from the JSON body; a missing key is a contract violation."""
        try:
            helper = data["helper"]
            monitor = data["monitor"]
            return cls(
                helper_id=str(helper["id"]),
                version=str(helper["version"]),
                failed_logins_24h=int(data["failed_logins"]["total"]),
                failed_addresses_24h=int(data["failed_logins"]["addresses"]),
                alerts_24h=int(data["alerts"]["count_24h"]),
                last_alert_seq=int(data["alerts"]["last_seq"]),
                lines_per_minute=int(monitor.get("lines_per_minute", 0)),
                following=bool(monitor["following"]),
                debug_logging_seen=bool(monitor["debug_logging_seen"]),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise HelperError(f"unexpected status document: {err!r}") from err


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
    ) -> None:
        self._session = session
        self._token = token
        # Certificate checks only matter for https; a self-signed helper needs verify_ssl off.
        self._ssl = verify_ssl
        scheme = "https" if use_tls else "http"
        netloc = f"[{host}]" if ":" in host else host
        self.base_url = f"{scheme}://{netloc}:{port}"

    async def _get(self, path: str, timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1{path}"
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with asyncio.timeout(timeout):
                async with self._session.get(url, headers=headers, ssl=self._ssl) as resp:
                    if resp.status == 401:
                        raise HelperAuthError("the helper rejected the token")
                    if resp.status != 200:
                        raise HelperError(f"the helper answered HTTP {resp.status} for {path}")
                    body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise HelperConnectionError(f"cannot reach the helper at {self.base_url}: {err}") from err
        if not isinstance(body, dict):
            raise HelperError(f"the helper sent a non-object body for {path}")
        return body

    async def status(self) -> Snapshot:
        """Fetch the status snapshot."""
        return Snapshot.from_json(await self._get("/status"))
