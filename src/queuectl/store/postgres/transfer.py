"""Moving a PostgreSQL store's contents out and in (export, import, `store migrate`): every
job with its history, its dependencies rebuilt on the way in, config, queues, schedules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from queuectl.core.errors import DuplicateJobId, DuplicateSchedule
from queuectl.core.models import Job, JobState
from queuectl.store.postgres.connection import CHANNEL, Cursor, PostgresConnection
from queuectl.store.postgres.rows import job_of, utc, without_nul
from queuectl.store.records import JobRecord, QueueSetting, StoreContents, StoredAttempt
from queuectl.store.rows import attempt_from_row
from queuectl.store.sql import ATTEMPT_COLUMNS, JOB_COLUMNS


class PostgresTransfer(PostgresConnection):
    """Reading a whole store out and writing one in."""

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            EXPORT_BATCH,
        )

        after = 0
        wanted = [state.value for state in states] or None
        while True:
            rows = self._read(
                f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > %(after)s"
                " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
                " ORDER BY seq LIMIT %(batch)s",
                {"after": after, "states": wanted, "batch": EXPORT_BATCH},
            )
            if not rows:
                return
            after = rows[-1][0]
            jobs = [job_of(row[1:]) for row in rows]
            history: dict[str, list[StoredAttempt]] = {job.id: [] for job in jobs}
            for row in self._read(
                f"SELECT {ATTEMPT_COLUMNS}, output FROM attempts WHERE job_id = ANY(%s)"
                " ORDER BY seq",
                ([job.id for job in jobs],),
            ):
                history[row[0]].append(StoredAttempt(attempt_from_row(row[:9], utc), row[9]))
            for job in jobs:
                yield JobRecord(job, tuple(history[job.id]))

    def list_queue_settings(self) -> list[QueueSetting]:
        rows = self._read("SELECT name, paused, max_running FROM queues ORDER BY name")
        return [QueueSetting(name, bool(paused), limit) for name, paused, limit in rows]

    def count_attempts(self) -> int:
        return int(self._read("SELECT count(*) FROM attempts")[0][0])

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            SCHEDULE_COLUMNS,
            row_values,
            schedule_marks,
            schedule_values,
        )

        job_columns = self._columns("jobs")
        attempt_columns = self._columns("attempts")
        written_ids: list[str] = []
        schedules_written = 0
        with self._transaction() as cursor:
            for record in contents.jobs:
                cursor.execute("SELECT 1 FROM jobs WHERE id = %s", (record.job.id,))
                if cursor.fetchone():
                    if skip_existing:
                        continue
                    raise DuplicateJobId(f"job id {record.job.id!r} already exists")
                values = row_values(record.job, job_columns, _same)
                if "output" in values:
                    values["output"] = without_nul(values["output"])
                _insert_row(cursor, "jobs", values)
                for stored in record.history:
                    attempt = row_values(stored.attempt, attempt_columns, _same)
                    _insert_row(
                        cursor, "attempts", {**attempt, "output": without_nul(stored.output)}
                    )
                written_ids.append(record.job.id)
            chosen = set(written_ids)
            _link_dependencies(cursor, [r.job for r in contents.jobs if r.job.id in chosen])
            for key, value in (contents.config or {}).items():
                cursor.execute(
                    "INSERT INTO config (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            for queue in contents.queues:
                cursor.execute(
                    "INSERT INTO queues (name, paused, max_running) VALUES (%s, %s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                    " max_running = excluded.max_running",
                    (queue.name, queue.paused, queue.max_running),
                )
            for schedule in contents.schedules:
                cursor.execute("SELECT 1 FROM schedules WHERE name = %s", (schedule.name,))
                if cursor.fetchone():
                    if skip_existing:
                        continue
                    raise DuplicateSchedule(f"schedule {schedule.name!r} already exists")
                cursor.execute(
                    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({schedule_marks('%s')})",
                    schedule_values(schedule, _same),
                )
                schedules_written += 1
            cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return len(written_ids), schedules_written

    def _columns(self, table: str) -> tuple[str, ...]:
        rows = self._read(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return tuple(row[0] for row in rows)


def _link_dependencies(cursor: Cursor, jobs: Sequence[Job]) -> None:
    """The dependency edges of imported jobs, from their depends_on; how many of each one's
    dependencies are still to complete (one not in this store counts as done); and the
    dependencies' has_dependents mark, which their finish reads."""
    edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
    if not edges:
        return
    cursor.execute(
        "INSERT INTO job_dependencies (job_id, depends_on_id)"
        " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
        ([edge[0] for edge in edges], [edge[1] for edge in edges]),
    )
    cursor.execute(
        "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
        " JOIN jobs AS dep ON dep.id = d.depends_on_id"
        " WHERE d.job_id = jobs.id AND dep.state <> 'completed')"
        " WHERE state IN ('pending', 'failed') AND id = ANY(%s)",
        (sorted({edge[0] for edge in edges}),),
    )
    cursor.execute(
        "UPDATE jobs SET has_dependents = true WHERE id = ANY(%s) AND NOT has_dependents",
        (sorted({edge[1] for edge in edges}),),
    )


def _insert_row(cursor: Cursor, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))


def _same(value: datetime) -> datetime:
    return value
