"""Linux inotify on the log's folder, through libc: the follower is woken when Plex writes.

The folder is watched rather than the file, so rotation (a rename and a new file) and a
file that appears later are seen too. Polling stays underneath: where inotify is missing or
a file system never reports changes (some network mounts), the poll interval still finds
every line; inotify only makes the wait short.
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
# Every write is an IN_MODIFY: a close after it (IN_CLOSE_WRITE) would only wake the follower a
# second time for the same bytes.
WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
# Names come and go in the folder (rotation, a new file): these always wake the follower.
_NAMING = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
IN_IGNORED = 0x8000  # the watch is gone: the folder was deleted or its file system unmounted
READ_SIZE = 64 * 1024
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class FolderWatch:
    """A non-blocking inotify descriptor watching one folder; :meth:`drain` empties it.

    With *name*, writes to other files of the folder (Plex's scanner, tuner and crash-uploader
    logs share it) do not count as a change; renames, new and deleted files always do.
    """

    def __init__(self, folder: Path, name: str | None = None) -> None:
        self._name = os.fsencode(name) if name is not None else None
        libc = _libc()
        try:
            init1 = libc.inotify_init1
            add_watch = libc.inotify_add_watch
        except AttributeError as err:
            raise OSError("inotify is not available on this system") from err
        add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        fd = int(init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        if int(add_watch(fd, os.fsencode(folder), WATCH_MASK)) < 0:
            code = ctypes.get_errno()
            os.close(fd)
            raise OSError(code, f"inotify_add_watch {folder}: {os.strerror(code)}")
        self.fd = fd
        self.lost = False  # the folder went away: this watch will never report again

    def drain(self) -> bool:
        """Read every pending event; True if any concerns the watched file (or the folder's names)."""
        seen = False
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return seen
            if not data:
                return seen
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, name_len = _EVENT.unpack_from(data, offset)
                start = offset + _EVENT.size
                offset = start + name_len
                if mask & IN_IGNORED:
                    self.lost = seen = True
                elif not seen:
                    name = data[start:offset].rstrip(b"\0")
                    # No name: the folder itself, or a queue overflow (events were lost).
                    seen = bool(mask & _NAMING) or not name or self._name is None or name == self._name

    def close(self) -> None:
        """Release the descriptor (and with it the watch)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def watch_folder(folder: Path, name: str | None = None) -> tuple[FolderWatch | None, str]:
    """A watch on *folder* (for changes of its file *name*) and "", or None and why polling alone has to do."""
    try:
        return FolderWatch(folder, name), ""
    except OSError as err:
        return None, str(err)
