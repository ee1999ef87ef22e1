"""``/api/v1/sessions``: who streams from where, and stopping a stream."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..plex.sessions import MAX_MESSAGE, SESSION_ID, PlexError, SessionWatcher
from .errors import json_error

SESSIONS_KEY = web.AppKey("sessions", SessionWatcher)
DEFAULT_MESSAGE = "This stream was stopped by the server owner."
routes = web.RouteTableDef()


@routes.get("/api/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    """The streams of the last poll, with country and network."""
    watcher = request.app[SESSIONS_KEY]
    body: dict[str, Any] = watcher.status()
    body["sessions"] = [s.as_json() for s in watcher.streams] if body["available"] else []
    return web.json_response(body)


@routes.post("/api/v1/sessions/{session_id}/stop")
async def stop_session(request: web.Request) -> web.Response:
    """Plex's terminate call, with a message the viewer sees."""
    session_id = request.match_info["session_id"]
    if not SESSION_ID.match(session_id):
        return json_error(400, "invalid_session", "a session id is 1-64 letters, digits or . _ : -")
    message = DEFAULT_MESSAGE
    if request.can_read_body:
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return json_error(400, "invalid_body", "the body must be JSON")
        if not isinstance(data, dict) or set(data) - {"message"}:
            return json_error(400, "invalid_body", "the body may only hold a message")
        raw = data.get("message", DEFAULT_MESSAGE)
        if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_MESSAGE or not raw.isprintable():
            return json_error(400, "invalid_body", f"message: 1 to {MAX_MESSAGE} printable characters")
        message = raw
    watcher = request.app[SESSIONS_KEY]
    if not watcher.config.enabled:
        return json_error(409, "sessions_off", "sessions are off in the configuration")
    # Only what the last poll listed can be stopped: ids are Plex's, not the caller's guesses.
    if session_id not in {s.session_id for s in watcher.streams}:
        return json_error(404, "no_such_session", "no such session in the last poll of Plex")
    try:
        await watcher.stop(session_id, message)
    except LookupError:
        return json_error(404, "no_such_session", "Plex has no such session playing")
    except PlexError as err:
        return json_error(502, "plex_failed", str(err))
    return web.json_response({"stopped": session_id, "message": message})
