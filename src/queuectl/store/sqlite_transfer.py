"""SQLite side of schedules and of moving jobs between stores (export, import, migrate)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from queuectl.core.errors import DuplicateJobId, DuplicateSchedule
from queuectl.core.models import Job, JobState, NewJob
from queuectl.core.schedule import Schedule
from queuectl.store.base import JobRecord, QueueSetting, StoreContents, StoredAttempt
from queuectl.store.rows import ATTEMPT_COLUMNS, attempt_from_row
from queuectl.store.schedule_rows import (
    EXPORT_BATCH,
    SCHEDULE_COLUMNS,
    row_values,
    schedule_from_row,
    schedule_values,
)

if TYPE_CHECKING:
    from datetime import datetime

    from queuectl.store.sqlite import SqliteStore

SCHEDULE_MARKS = ", ".join("?" * len(SCHEDULE_COLUMNS.split(",")))


def _ts(value: datetime) -> float:
    return value.timestamp()


def insert_schedule(store: SqliteStore, schedule: Schedule) -> None:
    try:
        with store._write() as conn:
            conn.execute(
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({SCHEDULE_MARKS})",
                schedule_values(schedule, _ts),
            )
    except sqlite3.IntegrityError:
        raise DuplicateSchedule(f"schedule {schedule.name!r} already exists") from None


def list_schedules(store: SqliteStore, name: str | None) -> list[Schedule]:
    from queuectl.store.sqlite import _dt

    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    rows = store._read(f"SELECT {SCHEDULE_COLUMNS} FROM schedules {where} ORDER BY name", params)
    return [schedule_from_row(row, _dt) for row in rows]


def delete_schedule(store: SqliteStore, name: str) -> bool:
    with store._write() as conn:
        return conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 1


def set_schedule_paused(
    store: SqliteStore, name: str, paused: bool, next_fire_at: datetime | None
) -> bool:
    with store._write() as conn:
        cursor = conn.execute(
            "UPDATE schedules SET paused = ?, next_fire_at = ? WHERE name = ?",
            (paused, _ts(next_fire_at) if next_fire_at else None, name),
        )
        return cursor.rowcount == 1


def list_due_schedules(store: SqliteStore) -> list[Schedule]:
    from queuectl.store.sqlite import _dt

    rows = store._read(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= ?"
        " ORDER BY next_fire_at",
        (store._now(),),
    )
    return [schedule_from_row(row, _dt) for row in rows]


def fire_schedule(
    store: SqliteStore, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
) -> bool:
    assert schedule.next_fire_at is not None
    last_fired = max((job.scheduled_at for job in jobs if job.scheduled_at), default=None)
    now = store._now()
    with store._write() as conn:
        moved = conn.execute(
            "UPDATE schedules SET next_fire_at = ?, last_fired_at = coalesce(?, last_fired_at)"
            " WHERE name = ? AND NOT paused AND abs(next_fire_at - ?) < 1e-6",
            (
                _ts(next_fire_at),
                _ts(last_fired) if last_fired else None,
                schedule.name,
                _ts(schedule.next_fire_at),
            ),
        ).rowcount
        if moved != 1:
            return False
        conn.executemany(
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, scheduled_at, run_at, cwd, env)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                (
                    job.id,
                    job.command,
                    job.queue,
                    job.priority,
                    job.max_retries,
                    job.timeout,
                    now,
                    now,
                    _ts(job.scheduled_at) if job.scheduled_at else None,
                    _ts(job.scheduled_at) if job.scheduled_at else now,
                    job.cwd,
                    json.dumps(job.env) if job.env is not None else None,
                )
                for job in jobs
            ],
        )
    return True


def iter_job_records(store: SqliteStore, states: Sequence[JobState]) -> Iterator[JobRecord]:
    from queuectl.store.sqlite import JOB_COLUMNS, _dt, _job

    state_clause = f" AND state IN ({','.join('?' * len(states))})" if states else ""
    after = 0
    while True:
        rows = store._read(
            f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > ?{state_clause}"
            f" ORDER BY seq LIMIT {EXPORT_BATCH}",
            [after, *[state.value for state in states]],
        )
        if not rows:
            return
        after = rows[-1][0]
        jobs = [_job(row[1:]) for row in rows]
        history: dict[str, list[StoredAttempt]] = {job.id: [] for job in jobs}
        marks = ",".join("?" * len(jobs))
        for row in store._read(
            f"SELECT {ATTEMPT_COLUMNS}, output"
            f" FROM attempts WHERE job_id IN ({marks}) ORDER BY seq",
            [job.id for job in jobs],
        ):
            history[row[0]].append(StoredAttempt(attempt_from_row(row[:9], _dt), row[9]))
        for job in jobs:
            yield JobRecord(job, tuple(history[job.id]))


def list_queue_settings(store: SqliteStore) -> list[QueueSetting]:
    rows = store._read("SELECT name, paused, max_running FROM queues ORDER BY name")
    return [QueueSetting(name, bool(paused), limit) for name, paused, limit in rows]


def count_attempts(store: SqliteStore) -> int:
    return int(store._read("SELECT count(*) FROM attempts")[0][0])


def insert_contents(
    store: SqliteStore, contents: StoreContents, *, skip_existing: bool
) -> tuple[int, int]:
    job_columns = _columns(store, "jobs")
    attempt_columns = _columns(store, "attempts")
    written_ids: list[str] = []
    schedules_written = 0
    with store._write() as conn:
        for record in contents.jobs:
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (record.job.id,)).fetchone():
                if skip_existing:
                    continue
                raise DuplicateJobId(f"job id {record.job.id!r} already exists")
            _insert_row(conn, "jobs", row_values(record.job, job_columns, _ts))
            for stored in record.history:
                values = row_values(stored.attempt, attempt_columns, _ts)
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
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({SCHEDULE_MARKS})",
                schedule_values(schedule, _ts),
            )
            schedules_written += 1
    return len(written_ids), schedules_written


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


def _columns(store: SqliteStore, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in store._read(f"PRAGMA table_info({table})"))


def _insert_row(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
