"""FileWatch: sleep until a file is written to (Linux inotify, through ctypes).

An idle SQLite worker watches the store's write-ahead log, which every commit appends to,
instead of polling it every few milliseconds: it wakes at once for a new job and costs no
CPU in between. Where inotify is missing, open_file_watch() returns None and the caller
polls as before.
"""

from __future__ import annotations

import os
import select

IN_MODIFY = 0x00000002  # <sys/inotify.h>
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
READ_SIZE = 4096  # bytes of queued events drained per read


class FileWatch:
    """An inotify descriptor watching one file for writes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def wait(self, timeout: float) -> bool:
        """Block until the file is written to or `timeout` seconds pass; True if written.
        Events already queued count, so a write just before the call is not missed."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        self._drain()
        return True

    def _drain(self) -> None:
        try:
            while os.read(self.fd, READ_SIZE):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_file_watch(path: str) -> FileWatch | None:
    """A watch on `path` (which must exist), or None where inotify is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
        os.close(fd)
        return None
    return FileWatch(fd)
