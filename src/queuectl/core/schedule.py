"""Recurring jobs: the Schedule noun, its validation and the jobs its firings enqueue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from queuectl.core.clock import format_timestamp
from queuectl.core.errors import UsageError
from queuectl.core.models import NewJob

VALID_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A command enqueued as a job at every time its cron expression names."""

    name: str
    cron: str
    timezone: str  # an IANA zone name; the cron expression reads local time there
    command: str
    queue: str = "default"
    priority: int = 0
    max_retries: int = 3
    timeout: float = 300.0  # seconds
    cwd: str | None = None
    env: dict[str, str] | None = None
    catch_up: bool = False  # after downtime, run the most recent missed firing
    paused: bool = False
    created_at: datetime | None = None
    next_fire_at: datetime | None = None  # the firing the workers wait for; None while paused
    last_fired_at: datetime | None = None  # fire time of the latest job enqueued

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "command": self.command,
            "queue": self.queue,
            "priority": self.priority,
            "max_retries": self.max_retries,
            "timeout": int(self.timeout) if float(self.timeout).is_integer() else self.timeout,
            "cwd": self.cwd,
            "env": self.env,
            "catch_up": self.catch_up,
            "paused": self.paused,
            "created_at": _time(self.created_at),
            "next_fire_at": _time(self.next_fire_at),
            "last_fired_at": _time(self.last_fired_at),
        }


def check_schedule_name(name: str) -> str:
    if not VALID_SCHEDULE_NAME.fullmatch(name):
        raise UsageError(
            f"invalid schedule name {name!r}: use 1-100 letters, digits, '-', '_' or '.'"
        )
    return name


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Paris"
        ) from None
    return name


def firing_job_id(name: str, fire_time: datetime) -> str:
    """The job id of one firing: the same on every worker and host, so the store keeps
    the first insert and ignores the others."""
    return f"{name}@{fire_time.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def firing_job(schedule: Schedule, fire_time: datetime) -> NewJob:
    return NewJob(
        id=firing_job_id(schedule.name, fire_time),
        command=schedule.command,
        queue=schedule.queue,
        priority=schedule.priority,
        max_retries=schedule.max_retries,
        timeout=schedule.timeout,
        scheduled_at=fire_time,
        cwd=schedule.cwd,
        env=schedule.env,
    )


def _time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None
