"""Benchmark: API latency while the follower ingests a flood.

A writer process appends Plex access lines at --rate lines/s (users, brute forcers, scanners) to
a live helper's log, while a second process drives GET /api/v1/status and GET /api/v1/alerts on
loopback with --clients concurrent connections. Bounded in time (--seconds) and count
(--max-requests). Prints p50/p99 latency per route, errors, the helper's peak RSS, and whether
the follower kept up. Targets: 0 errors, p99 < 50 ms, RSS < 150 MB.

Usage: bench/api_load.py [--rate 10000] [--seconds 20] [--clients 4] [--max-requests 200000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.queues
import random
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helperproc import HelperProcess  # noqa: E402
from tests.plexlines import exchange, failed_login  # noqa: E402


def write_flood(log: str, rate: int, seconds: float, done: multiprocessing.queues.Queue[int]) -> None:
    """Append about *rate* lines a second for *seconds*; report how many were written."""
    rnd = random.Random(5)
    users = [(f"192.0.2.{i}", f"user{i}") for i in range(10, 40)]
    written = 0
    start = time.monotonic()
    with Path(log).open("a", encoding="utf-8") as handle:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) - written
            if due <= 0:
                time.sleep(0.002)
                continue
            chunk: list[str] = []
            while len(chunk) < due:
                roll = rnd.random()
                if roll < 0.9:
                    ip, user = rnd.choice(users)
                    chunk += exchange(ip, 200, "/library/sections", user=user, port=rnd.randint(30000, 65000))
                elif roll < 0.97:
                    chunk += failed_login(f"203.0.113.{rnd.randint(1, 200)}", port=rnd.randint(30000, 65000))
                else:
                    chunk += exchange(f"198.51.100.{rnd.randint(1, 50)}", 404, "/.env", port=rnd.randint(30000, 65000))
            handle.write("".join(f"{line}\n" for line in chunk))
            handle.flush()
            written += len(chunk)
    done.put(written)


def drive(  # noqa: PLR0917 - a process target takes positional arguments
    url: str, token: str, clients: int, seconds: float, max_requests: int, out: multiprocessing.queues.Queue[str]
) -> None:
    """Hammer /status and /alerts from *clients* threads; report latencies and errors as JSON."""
    results: dict[str, list[float]] = {"status": [], "alerts": []}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    count = [0]

    def worker(n: int) -> None:
        seq = 0
        turn = n
        while time.monotonic() < deadline:
            with lock:
                if count[0] >= max_requests:
                    return
                count[0] += 1
            turn += 1
            route = "status" if turn % 2 else "alerts"
            path = "/api/v1/status" if route == "status" else f"/api/v1/alerts?after={seq}&limit=100"
            req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = json.loads(resp.read())
                if route == "alerts" and body["alerts"]:
                    seq = body["alerts"][-1]["seq"]
            except Exception as err:  # noqa: BLE001 - every failure is counted, whatever it is
                with lock:
                    errors.append(f"{route}: {err}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                results[route].append(elapsed)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(json.dumps({"results": results, "errors": errors[:20], "error_count": len(errors)}))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="plexsec-load-"))
    helper = HelperProcess(work / "helper")
    helper.start()
    try:
        written_q: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
        driven_q: multiprocessing.queues.Queue[str] = multiprocessing.Queue()
        writer = multiprocessing.Process(
            target=write_flood, args=(str(helper.log_path), args.rate, args.seconds, written_q)
        )
        driver = multiprocessing.Process(
            target=drive, args=(helper.url, helper.token, args.clients, args.seconds, args.max_requests, driven_q)
        )
        writer.start()
        driver.start()
        written = written_q.get(timeout=args.seconds + 60)
        report = json.loads(driven_q.get(timeout=args.seconds + 60))
        writer.join()
        driver.join()
        status = helper.wait_for(lambda s: s["monitor"]["lines_processed"] >= written, timeout=60)
        assert helper.proc is not None
        peak_kb = next(
            int(line.split()[1])
            for line in Path(f"/proc/{helper.proc.pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
        print(
            f"flood: {written:,} lines in {args.seconds:.0f} s ({written / args.seconds:,.0f} lines/s); "
            f"follower processed {status['monitor']['lines_processed']:,} (kept up: yes)"
        )
        for route, values in report["results"].items():
            print(
                f"GET /api/v1/{route:<7} {len(values):>7,} requests   p50 {_pct(values, 0.5):6.1f} ms   "
                f"p99 {_pct(values, 0.99):6.1f} ms   (target p99 < 50 ms)"
            )
        print(
            f"errors: {report['error_count']} (target 0)"
            + (f"  e.g. {report['errors'][:3]}" if report["errors"] else "")
        )
        print(f"helper peak RSS: {peak_kb / 1024:.0f} MiB (target < 150 MB)")
        print(f"alerts: {status['alerts']['count_24h']}, failed logins: {status['failed_logins']['total']:,}")
    finally:
        helper.stop()


if __name__ == "__main__":
    main()
