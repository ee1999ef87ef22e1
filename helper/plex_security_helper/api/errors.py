"""JSON errors for every failure; no stack trace ever leaves the process."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

_LOGGER = logging.getLogger(__name__)


def json_error(status: int, code: str, message: str, **headers: str) -> web.Response:
    """The contract's error body: ``{"error": code, "message": text}``."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTML errors and unexpected exceptions into JSON errors."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODES.get(exc.status, "http_error")
        message = exc.text if exc.content_type == "text/plain" and exc.text else exc.reason
        # Keep the headers that tell the client what to do next (405's Allow, 429's Retry-After).
        keep = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return json_error(exc.status, code, message or exc.reason, **keep)
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal_error", "internal error; see the helper's log")
