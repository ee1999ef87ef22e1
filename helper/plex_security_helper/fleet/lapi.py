"""A small aiohttp client of CrowdSec's Local API (the routes its swagger names, no more).

Machines log in (``POST /v1/watchers/login``) for a JWT and push alerts (``POST /v1/alerts``)
or delete decisions (``DELETE /v1/decisions``); bouncers present their API key on
``GET /v1/decisions/stream``. Credentials are never logged, and errors name no secret.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiohttp

from ..config import CrowdsecConfig

TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
# A JWT is valid for an hour in 1.4.6; log in again a little before.
TOKEN_LIFETIME = 50 * 60
MAX_RESPONSE = 64 * 1024 * 1024


class LapiError(Exception):
    """LAPI could not be reached (``status`` 0) or answered with an error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class LapiRejected(LapiError):
    """LAPI refused the credentials (401/403): retrying will not help until they change."""


def _ssl(config: CrowdsecConfig) -> ssl.SSLContext | bool:
    if not config.lapi_url.startswith("https:"):
        return True  # aiohttp's default (plain http here)
    context = ssl.create_default_context(cafile=str(config.ca_cert) if config.ca_cert else None)
    if config.tls_cert and config.tls_key:
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


class Lapi:
    """One session to LAPI for both roles."""

    def __init__(self, config: CrowdsecConfig, user_agent: str) -> None:
        self._config = config
        self._ssl = _ssl(config)
        self._session: aiohttp.ClientSession | None = None
        self._jwt: str | None = None
        self._jwt_until = 0.0
        self._agent = user_agent

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=TIMEOUT, headers={"User-Agent": self._agent}, connector=aiohttp.TCPConnector(limit=4)
            )
        return self._session

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        url = f"{self._config.lapi_url}{path}"
        try:
            async with self._client().request(method, url, headers=headers, ssl=self._ssl, **kwargs) as resp:
                if resp.status in (401, 403):
                    raise LapiRejected(
                        f"LAPI refused the credentials ({resp.status} on {path.split('?', maxsplit=1)[0]})", resp.status
                    )
                if resp.status >= 400:
                    text = (await resp.content.read(500)).decode("utf-8", "replace")
                    raise LapiError(
                        f"LAPI answered {resp.status} on {path.split('?', maxsplit=1)[0]}: {text}", resp.status
                    )
                if resp.content_length is not None and resp.content_length > MAX_RESPONSE:
                    raise LapiError("LAPI's answer is too large")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise LapiError(f"LAPI unreachable at {self._config.lapi_url}: {type(err).__name__}: {err}") from None

    # -- machine ---------------------------------------------------------------------------------
    async def _token(self) -> str:
        if self._jwt is None or time.monotonic() > self._jwt_until:
            body = {"machine_id": self._config.machine_id, "password": self._config.password, "scenarios": []}
            answer = await self._request("POST", "/v1/watchers/login", {}, json=body)
            token = answer.get("token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise LapiError("LAPI's login answer has no token")
            self._jwt, self._jwt_until = token, time.monotonic() + TOKEN_LIFETIME
        return self._jwt

    async def _as_machine(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {await self._token()}"}
            try:
                return await self._request(method, path, headers, **kwargs)
            except LapiRejected:
                self._jwt = None  # an expired or revoked token: log in once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def push_alerts(self, alerts: list[dict[str, Any]]) -> list[str]:
        """``POST /v1/alerts``: LAPI's ids of the stored alerts."""
        answer = await self._as_machine("POST", "/v1/alerts", json=alerts)
        return [str(a) for a in answer] if isinstance(answer, list) else []

    async def delete_decisions(self, single: bool, value: str) -> int:
        """``DELETE /v1/decisions?ip=…`` (or ``range=…``; 1.4.6 has no scope/value filter here): how many went."""
        answer = await self._as_machine("DELETE", "/v1/decisions", params={"ip" if single else "range": value})
        try:
            return int(answer.get("nbDeleted", 0)) if isinstance(answer, dict) else 0
        except (TypeError, ValueError):
            return 0

    # -- bouncer ---------------------------------------------------------------------------------
    async def stream(self, startup: bool) -> dict[str, Any]:
        """``GET /v1/decisions/stream``: ``{"new": [...], "deleted": [...]}`` (lists, maybe empty)."""
        params = {"startup": "true" if startup else "false"}
        if self._config.origins:
            params["origins"] = ",".join(self._config.origins)
        answer = await self._request(
            "GET", "/v1/decisions/stream", {"X-Api-Key": self._config.bouncer_key}, params=params
        )
        if not isinstance(answer, dict):
            raise LapiError("LAPI's stream answer is not an object")
        return {"new": answer.get("new") or [], "deleted": answer.get("deleted") or []}
