"""Moving a SQLite store's contents out and in (export, import, `store migrate`): every job
with its history, its dependencies rebuilt on the way in, config, queues and schedules.
The order of the writes is store/contents.py's; the statements are here."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from queuectl.core.models import Job, JobState
from queuectl.store.contents import (
    job_records,
    queue_setting_from_row,
    queue_setting_values,
    write_contents,
)
from queuectl.store.records import JobRecord, QueueSetting, StoreContents
from queuectl.store.sql import ATTEMPT_COLUMNS, JOB_COLUMNS
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.dependencies import RECOUNT_WAITING, marks
from queuectl.store.sqlite.queues import SET_CONFIG
from queuectl.store.sqlite.rows import job_of, moment, stamp
from queuectl.store.sqlite.schedules import INSERT_SCHEDULE

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule

# A batch of jobs in enqueue order after a seq ({states} filled in): the jobs primary key.
JOBS_AFTER = f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > ?{{states}} ORDER BY seq LIMIT ?"
# The histories of a batch of jobs (? marks appended): attempts_job.
HISTORIES = f"SELECT {ATTEMPT_COLUMNS}, output FROM attempts WHERE job_id IN "
# Every queue's settings, by name: the queues primary key.
QUEUE_SETTINGS = (
    "SELECT name, paused, max_running, rate_count, rate_period, webhook_url FROM queues"
    " ORDER BY name"
)
# How many attempts the store holds: a count over attempts (a check after a copy).
COUNT_ATTEMPTS = "SELECT count(*) FROM attempts"
# Whether a job id is taken: jobs.id (unique).
HAS_JOB = "SELECT 1 FROM jobs WHERE id = ?"
# The edges of an imported job: the primary key of job_dependencies.
INSERT_EDGE = (
    "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
# A queue's settings as they were: the queues primary key.
SET_QUEUE = (
    "INSERT INTO queues (name, paused, max_running, rate_count, rate_period, webhook_url)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
    " max_running = excluded.max_running, rate_count = excluded.rate_count,"
    " rate_period = excluded.rate_period, webhook_url = excluded.webhook_url"
)
# Whether a schedule name is taken: the schedules primary key.
HAS_SCHEDULE = "SELECT 1 FROM schedules WHERE name = ?"
CHUNK = 500  # ids per IN (...) list


class SqliteTransfer(SqliteConnection):
    """Reading a whole store out and writing one in."""

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store.schedule_rows import EXPORT_BATCH  # on use: off the enqueue path

        in_states = f" AND state IN {marks(len(states))}" if states else ""
        after = 0
        while True:
            rows = self._read(
                JOBS_AFTER.format(states=in_states),
                [after, *[state.value for state in states], EXPORT_BATCH],
            )
            if not rows:
                return
            after = rows[-1][0]
            jobs = [job_of(row[1:]) for row in rows]
            history = self._read(
                HISTORIES + marks(len(jobs)) + " ORDER BY seq", [j.id for j in jobs]
            )
            yield from job_records(jobs, history, moment)

    def list_queue_settings(self) -> list[QueueSetting]:
        rows = self._read(QUEUE_SETTINGS)
        return [queue_setting_from_row(row) for row in rows]

    def count_attempts(self) -> int:
        return int(self._read(COUNT_ATTEMPTS)[0][0])

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        """Everything in one write transaction (store/contents.py decides the order)."""
        columns = {table: self._columns(table) for table in ("jobs", "attempts")}
        with self._write() as conn:
            writer = SqliteContentsWriter(conn, columns)
            return write_contents(writer, contents, skip_existing=skip_existing)

    def _columns(self, table: str) -> tuple[str, ...]:
        return tuple(row[1] for row in self._read(f"PRAGMA table_info({table})"))


class SqliteContentsWriter:
    """store/contents.py's ContentsWriter on a SQLite connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection, columns: dict[str, tuple[str, ...]]) -> None:
        self.conn = conn
        self.columns = columns  # of the jobs and attempts tables, as this store has them

    def has_job(self, job_id: str) -> bool:
        return self.conn.execute(HAS_JOB, (job_id,)).fetchone() is not None

    def insert_job(self, record: JobRecord) -> None:
        from queuectl.store.schedule_rows import row_values

        self._insert_row("jobs", row_values(record.job, self.columns["jobs"], stamp))
        for stored in record.history:
            values = row_values(stored.attempt, self.columns["attempts"], stamp)
            self._insert_row("attempts", {**values, "output": stored.output})

    def link_dependencies(self, jobs: Sequence[Job]) -> None:
        edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
        self.conn.executemany(INSERT_EDGE, edges)
        waiting = sorted({job.id for job in jobs if job.depends_on})
        for start in range(0, len(waiting), CHUNK):
            chunk = waiting[start : start + CHUNK]
            # Only jobs that can still run wait: a finished job's count stays 0.
            self.conn.execute(
                RECOUNT_WAITING + marks(len(chunk)) + " AND state IN ('pending', 'failed')",
                chunk,
            )

    def set_config(self, key: str, value: str) -> None:
        self.conn.execute(SET_CONFIG, (key, value))

    def set_queue(self, queue: QueueSetting) -> None:
        self.conn.execute(SET_QUEUE, queue_setting_values(queue))

    def has_schedule(self, name: str) -> bool:
        return self.conn.execute(HAS_SCHEDULE, (name,)).fetchone() is not None

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store.schedule_rows import schedule_values

        self.conn.execute(INSERT_SCHEDULE, schedule_values(schedule, stamp))

    def _insert_row(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(values)
        self.conn.execute(
            f"INSERT INTO {table} ({names}) VALUES {marks(len(values))}", tuple(values.values())
        )
