"""The SQLite store: atomic batches, a sequence that never goes back, bounded size."""

from __future__ import annotations

from pathlib import Path

from plex_security_helper.logwatch.tail import Position
from plex_security_helper.store import AddressTally, Alert, FailedAuth, Store


def alert(ip: str, t: float) -> Alert:
    return Alert(kind="probe", ip=ip, time=t, first_seen=t, last_seen=t, count=2, score=80, detail={})


def test_sequence_survives_reopen_and_purge(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = Store(db)
    stored = store.commit_batch([], [alert("192.0.2.1", 100.0), alert("192.0.2.2", 200.0)], Position(7, 10))
    assert [a.seq for a in stored] == [1, 2]
    store.purge(before=1000.0, max_failed_auth=10)
    store.close()

    store = Store(db)
    assert store.position() == Position(7, 10)
    assert store.alerts_after(0, 10) == []
    # Purged alerts' numbers are never reused: a client's cursor stays meaningful.
    assert [a.seq for a in store.commit_batch([], [alert("192.0.2.3", 2000.0)], None)] == [3]
    store.close()


def test_failed_auth_rows_are_capped(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.commit_batch([FailedAuth("203.0.113.1", float(i), "/") for i in range(50)], [], None)
    removed = store.purge(before=0.0, max_failed_auth=20)
    assert removed == 30
    assert store.failed_auth_summary(0.0, 10) == (20, 1, [("203.0.113.1", 20)])
    store.close()


def test_the_failed_login_summary_counts_all_and_lists_the_top(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.failed_auth_summary(0.0, 3) == (0, 0, [])
    failures = [FailedAuth(f"203.0.113.{n}", 100.0 + i, "/") for n in range(1, 7) for i in range(n)]
    failures.append(FailedAuth("198.51.100.1", 10.0, "/"))  # before the window
    store.commit_batch(failures, [], None)
    # 21 failures from six addresses in the window; the top three, most first (ties by address).
    assert store.failed_auth_summary(50.0, 3) == (21, 6, [("203.0.113.6", 6), ("203.0.113.5", 5), ("203.0.113.4", 4)])
    assert store.failed_auth_summary(0.0, 1) == (22, 7, [("203.0.113.6", 6)])
    store.close()


def test_address_totals_add_up_and_stay_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.commit_batch([], [], None, tallies={"192.0.2.1": AddressTally(100.0, 110.0, requests=3, failed_auth=2)})
    store.commit_batch(
        [],
        [],
        None,
        tallies={
            "192.0.2.1": AddressTally(90.0, 120.0, requests=1, probes=1, alerts=1, last_alert="probe"),
            "192.0.2.2": AddressTally(300.0, 300.0, requests=1),
            "192.0.2.3": AddressTally(400.0, 400.0, requests=1),
        },
    )
    store.commit_batch([], [], None, tallies={"192.0.2.1": AddressTally(130.0, 130.0, requests=1)})
    assert store.address("192.0.2.1") == {
        "first_seen": 90.0,
        "last_seen": 130.0,
        "requests": 5,
        "failed_auth": 2,
        "probes": 1,
        "alerts": 1,
        "last_alert": "probe",  # a batch without alerts keeps the last one
    }
    # Retention by age, then a cap that keeps the most recently seen.
    store.purge(before=200.0, max_failed_auth=10, max_addresses=1)
    assert store.address("192.0.2.1") is None
    assert store.address("192.0.2.2") is None
    assert store.address("192.0.2.3") is not None
    store.close()
