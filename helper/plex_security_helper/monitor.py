"""The log pipeline: follower → parser → detector → store, driven from the event loop.

All blocking work (file reads, parsing, SQLite) runs on one worker thread that also owns
the database connection, so the event loop only schedules and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .audit.findings import AuditReport
from .audit.versions import parse_version
from .config import Config
from .firewall.enforcer import Enforcer
from .logwatch.inotify import FolderWatch, watch_folder
from .logwatch.pipeline import Batch, Pipeline
from .logwatch.tail import LogFollower, Position
from .plex.geo import annotate
from .store import Store, is_damage, open_store, rebuild_store

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")  # run_in_worker's result (no PEP 695: the helper runs on Python 3.11)
DAY = 86_400.0
PURGE_INTERVAL = 3600.0
RECONCILE_INTERVAL = 30.0
WATCHED_POLL = 1.0  # seconds between safety-net polls while inotify reports changes
# Lines that changed only totals are committed at most this often, failed logins and learnt
# networks within PROMPT_COMMIT (Home Assistant shows them): a commit per Plex write costs more
# CPU than the lines, and an uncommitted position is read again after a crash (nothing lost).
# An alert is committed at once: it bans and notifies.
QUIET_COMMIT = 1.0
PROMPT_COMMIT = 0.25
# A commit that falls due is made by the next read when the log grows within this time, else by
# a wake of its own: a log written to all the time costs no extra wakes.
COMMIT_SLACK = 0.25
REBUILD_INTERVAL = 60.0  # seconds between two rebuilds of a database found damaged while running
MAX_FAILED_AUTH_ROWS = 2_000_000
MAX_ADDRESS_ROWS = 1_000_000


@dataclass(slots=True)
class _Pending:
    """What one read produced, until it is committed."""

    batch: Batch
    position: Position | None
    carry: list[str] = field(default_factory=list)

    @property
    def urgent(self) -> bool:
        """Whether it holds an alert: committed at once, since bans and notifications wait on it."""
        return bool(self.batch.verdicts.alerts)

    @property
    def wait(self) -> float:
        """How long it may wait for more lines before its commit."""
        verdicts = self.batch.verdicts
        return PROMPT_COMMIT if verdicts.failures or verdicts.learned else QUIET_COMMIT

    def absorb(self, later: _Pending) -> None:
        """Take in the batch read after this one (its position and carry are the newer ones)."""
        mine, theirs = self.batch, later.batch
        mine.verdicts.failures += theirs.verdicts.failures
        mine.verdicts.alerts += theirs.verdicts.alerts
        mine.verdicts.learned += theirs.verdicts.learned
        for ip, tally in theirs.tallies.items():
            if ip in mine.tallies:
                mine.tallies[ip].add(tally)
            else:
                mine.tallies[ip] = tally
        mine.lines += theirs.lines
        mine.access += theirs.access
        mine.parse_failures += theirs.parse_failures
        mine.unverified += theirs.unverified
        mine.last_time = theirs.last_time if theirs.last_time is not None else mine.last_time
        self.position, self.carry = later.position, later.carry


class Monitor:
    """Owns the worker thread, the store and the follow loop; wakes long-pollers on new alerts."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plex-security-worker")
        self._store: Store | None = None
        self._follower: LogFollower | None = None
        self.pipeline = Pipeline(config.detect, trusted_proxies=config.monitor.trusted_proxies)
        self.enforcer = Enforcer(config.firewall, config.monitor.trusted_proxies)
        self._next_reconcile = 0.0
        self._task: asyncio.Task[None] | None = None
        self._new_alert = asyncio.Condition()
        self.last_seq = 0
        self.lines = 0
        self.access_lines = 0
        self.last_line_time: float | None = None
        self.parse_failures = 0
        self._next_purge = 0.0
        self.error: str | None = None
        self._rate_window: list[tuple[float, int]] = []
        # Lines read so far (worker thread), and how many of them the rate window has seen:
        # counted at the read, so that lines whose commit failed still count as read.
        self._read_total = 0
        self._read_counted = 0
        self._committed: Position | None = None
        self._closing = False
        self._pending: _Pending | None = None
        self._quiet: _Pending | None = None  # lines without an alert, waiting for their commit
        self._quiet_since = 0.0
        self.unverified = 0
        # Read off the detector on the worker thread after each batch (it is not thread-safe).
        self.probable_proxies: list[str] = []
        self.tracked_sources = 0
        self.database_notice: str | None = None
        # What a worker call found wrong with the file while running: the follow loop rebuilds it.
        self._damage: str | None = None
        self._next_rebuild = 0.0  # a disk that damages every new file is not rebuilt in a loop
        # inotify wakes the follow loop as soon as Plex writes; the poll interval stays as the
        # fallback (no inotify, a folder that does not exist yet, a mount that never reports).
        self._watch: FolderWatch | None = None
        self._wake = asyncio.Event()
        self._next_watch_try = 0.0
        self._watch_problem = ""

    def learn_audit(self, report: AuditReport) -> None:
        """Keep the running Plex build, so an exploit attempt on an affected build is critical."""
        version = report.facts.get("plex_version")
        # One assignment of an immutable tuple: the worker thread reads the old or the new one.
        self.pipeline.detector.plex_version = parse_version(str(version)) if version else None

    async def run_in_worker(self, func: Callable[..., T], *args: Any) -> T:
        """Run *func* on the worker thread that owns the database."""
        loop = asyncio.get_running_loop()
        try:
            result: T = await loop.run_in_executor(self._executor, func, *args)
        except Exception as err:
            if is_damage(err) and self._damage is None and self._store is not None:
                self._damage = str(err)
                self._wake.set()  # the follow loop moves the file aside now, not at the next start
            raise
        return result

    async def start(self) -> None:
        """Open the database, restore the follower position and start following."""
        store, self.database_notice = await self.run_in_worker(
            open_store, self._config.database, time.time(), self.enforcer.kernel_bans
        )
        self._store = store
        if self.database_notice:
            _LOGGER.error("%s", self.database_notice)
        position = await self.run_in_worker(store.position)
        self._committed = position
        self._follower = LogFollower(self._config.monitor.log_path, position, backfill=self._config.monitor.backfill)
        summary = await self.run_in_worker(store.alert_summary, time.time() - DAY)
        # Nothing learnt is lost to a restart: users' networks, and failures still in their window.
        networks = await self.run_in_worker(store.user_networks)
        now = time.time()
        recent = await self.run_in_worker(store.failures_since, now - self._config.detect.slow_window)
        quiet = await self.run_in_worker(store.alert_keys_since, now - self._config.detect.slow_window)
        self.pipeline.detector.restore(networks, recent, quiet)
        # Lines of a client's log write that was still open at the last commit (logwrites.py).
        self.pipeline.feed(await self.run_in_worker(store.carry))
        self.pipeline.take()
        # Bans come back before the first new line is judged, with their remaining time.
        await self.run_in_worker(self.enforcer.start, store, time.time())
        await self.run_in_worker(self._ban_unhandled)
        self.last_seq = int(summary["last_seq"])
        self._try_watch()
        self._task = asyncio.create_task(self._follow_loop(), name="plex-security-follow")

    def _try_watch(self) -> None:
        self._next_watch_try = time.monotonic() + RECONCILE_INTERVAL
        log = self._config.monitor.log_path
        watch, why = watch_folder(log.parent, log.name)
        if watch is None:
            if why != self._watch_problem:  # said once, not every retry
                _LOGGER.info("watching the Plex log by polling only: %s", why)
            self._watch_problem = why
            return
        self._watch_problem = ""
        self._watch = watch
        asyncio.get_running_loop().add_reader(watch.fd, self._on_change)

    def _on_change(self) -> None:
        if self._watch is not None and self._watch.drain():
            self._wake.set()
            if self._watch.lost:
                # The folder was removed (a Plex reinstall): poll, and watch again once it is back.
                self._stop_watch()
                self._next_watch_try = time.monotonic() + RECONCILE_INTERVAL

    def _stop_watch(self) -> None:
        if self._watch is not None:
            asyncio.get_running_loop().remove_reader(self._watch.fd)
            self._watch.close()
            self._watch = None

    async def stop(self) -> None:
        """Stop following and close the database after the last batch is committed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._stop_watch()
        with contextlib.suppress(Exception):  # a full disk: the lines are read again at start
            await self.run_in_worker(self._flush_quiet)
        if self._follower is not None:
            await self.run_in_worker(self._follower.close)
        if self._store is not None:
            await self.run_in_worker(self._store.close)
        self._executor.shutdown(wait=True)

    @property
    def config(self) -> Config:
        """The helper's configuration."""
        return self._config

    @property
    def store(self) -> Store:
        """The database, for queries run on the worker thread."""
        assert self._store is not None
        return self._store

    def _step(self) -> tuple[int, int]:
        """Read, parse, judge and commit whatever the log gained. Worker thread only.

        Returns the lines this call read and the newest alert number. Each line read is
        counted once in ``_read_total``, by the read that saw it: not again by the commit that
        records it with others, and not lost when that commit fails.

        A batch that cannot be committed (full disk, a locked or broken database) is kept and
        retried before anything new is read, so nothing is lost and nothing is judged twice.
        """
        assert self._follower is not None and self._store is not None
        if self._pending is not None:
            return 0, self._commit(self._pending)
        lines = self._follower.read_lines()
        self._read_total += len(lines)
        now = time.monotonic()
        if not lines:
            quiet = self._quiet
            if quiet is None and self._follower.position == self._committed:
                return 0, self.last_seq
            if quiet is not None and quiet.position == self._follower.position and now < self.commit_due():
                return 0, self.last_seq  # nothing new, and the waiting lines are not due yet
        self.pipeline.feed(lines)
        pending = _Pending(self.pipeline.take(), self._follower.position, self.pipeline.carry())
        if self._quiet is not None:
            self._quiet.absorb(pending)
            pending = self._quiet
        else:
            self._quiet_since = now
        self._quiet = pending
        if not pending.urgent and now < self.commit_due():
            return len(lines), self.last_seq
        self._quiet = None
        return len(lines), self._commit(pending)

    def commit_due(self) -> float:
        """When the lines waiting for their commit must be committed (monotonic; inf: none wait)."""
        quiet = self._quiet
        if quiet is None:
            return math.inf
        return -math.inf if self._closing else self._quiet_since + quiet.wait

    def _flush_quiet(self) -> None:
        """Commit the lines that wait for their commit (at shutdown). Worker thread only."""
        if self._quiet is not None:
            pending, self._quiet = self._quiet, None
            self._commit(pending)

    def _ban_unhandled(self) -> None:
        """Act on alerts stored before a crash cut off their bans (worker thread).

        Alerts and bans are two commits; the ban cursor moves after the second, so whatever
        lies above it was never acted on. A ban that was made and later lifted is below it.
        """
        assert self._store is not None
        now, cursor = time.time(), self._store.ban_cursor()
        unhandled = [a for a in self._store.alerts_after(cursor, 1_000_000) if a.time > now - DAY]
        if unhandled:
            _LOGGER.info("acting on %d alerts stored just before the helper stopped", len(unhandled))
            self.enforcer.auto_ban(self._store, unhandled, now)
        self._store.set_ban_cursor(self._store.last_seq())

    def _commit(self, pending: _Pending) -> int:
        """Record *pending* (and act on its alerts); return the newest alert number."""
        assert self._store is not None
        batch = pending.batch
        verdicts = batch.verdicts
        try:
            # One alert per ban period: not again for a source that is banned (issue 16).
            verdicts.alerts = self.enforcer.unbanned_sources(self._store, verdicts.alerts, time.time())
            stored = self._store.commit_batch(
                verdicts.failures,
                [annotate(a) for a in verdicts.alerts],  # the country of each address, offline
                pending.position,
                verdicts.learned,
                batch.tallies,
                pending.carry,
            )
        except Exception:
            self._pending = pending
            raise
        self._pending = None
        self._committed = pending.position
        if stored:
            now = time.time()
            # Replayed history (backfill) informs; only what happened within a day bans.
            self.enforcer.auto_ban(self._store, [a for a in stored if a.time > now - DAY], now)
            self._store.set_ban_cursor(self._store.last_seq())
        self.lines += batch.lines
        self.access_lines += batch.access
        self.parse_failures += batch.parse_failures
        self.unverified += batch.unverified
        self.probable_proxies = self.pipeline.detector.probable_proxies()
        self.tracked_sources = self.pipeline.detector.tracked_sources
        if batch.last_time is not None:
            self.last_line_time = batch.last_time
        return self._store.last_seq() if stored else self.last_seq

    async def _rebuild(self) -> None:
        """Replace the database found damaged while running, as a start would, without a restart.

        What the detector knows stays in memory, and a batch that failed to commit on the damaged
        file is committed into the new one: nothing read is lost. Alert numbers go on from the old
        file's, so clients' cursors stay valid.
        """
        problem = self._damage
        assert problem is not None
        self._next_rebuild = time.monotonic() + REBUILD_INTERVAL
        try:
            self.database_notice = await self.run_in_worker(self._swap_store, problem)
        except Exception as err:  # noqa: BLE001 - tried again after REBUILD_INTERVAL, or at the next start
            _LOGGER.error("rebuilding the damaged database failed: %s", err)
            return
        finally:
            self._damage = None
        _LOGGER.error("%s", self.database_notice)

    def _swap_store(self, problem: str) -> str:
        """Move the damaged file aside and go on in a rebuilt one (worker thread).

        The store object stays the same (its connection is replaced), so whoever holds it goes on
        working. Until the new file exists the old connection stays in use: a rebuild that fails
        (a disk remounted read-only) leaves the helper as it was, and it is tried again later.
        """
        store = self._store
        assert store is not None
        seq = self.last_seq
        with contextlib.suppress(sqlite3.Error):
            seq = max(seq, store.last_seq())
        fresh, notice = rebuild_store(self._config.database, time.time(), problem, self.enforcer.kernel_bans)
        store.replace_with(fresh)
        # Alert numbers go on from the old file's: clients' cursors stay valid, nothing is skipped.
        store.continue_sequence(seq)
        # Where to read on after a restart, and what the detector knows of users' networks (the
        # old file's copy may be unreadable), before the next commit.
        networks = [(user, net, time.time()) for user, net in self.pipeline.detector.known_networks()]
        store.commit_batch([], [], self._committed, networks)
        self.enforcer.start(store, time.time())  # the saved bans, as at a start
        store.set_ban_cursor(seq)
        return notice

    async def _follow_loop(self) -> None:
        interval = self._config.monitor.poll_interval
        while True:
            if self._damage is not None and time.monotonic() >= self._next_rebuild:
                await self._rebuild()
            # Cleared before the read: a write during the read sets it again and is not missed.
            self._wake.clear()
            try:
                count, last_seq = await self.run_in_worker(self._step)
                self.error = None
            except Exception as err:  # noqa: BLE001 - the loop must outlive any one bad batch
                if self.error != str(err):
                    _LOGGER.error("log pipeline failed: %s", err)
                self.error = str(err)
                count, last_seq = 0, self.last_seq
            now = time.monotonic()
            read, self._read_counted = self._read_total - self._read_counted, self._read_total
            self._rate_window.append((now, read))
            while self._rate_window and self._rate_window[0][0] < now - 60:
                self._rate_window.pop(0)
            if now >= self._next_reconcile:
                self._next_reconcile = now + RECONCILE_INTERVAL
                await self._reconcile()
            if now >= self._next_purge:
                self._next_purge = now + PURGE_INTERVAL
                await self._purge()
            await self._announce(last_seq)
            if self._watch is None and now >= self._next_watch_try:
                self._try_watch()
            # Read to the end of the log: wait for it to grow (a batch cut short reads on at once).
            if count == 0 or self._follower is None or self._follower.at_end:
                # inotify wakes the loop as Plex writes: the poll is then only a safety net.
                timeout = interval if self._watch is None else max(interval, WATCHED_POLL)
                timeout = max(0.0, min(timeout, self.commit_due() + COMMIT_SLACK - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _reconcile(self) -> None:
        try:
            await self.run_in_worker(self.enforcer.reconcile, self.store, time.time())
        except Exception as err:  # noqa: BLE001 - enforcement failing must not stop following
            _LOGGER.warning("firewall reconcile failed: %s", err)

    async def _purge(self) -> None:
        """Apply retention so that a months-long flood keeps the database bounded."""
        before = time.time() - self._config.retention_days * DAY
        try:
            removed = await self.run_in_worker(self.store.purge, before, MAX_FAILED_AUTH_ROWS, MAX_ADDRESS_ROWS)
        except Exception as err:  # noqa: BLE001 - retention failing must not stop following
            _LOGGER.warning("retention purge failed: %s", err)
            return
        if removed:
            _LOGGER.info("retention: removed %d old rows", removed)

    async def _announce(self, last_seq: int) -> None:
        """Wake long-pollers when the stream grew."""
        if last_seq > self.last_seq:
            self.last_seq = last_seq
            async with self._new_alert:
                self._new_alert.notify_all()

    async def stream_changed(self) -> None:
        """Something outside the follow loop (a ban through the API) added to the stream."""
        await self._announce(await self.run_in_worker(self.store.last_seq))

    async def wait_for_alert(self, after: int, timeout: float) -> None:
        """Return when an alert beyond *after* is stored, after *timeout* seconds, or at shutdown."""
        # A cursor ahead of the stream means this database was reset: answer now, so the client
        # sees last_seq and starts over instead of waiting for numbers already handed out.
        if self.last_seq != after or timeout <= 0 or self._closing:
            return
        async with self._new_alert:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._new_alert.wait_for(lambda: self.last_seq != after or self._closing), timeout
                )

    async def release_waiters(self) -> None:
        """Shutdown: answer every long-poll now instead of holding the server open."""
        self._closing = True
        async with self._new_alert:
            self._new_alert.notify_all()

    def lines_per_minute(self) -> int:
        """Lines read during the last minute."""
        return sum(count for _, count in self._rate_window)

    def status(self) -> dict[str, Any]:
        """The monitor section of ``/status``."""
        follower = self._follower
        return {
            "available": True,
            "log_path": str(self._config.monitor.log_path),
            "following": bool(follower and follower.following),
            "watch": "inotify" if self._watch is not None else "poll",
            "lines_processed": self.lines,
            "access_lines": self.access_lines,
            "lines_per_minute": self.lines_per_minute(),
            "lines_per_second": round(self.lines_per_minute() / 60, 2),
            "parse_failures": self.parse_failures,
            "unverified_events": self.unverified,
            "forged_lines": self.pipeline.guard.forged_lines,
            "trusted_proxies": [str(n) for n in self._config.monitor.trusted_proxies],
            "probable_proxies": self.probable_proxies,
            "tracked_sources": self.tracked_sources,
            "oversized_lines": follower.oversized_lines if follower else 0,
            "rotations": follower.rotations if follower else 0,
            "refused": follower.refused if follower else None,
            "last_line_time": self.last_line_time,
            "debug_logging_seen": self.access_lines > 0,
            # Not recording while a batch waits for the database (full disk, broken file).
            "recording": self._pending is None,
            "database_notice": self.database_notice,
            "error": self.error,
        }
