"""Rows of the schedules table and generic job/attempt rows, shared by the backends: they
differ only in how a time is stored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from queuectl.core.models import Attempt, Job
from queuectl.core.schedule import Schedule
from queuectl.store.rows import TimeReader

TimeWriter = Callable[[datetime], Any]  # an aware datetime to the backend's stored time

EXPORT_BATCH = 500  # jobs read per query by export


def schedule_from_row(row: Sequence[Any], to_time: TimeReader) -> Schedule:
    """A Schedule from the columns of SCHEDULE_COLUMNS, in that order."""

    def maybe(value: Any) -> datetime | None:
        return to_time(value) if value is not None else None

    return Schedule(
        name=row[0],
        cron=row[1],
        timezone=row[2],
        command=row[3],
        queue=row[4],
        priority=row[5],
        max_retries=row[6],
        timeout=row[7],
        cwd=row[8],
        env=json.loads(row[9]) if row[9] is not None else None,
        catch_up=bool(row[10]),
        paused=bool(row[11]),
        created_at=maybe(row[12]),
        next_fire_at=maybe(row[13]),
        last_fired_at=maybe(row[14]),
    )


def schedule_values(schedule: Schedule, to_stored: TimeWriter) -> tuple[Any, ...]:
    """Values for SCHEDULE_COLUMNS, in that order."""

    def maybe(value: datetime | None) -> Any:
        return to_stored(value) if value is not None else None

    return (
        schedule.name,
        schedule.cron,
        schedule.timezone,
        schedule.command,
        schedule.queue,
        schedule.priority,
        schedule.max_retries,
        float(schedule.timeout),
        schedule.cwd,
        json.dumps(schedule.env) if schedule.env is not None else None,
        schedule.catch_up,
        schedule.paused,
        maybe(schedule.created_at),
        maybe(schedule.next_fire_at),
        maybe(schedule.last_fired_at),
    )


def stored_value(value: Any, to_stored: TimeWriter) -> Any:
    """A model field's value as a column holds it: times per backend, enums by value,
    objects and lists as JSON text."""
    if isinstance(value, datetime):
        return to_stored(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    return value


def row_values(
    model: Job | Attempt, columns: Sequence[str], to_stored: TimeWriter
) -> dict[str, Any]:
    """Every field of a Job or Attempt that the table has a column for, by field name:
    generic, so fields added to the models are copied without changes here."""
    return {
        field.name: stored_value(getattr(model, field.name), to_stored)
        for field in dataclasses.fields(model)
        if field.name in columns
    }
