"""Host exposure: sockets bound for Plex's side ports that should never face the internet.

Read from ``/proc/net/{tcp,tcp6,udp,udp6}`` of the helper's own network namespace, which is the
host's when the helper runs there (as it must, to manage the firewall).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .findings import Finding, Severity

TCP_LISTEN = "0A"
# (protocol, port) → (what, severity when bound beyond loopback)
SIDE_PORTS: dict[tuple[str, int], tuple[str, Severity]] = {
    ("tcp", 32401): ("Plex's internal loopback-only port", Severity.HIGH),
    ("tcp", 32600): ("Plex's internal loopback-only port", Severity.HIGH),
    ("tcp", 32469): ("DLNA media server (no Plex authentication)", Severity.MEDIUM),
    ("udp", 1900): ("DLNA/SSDP discovery (reflection history)", Severity.MEDIUM),
    ("tcp", 8324): ("Roku companion", Severity.LOW),
    ("tcp", 3005): ("old companion protocol", Severity.LOW),
    ("udp", 5353): ("Bonjour/mDNS", Severity.LOW),
    ("udp", 32410): ("GDM discovery", Severity.LOW),
    ("udp", 32412): ("GDM discovery", Severity.LOW),
    ("udp", 32413): ("GDM discovery", Severity.LOW),
    ("udp", 32414): ("GDM discovery", Severity.LOW),
}


@dataclass(frozen=True, slots=True)
class Socket:
    """A bound socket: protocol, local address and port."""

    proto: str
    address: str
    port: int


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # IPv6 in /proc is four little-endian 32-bit words.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def parse_proc_net(text: str, proto: str) -> list[Socket]:
    """Listening TCP sockets, or bound UDP sockets, of one ``/proc/net`` table."""
    found: list[Socket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1]:
            continue
        if proto == "tcp" and fields[3] != TCP_LISTEN:
            continue
        addr, port = fields[1].rsplit(":", 1)
        try:
            found.append(Socket(proto, _address(addr), int(port, 16)))
        except ValueError:
            continue
    return found


def bound_sockets(proc_net: Path = Path("/proc/net")) -> list[Socket]:
    """Every listening TCP and bound UDP socket of this namespace."""
    sockets: list[Socket] = []
    for name, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        try:
            sockets += parse_proc_net((proc_net / name).read_text(), proto)
        except OSError:
            continue
    return sockets


def exposure_findings(sockets: list[Socket]) -> list[Finding]:
    """A finding per side port bound beyond loopback."""
    found: dict[str, Finding] = {}
    for sock in sockets:
        info = SIDE_PORTS.get((sock.proto, sock.port))
        if info is None or ipaddress.ip_address(sock.address).is_loopback:
            continue
        what, severity = info
        key = f"{sock.proto}/{sock.port}"
        where = f"[{sock.address}]" if ":" in sock.address else sock.address
        if key in found:
            continue
        found[key] = Finding(
            f"host.port_{sock.proto}_{sock.port}_exposed",
            severity,
            f"{sock.proto.upper()} {sock.port} ({what}) listens beyond loopback",
            f"bound to {where}:{sock.port}",
            "Never forward this port on the router; turn the feature off in Plex if unused, or drop it"
            " in the host firewall.",
            subject=key,
        )
    return list(found.values())
