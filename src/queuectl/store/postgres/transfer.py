"""Moving a PostgreSQL store's contents out and in (export, import, `store migrate`): every
job with its history, its dependencies rebuilt on the way in, config, queues, schedules.
The order of the writes is store/contents.py's; the statements are here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from queuectl.core.models import Job, JobState
from queuectl.store.contents import (
    job_records,
    queue_setting_from_row,
    queue_setting_values,
    write_contents,
)
from queuectl.store.postgres.connection import (
    CHANNEL,
    NOTIFY,
    SCHEMA,
    Cursor,
    PostgresConnection,
)
from queuectl.store.postgres.dependencies import RECOUNT_WAITING
from queuectl.store.postgres.queues import SET_CONFIG
from queuectl.store.postgres.rows import job_of, utc, without_nul
from queuectl.store.postgres.schedules import INSERT_SCHEDULE
from queuectl.store.records import JobRecord, QueueSetting, StoreContents
from queuectl.store.sql import ATTEMPT_COLUMNS, JOB_COLUMNS

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule

# A batch of jobs (in some states, or all) in enqueue order after a seq: the jobs primary key.
JOBS_AFTER = (
    f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > %(after)s"
    " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
    " ORDER BY seq LIMIT %(batch)s"
)
# The histories of a batch of jobs: attempts_job.
HISTORIES = f"SELECT {ATTEMPT_COLUMNS}, output FROM attempts WHERE job_id = ANY(%s) ORDER BY seq"
# Every queue's settings, by name: the queues primary key.
QUEUE_SETTINGS = (
    "SELECT name, paused, max_running, rate_count, rate_period, webhook_url FROM queues"
    " ORDER BY name"
)
# How many attempts the store holds: a count over attempts (a check after a copy).
COUNT_ATTEMPTS = "SELECT count(*) FROM attempts"
# The columns a table has in this store's schema: the catalog.
TABLE_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
)
# Whether a job id is taken: jobs.id (unique).
HAS_JOB = "SELECT 1 FROM jobs WHERE id = %s"
# The edges of imported jobs: the primary key of job_dependencies.
INSERT_EDGES = (
    "INSERT INTO job_dependencies (job_id, depends_on_id)"
    " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING"
)
# Mark the jobs that imported jobs wait for, which their finish reads: jobs.id (unique).
MARK_DEPENDED_ON = "UPDATE jobs SET has_dependents = true WHERE id = ANY(%s) AND NOT has_dependents"
# A queue's settings as they were: the queues primary key.
SET_QUEUE = (
    "INSERT INTO queues (name, paused, max_running, rate_count, rate_period, webhook_url)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
    " max_running = excluded.max_running, rate_count = excluded.rate_count,"
    " rate_period = excluded.rate_period, webhook_url = excluded.webhook_url"
)
# Whether a schedule name is taken: the schedules primary key.
HAS_SCHEDULE = "SELECT 1 FROM schedules WHERE name = %s"


class PostgresTransfer(PostgresConnection):
    """Reading a whole store out and writing one in."""

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store.schedule_rows import EXPORT_BATCH  # on use: off the enqueue path

        after = 0
        wanted = [state.value for state in states] or None
        while True:
            rows = self._read(JOBS_AFTER, {"after": after, "states": wanted, "batch": EXPORT_BATCH})
            if not rows:
                return
            after = rows[-1][0]
            jobs = [job_of(row[1:]) for row in rows]
            history = self._read(HISTORIES, ([job.id for job in jobs],))
            yield from job_records(jobs, history, utc)

    def list_queue_settings(self) -> list[QueueSetting]:
        rows = self._read(QUEUE_SETTINGS)
        return [queue_setting_from_row(row) for row in rows]

    def count_attempts(self) -> int:
        return int(self._read(COUNT_ATTEMPTS)[0][0])

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        """Everything in one transaction (store/contents.py decides the order)."""
        columns = {table: self._columns(table) for table in ("jobs", "attempts")}
        with self._transaction() as cursor:
            writer = PostgresContentsWriter(cursor, columns)
            written = write_contents(writer, contents, skip_existing=skip_existing)
            cursor.execute(NOTIFY, (CHANNEL,))
        return written

    def _columns(self, table: str) -> tuple[str, ...]:
        return tuple(row[0] for row in self._read(TABLE_COLUMNS, (SCHEMA, table)))


class PostgresContentsWriter:
    """store/contents.py's ContentsWriter on a cursor inside a transaction."""

    def __init__(self, cursor: Cursor, columns: dict[str, tuple[str, ...]]) -> None:
        self.cursor = cursor
        self.columns = columns  # of the jobs and attempts tables, as this store has them

    def has_job(self, job_id: str) -> bool:
        self.cursor.execute(HAS_JOB, (job_id,))
        return self.cursor.fetchone() is not None

    def insert_job(self, record: JobRecord) -> None:
        from queuectl.store.schedule_rows import row_values

        values = row_values(record.job, self.columns["jobs"], _same)
        if "output" in values:
            values["output"] = without_nul(values["output"])
        self._insert_row("jobs", values)
        for stored in record.history:
            attempt = row_values(stored.attempt, self.columns["attempts"], _same)
            self._insert_row("attempts", {**attempt, "output": without_nul(stored.output)})

    def link_dependencies(self, jobs: Sequence[Job]) -> None:
        edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
        if not edges:
            return
        self.cursor.execute(
            INSERT_EDGES, ([edge[0] for edge in edges], [edge[1] for edge in edges])
        )
        # Only jobs that can still run wait: a finished job's count stays 0.
        self.cursor.execute(
            RECOUNT_WAITING + " AND state IN ('pending', 'failed')",
            (sorted({edge[0] for edge in edges}),),
        )
        self.cursor.execute(MARK_DEPENDED_ON, (sorted({edge[1] for edge in edges}),))

    def set_config(self, key: str, value: str) -> None:
        self.cursor.execute(SET_CONFIG, (key, value))

    def set_queue(self, queue: QueueSetting) -> None:
        self.cursor.execute(SET_QUEUE, queue_setting_values(queue))

    def has_schedule(self, name: str) -> bool:
        self.cursor.execute(HAS_SCHEDULE, (name,))
        return self.cursor.fetchone() is not None

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store.schedule_rows import schedule_values

        self.cursor.execute(INSERT_SCHEDULE, schedule_values(schedule, _same))

    def _insert_row(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(values)
        marks = ", ".join(["%s"] * len(values))
        self.cursor.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values())
        )


def _same(value: datetime) -> datetime:
    """Times go to PostgreSQL as they are (timestamptz)."""
    return value
