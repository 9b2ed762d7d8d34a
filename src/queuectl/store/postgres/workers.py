"""The workers table on PostgreSQL: registration, heartbeats, stop requests."""

from __future__ import annotations

from collections.abc import Sequence

from queuectl.core.models import WorkerInfo
from queuectl.store.postgres.connection import PostgresConnection
from queuectl.store.postgres.rows import worker_of
from queuectl.store.postgres.statements import ACTIVE_WORKERS
from queuectl.store.sql import WORKER_COLUMNS

# Forget workers that stopped more than a day ago: the workers table stays small.
FORGET_STOPPED_WORKERS = (
    "DELETE FROM workers WHERE status = 'stopped' AND last_heartbeat < now() - interval '1 day'"
)
# A worker starts: the workers primary key.
REGISTER_WORKER = (
    "INSERT INTO workers (id, host, pid, queues, status, started_at, last_heartbeat)"
    " VALUES (%s, %s, %s, %s, 'running', now(), now())"
)
# A worker is alive; whether it was asked to stop: the workers primary key.
HEARTBEAT = (
    "UPDATE workers SET last_heartbeat = now(), status = %s WHERE id = %s RETURNING stop_requested"
)
# A worker stopped: the workers primary key.
DEREGISTER_WORKER = (
    "UPDATE workers SET status = 'stopped', current_job_id = NULL,"
    " last_heartbeat = now() WHERE id = %s"
)
# One worker, active or not: the workers primary key.
GET_WORKER = f"SELECT {WORKER_COLUMNS} FROM workers WHERE id = %s"
# Ask workers to stop: the workers primary key.
REQUEST_STOP = "UPDATE workers SET stop_requested = true WHERE id = ANY(%s)"
# Every worker record, live or not (`worker list`): the workers table is small.
ALL_WORKERS = f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY started_at, id"
# Forget workers that are gone (stopped, or silent for the lease) and hold no processing
# job: the workers primary key, and the jobs locked_by index.
FORGET_WORKERS = (
    "DELETE FROM workers WHERE id = ANY(%s)"
    " AND (status = 'stopped' OR last_heartbeat < now() - %s * interval '1 second')"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.locked_by = workers.id"
    " AND jobs.state = 'processing') RETURNING id"
)


class PostgresWorkers(PostgresConnection):
    """Workers as the store knows them."""

    def register_worker(
        self, worker_id: str, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        with self._transaction() as cursor:
            # Keep the table small: forget workers that stopped more than a day ago.
            cursor.execute(FORGET_STOPPED_WORKERS)
            cursor.execute(
                REGISTER_WORKER, (worker_id, host, pid, list(queues) if queues else None)
            )

    def heartbeat(
        self, worker_id: str, current_job_id: str | None, status: str = "running"
    ) -> bool:
        # current_job_id is not written: claim and finish keep it exact, and a copy read
        # by the heartbeat thread could be stale by the time it lands.
        rows = self._read(HEARTBEAT, (status, worker_id))
        return bool(rows[0][0]) if rows else True

    def deregister_worker(self, worker_id: str) -> None:
        self._execute(DEREGISTER_WORKER, (worker_id,))

    def list_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(ACTIVE_WORKERS, (float(lease_timeout),))
        return [worker_of(row) for row in rows]

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        rows = self._read(GET_WORKER, (worker_id,))
        return worker_of(rows[0]) if rows else None

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        if worker_ids:
            self._execute(REQUEST_STOP, (list(worker_ids),))

    # -- worker records (`worker list`, `worker forget`) ------------------------------

    def list_worker_records(self) -> list[WorkerInfo]:
        return [worker_of(row) for row in self._read(ALL_WORKERS)]

    def delete_workers(self, worker_ids: Sequence[str], lease_timeout: float) -> list[str]:
        """Forget the records of workers that are gone and hold no processing job: a live
        worker or an unrescued run keeps its record."""
        if not worker_ids:
            return []
        rows = self._read(FORGET_WORKERS, (list(worker_ids), float(lease_timeout)))
        return sorted(row[0] for row in rows)
