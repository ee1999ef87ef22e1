"""State on real disks: damaged database pages, file modes whatever the umask."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from plex_security_helper import monitor
from plex_security_helper.cli import main
from plex_security_helper.config import default_config_text, load_config
from plex_security_helper.model import Ban
from plex_security_helper.store import OutboxItem, Store, is_damage, open_store
from tests.helperproc import HelperProcess
from tests.plexlines import exchange, failed_login

PAGE = 4096


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _damaged_database(path: Path, now: float) -> None:
    """A real helper database whose header is fine and whose failed-login pages are garbage."""
    store = Store(path)
    store.put_bans(
        [
            Ban("203.0.113.66", now, now + 3600, "kept", "manual", 1, True),
            Ban("198.51.100.0/24", now, now + 7200, "kept too", "detector", 2, True),
        ]
    )
    store.put_allow("192.0.2.77", "the neighbour", now)
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO failed_auth (ip, ts, path) VALUES (?, ?, ?)",
            [(f"203.0.113.{i % 250}", now - i, "/library/sections" * 4) for i in range(20_000)],
        )
    roots = [r[0] for r in db.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'failed_auth'")]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    store.close()
    assert path.stat().st_size > 50 * PAGE and roots
    with path.open("r+b") as handle:
        for root in roots:
            handle.seek((root - 1) * PAGE)
            handle.write(bytes((i * 37 + 11) % 256 for i in range(PAGE)))
    header = path.read_bytes()[:16]
    assert header == b"SQLite format 3\x00"  # the header still opens: only the pages are damaged


def test_a_database_with_damaged_pages_is_rebuilt_with_its_bans(tmp_path: Path, socket_enabled: None) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.write_config()
    _damaged_database(helper.root / "state.db", time.time())
    # The damage is real: the start-up queries of the old helper raised on this file.
    db = sqlite3.connect(helper.root / "state.db")
    try:
        assert db.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    finally:
        db.close()
    helper.start()
    try:
        notice = helper.get("/api/v1/status")["monitor"]["database_notice"]
        assert "damaged" in notice and "moved to state.db.corrupt-" in notice
        assert "2 bans and 1 allow-list entries recovered" in notice
        bans = {b["ip"]: b["reason"] for b in helper.get("/api/v1/bans")["bans"]}
        assert bans == {"203.0.113.66": "kept", "198.51.100.0/24": "kept too"}
        assert "192.0.2.77" in str(helper.get("/api/v1/allow"))
        helper.append(*[line for port in range(40000, 40005) for line in failed_login("203.0.113.8", port=port)])
        helper.wait_for(lambda s: s["alerts"]["count_24h"] == 1)
        helper.stop()
        helper.start()  # the rebuilt file is sound: no second move, no crash loop
        assert helper.get("/api/v1/status")["monitor"]["database_notice"] is None
        assert len(list(helper.root.glob("state.db.corrupt-*[0-9]"))) == 1
    finally:
        helper.stop()


def _damage_running_database(path: Path) -> None:
    """Garbage over the failed-login pages of a database a running helper has open.

    The checkpoint first moves every page into the file and restarts the WAL, which makes the
    helper's connection drop its page cache: its next write reads the damaged pages.
    """
    db = sqlite3.connect(path, timeout=10)
    try:
        busy = 1
        for _ in range(50):  # the helper may hold the write lock for a moment
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.1)
        assert not busy
        roots = [r[0] for r in db.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'failed_auth'")]
    finally:
        db.close()
    with path.open("r+b") as handle:
        for root in roots:
            handle.seek((root - 1) * PAGE)
            handle.write(bytes((i * 37 + 11) % 256 for i in range(PAGE)))


def test_a_database_damaged_while_running_is_rebuilt_without_losing_the_batch(
    tmp_path: Path, socket_enabled: None
) -> None:
    helper = HelperProcess(tmp_path / "helper")
    helper.start()
    try:
        code, _ = helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.66", "duration": 3600, "reason": "kept"})
        assert code == 201
        # Before the damage: an alert (numbered), a user's network, and four failures of one
        # guesser (below the burst rule).
        helper.append(*[line for port in range(42000, 42005) for line in failed_login("203.0.113.9", port=port)])
        helper.append(*exchange("192.0.2.10", 200, user="alice"))
        helper.append(*[line for port in range(41000, 41004) for line in failed_login("198.51.100.9", port=port)])
        before = helper.wait_for(lambda s: s["failed_logins"]["total"] == 9)["alerts"]["last_seq"]
        assert before >= 1
        _damage_running_database(helper.root / "state.db")
        helper.append(*[line for port in range(40000, 40005) for line in failed_login("203.0.113.8", port=port)])
        # /status itself may be refused while the file is damaged: a clear error, then the rebuild.
        deadline, notice = time.monotonic() + 10, None
        while notice is None and time.monotonic() < deadline:
            code, body = helper.call("GET", "/api/v1/status")
            if code == 200:
                notice = body["monitor"]["database_notice"]
            else:
                assert code == 500 and "malformed" not in str(body), body
            time.sleep(0.05)
        assert notice is not None
        assert "damaged" in notice and "moved to state.db.corrupt-" in notice and "2 bans" in notice
        # The batch that failed on the damaged file is in the new one, and the detector kept
        # what it knew: the fifth failure of the guesser seen before the damage is a burst.
        helper.append(*failed_login("198.51.100.9", port=41004))
        found = helper.wait_for(
            lambda s: (
                {a["ip"] for a in helper.get("/api/v1/alerts")["alerts"]} >= {"203.0.113.8", "198.51.100.9"} and s
            ),
            timeout=10,
        )
        assert found["monitor"]["recording"] is True and found["monitor"]["error"] is None
        assert {"203.0.113.66", "203.0.113.9"} <= {b["ip"] for b in helper.get("/api/v1/bans")["bans"]}
        # Alert numbers go on from the damaged file's: a client's cursor skips nothing.
        after = helper.get(f"/api/v1/alerts?after={before}")["alerts"]
        assert {a["ip"] for a in after} >= {"203.0.113.8", "198.51.100.9"}
        assert all(a["seq"] > before for a in after)
        helper.stop()
        helper.start()  # the rebuilt file is sound and knows where the log was read to
        assert helper.get("/api/v1/status")["monitor"]["database_notice"] is None
        assert {a["ip"] for a in helper.get("/api/v1/alerts")["alerts"]} >= {"203.0.113.8", "198.51.100.9"}
        assert len(list(helper.root.glob("state.db.corrupt-*[0-9]"))) == 1
        # alice's network, learnt before the damage, is in the new file: her first sign-in from
        # elsewhere after the restart is a new location, not a first network learnt in silence.
        helper.append(*exchange("198.51.100.77", 200, user="alice"))
        helper.wait_for(
            lambda s: any(a["kind"] == "new_location" for a in helper.get("/api/v1/alerts")["alerts"]), timeout=10
        )
    finally:
        helper.stop()


def test_a_rebuilt_database_keeps_networks_devices_and_unsent_fleet_messages(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "state.db"
    store = Store(path)
    store.commit_batch([], [], None, [("alice", "192.0.2.0/24", now)])
    store.record_devices([("dev-1", "Living room TV", now)], [])
    store.add_outbox([OutboxItem("alert", {"ip": "203.0.113.5"}), OutboxItem("delete", {"ip": "203.0.113.6"})], now)
    store.close()
    _damaged_database(path, now)
    rebuilt, notice = open_store(path, now + 1)
    try:
        assert notice is not None and "rebuilt" in notice
        assert rebuilt.user_networks() == [("alice", "192.0.2.0/24")]
        assert rebuilt.account_devices() == {"dev-1"}
        due = rebuilt.outbox_due(now + 2, 10)
        assert [(m.op, m.body) for m in due] == [("alert", {"ip": "203.0.113.5"}), ("delete", {"ip": "203.0.113.6"})]
    finally:
        rebuilt.close()


def test_bans_the_kernel_still_holds_come_back_into_a_rebuilt_database(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "state.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00" + b"\xff" * (PAGE * 4))
    kernel = {"203.0.113.90": 1200, "198.51.100.66": None}
    store, notice = open_store(path, now, lambda: kernel)
    try:
        assert notice is not None and "rebuilt" in notice
        found = {b.target: (b.origin, round(b.expires - now)) for b in store.active_bans(now)}
        assert found == {"203.0.113.90": ("recovered", 1200), "198.51.100.66": ("recovered", 3650 * 86400)}
    finally:
        store.close()


def test_every_state_file_is_private_whatever_the_umask(tmp_path: Path, socket_enabled: None) -> None:
    old = os.umask(0o022)
    try:
        config = tmp_path / "etc" / "helper.toml"
        assert main(["init", "--config", str(config), "--log-path", "/x/p.log", "--tls", "--docker-socket", "/n"]) == 0
    finally:
        os.umask(old)
    assert _mode(config) == 0o600
    assert _mode(config.with_name("helper-key.pem")) == 0o600
    helper = HelperProcess(tmp_path / "helper", umask=0o022, tls=True)
    helper.write_config()
    (helper.root / "state.db").touch(mode=0o644)  # left by an older version
    helper.start()
    try:
        helper.call("POST", "/api/v1/bans", {"ip": "203.0.113.45", "duration": 60})
        files = [helper.root / name for name in ("state.db", "state.db-wal", "state.db-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: _mode(p) for p in files} == dict.fromkeys((p.name for p in files), 0o600)
    finally:
        helper.stop()


def test_init_as_root_gives_the_config_to_the_service_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file away")
    import pwd

    nobody = pwd.getpwnam("nobody")
    config = tmp_path / "helper.toml"
    argv = ["init", "--config", str(config), "--log-path", "/x/p.log", "--docker-socket", "/n", "--tls"]
    assert main([*argv, "--user", "nobody"]) == 0
    for path in (config, tmp_path / "helper-key.pem"):
        st = path.stat()
        assert (st.st_uid, st.st_gid, _mode(path)) == (nobody.pw_uid, nobody.pw_gid, 0o600)
    assert "owned by nobody (the service user), mode 0600" in capsys.readouterr().out
    other = tmp_path / "other.toml"
    assert (
        main(
            [
                "init",
                "--config",
                str(other),
                "--log-path",
                "/x/p.log",
                "--docker-socket",
                "/n",
                "--user",
                "no-such-user-x",
            ]
        )
        == 0
    )
    assert other.stat().st_uid == 0
    assert "no user 'no-such-user-x' yet" in capsys.readouterr().out


def test_only_a_damaged_file_counts_as_damage(tmp_path: Path) -> None:
    """A locked or full database waits and retries; only a file SQLite cannot read is rebuilt."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as not_a_db:
        sqlite3.connect(path).execute("SELECT 1 FROM sqlite_master")
    assert is_damage(not_a_db.value)
    good = tmp_path / "good.db"
    holder = sqlite3.connect(good, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            sqlite3.connect(good, timeout=0).execute("SELECT * FROM t")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not is_damage(locked.value)
    assert not is_damage(ValueError("malformed"))


def _flag(mon: monitor.Monitor) -> str | None:
    """The monitor's damage report (read through a call: mypy keeps no narrowing across one)."""
    return mon._damage


def _kept(mon: monitor.Monitor) -> bool:
    """Whether a batch waits for its commit to be retried."""
    return mon._pending is not None


def test_a_rebuild_keeps_the_store_its_holders_use_and_a_failed_one_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with a real Monitor: the damage report, the rebuild and its failure paths."""
    log = tmp_path / "Plex Media Server.log"
    log.write_text("")
    config = tmp_path / "helper.toml"
    config.write_text(default_config_text(token="x" * 40, log_path=str(log), database=str(tmp_path / "state.db")))

    def damage(*_: object) -> None:
        err = sqlite3.DatabaseError("database disk image is malformed")
        err.sqlite_errorcode = 11
        raise err

    async def run() -> None:
        mon = monitor.Monitor(load_config(config))
        await mon.start()
        try:
            await steps(mon)
        finally:
            await mon.stop()

    async def steps(mon: monitor.Monitor) -> None:
        assert mon._task is not None
        mon._task.cancel()  # the test drives the steps itself
        await mon.run_in_worker(mon._step)
        held = mon.store.failed_auth_summary  # as the API, the session judge and the fleet push hold it
        with log.open("a") as handle:
            handle.write(
                "".join(f"{line}\n" for p in range(40000, 40006) for line in failed_login("203.0.113.8", port=p))
            )
        # Damage found while the batch's alert is checked against the bans: the batch is kept.
        with monkeypatch.context() as patch:
            patch.setattr(mon.enforcer, "unbanned_sources", damage)
            with pytest.raises(sqlite3.DatabaseError):
                await mon.run_in_worker(mon._step)
        assert _kept(mon) and _flag(mon) is not None
        # A rebuild that fails (a disk remounted read-only) leaves the store as it was.
        with monkeypatch.context() as patch:
            patch.setattr(monitor, "rebuild_store", lambda *_: (_ for _ in ()).throw(OSError(30, "read-only")))
            await mon._rebuild()
        assert _flag(mon) is None and await mon.run_in_worker(mon.store.last_seq) == 0
        mon._damage, mon._next_rebuild = "database disk image is malformed", 0.0
        await mon._rebuild()
        assert mon.database_notice is not None and "moved to state.db.corrupt-" in mon.database_notice
        await mon.run_in_worker(mon._step)  # the kept batch goes into the new file
        assert not _kept(mon)
        assert (await mon.run_in_worker(held, 0.0, 10))[0] == 6  # the store held before the swap works
        stored = await mon.run_in_worker(mon.store.alerts_after, 0, 10)
        assert [(a.kind, a.ip) for a in stored if a.kind != "banned"] == [("failed_login_burst", "203.0.113.8")]

    asyncio.run(run())
