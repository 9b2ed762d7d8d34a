"""Moving a SQLite store's contents out and in (export, import, `store migrate`): every job
with its history, its dependencies rebuilt on the way in, config, queues and schedules."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from queuectl.core.errors import DuplicateJobId, DuplicateSchedule
from queuectl.core.models import Job, JobState
from queuectl.store.records import JobRecord, QueueSetting, StoreContents, StoredAttempt
from queuectl.store.rows import attempt_from_row
from queuectl.store.sql import ATTEMPT_COLUMNS, JOB_COLUMNS
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.rows import job_of, moment, stamp


class SqliteTransfer(SqliteConnection):
    """Reading a whole store out and writing one in."""

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            EXPORT_BATCH,
        )

        state_clause = f" AND state IN ({','.join('?' * len(states))})" if states else ""
        after = 0
        while True:
            rows = self._read(
                f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > ?{state_clause}"
                f" ORDER BY seq LIMIT {EXPORT_BATCH}",
                [after, *[state.value for state in states]],
            )
            if not rows:
                return
            after = rows[-1][0]
            jobs = [job_of(row[1:]) for row in rows]
            history: dict[str, list[StoredAttempt]] = {job.id: [] for job in jobs}
            marks = ",".join("?" * len(jobs))
            for row in self._read(
                f"SELECT {ATTEMPT_COLUMNS}, output"
                f" FROM attempts WHERE job_id IN ({marks}) ORDER BY seq",
                [job.id for job in jobs],
            ):
                history[row[0]].append(StoredAttempt(attempt_from_row(row[:9], moment), row[9]))
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
        with self._write() as conn:
            for record in contents.jobs:
                if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (record.job.id,)).fetchone():
                    if skip_existing:
                        continue
                    raise DuplicateJobId(f"job id {record.job.id!r} already exists")
                _insert_row(conn, "jobs", row_values(record.job, job_columns, stamp))
                for stored in record.history:
                    values = row_values(stored.attempt, attempt_columns, stamp)
                    _insert_row(conn, "attempts", {**values, "output": stored.output})
                written_ids.append(record.job.id)
            chosen = set(written_ids)
            _link_dependencies(conn, [r.job for r in contents.jobs if r.job.id in chosen])
            for key, value in (contents.config or {}).items():
                conn.execute(
                    "INSERT INTO config (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            for queue in contents.queues:
                conn.execute(
                    "INSERT INTO queues (name, paused, max_running) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                    " max_running = excluded.max_running",
                    (queue.name, queue.paused, queue.max_running),
                )
            for schedule in contents.schedules:
                exists = conn.execute("SELECT 1 FROM schedules WHERE name = ?", (schedule.name,))
                if exists.fetchone():
                    if skip_existing:
                        continue
                    raise DuplicateSchedule(f"schedule {schedule.name!r} already exists")
                conn.execute(
                    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({schedule_marks('?')})",
                    schedule_values(schedule, stamp),
                )
                schedules_written += 1
        return len(written_ids), schedules_written

    def _columns(self, table: str) -> tuple[str, ...]:
        return tuple(row[1] for row in self._read(f"PRAGMA table_info({table})"))


def _link_dependencies(conn: sqlite3.Connection, jobs: Sequence[Job]) -> None:
    """The dependency edges of imported jobs, from their depends_on, and how many of each
    one's dependencies are still to complete (one not in this store counts as done)."""
    edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
    if not edges:
        return
    conn.executemany(
        "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        edges,
    )
    waiting = sorted({job.id for job in jobs if job.depends_on})
    for start in range(0, len(waiting), 500):
        chunk = waiting[start : start + 500]
        conn.execute(
            "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
            " JOIN jobs AS dep ON dep.id = d.depends_on_id"
            " WHERE d.job_id = jobs.id AND dep.state != 'completed')"
            f" WHERE state IN ('pending', 'failed') AND id IN ({','.join('?' * len(chunk))})",
            chunk,
        )


def _insert_row(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
