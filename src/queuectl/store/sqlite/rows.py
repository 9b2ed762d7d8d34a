"""SQLite rows to models and back: times are REAL seconds since the epoch (UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from queuectl.core.models import Job, NewJob, WorkerInfo
from queuectl.store.rows import job_from_row, pending_job


def queue_filter(queues: Sequence[str] | None) -> tuple[str, list[str]]:
    if not queues:
        return "", []
    return f" AND queue IN ({','.join('?' * len(queues))})", list(queues)


def stamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def moment(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def job_of(row: Sequence[Any]) -> Job:
    return job_from_row(row, moment)


def new_job(job: NewJob, now: float) -> Job:
    return pending_job(job, moment(now))


def worker_of(row: Sequence[Any]) -> WorkerInfo:
    queues = tuple(row[7].split(",")) if row[7] else None
    return WorkerInfo(
        row[0], row[1], row[2], row[3], moment(row[4]), moment(row[5]), row[6], queues
    )
