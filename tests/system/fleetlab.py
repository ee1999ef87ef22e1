"""A fleet in network namespaces: two Plex hosts and a reverse proxy on one internet segment.

    wan (bridge; attackers 192.0.2.10…40) ─┬─ A 192.0.2.251  Plex host, its own helper
                                           ├─ B 192.0.2.252  Plex host, its own helper
                                           └─ C 192.0.2.253  reverse proxy + crowdsec-firewall-bouncer

Helpers and LAPI run in the test's own namespace (the helpers' nft goes into A and B);
C's bouncer reaches LAPI through ``nsforward.py``. Nothing touches the host's network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PEER = Path(__file__).with_name("peer.py")
FORWARD = Path(__file__).with_name("nsforward.py")
HOSTS = {"a": "192.0.2.251", "b": "192.0.2.252", "c": "192.0.2.253"}


def attacker(n: int) -> str:
    """The n-th internet address in the wan namespace (n = 10..40 unless :meth:`FleetLab.up` was given more)."""
    return f"192.0.2.{n}"


@dataclass
class FleetLab:
    """Four namespaces with unique names; :meth:`down` removes them and whatever ran inside."""

    root: Path
    tag: str = field(default_factory=lambda: f"pxf{os.getpid() % 100000}t{time.monotonic_ns() % 10000}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, host: str) -> str:
        return f"{self.tag}{host}"

    @property
    def wan(self) -> str:
        return self.ns("w")

    def sh(self, ns: str | None, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        return subprocess.run(full, check=check, capture_output=True, text=True, timeout=60)

    def up(self, attackers: range = range(10, 41)) -> None:
        self.sh(None, "ip", "netns", "add", self.wan)
        self.sh(self.wan, "ip", "link", "set", "lo", "up")
        self.sh(self.wan, "ip", "link", "add", "br0", "type", "bridge")
        for n in attackers:
            self.sh(self.wan, "ip", "addr", "add", f"{attacker(n)}/24", "dev", "br0")
        self.sh(self.wan, "ip", "link", "set", "br0", "up")
        for host, address in HOSTS.items():
            ns = self.ns(host)
            self.sh(None, "ip", "netns", "add", ns)
            self.sh(ns, "ip", "link", "set", "lo", "up")
            self.sh(
                None, "ip", "link", "add", f"{self.tag}{host}0", "netns", self.wan,
                "type", "veth", "peer", "eth0", "netns", ns,
            )  # fmt: skip
            self.sh(self.wan, "ip", "link", "set", f"{self.tag}{host}0", "master", "br0", "up")
            self.sh(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self.sh(ns, "ip", "link", "set", "eth0", "up")

    def serve(self, host: str, port: int) -> Path:
        """A TCP service in *host*; returns the file it logs accepted client addresses to."""
        ns = self.ns(host)
        ready, accepted = self.root / f"ready-{host}-{port}", self.root / f"accepted-{host}-{port}"
        accepted.touch()
        self._spawn(
            ["ip", "netns", "exec", ns, sys.executable, str(PEER), "serve", str(port), str(ready), str(accepted)], ready
        )
        return accepted

    def forward(self, host: str, port: int, target: int) -> None:
        """Make the root namespace's 127.0.0.1:*target* reachable in *host* as 127.0.0.1:*port*."""
        ready = self.root / f"fwd-{host}-{port}"
        self._spawn([sys.executable, str(FORWARD), self.ns(host), str(port), str(target), str(ready)], ready)

    def _spawn(self, argv: list[str], ready: Path) -> None:
        proc = subprocess.Popen(argv)
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while not ready.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{argv[-4:]} did not start")
            time.sleep(0.02)

    def connect(self, source: str, host: str, port: int = 32400, count: int = 1, timeout: float = 0.5) -> list[str]:
        """Connections from *source* to *host*: "ok", "timeout" (dropped), "refused"."""
        out = self.sh(
            self.wan,
            sys.executable,
            str(PEER),
            "connect",
            HOSTS[host],
            str(port),
            source,
            str(count),
            "seq",
            str(timeout),
        ).stdout
        result: list[str] = json.loads(out)
        return result

    def wait_connect(self, source: str, host: str, want: str, port: int = 32400, timeout: float = 30.0) -> None:
        """Poll until a connection from *source* to *host* ends as *want* (bounded)."""
        deadline = time.monotonic() + timeout
        last: list[str] = []
        while time.monotonic() < deadline:
            last = self.connect(source, host, port, timeout=0.3)
            if last == [want]:
                return
            time.sleep(0.1)
        raise AssertionError(f"{source} → {host}:{port} still {last} after {timeout}s (wanted {want})")

    def down(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        for host in (*HOSTS, "w"):
            self.sh(None, "ip", "netns", "del", self.ns(host), check=False)
