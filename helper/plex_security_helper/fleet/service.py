"""The fleet's parts wired together: hooks into the enforcer, the pusher, the stream, ``/status``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import __version__
from ..config import CrowdsecConfig
from ..firewall.targets import parse_target
from ..metrics import Metrics
from ..store import Store
from .decisions import ENFORCE_PROXY, decision_item, delete_item
from .lapi import Lapi
from .push import FleetHooks, Pusher
from .stream import StreamBouncer

if TYPE_CHECKING:
    from ..monitor import Monitor


class FleetUnavailable(Exception):
    """A fleet operation without ``[crowdsec]`` push credentials."""


class Fleet:
    """Everything the helper does with CrowdSec's Local API."""

    def __init__(self, config: CrowdsecConfig | None, monitor: Monitor, metrics: Metrics, helper_id: str) -> None:
        self.config = config
        self._monitor = monitor
        self._helper_id = helper_id
        self._lapi = Lapi(config, f"plex-security-helper/{__version__}") if config else None
        self.pusher = (
            Pusher(self._lapi, monitor, metrics, config.retry_max) if config and self._lapi and config.push else None
        )
        self.bouncer = (
            StreamBouncer(self._lapi, monitor, config.stream_interval)
            if config and self._lapi and config.pull
            else None
        )
        self.hooks = FleetHooks(metrics, helper_id, self.pusher is not None, self._wake)
        monitor.enforcer.hooks = self.hooks
        self._tasks: list[asyncio.Task[None]] = []

    def _wake(self) -> None:
        if self.pusher is not None:
            self.pusher.wake()

    async def start(self) -> None:
        """Start pushing and pulling (after the monitor: the table and the store exist)."""
        if self.pusher is not None:
            self._tasks.append(asyncio.create_task(self.pusher.run(), name="plex-security-fleet-push"))
        if self.bouncer is not None:
            self._tasks.append(asyncio.create_task(self.bouncer.run(), name="plex-security-fleet-stream"))

    async def stop(self) -> None:
        """Stop both loops; what was not pushed stays in the outbox for the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._lapi is not None:
            await self._lapi.close()

    def push_decision(
        self,
        store: Store,
        text: str,
        *,
        duration: int,
        reason: str,
        origin: str,
        enforce_at: str = ENFORCE_PROXY,
        now: float,
    ) -> dict[str, Any]:
        """Queue a decision for LAPI without a local ban (worker thread).

        For clients this host never sees directly: behind a trusted reverse proxy, only the
        proxy's own bouncer can drop them. The never-ban policy applies as to any ban.
        """
        if self.pusher is None:
            raise FleetUnavailable("no [crowdsec] machine credentials: nothing to push to")
        target = parse_target(text)
        self._monitor.enforcer.policy.check(target)
        item = decision_item(
            target,
            until=now + duration,
            reason=reason,
            origin=origin,
            kind=None,
            helper_id=self._helper_id,
            enforce_at=enforce_at,
        )
        store.add_outbox([item], now)
        self._wake()
        return {"ip": target.text, "enforce_at": enforce_at, "duration": duration, "queued": True}

    def lift_fleet_wide(self, store: Store, text: str, now: float) -> dict[str, Any] | None:
        """Queue the deletion of a fleet decision this helper enforces but did not make (worker thread).

        None when there is no such decision or no machine credentials to delete it with.
        """
        target = parse_target(text)
        if self.pusher is None or self.bouncer is None or not self.bouncer.holds(target.text):
            return None
        store.add_outbox([delete_item(target.text)], now)
        self._wake()
        return {"ip": target.text, "fleet": True, "queued": True}

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        """The fleet decisions in force here (worker thread)."""
        return self.bouncer.decisions(limit) if self.bouncer is not None else []

    def status(self, store: Store) -> dict[str, Any]:
        """The ``fleet`` section of ``/status`` (worker thread: reads the outbox)."""
        queued, oldest, _ = store.outbox_stats()
        push = self.pusher.status() if self.pusher else None
        pull = self.bouncer.status() if self.bouncer else None
        parts = [p for p in (push, pull) if p is not None]
        reach = [p["lapi_reachable"] for p in parts if p["lapi_reachable"] is not None]
        creds = [p["credentials_ok"] for p in parts if p["credentials_ok"] is not None]
        return {
            "available": True,
            "configured": self.config is not None,
            "lapi_url": self.config.lapi_url if self.config else None,
            "lapi_reachable": all(reach) if reach else None,
            "credentials_ok": all(creds) if creds else None,
            "push_queue": queued,
            "oldest_queued_s": round(time.time() - oldest, 1) if oldest is not None else None,
            "last_stream": pull["last_stream"] if pull else None,
            "refused": pull["refused"] if pull else [],
            "push": push,
            "pull": pull,
        }


FLEET_KEY = web.AppKey("fleet", Fleet)
