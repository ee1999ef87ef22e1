"""Follow a log file by name (``tail -F`` semantics) and hand out complete lines only.

The position is an (inode, offset) pair that the caller persists together with what it
derived from the lines, so a restart neither loses nor repeats a line. Rotation
(``X.log`` renamed to ``X.1.log``), copy-truncate and a missing file are survived; a
restart finds the file it stopped in among the rotated ones by its inode and reads every
newer one. With backfill, a first start reads the rotated files (oldest first) and the
live file from their beginnings. Blocking file I/O: call :meth:`LogFollower.read_lines`
from a worker thread.

Only regular files inside the log folder are opened: the helper may run as root and the
folder is writable by the plex account, which could put a FIFO there (an ``open`` that never
returns, the worker hung) or a symlink to ``/etc/shadow``. Files are opened relative to the
folder, non-blocking, without following a symlink (one naming a sibling in the same folder is
followed), and checked with ``fstat`` before the first read; what was refused is in
:attr:`LogFollower.refused`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_CHUNK = 1 << 20
DEFAULT_MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class Position:
    """Where the next unread complete line starts."""

    inode: int
    offset: int


MAX_ROTATED = 9  # Plex keeps .1 to .5; a few more tolerate other rotators


def rotated_name(path: Path, number: int = 1) -> Path:
    """Plex renames ``Plex Media Server.log`` to ``Plex Media Server.1.log`` (then .2, … .5)."""
    return path.with_name(f"{path.stem}.{number}{path.suffix}")


def rotated_files(path: Path) -> list[Path]:
    """The rotated siblings of *path* that exist, oldest (highest number) first."""
    found = [rotated_name(path, n) for n in range(MAX_ROTATED, 0, -1)]
    return [p for p in found if p.is_file()]


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class Refused(Exception):
    """A name in the log folder that is not a regular file of the folder."""


def open_in_folder(path: Path) -> BinaryIO:
    """Open *path*, a regular file directly inside its folder, without blocking or leaving the folder.

    Raises :class:`Refused` (why, for ``/status``) or :class:`OSError` (missing, unreadable).
    """
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        name = path.name
        try:
            fd = os.open(name, _OPEN_FLAGS, dir_fd=folder)
        except OSError as err:
            if not path.is_symlink():
                raise
            target = os.readlink(name, dir_fd=folder)
            if "/" in target or target in ("", ".", ".."):
                raise Refused(f"{path} is a symlink out of the log folder (to {target[:200]})") from err
            name = target
            try:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=folder)
            except OSError as again:
                if path.with_name(name).is_symlink():
                    raise Refused(f"{path} is a chain of symlinks") from again
                raise
    finally:
        os.close(folder)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise Refused(f"{path} is {kind}, not a regular file: not read")
    return os.fdopen(fd, "rb")


class LogFollower:
    """Reads new complete lines from a file that may rotate or be truncated."""

    def __init__(
        self,
        path: Path,
        position: Position | None,
        *,
        backfill: bool = False,
        chunk_size: int = DEFAULT_CHUNK,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.path = path
        self._chunk = chunk_size
        self._max_line = max_line
        self._file: BinaryIO | None = None
        self._inode = 0
        self._offset = 0  # start of the first byte not yet handed out as part of a line
        self._partial = b""
        self._skipping = False  # inside an over-long line whose rest is dropped
        self._resume = position
        self._backfill = backfill
        # Finished files still to be read before the live one (opened up front, so renames
        # while they wait do not matter); the live file is the last entry.
        self._backlog: list[tuple[BinaryIO, int]] = []
        self.oversized_lines = 0
        self.truncations = 0
        self.rotations = 0
        self.refused: str | None = None  # the last file not opened, and why (None: none since)
        # The last read_lines reached the end of the live file: nothing more until it grows.
        self.at_end = False

    @property
    def following(self) -> bool:
        """True while the file is open."""
        return self._file is not None

    @property
    def position(self) -> Position | None:
        """The position to persist after the lines handed out so far are recorded."""
        if self._file is None:
            return self._resume
        return Position(self._inode, self._offset)

    def close(self) -> None:
        """Release the file (and any waiting in the backlog)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for handle, _ in self._backlog:
            handle.close()
        self._backlog = []

    def _use(self, handle: BinaryIO, offset: int) -> None:
        if self._file is not None:
            self._file.close()
        self._file = handle
        self._inode = os.fstat(handle.fileno()).st_ino
        self._offset = offset
        self._partial = b""
        self._skipping = False
        handle.seek(offset)

    def _safe_open(self, path: Path) -> BinaryIO | None:
        """The open file, or None (missing, unreadable, or refused: then :attr:`refused` says why)."""
        try:
            handle = open_in_folder(path)
        except Refused as err:
            self.refused = str(err)
            return None
        except OSError:
            return None
        if path == self.path:
            self.refused = None
        return handle

    def _open(self, path: Path, offset: int) -> bool:
        handle = self._safe_open(path)
        if handle is None:
            return False
        self._use(handle, offset)
        return True

    def _start_backlog(self, files: list[tuple[Path, int]]) -> None:
        """Open every file now, read the first; the last one is the live file."""
        opened: list[tuple[BinaryIO, int]] = []
        for path, offset in files:
            handle = self._safe_open(path)
            if handle is not None:  # None: removed since it was listed, or refused
                opened.append((handle, offset))
        if opened:
            handle, offset = opened.pop(0)
            self._use(handle, offset)
        self._backlog = opened

    @property
    def _historic(self) -> bool:
        """True while reading a finished (rotated) file of the backlog."""
        return bool(self._backlog)

    def _first_open(self, max_bytes: int) -> list[str]:
        """Open the file for the first time, resuming a persisted position if it still exists."""
        try:
            st = self.path.stat()
        except OSError:
            # Whatever appears later is new: read it from its start.
            self._backfill = True
            return []
        resume, self._resume = self._resume, None
        if resume is not None and resume.inode == st.st_ino and resume.offset <= st.st_size:
            self._open(self.path, resume.offset)
            return []
        older = rotated_files(self.path)
        if resume is not None:
            # Rotated while we were away: finish the file we were in, then every newer one.
            for index, path in enumerate(older):
                try:
                    old_st = path.stat()
                except OSError:
                    continue
                if old_st.st_ino == resume.inode and resume.offset <= old_st.st_size:
                    files = [(path, resume.offset), *((p, 0) for p in older[index + 1 :]), (self.path, 0)]
                    self._start_backlog(files)
                    self.rotations += 1
                    return self._read_backlog(max_bytes)
            self._open(self.path, 0)  # the file we were in is gone: start the live one
            return []
        if self._backfill and older:
            self._start_backlog([*((p, 0) for p in older), (self.path, 0)])
            return self._read_backlog(max_bytes)
        self._open(self.path, 0 if self._backfill else st.st_size)
        return []

    def _read_backlog(self, max_bytes: int) -> list[str]:
        """Lines of the finished file being read; at its end, move to the next file."""
        out: list[str] = []
        if self._file is None:
            return out  # nothing of the backlog could be opened: start over on the next call
        if self._drain_into(out, max_bytes) or not self._backlog:
            return out  # more to read here, or no newer file opened: follow this one
        # A finished file ends where it ends: a last line without a newline is complete.
        if self._partial and not self._skipping:
            out.append(self._partial.decode("utf-8", "replace").rstrip("\r"))
            self._offset += len(self._partial)
        handle, offset = self._backlog.pop(0)
        self._use(handle, offset)
        return out

    def _read_chunk(self, out: list[str]) -> bool:
        assert self._file is not None
        data = self._file.read(self._chunk)
        if not data:
            return False
        buf = self._partial + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if self._skipping:
                self._skipping = False
            else:  # cut as plexlog.log_lines cuts: the log-write guard predicts lines by it
                out.append(buf[start:nl].decode("utf-8", "replace").rstrip("\r"))
            start = nl + 1
        rest = buf[start:]
        consumed = len(buf) - len(rest)
        self._offset += consumed
        if len(rest) > self._max_line or (self._skipping and rest):
            # Bounded memory: an absurd line is counted once and its bytes are dropped.
            if not self._skipping:
                self.oversized_lines += 1
            self._skipping = True
            self._offset += len(rest)
            rest = b""
        self._partial = rest
        return True

    def read_lines(self, max_bytes: int = 8 * DEFAULT_CHUNK) -> list[str]:
        """Return the complete lines appended since the last call (at most about *max_bytes*)."""
        self.at_end = False
        if self._file is None:
            return self._first_open(max_bytes)
        if self._historic:
            return self._read_backlog(max_bytes)
        out: list[str] = []
        try:
            st = self.path.stat()
        except OSError:
            st = None
        cur_size = os.fstat(self._file.fileno()).st_size
        if st is not None and st.st_ino == self._inode and st.st_size < self._offset + len(self._partial):
            # Copy-truncate: the same file started again from zero.
            self.truncations += 1
            self._open(self.path, 0)
            cur_size = 0
        more = self._drain_into(out, max_bytes)
        if st is not None and st.st_ino != self._inode and self._offset + len(self._partial) >= cur_size:
            # The name points at a new file and the old one is read out: switch over (unless
            # the new one is refused: then stay, and say so).
            handle = self._safe_open(self.path)
            if handle is not None:
                if self._partial and not self._skipping:
                    out.append(self._partial.decode("utf-8", "replace").rstrip("\r"))
                    self._offset += len(self._partial)
                self.rotations += 1
                self._use(handle, 0)
                more = self._drain_into(out, max_bytes)
        self.at_end = not more
        return out

    def _drain_into(self, out: list[str], max_bytes: int) -> bool:
        """Append complete lines to *out* until the end of the file or about *max_bytes* read.

        True when it stopped for the byte budget (the file may hold more).
        """
        read = 0
        while read < max_bytes:
            if not self._read_chunk(out):
                return False
            read += self._chunk
        return True
