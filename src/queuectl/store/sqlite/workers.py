"""The workers table on SQLite: registration, heartbeats, stop requests."""

from __future__ import annotations

from collections.abc import Sequence

from queuectl.core.models import WorkerInfo
from queuectl.store.sql import WORKER_COLUMNS
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.rows import worker_of

# Forget workers that stopped more than a day ago: the workers table stays small.
FORGET_STOPPED_WORKERS = "DELETE FROM workers WHERE status = 'stopped' AND last_heartbeat < ?"
# A worker starts: the workers primary key.
REGISTER_WORKER = (
    "INSERT INTO workers (id, host, pid, queues, status, started_at, last_heartbeat)"
    " VALUES (?, ?, ?, ?, 'running', ?, ?)"
)
# A worker is alive; whether it was asked to stop: the workers primary key.
HEARTBEAT = (
    "UPDATE workers SET last_heartbeat = ?, status = ? WHERE id = ? RETURNING stop_requested"
)
# A worker stopped: the workers primary key.
DEREGISTER_WORKER = (
    "UPDATE workers SET status = 'stopped', current_job_id = NULL, last_heartbeat = ? WHERE id = ?"
)
# Workers not stopped whose heartbeat is recent: the workers table is small.
ACTIVE_WORKERS = (
    f"SELECT {WORKER_COLUMNS} FROM workers WHERE status != 'stopped'"
    " AND last_heartbeat >= ? ORDER BY started_at, id"
)
# One worker, active or not: the workers primary key.
GET_WORKER = f"SELECT {WORKER_COLUMNS} FROM workers WHERE id = ?"
# Ask workers to stop: the workers primary key.
REQUEST_STOP = "UPDATE workers SET stop_requested = 1 WHERE id = ?"
# Every worker record, live or not (`worker list`): the workers table is small.
ALL_WORKERS = f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY started_at, id"
# Forget a worker that is gone (stopped, or silent since the cutoff) and holds no
# processing job: the workers primary key, and the jobs locked_by index.
FORGET_WORKER = (
    "DELETE FROM workers WHERE id = ?"
    " AND (status = 'stopped' OR last_heartbeat < ?)"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.locked_by = workers.id"
    " AND jobs.state = 'processing') RETURNING id"
)


class SqliteWorkers(SqliteConnection):
    """Workers as the store knows them."""

    def register_worker(
        self, worker_id: str, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        now = self._now()
        with self._write() as conn:
            # Keep the table small: forget workers that stopped more than a day ago.
            conn.execute(FORGET_STOPPED_WORKERS, (now - 86400,))
            conn.execute(
                REGISTER_WORKER,
                (worker_id, host, pid, ",".join(queues) if queues else None, now, now),
            )

    def heartbeat(
        self, worker_id: str, current_job_id: str | None, status: str = "running"
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(HEARTBEAT, (self._now(), status, worker_id)).fetchone()
        return bool(row[0]) if row else True

    def deregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(DEREGISTER_WORKER, (self._now(), worker_id))

    def list_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(ACTIVE_WORKERS, (self._now() - lease_timeout,))
        return [worker_of(row) for row in rows]

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        rows = self._read(GET_WORKER, (worker_id,))
        return worker_of(rows[0]) if rows else None

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.executemany(
                REQUEST_STOP,
                [(worker_id,) for worker_id in worker_ids],
            )

    # -- worker records (`worker list`, `worker forget`) ------------------------------

    def list_worker_records(self) -> list[WorkerInfo]:
        return [worker_of(row) for row in self._read(ALL_WORKERS)]

    def delete_workers(self, worker_ids: Sequence[str], lease_timeout: float) -> list[str]:
        """Forget the records of workers that are gone and hold no processing job: a live
        worker or an unrescued run keeps its record."""
        cutoff = self._now() - lease_timeout
        deleted = []
        with self._write() as conn:
            for worker_id in worker_ids:
                row = conn.execute(FORGET_WORKER, (worker_id, cutoff)).fetchone()
                if row:
                    deleted.append(row[0])
        return deleted
