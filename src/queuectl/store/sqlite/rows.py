"""SQLite rows to models and back: times are REAL seconds since the epoch (UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from queuectl.core.models import Job, JobState, NewJob, WorkerInfo
from queuectl.store.rows import job_from_row


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
    created = moment(now)
    return Job(
        id=job.id,
        command=job.command,
        state=JobState.PENDING,
        queue=job.queue,
        priority=job.priority,
        attempts=0,
        max_retries=job.max_retries,
        timeout=job.timeout,
        created_at=created,
        updated_at=created,
        scheduled_at=job.scheduled_at,
        run_at=job.scheduled_at or created,
        started_at=None,
        finished_at=None,
        exit_code=None,
        last_error=None,
        output="",
        locked_by=None,
        locked_at=None,
        cwd=job.cwd,
        env=job.env,
        retry_on_exit=job.retry_on_exit,
        fatal_on_exit=job.fatal_on_exit,
        dedupe_key=job.dedupe_key,
        depends_on=job.depends_on,
    )


def worker_of(row: Sequence[Any]) -> WorkerInfo:
    queues = tuple(row[7].split(",")) if row[7] else None
    return WorkerInfo(
        row[0], row[1], row[2], row[3], moment(row[4]), moment(row[5]), row[6], queues
    )
