"""SQLite (WAL) state: failed logins, alerts and the log follower's position.

Alerts carry a monotonically increasing sequence; a batch and the position after it are written
in one transaction so a crash loses or repeats nothing.

Not thread-safe by design: one worker thread owns the connection (see ``worker.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .logwatch.tail import Position
from .model import BAN_KINDS, AddressTally, Alert, AlertKind, Ban, FailedAuth, Origin, Verdict

__all__ = ["AddressTally", "Alert", "Ban", "FailedAuth", "OutboxItem", "Store", "open_store"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failed_auth (
    id INTEGER PRIMARY KEY, ip TEXT NOT NULL, ts REAL NOT NULL, path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failed_auth_ts ON failed_auth (ts);
CREATE INDEX IF NOT EXISTS failed_auth_ip ON failed_auth (ip, ts);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, ip TEXT NOT NULL, ts REAL NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    count INTEGER NOT NULL, score INTEGER NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);
CREATE INDEX IF NOT EXISTS alerts_ip ON alerts (ip, seq);
CREATE TABLE IF NOT EXISTS bans (
    target TEXT PRIMARY KEY,
    created REAL NOT NULL, expires REAL NOT NULL,
    reason TEXT NOT NULL, origin TEXT NOT NULL,
    offences INTEGER NOT NULL, enforced INTEGER NOT NULL,
    lifted REAL, enforce_at TEXT NOT NULL DEFAULT 'host'
);
CREATE INDEX IF NOT EXISTS bans_expires ON bans (expires);
CREATE TABLE IF NOT EXISTS user_networks (
    user TEXT NOT NULL, network TEXT NOT NULL, first_seen REAL NOT NULL, PRIMARY KEY (user, network)
);
CREATE TABLE IF NOT EXISTS allows (target TEXT PRIMARY KEY, reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS addresses (
    ip TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    requests INTEGER NOT NULL, failed_auth INTEGER NOT NULL, probes INTEGER NOT NULL,
    alerts INTEGER NOT NULL, last_alert TEXT
);
CREATE INDEX IF NOT EXISTS addresses_last_seen ON addresses (last_seen);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, op TEXT NOT NULL, body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL, last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_next_try ON outbox (next_try);
CREATE TABLE IF NOT EXISTS user_countries (
    user TEXT NOT NULL, country TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    last_ip TEXT NOT NULL, PRIMARY KEY (user, country)
);
CREATE TABLE IF NOT EXISTS account_devices (id TEXT PRIMARY KEY, name TEXT NOT NULL, first_seen REAL NOT NULL);
"""


_ADDRESS_FIELDS = ("first_seen", "last_seen", "requests", "failed_auth", "probes", "alerts", "last_alert")


def _sql_list(kinds: Iterable[str]) -> str:
    """An SQL list literal of alert kinds: the vocabulary's own words, never client data."""
    return ", ".join(f"'{kind}'" for kind in kinds)


_BAN_COLUMNS = "target, created, expires, reason, origin, offences, enforced, lifted, enforce_at"


def _ban(row: tuple[Any, ...]) -> Ban:
    return Ban(
        target=row[0],
        created=row[1],
        expires=row[2],
        reason=row[3],
        origin=row[4],
        offences=row[5],
        enforced=bool(row[6]),
        lifted=row[7],
        enforce_at=row[8],
    )


STATE_MODE = 0o600  # client addresses, user names and bans: for the helper's eyes only
# One scan for the three uses of /status's failed-login groups (the keyword is SQLite 3.35+;
# older versions, RHEL 9's 3.34 say, may scan up to thrice, with the same result).
_MATERIALIZED = "MATERIALIZED" if sqlite3.sqlite_version_info >= (3, 35) else ""
SALVAGE_ROWS = 200_000  # rows tried one by one in a damaged table
KERNEL_BAN_DAYS = 3650  # a kernel element without a timeout is kept that long
KernelBans = Callable[[], Mapping[str, int | None]]


def private_file(path: Path) -> None:
    """Create *path* (if missing) mode 0600 and make sure it is 0600, whatever the umask."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, STATE_MODE)
    try:
        os.fchmod(fd, STATE_MODE)
    finally:
        os.close(fd)


def open_store(path: Path, now: float, kernel_bans: KernelBans | None = None) -> tuple[Store, str | None]:
    """Open the database; a damaged one is moved aside and rebuilt, never a crash loop.

    The file is checked at every start (``PRAGMA quick_check``): power lost on an SD card leaves
    a header that opens and pages that raise "malformed" at the first query. A rebuilt database
    gets back the bans and allow-list entries still readable in the old file and, with
    *kernel_bans* (the firewall's ban set while enforcing), the bans the kernel still holds.
    Returns the store and, when a file had to be moved, a message for ``/status``.
    """
    try:
        store = Store(path)
    except sqlite3.DatabaseError as err:
        problem = str(err)
    else:
        damage = store.damage()
        if damage is None:
            return store, None
        store.close()
        problem = damage
    return rebuild_store(path, now, problem, kernel_bans)


# SQLite's primary result codes for a file whose pages cannot be read as a database.
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_damage(err: BaseException) -> bool:
    """Whether *err* says the database file is damaged (not locked, not full, not a bug)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(err, sqlite3.DatabaseError) and isinstance(code, int) and code & 0xFF in _DAMAGE_CODES


def rebuild_store(path: Path, now: float, problem: str, kernel_bans: KernelBans | None = None) -> tuple[Store, str]:
    """Move a damaged database aside and start a new one with what can be saved (see open_store).

    Returns the new store and the message for ``/status``.
    """
    aside = path.with_name(f"{path.name}.corrupt-{int(now)}")
    n = 1
    while aside.exists():  # a second damage within the same second keeps the first file
        aside = path.with_name(f"{path.name}.corrupt-{int(now)}-{n}")
        n += 1
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    saved = salvage(aside)
    bans, allows = saved.bans, saved.allows
    kernel: Mapping[str, int | None] = {}
    if kernel_bans is not None:
        try:
            kernel = kernel_bans()
        except Exception as err:  # noqa: BLE001 - a failing backend must not stop the rebuild
            problem += f"; the firewall's ban set was unreadable ({err})"
    store = Store(path)
    known = {ban.target for ban in bans}
    for target, left in kernel.items():
        if target not in known:
            expires = now + (left if left is not None else KERNEL_BAN_DAYS * 86400)
            bans.append(Ban(target, now, expires, "kept by the firewall", Origin.RECOVERED.value, 1, True))
    store.put_bans(bans)
    for target, reason, created in allows:
        store.put_allow(target, reason, created)
    # What users and the account were seen with: without it every known network would be new
    # again after the next start, and every device a baseline that never alerts.
    store.commit_batch((), [], None, saved.networks)
    store.record_devices(saved.devices, [])
    store.add_outbox(saved.outbox, now)  # what CrowdSec's LAPI was still to be told, in its order
    message = (
        f"the database was damaged ({problem}); it was moved to {aside.name} and rebuilt"
        f" with {len(bans)} bans and {len(allows)} allow-list entries recovered"
    )
    return store, message


@dataclass(slots=True)
class Salvage:
    """What a damaged database file still holds that a rebuilt one must not lose."""

    bans: list[Ban] = field(default_factory=list)
    allows: list[tuple[str, str, float]] = field(default_factory=list)  # (target, reason, created)
    networks: list[tuple[str, str, float]] = field(default_factory=list)  # (user, network, first seen)
    devices: list[tuple[str, str, float]] = field(default_factory=list)  # (id, name, first seen)
    outbox: list[OutboxItem] = field(default_factory=list)  # unsent fleet messages, oldest first


def salvage(path: Path) -> Salvage:
    """Everything still readable in a damaged database file, row by row past damaged pages."""
    found = Salvage()
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return found
    try:
        # A file from before enforce_at existed has the other columns: its bans are the host's.
        rows = _readable_rows(db, "bans", _BAN_COLUMNS) or [
            (*row, "host") for row in _readable_rows(db, "bans", _BAN_COLUMNS.removesuffix(", enforce_at"))
        ]
        bans: dict[str, Ban] = {}
        for row in rows:
            numbers = (row[1], row[2], row[5])
            if (
                isinstance(row[0], str)
                and row[8] in ("host", "proxy")
                and all(isinstance(n, (int, float)) for n in numbers)
            ):
                bans[row[0]] = _ban(row)
        found.bans = list(bans.values())
        found.allows = list({t[0]: t for t in _triples(db, "allows", "target, reason, created")}.values())
        found.networks = _triples(db, "user_networks", "user, network, first_seen")
        found.devices = _triples(db, "account_devices", "id, name, first_seen")
        outbox = _readable_rows(db, "outbox", "id, op, body")
        for _, op, body in sorted(outbox, key=lambda row: row[0] if isinstance(row[0], int) else 0):
            with contextlib.suppress(TypeError, ValueError):  # a damaged row is not a message
                message = json.loads(body)
                if isinstance(op, str) and isinstance(message, dict):
                    found.outbox.append(OutboxItem(op, message))
    finally:
        db.close()
    return found


def _triples(db: sqlite3.Connection, table: str, columns: str) -> list[tuple[str, str, float]]:
    """The readable (text, text, number) rows of *table*; rows of other types are damage."""
    return [
        (row[0], row[1], float(row[2]))
        for row in _readable_rows(db, table, columns)
        if isinstance(row[0], str) and isinstance(row[1], str) and isinstance(row[2], (int, float))
    ]


def _readable_rows(db: sqlite3.Connection, table: str, columns: str) -> list[tuple[Any, ...]]:
    """Every row of *table* that can be read: in one scan, or row by row past damaged pages."""
    try:
        return list(db.execute(f"SELECT {columns} FROM {table}"))  # noqa: S608 - our own names
    except sqlite3.DatabaseError:
        pass
    rows: list[tuple[Any, ...]] = []
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is None:
            return rows
    except sqlite3.DatabaseError:
        return rows  # no readable schema (not a database at all): no row can be found by number
    try:
        top = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]  # noqa: S608
    except sqlite3.DatabaseError:
        top = SALVAGE_ROWS
    for rowid in range(1, min(int(top or 0), SALVAGE_ROWS) + 1):
        try:
            row = db.execute(f"SELECT {columns} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()  # noqa: S608
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            rows.append(row)
    return rows


def _alerts(rows: Iterable[Any]) -> list[Alert]:
    """Alerts from rows of (seq, kind, ip, ts, first_seen, last_seen, count, score, detail)."""
    return [
        Alert(
            seq=row[0],
            kind=row[1],
            ip=row[2],
            time=row[3],
            first_seen=row[4],
            last_seen=row[5],
            count=row[6],
            score=row[7],
            detail=json.loads(row[8]),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message for CrowdSec's Local API, kept until LAPI took it (``id`` is set once stored)."""

    op: str  # what to do with it, e.g. "alert" (push a decision) or "delete" (lift one fleet-wide)
    body: dict[str, Any]
    id: int = 0
    created: float = 0.0
    attempts: int = 0


class Store:
    """The helper's database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite gives the -wal and -shm files the database's own mode: 0600 for all three.
        private_file(path)
        for suffix in ("-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                private_file(part)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(bans)")}
        if "enforce_at" not in columns:  # a database from before proxied clients were told apart
            self._db.execute("ALTER TABLE bans ADD COLUMN enforce_at TEXT NOT NULL DEFAULT 'host'")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        # A database from before the cursor existed has had its alerts judged already.
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('ban_cursor', ?)", (str(self.last_seq()),))

    def replace_with(self, fresh: Store) -> None:
        """Use *fresh*'s connection from now on (a rebuilt file), closing this one.

        Everyone who holds this store (the API, the session judge, the fleet push) follows.
        """
        old, self._db = self._db, fresh._db
        with contextlib.suppress(sqlite3.Error):  # a damaged file's connection: nothing more is needed
            old.close()

    def continue_sequence(self, seq: int) -> None:
        """Number the next alert after *seq*: a rebuilt file continues the stream clients follow."""
        with self._db:
            bumped = self._db.execute(
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'alerts'", (seq,)
            ).rowcount
            if not bumped:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('alerts', ?)", (seq,))

    def damage(self) -> str | None:
        """What ``PRAGMA quick_check`` found wrong with the file (None: nothing)."""
        try:
            rows = [str(r[0]) for r in self._db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as err:
            return str(err)
        return None if rows == ["ok"] else "; ".join(rows)[:300]

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        self._db.close()

    def position(self) -> Position | None:
        """The follower position saved with the last committed batch."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Position(inode=int(data["inode"]), offset=int(data["offset"]))

    def commit_batch(  # noqa: PLR0917 - the batch's parts, in the order they are written
        self,
        failures: Iterable[FailedAuth],
        alerts: list[Alert],
        position: Position | None,
        learned: Iterable[tuple[str, str, float]] = (),
        tallies: Mapping[str, AddressTally] | None = None,
        carry: list[str] | None = None,
    ) -> list[Alert]:
        """Record a batch of derived facts and the position after it atomically; return stored alerts.

        The per-address totals are in the same transaction as the position, so a batch is
        counted exactly once however often it is retried.
        """
        stored: list[Alert] = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO failed_auth (ip, ts, path) VALUES (?, ?, ?)",
                ((f.ip, f.time, f.path) for f in failures),
            )
            self._db.executemany("INSERT OR IGNORE INTO user_networks VALUES (?, ?, ?)", learned)
            self._db.executemany(
                "INSERT INTO addresses VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ip) DO UPDATE SET"
                " first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen),"
                " requests = requests + excluded.requests, failed_auth = failed_auth + excluded.failed_auth,"
                " probes = probes + excluded.probes, alerts = alerts + excluded.alerts,"
                " last_alert = COALESCE(excluded.last_alert, last_alert)",
                (
                    (ip, t.first_seen, t.last_seen, t.requests, t.failed_auth, t.probes, t.alerts, t.last_alert)
                    for ip, t in (tallies or {}).items()
                ),
            )
            for alert in alerts:
                cur = self._db.execute(
                    "INSERT INTO alerts (kind, ip, ts, first_seen, last_seen, count, score, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert.kind,
                        alert.ip,
                        alert.time,
                        alert.first_seen,
                        alert.last_seen,
                        alert.count,
                        alert.score,
                        json.dumps(alert.detail, separators=(",", ":")),
                    ),
                )
                seq = cur.lastrowid
                assert seq is not None
                stored.append(replace(alert, seq=seq))
            if position is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('position', ?)",
                    (json.dumps({"inode": position.inode, "offset": position.offset}),),
                )
                # Lines the pipeline still holds (an open log write) go with the position.
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('carry', ?)", (json.dumps(carry or []),))
        return stored

    def carry(self) -> list[str]:
        """The lines committed as still held by the pipeline (fed again at start)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'carry'").fetchone()
        lines = json.loads(row[0]) if row else []
        return [str(line) for line in lines] if isinstance(lines, list) else []

    def failed_auth_summary(self, since: float, top: int) -> tuple[int, int, list[tuple[str, int]]]:
        """Failed logins since *since*: the count, the addresses, the *top* ones (most first).

        One scan, summed in SQLite: a spray of a million addresses never becomes a million Python
        objects on the worker thread, which the log pipeline shares (``/status`` is polled).
        """
        rows = self._db.execute(
            f"WITH per_ip AS {_MATERIALIZED}"  # noqa: S608 - a keyword of ours
            " (SELECT ip, COUNT(*) AS n FROM failed_auth WHERE ts >= ? GROUP BY ip)"
            " SELECT ip, n, (SELECT SUM(n) FROM per_ip), (SELECT COUNT(*) FROM per_ip)"
            " FROM per_ip ORDER BY n DESC, ip LIMIT ?",
            (since, top),
        ).fetchall()
        if not rows:
            return 0, 0, []
        return int(rows[0][2]), int(rows[0][3]), [(ip, n) for ip, n, _, _ in rows]

    def alerts_after(self, seq: int, limit: int) -> list[Alert]:
        """Alerts with a sequence number above *seq*, oldest first."""
        return _alerts(
            self._db.execute(
                "SELECT seq, kind, ip, ts, first_seen, last_seen, count, score, detail"
                " FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
        )

    def last_seq(self) -> int:
        """The highest alert sequence number stored (0 when none)."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])

    def alert_summary(self, since: float) -> dict[str, Any]:
        """Counters for the status snapshot; ban events are in the stream but are not alerts."""
        last_seq = self.last_seq()
        info, attacks = _sql_list(AlertKind.with_verdict(Verdict.INFO)), _sql_list(sorted(BAN_KINDS))
        recent = self._db.execute(
            f"SELECT COUNT(*) FROM alerts WHERE ts >= ? AND kind NOT IN ({info})",  # noqa: S608 - our own words
            (since,),
        ).fetchone()[0]
        row = self._db.execute(f"SELECT MAX(seq) FROM alerts WHERE kind NOT IN ({info})").fetchone()  # noqa: S608
        last = self.alerts_after(row[0] - 1, 1) if row and row[0] else []
        # The newest alert that judged an address hostile (a user's new location is not an attack).
        attack = self._db.execute(
            f"SELECT MAX(seq) FROM alerts WHERE kind IN ({attacks})"  # noqa: S608 - our own words
        ).fetchone()
        last_attack = self.alerts_after(attack[0] - 1, 1) if attack and attack[0] else []
        return {
            "last_seq": last_seq,
            "count_24h": recent,
            "last": last[0].as_json() if last else None,
            "last_attack": last_attack[0].as_json() if last_attack else None,
        }

    def address(self, ip: str) -> dict[str, Any] | None:
        """The running totals of one address, or None if it was never seen (or was purged)."""
        row = self._db.execute(
            "SELECT first_seen, last_seen, requests, failed_auth, probes, alerts, last_alert"
            " FROM addresses WHERE ip = ?",
            (ip,),
        ).fetchone()
        return dict(zip(_ADDRESS_FIELDS, row, strict=True)) if row else None

    def alerts_for(self, ip: str, limit: int) -> list[Alert]:
        """The newest alerts about *ip*, newest first."""
        return _alerts(
            self._db.execute(
                "SELECT seq, kind, ip, ts, first_seen, last_seen, count, score, detail"
                " FROM alerts WHERE ip = ? ORDER BY seq DESC LIMIT ?",
                (ip, limit),
            )
        )

    def failed_auth_count(self, ip: str, since: float) -> int:
        """Failed logins of one address since *since*."""
        row = self._db.execute("SELECT COUNT(*) FROM failed_auth WHERE ip = ? AND ts >= ?", (ip, since)).fetchone()
        return int(row[0])

    def purge(self, before: float, max_failed_auth: int, max_addresses: int = 1_000_000) -> int:
        """Drop rows older than *before* and the oldest rows beyond the caps.

        The caps are *max_failed_auth* failures and *max_addresses* address totals (the
        longest-quiet go first), so a months-long flood or a spray of addresses stays bounded.
        The alert sequence keeps counting up (AUTOINCREMENT), so cursors stay valid.
        """
        with self._db:
            n = self._db.execute("DELETE FROM failed_auth WHERE ts < ?", (before,)).rowcount
            n += self._db.execute("DELETE FROM addresses WHERE last_seen < ?", (before,)).rowcount
            n += self._db.execute(
                "DELETE FROM addresses WHERE ip IN"
                " (SELECT ip FROM addresses ORDER BY last_seen DESC LIMIT -1 OFFSET ?)",
                (max_addresses,),
            ).rowcount
            n += self._db.execute("DELETE FROM alerts WHERE ts < ?", (before,)).rowcount
            n += self._db.execute(
                "DELETE FROM failed_auth WHERE id <= (SELECT MAX(id) FROM failed_auth) - ?", (max_failed_auth,)
            ).rowcount
            # Ended bans are kept as long as events, for counting repeat offences.
            n += self._db.execute("DELETE FROM bans WHERE expires < ?", (before,)).rowcount
        return n

    def ban(self, target: str) -> Ban | None:
        """The latest ban record of *target*, active or not."""
        row = self._db.execute(
            f"SELECT {_BAN_COLUMNS} FROM bans WHERE target = ?",  # noqa: S608 - our own column list
            (target,),
        ).fetchone()
        return _ban(row) if row else None

    def ban_cursor(self) -> int:
        """The newest alert whose ban verdict has been acted on (alerts above it still need it)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'ban_cursor'").fetchone()
        return int(row[0]) if row else 0

    def set_ban_cursor(self, seq: int) -> None:
        """Record that the alerts up to *seq* have been acted on."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('ban_cursor', ?)", (str(seq),))

    def firewall_setting(self) -> dict[str, Any] | None:
        """The firewall mode and profile last set through the API (who and when), if ever."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'firewall_setting'").fetchone()
        value = json.loads(row[0]) if row else None
        return value if isinstance(value, dict) else None

    def put_firewall_setting(self, setting: Mapping[str, Any]) -> None:
        """Keep a run-time mode/profile change across restarts."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('firewall_setting', ?)", (json.dumps(dict(setting)),))

    def put_bans(self, bans: Iterable[Ban], outbox: Iterable[OutboxItem] = (), now: float = 0.0) -> None:
        """Record bans and their outbox messages (one transaction), replacing earlier records of the same targets."""
        with self._db:
            self._add_outbox(outbox, now)
            self._db.executemany(
                f"INSERT OR REPLACE INTO bans ({_BAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    (
                        b.target,
                        b.created,
                        b.expires,
                        b.reason,
                        b.origin,
                        b.offences,
                        int(b.enforced),
                        b.lifted,
                        b.enforce_at,
                    )
                    for b in bans
                ),
            )

    def lift_ban(
        self, target: str, now: float, outbox: Callable[[Ban], Iterable[OutboxItem]] | None = None
    ) -> Ban | None:
        """Mark an active ban lifted (with the outbox messages *outbox* makes of it); None if not banned."""
        current = self.ban(target)
        if current is None or not current.active(now):
            return None
        with self._db:
            if outbox is not None:
                self._add_outbox(outbox(current), now)
            self._db.execute("UPDATE bans SET lifted = ? WHERE target = ?", (now, target))
        return replace(current, lifted=now)

    def active_bans(self, now: float, limit: int = 1_000_000) -> list[Ban]:
        """Bans in force at *now*, soonest to expire last."""
        rows = self._db.execute(
            f"SELECT {_BAN_COLUMNS} FROM bans"  # noqa: S608 - our own column list
            " WHERE lifted IS NULL AND expires > ? ORDER BY created DESC LIMIT ?",
            (now, limit),
        )
        return [_ban(row) for row in rows]

    def ban_counts(self, now: float) -> dict[str, int]:
        """Active bans per origin."""
        rows = self._db.execute(
            "SELECT origin, COUNT(*) FROM bans WHERE lifted IS NULL AND expires > ? GROUP BY origin", (now,)
        )
        return {origin: count for origin, count in rows}

    def pending_bans(self, now: float) -> int:
        """Active bans the backend has not confirmed yet."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM bans WHERE lifted IS NULL AND expires > ? AND enforced = 0 AND enforce_at = 'host'",
            (now,),
        ).fetchone()
        return int(row[0])

    # -- outbox: messages for CrowdSec's Local API --------------------------------------------
    def _add_outbox(self, items: Iterable[OutboxItem], now: float) -> None:
        self._db.executemany(
            "INSERT INTO outbox (created, op, body, next_try) VALUES (?, ?, ?, ?)",
            ((now, i.op, json.dumps(i.body, separators=(",", ":")), now) for i in items),
        )

    def add_outbox(self, items: Iterable[OutboxItem], now: float) -> None:
        """Queue messages on their own (decisions that are not local bans)."""
        with self._db:
            self._add_outbox(items, now)

    def outbox_due(self, now: float, limit: int) -> list[OutboxItem]:
        """Messages whose next attempt is due, oldest first."""
        rows = self._db.execute(
            "SELECT id, created, op, body, attempts FROM outbox WHERE next_try <= ? ORDER BY id LIMIT ?", (now, limit)
        )
        return [OutboxItem(op=r[2], body=json.loads(r[3]), id=r[0], created=r[1], attempts=r[4]) for r in rows]

    def outbox_done(self, ids: Iterable[int]) -> None:
        """LAPI took these messages: forget them."""
        with self._db:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", ((i,) for i in ids))

    def outbox_retry(self, ids: Iterable[int], next_try: float, error: str) -> None:
        """These messages failed: count the attempt and try again at *next_try*."""
        with self._db:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE id = ?",
                ((next_try, error[:300], i) for i in ids),
            )

    def outbox_stats(self) -> tuple[int, float | None, float | None]:
        """(messages queued, creation time of the oldest, soonest next attempt)."""
        row = self._db.execute("SELECT COUNT(*), MIN(created), MIN(next_try) FROM outbox").fetchone()
        return int(row[0]), row[1], row[2]

    def alert_counts(self, after_seq: int) -> dict[str, int]:
        """Alerts per kind stored after *after_seq* (the metrics' counters since start; ban events are not alerts)."""
        info = _sql_list(AlertKind.with_verdict(Verdict.INFO))
        rows = self._db.execute(
            f"SELECT kind, COUNT(*) FROM alerts WHERE seq > ? AND kind NOT IN ({info}) GROUP BY kind",  # noqa: S608
            (after_seq,),
        )
        return {kind: count for kind, count in rows}

    def allows(self) -> list[tuple[str, str, float]]:
        """Allow-list entries added at run time: (target, reason, created)."""
        return [
            (r[0], r[1], r[2]) for r in self._db.execute("SELECT target, reason, created FROM allows ORDER BY created")
        ]

    def put_allow(self, target: str, reason: str, created: float) -> None:
        """Add (or re-reason) a run-time allow-list entry."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO allows VALUES (?, ?, ?)", (target, reason, created))

    def delete_allow(self, target: str) -> bool:
        """Remove a run-time allow-list entry; False when there was none."""
        with self._db:
            return self._db.execute("DELETE FROM allows WHERE target = ?", (target,)).rowcount > 0

    def user_networks(self) -> list[tuple[str, str]]:
        """Every (user, network) a signed-in user was seen from."""
        return [(r[0], r[1]) for r in self._db.execute("SELECT user, network FROM user_networks")]

    def failures_since(self, since: float) -> list[tuple[str, float]]:
        """(address, time) of the failed logins since *since*, for the detector's windows."""
        return [(r[0], r[1]) for r in self._db.execute("SELECT ip, ts FROM failed_auth WHERE ts >= ?", (since,))]

    def alert_keys_since(self, since: float) -> list[tuple[str, str, float, str]]:
        """(kind, ip, time, user) of the alerts since *since*, for the detector's quiet periods."""
        rows = self._db.execute("SELECT kind, ip, ts, detail FROM alerts WHERE ts >= ?", (since,))
        return [(r[0], r[1], r[2], str(json.loads(r[3]).get("user", "") or "")) for r in rows]

    def record_sessions(self, seen: Iterable[tuple[str, str, str, float]], alerts: list[Alert]) -> list[Alert]:
        """Remember where users streamed from, (user, country, ip, time), and store the session alerts."""
        with self._db:
            self._db.executemany(
                "INSERT INTO user_countries VALUES (?, ?, ?, ?, ?) ON CONFLICT (user, country) DO UPDATE SET"
                " last_seen = MAX(last_seen, excluded.last_seen), last_ip = excluded.last_ip",
                ((user, country, when, when, ip) for user, country, ip, when in seen),
            )
        return self.commit_batch((), alerts, None) if alerts else []

    def user_countries(self) -> list[tuple[str, str, float, float, str]]:
        """(user, country, first_seen, last_seen, last_ip) of every user's streams, oldest last seen first."""
        rows = self._db.execute(
            "SELECT user, country, first_seen, last_seen, last_ip FROM user_countries ORDER BY last_seen"
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def purge_user_countries(self, before: float) -> int:
        """Forget countries a user has not streamed from since *before*."""
        with self._db:
            return self._db.execute("DELETE FROM user_countries WHERE last_seen < ?", (before,)).rowcount

    def account_devices(self) -> set[str]:
        """Ids of the plex.tv devices already seen on the owner's account."""
        return {r[0] for r in self._db.execute("SELECT id FROM account_devices")}

    def record_devices(self, devices: Iterable[tuple[str, str, float]], alerts: list[Alert]) -> list[Alert]:
        """Remember (id, name, first seen) of the account's devices and store the new-device alerts."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO account_devices VALUES (?, ?, ?)", devices)
        return self.commit_batch((), alerts, None) if alerts else []
