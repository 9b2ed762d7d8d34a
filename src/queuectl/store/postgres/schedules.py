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
from queuectl.store.postgres.connection import CHANNEL, PostgresConnection
from queuectl.store.postgres.rows import utc

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule


class PostgresSchedules(PostgresConnection):
    """Recurring jobs. The shared row readers are imported on use: off the enqueue path."""

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            SCHEDULE_COLUMNS,
            schedule_marks,
            schedule_values,
        )

        try:
            self._execute(
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({schedule_marks('%s')})",
                schedule_values(schedule, _same),
            )
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise DuplicateSchedule(f"schedule {schedule.name!r} already exists") from None
            raise

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            SCHEDULE_COLUMNS,
            schedule_from_row,
        )

        rows = self._read(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
            " WHERE %(name)s::text IS NULL OR name = %(name)s ORDER BY name",
            {"name": name},
        )
        return [schedule_from_row(row, utc) for row in rows]

    def delete_schedule(self, name: str) -> bool:
        return self._execute("DELETE FROM schedules WHERE name = %s", (name,)).rowcount == 1

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        cursor = self._execute(
            "UPDATE schedules SET paused = %s, next_fire_at = %s WHERE name = %s",
            (paused, next_fire_at, name),
        )
        return cursor.rowcount == 1

    def list_due_schedules(self) -> list[Schedule]:
        from queuectl.store.schedule_rows import (  # on use: off the enqueue path
            SCHEDULE_COLUMNS,
            schedule_from_row,
        )

        rows = self._read(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= now()"
            " ORDER BY next_fire_at"
        )
        return [schedule_from_row(row, utc) for row in rows]

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:

        last_fired = max((job.scheduled_at for job in jobs if job.scheduled_at), default=None)
        with self._transaction() as cursor:
            # Under READ COMMITTED a racing worker's UPDATE waits for this one's row lock, then
            # re-reads next_fire_at, finds it moved on, and updates nothing.
            cursor.execute(
                "UPDATE schedules SET next_fire_at = %s,"
                " last_fired_at = coalesce(%s, last_fired_at)"
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


def _same(value: datetime) -> datetime:
    return value
