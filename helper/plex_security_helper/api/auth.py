"""Bearer-token authentication: every route but ``/health`` needs the token."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import json_error

PUBLIC_PATHS = frozenset({"/api/v1/health"})


def token_middleware(token: str) -> Middleware:
    """Build a middleware that compares the presented token in constant time."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS and request.method in ("GET", "HEAD"):
            return await handler(request)
        presented = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(presented, expected):
            return json_error(401, "unauthorized", "missing or invalid bearer token", **{"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return middleware
