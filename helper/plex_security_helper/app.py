"""The aiohttp application factory: wires config, monitor and API together."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from .api.audit import routes as audit_routes
from .api.auth import BadTokenThrottle, RequestRate, token_middleware
from .api.bans import routes as ban_routes
from .api.devices import routes as device_routes
from .api.errors import error_middleware
from .api.firewall import restore_setting
from .api.firewall import routes as firewall_routes
from .api.ips import routes as ip_routes
from .api.metrics import METRICS_KEY
from .api.metrics import routes as metrics_routes
from .api.routes import (
    AUDITOR_KEY,
    DEVICES_KEY,
    GEO_KEY,
    HELPER_ID_KEY,
    LONG_POLLS_KEY,
    MAX_WAIT_KEY,
    MONITOR_KEY,
    STARTED_KEY,
    LongPolls,
    routes,
)
from .api.server import busy_middleware
from .api.sessions import SESSIONS_KEY
from .api.sessions import routes as session_routes
from .api.webhook import MAX_BYTES_KEY
from .api.webhook import routes as webhook_routes
from .audit.runner import Auditor, schedule
from .config import Config
from .fleet.service import FLEET_KEY, Fleet
from .metrics import Metrics
from .model import Origin
from .monitor import Monitor
from .plex import geo
from .plex.plextv import DeviceWatch, watch_devices
from .plex.sessions import SessionWatcher, watch

MAX_BODY = 64 * 1024
_LOGGER = logging.getLogger(__name__)


def _ban_guesser(monitor: Monitor) -> Callable[[str], None]:
    """Ban an address that kept guessing the API token (the policy still protects who it protects)."""
    tasks: set[asyncio.Task[None]] = set()

    def ban(address: str) -> None:
        async def run() -> None:
            def work() -> None:
                monitor.enforcer.ban(
                    monitor.store,
                    address,
                    duration=None,
                    reason="guessed the API token",
                    origin=Origin.DETECTOR,
                    force=False,
                    now=time.time(),
                )

            try:
                await monitor.run_in_worker(work)
                await monitor.stream_changed()
            except Exception as err:  # noqa: BLE001 - a refused or failed ban is logged, never raised
                _LOGGER.warning("not banning API token guesser %s: %s", address, err)

        task = asyncio.get_running_loop().create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return ban


def create_app(config: Config) -> web.Application:
    """Build the application; the monitor starts and stops with it."""
    monitor = Monitor(config)
    metrics = Metrics()
    fleet = Fleet(config.crowdsec, monitor, metrics, config.helper_id)
    app = web.Application(
        middlewares=[
            busy_middleware,
            error_middleware,
            metrics.middleware(),
            token_middleware(
                config.api.token,
                monitor.enforcer.policy.protect_address,
                clients=tuple(ipaddress.ip_network(c) for c in config.api.clients),
                throttling=config.api.throttle,
                throttle=BadTokenThrottle(on_block=_ban_guesser(monitor) if config.api.ban_token_guessers else None),
                rate=RequestRate(config.api.rate_limit) if config.api.rate_limit else None,
                webhook_secret=config.webhook.secret,
            ),
        ],
        client_max_size=MAX_BODY,
    )
    app[MONITOR_KEY] = monitor
    app[METRICS_KEY] = metrics
    app[FLEET_KEY] = fleet
    auditor = Auditor(config.audit, monitor.enforcer)
    auditor.plex_tv = config.plex_tv
    app[AUDITOR_KEY] = auditor
    auditor.listeners.append(monitor.learn_audit)
    app[HELPER_ID_KEY] = config.helper_id
    app[MAX_WAIT_KEY] = config.api.max_wait
    app[STARTED_KEY] = time.time()
    app[LONG_POLLS_KEY] = LongPolls()
    places = geo.Geo(config.geo.mmdb, config.geo.cache_size)
    app[GEO_KEY] = places
    app.add_routes(routes)
    app.add_routes(ban_routes)
    app.add_routes(audit_routes)
    app.add_routes(ip_routes)
    app.add_routes(firewall_routes)
    app.add_routes(metrics_routes)
    app.add_routes(session_routes)
    app.add_routes(device_routes)
    app.add_routes(webhook_routes)
    app[DEVICES_KEY] = DeviceWatch(enabled=config.plex_tv.enabled)
    app[MAX_BYTES_KEY] = config.webhook.max_bytes
    watcher = SessionWatcher(config.sessions, config.audit, places)
    app[SESSIONS_KEY] = watcher

    async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
        geo.install(places)
        await monitor.start()
        await restore_setting(monitor)
        metrics.start_seq = monitor.last_seq
        await fleet.start()
        tasks = [asyncio.create_task(schedule(auditor, config.audit.interval), name="plex-security-audit")]
        if config.sessions.enabled:
            tasks.append(asyncio.create_task(watch(watcher, monitor), name="plex-security-sessions"))
        if config.plex_tv.enabled:
            devices = watch_devices(config.plex_tv, config.audit, monitor, app[DEVICES_KEY])
            tasks.append(asyncio.create_task(devices, name="plex-security-plextv"))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await watcher.close()
        await fleet.stop()
        await monitor.stop()
        geo.install(None)
        places.close()

    app.cleanup_ctx.append(monitor_ctx)

    async def release(app: web.Application) -> None:
        await monitor.release_waiters()

    app.on_shutdown.append(release)  # type: ignore[arg-type]  # aiohttp 3.11 types Signal oddly
    return app
