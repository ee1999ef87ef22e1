"""Benchmark: bans at scale and detection-to-drop latency, ours against the anchors, same run.

1. Apply 100,000 bans in one batch to our nftables sets and check membership, against the
   seed's approach (one ``iptables -A INPUT -s IP -j DROP`` process per ban). iptables is timed
   on a sample and extrapolated linearly, which flatters it: each rule it adds makes the
   next insertion (and every packet) walk a longer chain.
2. Detection-to-drop: append the deciding failed-login line to the Plex log and measure until
   the first connection attempt from that address is blocked, for our helper and for fail2ban
   with the jail and filter we ship, on the same namespaces.

Everything happens inside network namespaces this script creates. Needs root, nft, iptables,
fail2ban. Usage: bench/ban_scale.py [--bans N] [--iptables-sample N] [--latency-samples N]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plex_security_helper.firewall.nft import PROFILES, BanElement, NftFirewall, Ruleset  # noqa: E402
from plex_security_helper.firewall.targets import parse_target  # noqa: E402
from tests.helperproc import HelperProcess  # noqa: E402
from tests.plexlines import failed_login  # noqa: E402
from tests.system.f2b import start_fail2ban  # noqa: E402
from tests.system.netlab import PEER, Lab, wan_v4  # noqa: E402


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)


def _run(ns: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, text=True, check=False)


def scale(bans: int, sample: int) -> None:
    base = int(ipaddress.IPv4Address("100.64.0.0"))
    addresses = [str(ipaddress.IPv4Address(base + i)) for i in range(bans)]
    checks = random.Random(7).sample(addresses, min(1000, bans))
    ours_ns, ipt_ns = "plexsec-bench-nft", "plexsec-bench-ipt"
    for ns in (ours_ns, ipt_ns):
        _netns(ns)
    try:
        fw = NftFirewall(netns=ours_ns)
        fw.apply(Ruleset(plex_port=32400, rates=PROFILES["default"], allow=()))
        elements = [BanElement(parse_target(a), 3600) for a in addresses]
        start = time.perf_counter()
        fw.add(elements)
        ours_apply = time.perf_counter() - start
        # Membership: read the whole set back once (nft 1.0.6's `get element` with ~1,000
        # elements in one call crashes, so the kernel's full list is the honest check).
        start = time.perf_counter()
        in_kernel_set = fw.banned()
        ours_check = time.perf_counter() - start
        missing = [a for a in checks if a not in in_kernel_set]
        assert not missing, f"membership check failed: {missing[:3]}"
        in_kernel = len(in_kernel_set)

        if shutil.which("iptables") is None:
            print(f"ours: {bans} bans in {ours_apply:.2f} s; iptables not installed, no anchor")
            return
        n = min(sample, bans)
        start = time.perf_counter()
        for addr in addresses[:n]:
            _run(ipt_ns, "iptables", "-w", "-A", "INPUT", "-s", addr, "-j", "DROP").check_returncode()
        ipt_per_ban = (time.perf_counter() - start) / n
        probe = addresses[: min(200, n)]
        start = time.perf_counter()
        for addr in probe:
            _run(ipt_ns, "iptables", "-w", "-C", "INPUT", "-s", addr, "-j", "DROP").check_returncode()
        ipt_per_check = (time.perf_counter() - start) / len(probe)
        ipt_apply = ipt_per_ban * bans
        ipt_check = ipt_per_check * len(checks)
        print(f"bans: {bans:,} in one batch; membership of {len(checks)} random banned addresses checked")
        print(f"ours (nft sets, one JSON batch): apply {ours_apply:8.2f} s   check {ours_check * 1000:8.1f} ms")
        print(
            f"iptables, one rule per ban:      apply {ipt_apply:8.2f} s   check {ipt_check * 1000:8.1f} ms"
            f"   (timed on {n} rules, extrapolated)"
        )
        print(f"ratio apply: {ipt_apply / ours_apply:.0f}x faster   check: {ipt_check / ours_check:.0f}x faster")
        print(f"bans in the kernel set: {in_kernel:,}")
    finally:
        for ns in (ours_ns, ipt_ns):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _blocked_after(lab: Lab, source: str, append: object) -> float | None:
    """Start a prober from *source*, append the deciding line, return seconds until blocked."""
    prober = subprocess.Popen(
        ["ip", "netns", "exec", lab.wan, sys.executable, str(PEER), "probe", "192.0.2.1", "32400", source, "15"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert prober.stdout is not None
    json.loads(prober.stdout.readline())  # probing
    time.sleep(0.05)
    appended = time.monotonic()
    append()  # type: ignore[operator]
    result = json.loads(prober.stdout.readline())
    prober.wait(timeout=20)
    blocked = result["blocked_at"]
    return None if blocked is None else max(0.0, blocked - appended)


def _percentiles(name: str, times: list[float], misses: int) -> tuple[float, float]:
    times.sort()
    p50 = statistics.median(times) * 1000
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
    print(f"{name:<34} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   ({len(times)} samples, {misses} never blocked)")
    return p50, p99


def latency(samples: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="plexsec-ban-lat-"))
    lab = Lab(work)
    lab.up(range(2, 12 + 2 * samples))
    lab.serve(lab.plex)
    try:
        helper = HelperProcess(
            work / "helper",
            extra_config=f'[firewall]\nbackend = "nft"\nmode = "enforce"\nprofile = "off"\nnetns = "{lab.plex}"\n',
        )
        helper.start()
        ours: list[float] = []
        misses = 0
        for i in range(samples):
            ip = wan_v4(10 + i)
            lines = [line for port in range(40000, 40005) for line in failed_login(ip, port=port)]
            helper.append(*lines[:-2])
            time.sleep(0.1)
            took = _blocked_after(lab, ip, lambda lines=lines: helper.append(*lines[-2:]))
            if took is None:
                misses += 1
            else:
                ours.append(took)
        helper.stop()
        lab.sh(lab.plex, "nft", "delete", "table", "inet", "plex_security")

        f2b = start_fail2ban(lab, work / "f2b")
        theirs: list[float] = []
        f2b_misses = 0
        try:
            for i in range(samples):
                ip = wan_v4(10 + samples + i)
                lines = [line for port in range(40000, 40005) for line in failed_login(ip, port=port)]

                def write(chunk: list[str]) -> None:
                    with f2b.log.open("a", encoding="utf-8") as handle:
                        handle.write("".join(f"{line}\n" for line in chunk))

                write(lines[:-2])
                time.sleep(1.5)  # let fail2ban read the first four before the clock starts
                took = _blocked_after(lab, ip, lambda lines=lines: write(lines[-2:]))
                if took is None:
                    f2b_misses += 1
                else:
                    theirs.append(took)
        finally:
            f2b.stop()
        print("detection to drop (deciding log line appended -> first blocked connection attempt):")
        _, ours_p99 = _percentiles("ours (helper, nftables sets)", ours, misses)
        _, f2b_p99 = _percentiles("fail2ban (shipped jail, polling)", theirs, f2b_misses)
        print(f"ratio p99 fail2ban/ours: {f2b_p99 / ours_p99:.1f}x")
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bans", type=int, default=100_000)
    parser.add_argument("--iptables-sample", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=30)
    args = parser.parse_args()
    scale(args.bans, args.iptables_sample)
    latency(args.latency_samples)


if __name__ == "__main__":
    main()
