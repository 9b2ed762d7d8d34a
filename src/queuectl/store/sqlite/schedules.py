"""Schedules on SQLite: the schedules table, and the firing of a due one with its jobs in
one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from queuectl.core.errors import DuplicateSchedule
from queuectl.core.models import NewJob
from queuectl.store.sql import SCHEDULE_COLUMNS, schedule_marks
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.rows import moment, stamp

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule


# A new schedule: the schedules primary key refuses a name taken.
INSERT_SCHEDULE = f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({schedule_marks('?')})"
# Remove a schedule: the schedules primary key.
DELETE_SCHEDULE = "DELETE FROM schedules WHERE name = ?"
# Pause or resume a schedule: the schedules primary key.
PAUSE_SCHEDULE = "UPDATE schedules SET paused = ?, next_fire_at = ? WHERE name = ?"
# Unpaused schedules due by now: schedules_due.
DUE_SCHEDULES = (
    f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= ?"
    " ORDER BY next_fire_at"
)
# Move a schedule to its next firing, guarded by the firing read: the schedules primary key.
MOVE_SCHEDULE_ON = (
    "UPDATE schedules SET next_fire_at = ?, last_fired_at = coalesce(?, last_fired_at)"
    " WHERE name = ? AND NOT paused AND abs(next_fire_at - ?) < 1e-6"
)
# A job of a firing, unless its id (schedule and time) exists: jobs.id (unique).
INSERT_FIRED_JOB = (
    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
    " created_at, updated_at, scheduled_at, run_at, cwd, env)"
    " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)


class SqliteSchedules(SqliteConnection):
    """Recurring jobs. The shared row readers are imported on use: off the enqueue path."""

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store.schedule_rows import schedule_values  # on use: off the enqueue path

        try:
            with self._write() as conn:
                conn.execute(INSERT_SCHEDULE, schedule_values(schedule, stamp))
        except sqlite3.IntegrityError:
            raise DuplicateSchedule(f"schedule {schedule.name!r} already exists") from None

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        from queuectl.store.schedule_rows import schedule_from_row  # on use: off the enqueue path

        where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        rows = self._read(f"SELECT {SCHEDULE_COLUMNS} FROM schedules {where} ORDER BY name", params)
        return [schedule_from_row(row, moment) for row in rows]

    def delete_schedule(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(DELETE_SCHEDULE, (name,)).rowcount == 1

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                PAUSE_SCHEDULE, (paused, stamp(next_fire_at) if next_fire_at else None, name)
            )
            return cursor.rowcount == 1

    def list_due_schedules(self) -> list[Schedule]:
        from queuectl.store.schedule_rows import schedule_from_row  # on use: off the enqueue path

        rows = self._read(DUE_SCHEDULES, (self._now(),))
        return [schedule_from_row(row, moment) for row in rows]

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:
        assert schedule.next_fire_at is not None
        last_fired = max((job.scheduled_at for job in jobs if job.scheduled_at), default=None)
        now = self._now()
        with self._write() as conn:
            moved = conn.execute(
                MOVE_SCHEDULE_ON,
                (
                    stamp(next_fire_at),
                    stamp(last_fired) if last_fired else None,
                    schedule.name,
                    stamp(schedule.next_fire_at),
                ),
            ).rowcount
            if moved != 1:
                return False
            conn.executemany(
                INSERT_FIRED_JOB,
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
                        stamp(job.scheduled_at) if job.scheduled_at else None,
                        stamp(job.scheduled_at) if job.scheduled_at else now,
                        job.cwd,
                        json.dumps(job.env) if job.env is not None else None,
                    )
                    for job in jobs
                ],
            )
        return True
