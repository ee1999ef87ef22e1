"""The helper as a CrowdSec machine: the outbox's messages go to LAPI, in order, until taken.

Bans are recorded first and enforced locally at once; their messages wait in SQLite
(``outbox``), written in the ban's own transaction. This loop sends them with growing pauses
while LAPI is down, and forgets a message only once LAPI has taken it, so neither a restart nor
an outage loses a decision, and detection never waits for the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..firewall.targets import parse_target
from ..metrics import Metrics
from ..model import LOCAL_ORIGINS, Alert, Ban
from ..store import OutboxItem
from .decisions import OP_ALERT, OP_DELETE, ban_item, delete_item, lapi_alert
from .lapi import Lapi, LapiError, LapiRejected

if TYPE_CHECKING:
    from ..monitor import Monitor

_LOGGER = logging.getLogger(__name__)
BATCH = 50
IDLE = 5.0  # the outbox is looked at this often even without a wake-up


class FleetHooks:
    """The enforcer's hooks (firewall/hooks.py): outbox messages for our bans, ban latency."""

    def __init__(self, metrics: Metrics, helper_id: str, push: bool, wake: Callable[[], None]) -> None:
        self._metrics = metrics
        self._helper_id = helper_id
        self._push = push
        self._wake = wake

    def recorded(self, bans: Sequence[Ban], sources: Mapping[str, Alert], now: float) -> list[OutboxItem]:
        """Observe detection→ban latency; queue every local ban for LAPI."""
        for ban in bans:
            alert = sources.get(ban.target)
            if alert is not None:
                self._metrics.ban_latency.observe(max(0.0, now - alert.last_seen))
        if not self._push:
            return []
        items = [ban_item(b, sources.get(b.target), self._helper_id) for b in bans if b.origin in LOCAL_ORIGINS]
        if items:
            self._wake()
        return items

    def lifted(self, ban: Ban) -> list[OutboxItem]:
        """An unban here lifts the address fleet-wide (its LAPI decisions are deleted)."""
        if not self._push or ban.origin not in LOCAL_ORIGINS:
            return []
        self._wake()
        return [delete_item(ban.target)]


class Pusher:
    """Sends the outbox to LAPI; its state feeds ``/status``."""

    def __init__(self, lapi: Lapi, monitor: Monitor, metrics: Metrics, retry_max: float) -> None:
        self._lapi = lapi
        self._monitor = monitor
        self._metrics = metrics
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failures = 0
        self.reachable: bool | None = None
        self.credentials_ok: bool | None = None
        self.error: str | None = None
        self.last_push: float | None = None
        self.pushed = 0
        self.rejected = 0
        self.expired = 0

    def wake(self) -> None:
        """Thread-safe: something was queued (the worker thread calls this)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Forever: send what is due, then wait for a wake-up or the next due message."""
        self._loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception as err:  # noqa: BLE001 - the loop must outlive any one failure
                _LOGGER.warning("fleet push failed: %s", err)
                delay = self._retry_max
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _backoff(self) -> float:
        base = min(self._retry_max, 0.5 * 2.0 ** min(self.failures, 20))
        return base * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not a secret

    async def _round(self) -> float:
        store = self._monitor.store
        now = time.time()
        items = await self._monitor.run_in_worker(store.outbox_due, now, BATCH)
        if not items:
            _, _, next_try = await self._monitor.run_in_worker(store.outbox_stats)
            return IDLE if next_try is None else min(IDLE, max(0.05, next_try - now))
        done: list[int] = []
        try:
            for chunk in _runs(items):
                await self._send(chunk, now, done)
        except LapiError as err:
            self.failures += 1
            self._metrics.push_failures.inc()
            self.reachable = err.status != 0
            self.credentials_ok = False if isinstance(err, LapiRejected) else self.credentials_ok
            if self.error != str(err):
                _LOGGER.warning("fleet: %s; %d decisions wait in the outbox", err, len(items) - len(done))
            self.error = str(err)
            left = [i.id for i in items if i.id not in set(done)]
            await self._monitor.run_in_worker(store.outbox_done, done)
            await self._monitor.run_in_worker(store.outbox_retry, left, time.time() + self._backoff(), str(err))
            return self._backoff()
        await self._monitor.run_in_worker(store.outbox_done, done)
        self.failures, self.reachable, self.credentials_ok, self.error = 0, True, True, None
        self.last_push = time.time()
        return 0.0 if len(items) == BATCH else IDLE

    async def _send(self, chunk: list[OutboxItem], now: float, done: list[int]) -> None:
        if chunk[0].op == OP_DELETE:
            for item in chunk:
                target = parse_target(item.body["target"])
                await self._lapi.delete_decisions(target.single, target.text)
                self._metrics.pushed.labels(OP_DELETE).inc()
                done.append(item.id)
            return
        live: list[tuple[OutboxItem, dict[str, Any]]] = []
        for item in chunk:
            alert = lapi_alert(item.body, now) if item.op == OP_ALERT else None
            if alert is None:  # ran out while LAPI was away, or a message this version does not know
                self.expired += 1
                done.append(item.id)
            else:
                live.append((item, alert))
        if not live:
            return
        try:
            await self._lapi.push_alerts([a for _, a in live])
        except LapiError as err:
            if not 400 <= err.status < 500 or isinstance(err, LapiRejected):
                raise
            await self._one_by_one(live, done)
            return
        self._metrics.pushed.labels(OP_ALERT).inc(len(live))
        self.pushed += len(live)
        done.extend(i.id for i, _ in live)

    async def _one_by_one(self, live: list[tuple[OutboxItem, dict[str, Any]]], done: list[int]) -> None:
        """LAPI refused a batch: find the message it will never take, keep the others going."""
        for item, alert in live:
            try:
                await self._lapi.push_alerts([alert])
                self.pushed += 1
                self._metrics.pushed.labels(OP_ALERT).inc()
            except LapiError as err:
                if not 400 <= err.status < 500 or isinstance(err, LapiRejected):
                    raise
                _LOGGER.error("fleet: LAPI refused the decision for %s for good: %s", item.body.get("target"), err)
                self.rejected += 1
            done.append(item.id)

    def status(self) -> dict[str, Any]:
        """The push half of ``/status``'s fleet section."""
        return {
            "lapi_reachable": self.reachable,
            "credentials_ok": self.credentials_ok,
            "last_push": self.last_push,
            "pushed": self.pushed,
            "rejected": self.rejected,
            "expired_unsent": self.expired,
            "error": self.error,
        }


def _runs(items: list[OutboxItem]) -> list[list[OutboxItem]]:
    """Consecutive messages of one kind, in queue order (a ban and its later unban stay ordered)."""
    runs: list[list[OutboxItem]] = []
    for item in items:
        kind = OP_DELETE if item.op == OP_DELETE else OP_ALERT
        if runs and (OP_DELETE if runs[-1][0].op == OP_DELETE else OP_ALERT) == kind:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
