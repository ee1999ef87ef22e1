"""The Plex emulator on its own event loop thread, for tests that also drive a helper process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from plex_security_helper.demo.plexemu import PlexState, create_plex_app
from tests.helperproc import free_port


@contextmanager
def running_emulator(state: PlexState) -> Iterator[str]:
    """Serve *state* on loopback until the block ends; yields the base URL."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(create_plex_app(state))

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
