"""Host exposure from /proc/net of a namespace where real sockets listen on Plex's side ports."""

from __future__ import annotations

import subprocess
import sys

from plex_security_helper.audit.findings import Severity
from plex_security_helper.audit.host import exposure_findings, parse_proc_net
from tests.system.netlab import Lab

LISTENERS = """
import socket, time
socks = []
for fam, kind, addr, port in [
    (socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0", 32469),    # DLNA on every interface
    (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", 32401),  # loopback only: fine
    (socket.AF_INET6, socket.SOCK_STREAM, "::", 32600),         # must never leave loopback
    (socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0", 1900),       # SSDP
    (socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0", 32400),     # Plex itself: expected
]:
    s = socket.socket(fam, kind)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen()
    socks.append(s)
print("ready", flush=True)
time.sleep(60)
"""


def test_side_ports_bound_beyond_loopback_are_findings(lab: Lab) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.plex, sys.executable, "-c", LISTENERS], stdout=subprocess.PIPE, text=True
    )
    lab.procs.append(proc)  # type: ignore[arg-type]
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    sockets = []
    for name, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        text = lab.sh(lab.plex, "cat", f"/proc/net/{name}").stdout
        sockets += parse_proc_net(text, proto)
    found = {f.subject: f for f in exposure_findings(sockets)}
    assert set(found) == {"tcp/32469", "tcp/32600", "udp/1900"}
    assert found["tcp/32600"].severity is Severity.HIGH
    assert "[::]:32600" in found["tcp/32600"].evidence
    assert found["udp/1900"].severity is Severity.MEDIUM


def test_parse_proc_net_skips_garbage() -> None:
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:7D11 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
        "   1: 00000000:7EC5 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2\n"
        "garbage line\n"
        "   2: ZZZZ:0001 00000000:0000 0A\n"
    )
    sockets = parse_proc_net(text, "tcp")
    assert [(s.address, s.port) for s in sockets] == [("127.0.0.1", 32017)]
