"""Bearer-token authentication: every route but ``/health`` needs the token.

Guessing is throttled: an address that presents a wrong token ``MAX_FAILURES`` times within
``WINDOW`` seconds gets 429 for ``BLOCK`` seconds, whatever it presents (logged once per
block). An optional client allow-list refuses everyone else before any token is looked at.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import json_error

_LOGGER = logging.getLogger(__name__)
PUBLIC_PATHS = frozenset({"/api/v1/health"})
WEBHOOK_PREFIX = "/api/v1/webhook/"
MAX_FAILURES = 10
WINDOW = 60.0
BLOCK = 600.0
MAX_TRACKED = 10_000

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadTokenThrottle:
    """Per-address count of wrong tokens; bounded memory under a spray of addresses."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, on_block: Callable[[str], None] | None = None
    ) -> None:
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}
        self._on_block = on_block

    def blocked_for(self, address: str) -> int:
        """Seconds this address stays blocked (0: not blocked)."""
        until = self._blocked.get(address)
        if until is None:
            return 0
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return 0
        return int(left) + 1

    def failed(self, address: str) -> None:
        """Count one wrong token; block the address when it guessed too often."""
        now = self._clock()
        times = self._failures.pop(address, None) or deque()
        times.append(now)
        while times and times[0] < now - WINDOW:
            times.popleft()
        self._failures[address] = times
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)
        if len(times) >= MAX_FAILURES and address not in self._blocked:
            self._blocked[address] = now + BLOCK
            del self._failures[address]
            _LOGGER.warning(
                "%d wrong API tokens from %s within %.0f s: blocked for %.0f s", len(times), address, WINDOW, BLOCK
            )
            if self._on_block is not None:
                self._on_block(address)


class RequestRate:
    """A token bucket per address: ``rate`` requests a second, bursts of ``2 × rate``."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = 2 * rate
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, address: str) -> bool:
        """Take one token for *address*; False when it has none left."""
        if self._rate <= 0:
            return True
        now = self._clock()
        tokens, last = self._buckets.pop(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1
        self._buckets[address] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return allowed


def _allowed(address: str, clients: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in clients)


def token_middleware(
    token: str,
    on_client: Callable[[str], None] | None = None,
    *,
    clients: Sequence[Network] = (),
    throttle: BadTokenThrottle | None = None,
    throttling: bool = True,
    rate: RequestRate | None = None,
    webhook_secret: str = "",
) -> Middleware:
    """Build a middleware that compares the presented token in constant time.

    *on_client* learns the address of every client that presented the right token: that is
    Home Assistant, the helper's management path, which must never be banned.
    """
    expected = f"Bearer {token}".encode()
    guard = throttle or BadTokenThrottle()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        remote = request.remote or ""
        if clients and not _allowed(remote, clients):
            return json_error(403, "client_not_allowed", "this address may not use the API")
        if rate is not None and not rate.allow(remote):
            return json_error(429, "rate_limited", "too many requests from this address", **{"Retry-After": "1"})
        if request.path in PUBLIC_PATHS and request.method in ("GET", "HEAD"):
            return await handler(request)
        webhook = request.path.startswith(WEBHOOK_PREFIX)
        wait = guard.blocked_for(remote) if throttling else 0
        if wait:
            return json_error(
                429, "too_many_failures", f"too many wrong tokens; try again in {wait} s", **{"Retry-After": str(wait)}
            )
        if webhook:
            # Plex cannot send a header: the secret in the URL is the credential (constant time).
            given = request.path[len(WEBHOOK_PREFIX) :].encode("utf-8", "replace")
            if webhook_secret and request.method == "POST" and hmac.compare_digest(given, webhook_secret.encode()):
                return await handler(request)
            if throttling:
                guard.failed(remote)
            return json_error(404, "not_found", "no such webhook")
        presented = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(presented, expected):
            if throttling:
                guard.failed(remote)
            return json_error(401, "unauthorized", "missing or invalid bearer token", **{"WWW-Authenticate": "Bearer"})
        if on_client is not None and remote:
            on_client(remote)
        return await handler(request)

    return middleware
