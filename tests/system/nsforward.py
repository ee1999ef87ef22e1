"""A TCP forwarder from inside a network namespace to a port on the root namespace's loopback.

Standalone (no project imports). The listening socket is opened inside the namespace, the
process then returns to its own namespace, so every outgoing connection reaches the host's
127.0.0.1: a daemon confined to a lab namespace (a bouncer) can talk to a service the test
runs on loopback (CrowdSec's LAPI) without any link between the namespaces and the host.

    nsforward.py NETNS LISTEN_PORT TARGET_PORT READY_FILE
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def main(netns: str, port: int, target: int, ready: Path) -> None:
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    inside = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    os.setns(inside, os.CLONE_NEWNET)
    listener = socket.create_server(("127.0.0.1", port))
    os.setns(home, os.CLONE_NEWNET)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, sock=listener)
    ready.touch()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
