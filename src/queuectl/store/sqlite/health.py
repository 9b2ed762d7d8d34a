"""What `queuectl doctor`, `top` and the dashboard read about a SQLite store itself."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from queuectl.core.models import WorkerInfo
from queuectl.store.records import ThroughputBucket
from queuectl.store.sql import WORKER_COLUMNS
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.rows import moment, worker_of

if TYPE_CHECKING:
    from queuectl.core.health import StoreFacts
from queuectl.store.sqlite.connection import SCHEMA_VERSION

# Workers not stopped whose heartbeat is old: the workers table is small.
STALE_WORKERS = (
    f"SELECT {WORKER_COLUMNS} FROM workers WHERE status != 'stopped'"
    " AND last_heartbeat < ? ORDER BY last_heartbeat, id"
)
# The schema version this file has.
SCHEMA_VERSION_NOW = "PRAGMA user_version"
# Finished attempts per minute since a moment: attempts_finished.
THROUGHPUT = (
    "SELECT CAST(finished_at / 60 AS INTEGER) AS minute, sum(error IS NULL),"
    " sum(error IS NOT NULL) FROM attempts WHERE finished_at >= ?"
    " GROUP BY minute ORDER BY minute"
)


class SqliteHealth(SqliteConnection):
    """Stale workers, throughput and the files of the store."""

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(STALE_WORKERS, (self._now() - lease_timeout,))
        return [worker_of(row) for row in rows]

    def inspect_storage(self) -> StoreFacts:
        """The schema version, the WAL's size and the modes of the store's files."""
        from queuectl.core.health import FileMode, StoreFacts

        (version,) = self._read(SCHEMA_VERSION_NOW)[0]
        files = []
        for path, is_dir in (
            (self.path.parent, True),
            (self.path, False),
            (Path(f"{self.path}-wal"), False),
            (Path(f"{self.path}-shm"), False),
        ):
            with suppress(FileNotFoundError):
                files.append(FileMode(str(path), path.stat().st_mode, is_dir))
        try:
            wal_bytes = Path(f"{self.path}-wal").stat().st_size
        except FileNotFoundError:
            wal_bytes = 0
        return StoreFacts(
            backend="sqlite",
            location=str(self.path),
            schema_version=int(version),
            current_schema_version=SCHEMA_VERSION,
            wal_bytes=wal_bytes,
            files=tuple(files),
        )

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        rows = self._read(THROUGHPUT, (self._now() - since,))
        return [ThroughputBucket(moment(minute * 60.0), ok, failed) for minute, ok, failed in rows]
