"""Where Plex keeps its data: native packages, the snap, and Docker images (linuxserver, plexinc).

``init`` uses this to fill the log path. For a Plex container seen from the host, the Docker
engine tells where the container's ``/config`` lives on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import aiodocker

IN_LIBRARY = Path("Library/Application Support/Plex Media Server")
NATIVE = Path("/var/lib/plexmediaserver") / IN_LIBRARY
SNAP = Path("/var/snap/plexmediaserver/common") / IN_LIBRARY
CONTAINER = Path("/config") / IN_LIBRARY  # inside linuxserver/plex and plexinc/pms-docker alike
PLEX_IMAGES = ("linuxserver/plex", "lscr.io/linuxserver/plex", "ghcr.io/linuxserver/plex", "plexinc/pms-docker")
TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class PlexLayout:
    """One place Plex's data folder was found."""

    kind: str  # native | snap | container | docker:<image>
    plex_dir: Path

    @property
    def log_path(self) -> Path:
        """The live log."""
        return self.plex_dir / "Logs" / "Plex Media Server.log"


def local_layouts(root: Path = Path("/")) -> list[PlexLayout]:
    """Data folders that exist on this filesystem (``root`` lets tests use a fake tree)."""
    found = []
    for kind, path in (("native", NATIVE), ("snap", SNAP), ("container", CONTAINER)):
        full = root / path.relative_to("/")
        if (full / "Preferences.xml").is_file() or (full / "Logs").is_dir():
            found.append(PlexLayout(kind, full))
    return found


def _repository(image: str) -> str:
    """``lscr.io/linuxserver/plex:latest`` → ``lscr.io/linuxserver/plex`` (a registry port survives)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


async def docker_layouts(socket: str) -> list[PlexLayout]:
    """Plex containers of a Docker engine and the host folder behind their ``/config``."""
    if not await asyncio.to_thread(Path(socket).exists):
        return []
    found: list[PlexLayout] = []
    with contextlib.suppress(aiodocker.DockerError, OSError, TimeoutError, ValueError):
        async with asyncio.timeout(TIMEOUT):
            docker = aiodocker.Docker(url=f"unix://{socket}")
            try:
                for container in await docker.containers.list(all=True):
                    info = await container.show()
                    image = str((info.get("Config") or {}).get("Image", ""))
                    if not _repository(image).endswith(PLEX_IMAGES):
                        continue
                    for mount in info.get("Mounts") or []:
                        if mount.get("Destination") == "/config" and mount.get("Source"):
                            found.append(PlexLayout(f"docker:{image}", Path(mount["Source"]) / IN_LIBRARY))
            finally:
                await docker.close()
    return found


def detect(root: Path = Path("/"), docker_socket: str = "/var/run/docker.sock") -> list[PlexLayout]:
    """Every layout found, native first; empty when none is."""
    return local_layouts(root) + asyncio.run(docker_layouts(docker_socket))
