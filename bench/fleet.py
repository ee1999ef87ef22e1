"""Benchmark: a ban decided on Plex host A, dropped on Plex host B through CrowdSec's Local API.

Detection on A (the deciding failed-login lines appended to A's Plex log) to the first dropped
SYN on B, for B enforcing through this helper's stream and through CrowdSec's own
crowdsec-firewall-bouncer (nftables mode), both pulling LAPI at the same interval (CrowdSec's
default, 10 s, unless --interval). A third row shows this helper's stream at 1 s.

The time is dominated by where in its pull interval B happens to be: expect p50 ≈ interval/2
and p99 ≈ interval for both; the difference left is what each side adds on top (A's push, LAPI,
B's set update). Everything runs in network namespaces this script creates, with the test
suite's LAPI (Debian's crowdsec 1.4.6, LAPI only, under a temp dir). Needs root.
Usage: bench/fleet.py [--interval S] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helperproc import HelperProcess  # noqa: E402
from tests.plexlines import failed_login  # noqa: E402
from tests.system.crowdsec import Lapi  # noqa: E402
from tests.system.fleetlab import HOSTS, PEER, FleetLab, attacker  # noqa: E402

LAPI_PORT_IN_B = 8080


def _blocked_on_b(lab: FleetLab, source: str, decide: Callable[[], None], deadline: float) -> float | None:
    """Probe B from *source*, run *decide* (A's deciding log lines), return seconds until blocked."""
    prober = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.wan,
            sys.executable,
            str(PEER),
            "probe",
            HOSTS["b"],
            "32400",
            source,
            str(deadline),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prober.stdout is not None
    json.loads(prober.stdout.readline())  # probing
    time.sleep(0.05)
    decided = time.monotonic()
    decide()
    result = json.loads(prober.stdout.readline())
    prober.wait(timeout=deadline + 10)
    blocked = result["blocked_at"]
    return None if blocked is None else max(0.0, blocked - decided)


def _helper(root: Path, lab: FleetLab, lapi: Lapi, name: str, *, interval: float, push: bool) -> HelperProcess:
    if push:
        creds = f'machine_id = "bench-{name}"\npassword = "{lapi.add_machine(f"bench-{name}")}"\n'
    else:
        creds = f'bouncer_key = "{lapi.add_bouncer(f"bench-{name}-{time.monotonic_ns()}")}"\n'
    helper = HelperProcess(
        root / f"{name}-{time.monotonic_ns()}",
        extra_config=(
            f'[firewall]\nbackend = "nft"\nmode = "enforce"\nprofile = "off"\nnetns = "{lab.ns(name)}"\n'
            f'[crowdsec]\nlapi_url = "{lapi.url}"\n{creds}stream_interval = {interval}\nretry_max = 1\n'
        ),
    )
    helper.start()
    return helper


def _bouncer(work: Path, lab: FleetLab, lapi: Lapi, interval: float) -> subprocess.Popen[bytes]:
    key = lapi.add_bouncer(f"bench-cs-{time.monotonic_ns()}")
    config = work / "crowdsec-firewall-bouncer.yaml"
    config.write_text(
        f"mode: nftables\npid_dir: {work}/\nupdate_frequency: {interval}s\ndaemonize: false\nlog_mode: file\n"
        f"log_dir: {work}/\nlog_level: info\napi_url: http://127.0.0.1:{LAPI_PORT_IN_B}/\napi_key: {key}\n"
        "disable_ipv6: true\ndeny_action: DROP\ndeny_log: false\nsupported_decisions_types:\n  - ban\n"
        "blacklists_ipv4: crowdsec-blacklists\nblacklists_ipv6: crowdsec6-blacklists\n"
        "nftables:\n  ipv4:\n    enabled: true\n    set-only: false\n    table: crowdsec\n    chain: crowdsec-chain\n"
        "  ipv6:\n    enabled: false\n    set-only: false\n    table: crowdsec6\n    chain: crowdsec6-chain\n"
        "prometheus:\n  enabled: false\n"
    )
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("b"), "crowdsec-firewall-bouncer", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(work / "bouncer.stderr").open("ab"),
    )
    time.sleep(2 * interval + 1)  # its startup pull and its table are in place
    return proc


def _run(
    name: str, lab: FleetLab, a: HelperProcess, sources: list[str], interval: float
) -> tuple[str, list[float], int]:
    times: list[float] = []
    misses = 0
    rnd = random.Random(17)
    for ip in sources:
        time.sleep(rnd.uniform(0, interval))  # land anywhere in B's pull interval
        lines = [line for port in range(40000, 40006) for line in failed_login(ip, port=port)]

        def decide(lines: list[str] = lines) -> None:
            a.append(*lines)

        took = _blocked_on_b(lab, ip, decide, deadline=3 * interval + 5)
        if took is None:
            misses += 1
        else:
            times.append(took)
    return name, times, misses


def _print(rows: list[tuple[str, list[float], int]]) -> None:
    print("detection on A (deciding log lines appended) -> first dropped SYN on B, through LAPI:")
    for name, times, misses in rows:
        if not times:
            print(f"{name:<48} no samples ({misses} never blocked)")
            continue
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{name:<48} p50 {p50:7.2f} s   p99 {p99:7.2f} s   ({len(times)} samples, {misses} never blocked)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=10.0, help="pull interval of both bouncers on B")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    n = args.samples
    work = Path(tempfile.mkdtemp(prefix="plexsec-fleet-bench-"))
    lab = FleetLab(work)
    lapi = Lapi(work / "lapi")
    procs: list[HelperProcess] = []
    rows: list[tuple[str, list[float], int]] = []
    try:
        lab.up(range(10, 10 + 3 * n))
        lapi.start()
        lab.serve("b", 32400)
        a = _helper(work, lab, lapi, "a", interval=args.interval, push=True)
        procs.append(a)
        sources = [attacker(10 + i) for i in range(3 * n)]

        b = _helper(work, lab, lapi, "b", interval=args.interval, push=False)
        rows.append(_run(f"ours: helper stream on B, every {args.interval:g} s", lab, a, sources[:n], args.interval))
        b.stop()
        lab.sh(lab.ns("b"), "nft", "delete", "table", "inet", "plex_security")

        lab.forward("b", LAPI_PORT_IN_B, lapi.port)
        bouncer = _bouncer(work, lab, lapi, args.interval)
        lab.procs.append(bouncer)
        rows.append(
            _run(
                f"crowdsec-firewall-bouncer on B, every {args.interval:g} s", lab, a, sources[n : 2 * n], args.interval
            )
        )
        bouncer.kill()
        bouncer.wait(timeout=10)
        lab.sh(lab.ns("b"), "nft", "delete", "table", "ip", "crowdsec", check=False)

        if args.interval != 1:
            b = _helper(work, lab, lapi, "b", interval=1, push=False)
            procs.append(b)
            rows.append(_run("ours: helper stream on B, every 1 s", lab, a, sources[2 * n :], 1))
        _print(rows)
    finally:
        for proc in procs:
            proc.stop()
        lapi.stop()
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
