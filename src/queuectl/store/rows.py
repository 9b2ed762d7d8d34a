"""Rows to models, shared by the backends: they differ only in how a time is stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from queuectl.core.models import Attempt, Job, JobState
from queuectl.store.base import QueueInfo

TimeReader = Callable[[Any], datetime]  # a stored time (epoch float, timestamptz) to UTC


def job_from_row(row: Sequence[Any], to_time: TimeReader) -> Job:
    """A Job from the columns of JOB_COLUMNS, in that order."""

    def maybe(value: Any) -> datetime | None:
        return to_time(value) if value is not None else None

    return Job(
        id=row[0],
        command=row[1],
        state=JobState(row[2]),
        queue=row[3],
        priority=row[4],
        attempts=row[5],
        max_retries=row[6],
        timeout=row[7],
        created_at=to_time(row[8]),
        updated_at=to_time(row[9]),
        scheduled_at=maybe(row[10]),
        run_at=to_time(row[11]),
        started_at=maybe(row[12]),
        finished_at=maybe(row[13]),
        exit_code=row[14],
        last_error=row[15],
        output=row[16],
        locked_by=row[17],
        locked_at=maybe(row[18]),
        cwd=row[19],
        env=json.loads(row[20]) if row[20] is not None else None,
        depends_on=tuple(json.loads(row[21])) if row[21] is not None else (),
    )


def queue_infos(
    count_rows: Iterable[Sequence[Any]], setting_rows: Iterable[Sequence[Any]]
) -> list[QueueInfo]:
    """Queues by name from (queue, state, count) and (name, paused, max_running) rows: every
    queue that has jobs or settings."""
    counts: dict[str, dict[JobState, int]] = {}
    for name, state, count in count_rows:
        counts.setdefault(name, dict.fromkeys(JobState, 0))[JobState(state)] = count
    settings = {row[0]: (bool(row[1]), row[2]) for row in setting_rows}
    return [
        QueueInfo(
            name,
            *settings.get(name, (False, None)),
            counts.get(name, dict.fromkeys(JobState, 0)),
        )
        for name in sorted(counts.keys() | settings.keys())
    ]


def attempt_from_row(row: Sequence[Any], to_time: TimeReader) -> Attempt:
    """An Attempt from (job_id, attempt, worker_id, started_at, finished_at, exit_code, error)."""
    finished = to_time(row[4]) if row[4] is not None else None
    return Attempt(row[0], row[1], row[2], to_time(row[3]), finished, row[5], row[6])


def state_counts(rows: Iterable[Sequence[Any]]) -> dict[JobState, int]:
    """Counts per state from (state, count) rows, with every state present."""
    counts = dict.fromkeys(JobState, 0)
    for state, count in rows:
        counts[JobState(state)] = count
    return counts
