"""The aiohttp application factory: wires config, monitor and API together."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from aiohttp import web

from .api.auth import token_middleware
from .api.bans import routes as ban_routes
from .api.errors import error_middleware
from .api.routes import HELPER_ID_KEY, MONITOR_KEY, STARTED_KEY, routes
from .config import Config
from .monitor import Monitor

MAX_BODY = 64 * 1024


def create_app(config: Config) -> web.Application:
    """Build the application; the monitor starts and stops with it."""
    monitor = Monitor(config)
    app = web.Application(
        middlewares=[error_middleware, token_middleware(config.api.token, monitor.enforcer.policy.protect_address)],
        client_max_size=MAX_BODY,
    )
    app[MONITOR_KEY] = monitor
    app[HELPER_ID_KEY] = config.helper_id
    app[STARTED_KEY] = time.time()
    app.add_routes(routes)
    app.add_routes(ban_routes)

    async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
        await monitor.start()
        yield
        await monitor.stop()

    app.cleanup_ctx.append(monitor_ctx)
    return app
