"""What `status` and `show` read from PostgreSQL, over psycopg2 (store/postgres_lean.py
says why): the statements PostgresStore sends (statements.py) and its row readers, so that
the commands print byte for byte what they print through PostgresStore.

These commands first rescue the runs of workers that went silent, which writes: when there
is such a run, or a job to show is not found, or anything else is unusual, open_reads() or
the read declines (None) and the full path does the whole command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from queuectl.core.ids import is_valid_job_id
from queuectl.core.settings import Settings
from queuectl.store import postgres_lean as lean
from queuectl.store.postgres.rows import job_of, utc, worker_of
from queuectl.store.postgres.statements import (
    ACTIVE_WORKERS,
    COUNT_BY_STATE,
    GET_JOB,
    JOB_EVENTS,
    LIST_ATTEMPTS,
    STALE_JOBS,
    qualify,
)
from queuectl.store.rows import attempt_from_row, hook_event_from_row, state_counts

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg2.extensions import connection

    from queuectl.core.models import Attempt, Job, JobState, WorkerInfo
    from queuectl.store.records import HookEvent


class PostgresReads:
    """One psycopg2 connection to a store at the current schema with no run to rescue."""

    def __init__(self, conn: connection, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(qualify(sql), params)
            return cursor.fetchall()

    def now(self) -> datetime:
        return utc(self._read("SELECT now()")[0][0])

    def status(self) -> tuple[dict[JobState, int], list[WorkerInfo], datetime] | None:
        """Counts per state, active workers and the server's time, as QueueService.status
        gives them; None on a driver error."""
        import psycopg2

        try:
            counts = state_counts(self._read(COUNT_BY_STATE.format(where="")))
            lease = float(self.settings.lease_timeout)
            workers = [worker_of(row) for row in self._read(ACTIVE_WORKERS, (lease,))]
            return counts, workers, self.now()
        except psycopg2.Error:
            return None

    def job(self, job_id: str) -> tuple[Job, list[Attempt], datetime, list[HookEvent]] | None:
        """A job with its history, the server's time and its hook deliveries; None when it
        is not found (the full path words that) or on a driver error."""
        import psycopg2

        if not is_valid_job_id(job_id):
            return None
        try:
            rows = self._read(GET_JOB, (job_id,))
            if not rows:
                return None
            history = [attempt_from_row(row, utc) for row in self._read(LIST_ATTEMPTS, (job_id,))]
            events = [hook_event_from_row(row, utc) for row in self._read(JOB_EVENTS, (job_id,))]
            return job_of(rows[0]), history, self.now(), events
        except psycopg2.Error:
            return None

    def __enter__(self) -> PostgresReads:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()


def open_reads(url: str) -> PostgresReads | None:
    """Reads of the store at `url` when the lean path applies: psycopg2 installed, the
    server answers, the schema is this release's and no silent worker's run waits to be
    rescued. Else None, having changed nothing."""
    conn = lean.connect(url)
    if conn is None:
        return None
    import psycopg2  # imported by connect()

    try:
        with conn.cursor() as cursor:
            stored = lean.current_config(cursor)
            if stored is not None:
                settings = Settings.from_stored(dict(stored))
                cursor.execute(qualify(STALE_JOBS), (float(settings.lease_timeout),))
                if not cursor.fetchall():
                    return PostgresReads(conn, settings)
    except psycopg2.Error:
        pass
    conn.close()
    return None
