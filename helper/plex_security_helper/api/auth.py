"""Bearer-token authentication: every route but ``/health`` needs the token."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import json_error

PUBLIC_PATHS = frozenset({"/api/v1/health"})


def token_middleware(token: str, on_client: Callable[[str], None] | None = None) -> Middleware:
    """Build a middleware that compares the presented token in constant time.

    *on_client* learns the address of every client that presented the right token: that is
    Home Assistant, the helper's management path, which must never be banned.
    """
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS and request.method in ("GET", "HEAD"):
            return await handler(request)
        presented = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(presented, expected):
            return json_error(401, "unauthorized", "missing or invalid bearer token", **{"WWW-Authenticate": "Bearer"})
        if on_client is not None and request.remote:
            on_client(request.remote)
        return await handler(request)

    return middleware
