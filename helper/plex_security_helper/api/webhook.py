"""``POST /api/v1/webhook/{secret}``: Plex's webhooks (the middleware has checked the secret)."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from ..plex.webhooks import WebhookError, device_alert, parse_payload
from .errors import json_error
from .routes import GEO_KEY, MONITOR_KEY
from .sessions import SESSIONS_KEY

MAX_BYTES_KEY = web.AppKey("webhook_max_bytes", int)
MAX_PARTS = 4
routes = web.RouteTableDef()


async def _payload(request: web.Request, limit: int) -> bytes:
    """The ``payload`` part, reading at most *limit* bytes over all parts (a thumb is skipped)."""
    reader = await request.multipart()
    total, payload = 0, None
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise WebhookError("nested multipart is not a Plex webhook")
        while chunk := await part.read_chunk(16 * 1024):
            total += len(chunk)
            if total > limit:
                raise OverflowError
            if part.name == "payload":
                payload = (payload or b"") + chunk
    if payload is None:
        raise WebhookError("no payload part")
    return payload


@routes.post("/api/v1/webhook/{secret}")
async def webhook(request: web.Request) -> web.Response:
    """Accept one webhook; ``device.new`` is stored as an alert before the answer."""
    if not request.content_type.startswith("multipart/"):
        return json_error(415, "unsupported_media_type", "Plex posts multipart/form-data")
    limit = request.app[MAX_BYTES_KEY]
    if request.content_length is not None and request.content_length > limit:
        return json_error(413, "too_large", f"a webhook is at most {limit} bytes")
    try:
        event = parse_payload(await _payload(request, limit))
    except OverflowError:
        return json_error(413, "too_large", f"a webhook is at most {limit} bytes")
    except (WebhookError, ValueError) as err:
        return json_error(400, "invalid_webhook", str(err)[:200])
    monitor = request.app[MONITOR_KEY]
    seq = None
    if event.event == "device.new":
        alert = device_alert(event, request.app[GEO_KEY])
        stored = await monitor.run_in_worker(monitor.store.record_sessions, (), [alert])
        await monitor.stream_changed()
        seq = stored[0].seq
    elif event.event.startswith(("playback.", "media.")):
        request.app[SESSIONS_KEY].wake()
    return web.json_response({"accepted": event.event, "seq": seq})
