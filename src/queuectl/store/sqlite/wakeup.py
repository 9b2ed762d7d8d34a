"""How an idle SQLite worker learns of new work: PRAGMA data_version, checked when the WAL
is written to (inotify) or polled, and the checkpoints it runs while idle."""

from __future__ import annotations

import os
import sqlite3
import time

from queuectl.store.filewatch import FileWatch, open_file_watch
from queuectl.store.sqlite.connection import BUSY_WAIT_SLICE, SqliteConnection

CHECKPOINT_INTERVAL = 10.0  # seconds between two checkpoints by an idle worker
WAL_TRUNCATE_SIZE = 4 * 1024 * 1024  # bytes; a larger WAL is truncated, not only checkpointed
CHANGE_CHECK_INTERVAL = 0.005  # seconds between data_version checks of an idle worker
WATCHED_CHECK_INTERVAL = 0.1  # seconds between them when the WAL's writes wake it too
SETTLE_TIME = 1.0  # seconds of quick checks after a write to the WAL (an fsync may be slow)
SETTLE_CHECK_INTERVAL = 0.002  # seconds between those quick checks, until a commit shows


class SqliteWakeup(SqliteConnection):
    """wait_for_jobs, for idle workers."""

    _data_version: int | None = None
    _checkpoint_at = 0.0  # monotonic time of the next idle checkpoint
    _watch: FileWatch | None = None
    _wal_watch_tried = False
    _settle_until = 0.0  # until then, a write to the WAL may be a commit on its way

    def close(self) -> None:
        super().close()
        if self._watch is not None:
            self._watch.close()

    def wait_for_jobs(self, timeout: float) -> bool:
        """Check `PRAGMA data_version`, which moves when another connection commits, each
        time the write-ahead log is written to (inotify); where that cannot be watched,
        poll it: a read of shared memory, so checking often keeps pickup fast."""
        deadline = time.monotonic() + timeout
        self._checkpoint_if_idle()
        watch = self._wal_watch()  # before the first check: no commit falls in between
        if self._data_version is None:
            self._data_version = self._current_data_version()
        while True:
            version = self._current_data_version()
            if version != self._data_version:
                self._data_version = version
                self._settle_until = 0.0  # the commit showed: back to sleeping on the watch
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if watch is None:
                time.sleep(min(CHANGE_CHECK_INTERVAL, left))
            elif time.monotonic() < self._settle_until:
                # The log was written to, but a commit shows only after its fsync, in the
                # -shm index, which sends no event: look again shortly until it does.
                time.sleep(min(SETTLE_CHECK_INTERVAL, left))
            elif watch.wait(min(WATCHED_CHECK_INTERVAL, left)):
                self._settle_until = time.monotonic() + SETTLE_TIME

    def _wal_watch(self) -> FileWatch | None:
        """A watch on the -wal file, opened on the first wait (only idle workers wait)."""
        if not self._wal_watch_tried:
            self._wal_watch_tried = True
            wal = f"{self.path}-wal"
            if os.path.exists(wal):
                self._watch = open_file_watch(wal)
        return self._watch

    def _current_data_version(self) -> int:
        return int(self._read("PRAGMA data_version")[0][0])

    def _checkpoint_if_idle(self) -> None:
        """Copy the WAL back into the database while this worker has nothing to do, at
        most every CHECKPOINT_INTERVAL seconds; a WAL grown past WAL_TRUNCATE_SIZE is also
        truncated. It never waits for a lock (busy timeout 0): housekeeping must not hold
        up claims, and another idle worker will try again."""
        now = time.monotonic()
        if now < self._checkpoint_at:
            return
        self._checkpoint_at = now + CHECKPOINT_INTERVAL
        try:
            size = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        if size == 0:
            return
        mode = "TRUNCATE" if size > WAL_TRUNCATE_SIZE else "PASSIVE"
        try:
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_WAIT_SLICE * 1000)}")
        except sqlite3.Error as exc:
            # Imported here: only an idle worker gets this far, and every SQLite command
            # would otherwise pay for logging (and traceback, threading) at start-up.
            import logging

            logging.getLogger("queuectl.store").debug(
                "checkpoint of %s skipped: %s", self.path, exc
            )
