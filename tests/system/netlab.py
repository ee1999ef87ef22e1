"""Network namespaces for firewall tests: the internet, the Plex host and a Docker-like container.

    wan (192.0.2.2…, 2001:db8:1::2…) ── plex host (192.0.2.1, 2001:db8:1::1) ── ctr (10.88.0.2)
                                        port 32400: Plex on the host (input hook)
                                        port 42400: DNAT to ctr:32400 (forward hook, like Docker -p)

Everything lives in namespaces this module creates and deletes; nothing touches the host's network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PEER = Path(__file__).with_name("peer.py")
PLEX_V4 = "192.0.2.1"
PLEX_V6 = "2001:db8:1::1"
PUBLISHED_PORT = 42400


def can_run() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool} (scripts/test installs it)"
    return None


def wan_v4(n: int) -> str:
    """The n-th internet client address in the wan namespace (n = 2..250)."""
    return f"192.0.2.{n}"


def wan_v6(n: int) -> str:
    return f"2001:db8:1::{n:x}"


@dataclass
class Lab:
    """Three namespaces with unique names; :meth:`down` removes them and whatever ran inside."""

    root: Path
    tag: str = field(default_factory=lambda: f"pxs{os.getpid() % 100000}t{time.monotonic_ns() % 10000}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def plex(self) -> str:
        return f"{self.tag}p"

    @property
    def wan(self) -> str:
        return f"{self.tag}w"

    @property
    def ctr(self) -> str:
        return f"{self.tag}c"

    def sh(self, ns: str | None, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        return subprocess.run(full, check=check, capture_output=True, text=True, timeout=60)

    def up(self, wan_hosts: range = range(2, 41), extra_v6: tuple[int, ...] = (0x120,)) -> None:
        for ns in (self.plex, self.wan, self.ctr):
            self.sh(None, "ip", "netns", "add", ns)
            self.sh(ns, "ip", "link", "set", "lo", "up")
        t = self.tag
        self.sh(
            None, "ip", "link", "add", f"{t}a", "netns", self.wan, "type", "veth", "peer", f"{t}b", "netns", self.plex
        )
        self.sh(
            None, "ip", "link", "add", f"{t}c", "netns", self.plex, "type", "veth", "peer", f"{t}d", "netns", self.ctr
        )
        self.sh(self.plex, "ip", "addr", "add", f"{PLEX_V4}/24", "dev", f"{t}b")
        self.sh(self.plex, "ip", "-6", "addr", "add", f"{PLEX_V6}/64", "dev", f"{t}b", "nodad")
        self.sh(self.plex, "ip", "addr", "add", "10.88.0.1/24", "dev", f"{t}c")
        for n in wan_hosts:
            self.sh(self.wan, "ip", "addr", "add", f"{wan_v4(n)}/24", "dev", f"{t}a")
            self.sh(self.wan, "ip", "-6", "addr", "add", f"{wan_v6(n)}/64", "dev", f"{t}a", "nodad")
        for n in extra_v6:
            self.sh(self.wan, "ip", "-6", "addr", "add", f"{wan_v6(n)}/64", "dev", f"{t}a", "nodad")
        self.sh(self.ctr, "ip", "addr", "add", "10.88.0.2/24", "dev", f"{t}d")
        for ns, dev in ((self.wan, f"{t}a"), (self.plex, f"{t}b"), (self.plex, f"{t}c"), (self.ctr, f"{t}d")):
            self.sh(ns, "ip", "link", "set", dev, "up")
        self.sh(self.ctr, "ip", "route", "add", "default", "via", "10.88.0.1")
        self.sh(self.plex, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Permanent neighbour entries: no ARP or IPv6 neighbour discovery delays a first
        # connection, so a timeout in a test always means a dropped packet.
        wan_mac = self._mac(self.wan, f"{t}a")
        plex_mac = self._mac(self.plex, f"{t}b")
        batch = [
            f"neigh replace {PLEX_V4} lladdr {plex_mac} dev {t}a nud permanent",
            f"neigh replace {PLEX_V6} lladdr {plex_mac} dev {t}a nud permanent",
        ]
        self._ip_batch(self.wan, batch)
        peers = [wan_v4(n) for n in wan_hosts] + [wan_v6(n) for n in (*wan_hosts, *extra_v6)]
        self._ip_batch(
            self.plex,
            [f"neigh replace {a} lladdr {wan_mac} dev {t}b nud permanent" for a in peers],
        )
        # What `docker run -p 42400:32400` amounts to: a DNAT in a table that is not ours.
        self.sh(
            self.plex,
            "nft",
            f"add table ip dockersim; add chain ip dockersim pre {{ type nat hook prerouting priority dstnat; }};"
            f" add rule ip dockersim pre tcp dport {PUBLISHED_PORT} dnat to 10.88.0.2:32400",
        )

    def _mac(self, ns: str, dev: str) -> str:
        mac: str = json.loads(self.sh(ns, "ip", "-j", "link", "show", dev).stdout)[0]["address"]
        return mac

    def _ip_batch(self, ns: str, commands: list[str]) -> None:
        batch = self.root / f"ip-batch-{ns}"
        batch.write_text("\n".join(commands) + "\n")
        self.sh(ns, "ip", "-batch", str(batch))

    def serve(self, ns: str, port: int = 32400) -> Path:
        """Start a TCP server in *ns*; return the file it logs accepted client addresses to."""
        ready = self.root / f"ready-{ns}-{port}"
        accepted = self.root / f"accepted-{ns}-{port}"
        accepted.touch()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(PEER), "serve", str(port), str(ready), str(accepted)]
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while not ready.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return accepted

    def connect(
        self,
        source: str,
        count: int = 1,
        mode: str = "seq",
        *,
        host: str | None = None,
        port: int = 32400,
        timeout: float = 0.5,
    ) -> list[str]:
        """Connections from *source* in the wan namespace: "ok", "timeout" (dropped), "refused" (reset)."""
        target = host or (PLEX_V6 if ":" in source else PLEX_V4)
        out = self.sh(
            self.wan, sys.executable, str(PEER), "connect", target, str(port), source, str(count), mode, str(timeout)
        ).stdout
        result: list[str] = json.loads(out)
        return result

    def nft_json(self, *args: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = json.loads(self.sh(self.plex, "nft", "-j", *args).stdout)["nftables"]
        return items

    def counter(self, name: str) -> int:
        """Packets counted by one of our named counters."""
        for item in self.nft_json("list", "counters", "table", "inet", "plex_security"):
            counter = item.get("counter")
            if isinstance(counter, dict) and counter.get("name") == name:
                return int(counter["packets"])
        raise AssertionError(f"no counter {name}")

    def down(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        for ns in (self.wan, self.plex, self.ctr):
            self.sh(None, "ip", "netns", "del", ns, check=False)
