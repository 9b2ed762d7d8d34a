"""PostgreSQL side of schedules and of moving jobs between stores (export, import, migrate)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from queuectl.core.errors import DuplicateJobId, DuplicateSchedule, StoreUnavailable
from queuectl.core.models import JobState, NewJob
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
    from queuectl.store.postgres import Cursor, PostgresStore

SCHEDULE_MARKS = ", ".join(["%s"] * len(SCHEDULE_COLUMNS.split(",")))


def _same(value: datetime) -> datetime:
    return value


def insert_schedule(store: PostgresStore, schedule: Schedule) -> None:
    from psycopg import errors as pg_errors

    try:
        store._execute(
            f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({SCHEDULE_MARKS})",
            schedule_values(schedule, _same),
        )
    except StoreUnavailable as exc:
        if isinstance(exc.__cause__, pg_errors.UniqueViolation):
            raise DuplicateSchedule(f"schedule {schedule.name!r} already exists") from None
        raise


def list_schedules(store: PostgresStore, name: str | None) -> list[Schedule]:
    from queuectl.store.postgres import _utc

    rows = store._read(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
        " WHERE %(name)s::text IS NULL OR name = %(name)s ORDER BY name",
        {"name": name},
    )
    return [schedule_from_row(row, _utc) for row in rows]


def delete_schedule(store: PostgresStore, name: str) -> bool:
    return store._execute("DELETE FROM schedules WHERE name = %s", (name,)).rowcount == 1


def set_schedule_paused(
    store: PostgresStore, name: str, paused: bool, next_fire_at: datetime | None
) -> bool:
    cursor = store._execute(
        "UPDATE schedules SET paused = %s, next_fire_at = %s WHERE name = %s",
        (paused, next_fire_at, name),
    )
    return cursor.rowcount == 1


def list_due_schedules(store: PostgresStore) -> list[Schedule]:
    from queuectl.store.postgres import _utc

    rows = store._read(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= now()"
        " ORDER BY next_fire_at"
    )
    return [schedule_from_row(row, _utc) for row in rows]


def fire_schedule(
    store: PostgresStore, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
) -> bool:
    from queuectl.store.postgres_listen import CHANNEL

    last_fired = max((job.scheduled_at for job in jobs if job.scheduled_at), default=None)
    with store._transaction() as cursor:
        # Under READ COMMITTED a racing worker's UPDATE waits for this one's row lock, then
        # re-reads next_fire_at, finds it moved on, and updates nothing.
        cursor.execute(
            "UPDATE schedules SET next_fire_at = %s, last_fired_at = coalesce(%s, last_fired_at)"
            " WHERE name = %s AND NOT paused AND next_fire_at = %s",
            (next_fire_at, last_fired, schedule.name, schedule.next_fire_at),
        )
        if cursor.rowcount != 1:
            return False
        for job in jobs:
            cursor.execute(
                "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
                " created_at, updated_at, scheduled_at, run_at, cwd, env)"
                " VALUES (%s, %s, 'pending', %s, %s, %s, %s, now(), now(), %s,"
                " coalesce(%s, now()), %s, %s) ON CONFLICT (id) DO NOTHING",
                (
                    job.id,
                    job.command,
                    job.queue,
                    job.priority,
                    job.max_retries,
                    float(job.timeout),
                    job.scheduled_at,
                    job.scheduled_at,
                    job.cwd,
                    json.dumps(job.env) if job.env is not None else None,
                ),
            )
        if jobs:
            cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return True


def iter_job_records(store: PostgresStore, states: Sequence[JobState]) -> Iterator[JobRecord]:
    from queuectl.store.postgres import JOB_COLUMNS, _job, _utc

    after = 0
    wanted = [state.value for state in states] or None
    while True:
        rows = store._read(
            f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq > %(after)s"
            " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
            " ORDER BY seq LIMIT %(batch)s",
            {"after": after, "states": wanted, "batch": EXPORT_BATCH},
        )
        if not rows:
            return
        after = rows[-1][0]
        jobs = [_job(row[1:]) for row in rows]
        history: dict[str, list[StoredAttempt]] = {job.id: [] for job in jobs}
        for row in store._read(
            f"SELECT {ATTEMPT_COLUMNS}, output FROM attempts WHERE job_id = ANY(%s) ORDER BY seq",
            ([job.id for job in jobs],),
        ):
            history[row[0]].append(StoredAttempt(attempt_from_row(row[:9], _utc), row[9]))
        for job in jobs:
            yield JobRecord(job, tuple(history[job.id]))


def list_queue_settings(store: PostgresStore) -> list[QueueSetting]:
    rows = store._read("SELECT name, paused, max_running FROM queues ORDER BY name")
    return [QueueSetting(name, bool(paused), limit) for name, paused, limit in rows]


def count_attempts(store: PostgresStore) -> int:
    return int(store._read("SELECT count(*) FROM attempts")[0][0])


def insert_contents(
    store: PostgresStore, contents: StoreContents, *, skip_existing: bool
) -> tuple[int, int]:
    from queuectl.store.postgres import _without_nul
    from queuectl.store.postgres_listen import CHANNEL

    job_columns = _columns(store, "jobs")
    attempt_columns = _columns(store, "attempts")
    written = 0
    schedules_written = 0
    with store._transaction() as cursor:
        for record in contents.jobs:
            cursor.execute("SELECT 1 FROM jobs WHERE id = %s", (record.job.id,))
            if cursor.fetchone():
                if skip_existing:
                    continue
                raise DuplicateJobId(f"job id {record.job.id!r} already exists")
            values = row_values(record.job, job_columns, _same)
            if "output" in values:
                values["output"] = _without_nul(values["output"])
            _insert_row(cursor, "jobs", values)
            for stored in record.history:
                attempt = row_values(stored.attempt, attempt_columns, _same)
                _insert_row(cursor, "attempts", {**attempt, "output": _without_nul(stored.output)})
            written += 1
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
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({SCHEDULE_MARKS})",
                schedule_values(schedule, _same),
            )
            schedules_written += 1
        cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return written, schedules_written


def _columns(store: PostgresStore, table: str) -> tuple[str, ...]:
    rows = store._read(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return tuple(row[0] for row in rows)


def _insert_row(cursor: Cursor, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
