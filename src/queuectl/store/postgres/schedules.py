"""Schedules on PostgreSQL: the schedules table, and the firing of a due one with its jobs
in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from psycopg import errors as pg_errors

from queuectl.core.errors import DuplicateSchedule, StoreUnavailable
from queuectl.core.models import NewJob
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, PostgresConnection
from queuectl.store.postgres.rows import utc
from queuectl.store.sql import SCHEDULE_COLUMNS, schedule_marks

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule


# A new schedule: the schedules primary key refuses a name taken.
INSERT_SCHEDULE = f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({schedule_marks('%s')})"
# Schedules by name (one, or all): the schedules primary key.
LIST_SCHEDULES = (
    f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
    " WHERE %(name)s::text IS NULL OR name = %(name)s ORDER BY name"
)
# Remove a schedule: the schedules primary key.
DELETE_SCHEDULE = "DELETE FROM schedules WHERE name = %s"
# Pause or resume a schedule: the schedules primary key.
PAUSE_SCHEDULE = "UPDATE schedules SET paused = %s, next_fire_at = %s WHERE name = %s"
# Unpaused schedules due by the server's now: schedules_due.
DUE_SCHEDULES = (
    f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= now()"
    " ORDER BY next_fire_at"
)
# Move a schedule to its next firing, guarded by the firing read: the schedules primary key.
MOVE_SCHEDULE_ON = (
    "UPDATE schedules SET next_fire_at = %s,"
    " last_fired_at = coalesce(%s, last_fired_at)"
    " WHERE name = %s AND NOT paused AND next_fire_at = %s"
)
# A job of a firing, unless its id (schedule and time) exists: jobs.id (unique).
INSERT_FIRED_JOB = (
    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
    " created_at, updated_at, scheduled_at, run_at, cwd, env)"
    " VALUES (%s, %s, 'pending', %s, %s, %s, %s, now(), now(), %s,"
    " coalesce(%s, now()), %s, %s) ON CONFLICT (id) DO NOTHING"
)


class PostgresSchedules(PostgresConnection):
    """Recurring jobs. The shared row readers are imported on use: off the enqueue path."""

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store.schedule_rows import schedule_values  # on use: off the enqueue path

        try:
            self._execute(INSERT_SCHEDULE, schedule_values(schedule, _same))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise DuplicateSchedule(f"schedule {schedule.name!r} already exists") from None
            raise

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        from queuectl.store.schedule_rows import schedule_from_row  # on use: off the enqueue path

        rows = self._read(
            LIST_SCHEDULES,
            {"name": name},
        )
        return [schedule_from_row(row, utc) for row in rows]

    def delete_schedule(self, name: str) -> bool:
        return self._execute(DELETE_SCHEDULE, (name,)).rowcount == 1

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        cursor = self._execute(PAUSE_SCHEDULE, (paused, next_fire_at, name))
        return cursor.rowcount == 1

    def list_due_schedules(self) -> list[Schedule]:
        from queuectl.store.schedule_rows import schedule_from_row  # on use: off the enqueue path

        rows = self._read(DUE_SCHEDULES)
        return [schedule_from_row(row, utc) for row in rows]

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:

        last_fired = max((job.scheduled_at for job in jobs if job.scheduled_at), default=None)
        with self._transaction() as cursor:
            # Under READ COMMITTED a racing worker's UPDATE waits for this one's row lock, then
            # re-reads next_fire_at, finds it moved on, and updates nothing.
            cursor.execute(
                MOVE_SCHEDULE_ON, (next_fire_at, last_fired, schedule.name, schedule.next_fire_at)
            )
            if cursor.rowcount != 1:
                return False
            for job in jobs:
                cursor.execute(
                    INSERT_FIRED_JOB,
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
                cursor.execute(NOTIFY, (CHANNEL,))
        return True


def _same(value: datetime) -> datetime:
    return value
