"""Alerts without loss: follow the helper's alert stream by cursor and hand each alert out once.

The cursor is saved with Home Assistant's ``Store`` after each batch has been handed out, so a
restart continues where it stopped: nothing is dropped and nothing is fired twice. A new entry
starts at the helper's newest alert instead of replaying its history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .api import HelperClient, HelperConnectionError, HelperError
from .const import ALERT_VERDICTS, DOMAIN, EVENT_SUSPICIOUS_ACCESS, LONG_POLL_SECONDS, STORAGE_VERSION
from .logbook import alert_title

_LOGGER = logging.getLogger(__name__)
RETRY_SECONDS = (1, 2, 5, 10, 30)
# The event entity's state is the time of its last event in milliseconds: two alerts handed out
# within the same millisecond (a detection and the ban it caused) would be one state change.
MIN_GAP = 0.002

type AlertCallback = Callable[[dict[str, Any]], None]


def iso_time(value: Any) -> str | None:
    """An epoch time from the helper as ISO 8601 (UTC); None stays None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return dt_util.utc_from_timestamp(float(value)).isoformat()


def alert_detail(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert's ``detail`` object (empty when the helper sent none)."""
    detail = alert.get("detail")
    return detail if isinstance(detail, dict) else {}


def alert_verdict(alert: dict[str, Any]) -> str | None:
    """The verdict the helper recorded with the alert, else the one its kind has."""
    verdict = alert_detail(alert).get("verdict")
    return str(verdict) if verdict else ALERT_VERDICTS.get(str(alert.get("kind")))


def event_data(hass: HomeAssistant, alert: dict[str, Any], entry_id: str, server: str) -> dict[str, Any]:
    """The bus event's data: flat, with what an automation (and the logbook) needs."""
    detail = alert_detail(alert)
    kind = str(alert.get("kind") or "")
    return {
        "config_entry_id": entry_id,
        "server": server,
        "seq": alert.get("seq"),
        "type": kind,
        "title": alert_title(hass, kind),
        "ip": alert.get("ip"),
        "user": detail.get("user"),
        "country": detail.get("country"),
        "count": alert.get("count"),
        "window_s": detail.get("window_s"),
        "score": alert.get("score"),
        "verdict": alert_verdict(alert),
        "origin": detail.get("origin"),
        "reason": detail.get("reason"),
        "enforced": detail.get("enforced"),
        "expires": iso_time(detail.get("expires")),
        "sample_paths": detail.get("sample_paths", []),
        "session_id": detail.get("session_id"),  # a stream alert's Plex session: it can be stopped
        "device": detail.get("device"),  # a new device on the owner's plex.tv account (no address)
        "device_id": detail.get("device_id"),
        "time": iso_time(alert.get("time")),
    }


class AlertListener:
    """One per config entry: long-polls ``/alerts?after=SEQ`` (or polls) and dispatches."""

    def __init__(
        self,
        hass: HomeAssistant,
        client: HelperClient,
        *,
        entry_id: str,
        server: str,
        long_poll: bool,
        interval: float,
    ) -> None:
        self.hass = hass
        self.client = client
        self.entry_id = entry_id
        self.server = server
        self.long_poll = long_poll
        self.interval = interval
        self.cursor: int | None = None
        self._store: Store[dict[str, int]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.alerts")
        self._callbacks: list[AlertCallback] = []
        self._last_dispatch = 0.0
        # Set by the event entity: the bus event names it, so its logbook shows the readable row.
        self.event_entity_id: str | None = None

    @callback
    def subscribe(self, cb: AlertCallback) -> CALLBACK_TYPE:
        """Be called with every new alert; returns the unsubscribe function."""
        self._callbacks.append(cb)

        @callback
        def unsubscribe() -> None:
            self._callbacks.remove(cb)

        return unsubscribe

    async def async_load(self, newest: int) -> None:
        """Restore the cursor, or start at *newest* for a new entry."""
        stored = await self._store.async_load()
        if stored is not None and isinstance(stored.get("cursor"), int):
            self.cursor = stored["cursor"]
        else:
            self.cursor = newest
            await self._store.async_save({"cursor": newest})

    async def async_remove(self) -> None:
        """Forget the cursor (the entry was deleted)."""
        await self._store.async_remove()

    async def run(self) -> None:
        """Follow the stream until cancelled."""
        failures = 0
        while True:
            try:
                await self.poll_once()
                failures = 0
                if not self.long_poll:
                    await asyncio.sleep(self.interval)
            except HelperError as err:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                if failures == 0 and not isinstance(err, HelperConnectionError):
                    _LOGGER.warning("Cannot read alerts of %s: %s", self.server, err)
                failures += 1
                await asyncio.sleep(delay)

    async def poll_once(self) -> int:
        """Fetch and dispatch what is new; returns how many alerts were handed out."""
        assert self.cursor is not None
        alerts, last_seq = await self.client.alerts(self.cursor, LONG_POLL_SECONDS if self.long_poll else 0)
        if not alerts and last_seq < self.cursor:
            # The helper's database was reset: its sequence starts again below our cursor.
            _LOGGER.warning("Alert sequence of %s went back from %s to %s", self.server, self.cursor, last_seq)
            self.cursor = last_seq
            await self._store.async_save({"cursor": last_seq})
            return 0
        for alert in alerts:
            seq = alert.get("seq")
            if not isinstance(seq, int) or seq <= self.cursor:
                continue
            if (gap := MIN_GAP - (time.monotonic() - self._last_dispatch)) > 0:
                await asyncio.sleep(gap)
            data = event_data(self.hass, alert, self.entry_id, self.server)
            if self.event_entity_id:
                data["entity_id"] = self.event_entity_id
            self.hass.bus.async_fire(EVENT_SUSPICIOUS_ACCESS, data)
            for cb in list(self._callbacks):
                cb(alert)
            # Measured from after the callbacks: the event entity took its time stamp among them.
            self._last_dispatch = time.monotonic()
            self.cursor = seq
        if alerts:
            await self._store.async_save({"cursor": self.cursor})
        return len(alerts)
