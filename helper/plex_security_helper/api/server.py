"""Serving the API so that hostile clients cannot starve it.

aiohttp alone waits for a request's headers forever and accepts connections until the process
runs out of file descriptors: 1,100 connections that never finish their headers took the API and
the firewall (``nft`` needs descriptors too) down. The :class:`ConnectionGate` sits between the
listening socket and aiohttp: it counts connections per address and in all, closes a connection
that has no request in progress for longer than its deadline, and when a cap is reached it closes
the oldest idle connection of the busiest address (or, with none idle, refuses the new one at
once). Connections carrying a request (the token was checked, a handler runs) are never closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

_LOGGER = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # a new connection has this long to deliver its first request's headers
IDLE_TIMEOUT = 30.0  # a kept-alive connection, between requests (clients keep theirs for ~15 s)
BODY_TIMEOUT = 10.0  # an authenticated request has this long to deliver its (at most 64 KiB) body
PER_ADDRESS = 64  # open connections one address may hold
MAX_CONNECTIONS = 1024  # open connections in all (lowered to fit the descriptor limit)
RESERVED_FDS = 256  # descriptors kept for the database, logs, nft, Docker and Plex clients
WANTED_FDS = 4096  # soft descriptor limit asked for at start (the unit's LimitNOFILE)
# asyncio accepts up to the backlog in one go before the gate sees any: keep that burst well
# inside the descriptors RESERVED_FDS leaves over.
ACCEPT_BATCH = 100


@dataclass(slots=True)
class _Conn:
    address: str
    transport: asyncio.BaseTransport
    idle_since: float
    busy: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class ConnectionGate:
    """Counts and bounds the open connections; tells busy (request running) from idle ones."""

    per_address: int = PER_ADDRESS
    total: int = MAX_CONNECTIONS
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    clock: Callable[[], float] = time.monotonic
    _conns: dict[asyncio.BaseTransport, _Conn] = field(default_factory=dict)
    _by_address: dict[str, OrderedDict[asyncio.BaseTransport, None]] = field(default_factory=dict)
    refused: int = 0
    evicted: int = 0
    timed_out: int = 0

    @property
    def open(self) -> int:
        """Connections open right now."""
        return len(self._conns)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Take a new connection in (making room if needed); False: close it unheard."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        mine = self._by_address.get(address)
        if mine is not None and len(mine) >= self.per_address and not self._evict_from(mine):
            self.refused += 1
            return False
        if len(self._conns) >= self.total and not self._evict_from(self._busiest()):
            self.refused += 1
            return False
        conn = _Conn(address, transport, self.clock())
        self._conns[transport] = conn
        self._by_address.setdefault(address, OrderedDict())[transport] = None
        self._arm(conn, self.header_timeout)
        return True

    def rekey(self, old: asyncio.BaseTransport, new: asyncio.BaseTransport) -> bool:
        """The connection now speaks through *new* (TLS over *old*); False when it was closed meanwhile."""
        conn = self._conns.pop(old, None)
        if conn is None:
            return False
        conn.transport = new
        self._conns[new] = conn
        mine = self._by_address[conn.address]
        mine.pop(old, None)
        mine[new] = None
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        """The connection is gone."""
        conn = self._conns.pop(transport, None)
        if conn is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
        mine = self._by_address.get(conn.address)
        if mine is not None:
            mine.pop(transport, None)
            if not mine:
                del self._by_address[conn.address]

    def begin(self, transport: asyncio.BaseTransport | None) -> None:
        """A request's headers arrived on this connection: it is busy, never closed by the gate."""
        conn = self._conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy += 1

    def end(self, transport: asyncio.BaseTransport | None) -> None:
        """The request was answered: the connection is idle again, on the idle deadline."""
        conn = self._conns.get(transport) if transport is not None else None
        if conn is None:
            return
        conn.busy = max(0, conn.busy - 1)
        if not conn.busy:
            conn.idle_since = self.clock()
            self._arm(conn, self.idle_timeout)
            mine = self._by_address.get(conn.address)
            if mine is not None:
                mine.move_to_end(conn.transport)  # the oldest idle connection is evicted first

    def _arm(self, conn: _Conn, delay: float) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
        with contextlib.suppress(RuntimeError):  # no running loop: unit tests drive the gate by hand
            conn.timer = asyncio.get_running_loop().call_later(delay, self._expire, conn, delay)

    def _expire(self, conn: _Conn, delay: float) -> None:
        conn.timer = None
        if conn.busy or self._conns.get(conn.transport) is not conn:
            return
        left = conn.idle_since + delay - self.clock()
        if left > 0:
            self._arm(conn, left)
            return
        self.timed_out += 1
        self._close(conn)

    def _busiest(self) -> OrderedDict[asyncio.BaseTransport, None] | None:
        return max(self._by_address.values(), key=len, default=None)

    def _evict_from(self, mine: OrderedDict[asyncio.BaseTransport, None] | None) -> bool:
        """Close the oldest idle connection among *mine*; False when all of them are busy."""
        for transport in mine or ():
            conn = self._conns[transport]
            if not conn.busy:
                self.evicted += 1
                self._close(conn)
                return True
        return False

    def _close(self, conn: _Conn) -> None:
        self.release(conn.transport)
        conn.transport.abort()  # type: ignore[attr-defined]  # every stream transport has it

    def as_json(self) -> dict[str, int]:
        """Counters for /status."""
        return {
            "open": self.open,
            "limit": self.total,
            "per_address": self.per_address,
            "refused": self.refused,
            "evicted": self.evicted,
            "timed_out": self.timed_out,
        }


class _Guarded(asyncio.Protocol):
    """Asks the gate before aiohttp's protocol sees a connection; tells it when it goes.

    With TLS the gate admits the plain TCP connection and the handshake runs under the header
    deadline (``start_tls``), so connections stuck in a handshake are counted and cut off too.
    """

    def __init__(self, gate: ConnectionGate, inner: asyncio.Protocol, tls: ssl.SSLContext | None) -> None:
        self._gate = gate
        self._inner = inner
        self._tls = tls
        self._ready = False  # aiohttp's protocol has its connection
        self._early: list[bytes] = []  # decrypted bytes that arrived before it had
        self._transport: asyncio.BaseTransport | None = None
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if not self._gate.admit(transport):
            transport.abort()  # type: ignore[attr-defined]
            return
        if self._tls is None:
            self._ready = True
            self._inner.connection_made(transport)
            return
        self._handshake = asyncio.get_running_loop().create_task(self._start_tls(transport, self._tls))

    async def _start_tls(self, tcp: asyncio.BaseTransport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            secure = await loop.start_tls(
                tcp,  # type: ignore[arg-type]  # a server's stream transport
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=HEADER_TIMEOUT,
            )
        except Exception:  # noqa: BLE001 - a failed handshake is the client's problem: drop it
            secure = None
        if secure is None or not self._gate.rekey(tcp, secure):
            self._gate.release(tcp)
            tcp.abort()  # type: ignore[attr-defined]
            if secure is not None:
                secure.abort()
            return
        self._transport = secure
        self._ready = True
        self._inner.connection_made(secure)
        for data in self._early:
            self._inner.data_received(data)
        self._early = []

    def data_received(self, data: bytes) -> None:
        if self._ready:
            self._inner.data_received(data)
        elif self._tls is not None and len(self._early) < 64:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._ready else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._gate.release(self._transport)
        if self._ready:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._ready:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._ready:
            self._inner.resume_writing()


GATE_KEY = web.AppKey("connection_gate", ConnectionGate)


@web.middleware
async def busy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Mark the connection busy while its request runs (outermost middleware)."""
    gate = request.app.get(GATE_KEY)
    if gate is None:
        return await handler(request)
    transport = request.transport
    gate.begin(transport)
    try:
        return await handler(request)
    finally:
        gate.end(transport)


async def read_body(request: web.Request) -> None:
    """Read an authenticated request's body now, within :data:`BODY_TIMEOUT` (handlers reuse it)."""
    if request.body_exists:
        try:
            await asyncio.wait_for(request.read(), BODY_TIMEOUT)
        except TimeoutError:
            raise web.HTTPRequestTimeout(text="the request body did not arrive in time") from None


def descriptor_budget(wanted: int = WANTED_FDS) -> int:
    """Raise the soft descriptor limit towards *wanted*; the connections that leave room for the rest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    limit = wanted if soft == resource.RLIM_INFINITY else soft
    return max(16, min(MAX_CONNECTIONS, limit - RESERVED_FDS))


def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    on_listening: Callable[[], None],
    shutdown_timeout: float = 5.0,
) -> None:
    """Run *app* behind a :class:`ConnectionGate` until SIGTERM or SIGINT."""
    gate = ConnectionGate(total=descriptor_budget())
    app[GATE_KEY] = gate

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, keepalive_timeout=IDLE_TIMEOUT)
        await runner.setup()
        factory: Any = runner.server
        listener: asyncio.Server | None = None
        try:
            # TLS is started per connection by _Guarded, after the gate admitted it.
            listener = await loop.create_server(
                lambda: _Guarded(gate, factory(), ssl_context), host, port, backlog=ACCEPT_BATCH, reuse_address=True
            )
            on_listening()
            await stop.wait()
        finally:
            if listener is not None:
                listener.close()
            await runner.cleanup()

    asyncio.run(main())
