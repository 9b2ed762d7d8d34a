"""Rows to models, shared by the backends: they differ only in how a time is stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from queuectl.core.errors import WrongState
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, AttemptOutcome, Job, JobState, NewJob
from queuectl.core.rates import rate_of
from queuectl.store.records import AttemptRecord, HookEvent, QueueInfo

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
        retry_on_exit=exit_codes_from_column(row[21]),
        fatal_on_exit=exit_codes_from_column(row[22]),
        dedupe_key=row[23],
        depends_on=tuple(json.loads(row[24])) if row[24] is not None else (),
        hooks=json.loads(row[25]) if row[25] is not None else None,
    )


def hook_event_from_row(row: Sequence[Any], to_time: TimeReader) -> HookEvent:
    """A HookEvent from the columns of EVENT_COLUMNS, in that order."""
    return HookEvent(
        id=row[0],
        job_id=row[1],
        event=row[2],
        channel=row[3],
        target=row[4],
        state=row[5],
        exit_code=row[6],
        attempt=row[7],
        queue=row[8],
        command=row[9],
        last_error=row[10],
        output=row[11],
        created_at=to_time(row[12]),
        status=row[13],
        tries=row[14],
        next_attempt_at=to_time(row[15]),
        finished_at=to_time(row[16]) if row[16] is not None else None,
        error=row[17],
    )


def pending_job(job: NewJob, created: datetime) -> Job:
    """A new job as a store holds it once inserted at `created`: what a backend reports
    for rows it wrote without reading them back."""
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
        hooks=job.hooks,
    )


def exit_codes_to_column(codes: Sequence[int]) -> str | None:
    """Exit codes as stored: a JSON array, NULL when there are none."""
    return json.dumps(list(codes)) if codes else None


def exit_codes_from_column(value: str | None) -> tuple[int, ...]:
    return tuple(json.loads(value)) if value else ()


def queue_infos(
    count_rows: Iterable[Sequence[Any]], setting_rows: Iterable[Sequence[Any]]
) -> list[QueueInfo]:
    """Queues by name from (queue, state, count) and (name, paused, max_running,
    rate_count, rate_period) rows: every queue that has jobs or settings."""
    counts: dict[str, dict[JobState, int]] = {}
    for name, state, count in count_rows:
        counts.setdefault(name, dict.fromkeys(JobState, 0))[JobState(state)] = count
    settings = {row[0]: (bool(row[1]), row[2], rate_of(row[3], row[4])) for row in setting_rows}
    infos = []
    for name in sorted(counts.keys() | settings.keys()):
        paused, limit, rate = settings.get(name, (False, None, None))
        jobs = counts.get(name, dict.fromkeys(JobState, 0))
        infos.append(QueueInfo(name, paused, limit, jobs, rate))
    return infos


def attempt_from_row(row: Sequence[Any], to_time: TimeReader) -> Attempt:
    """An Attempt from the columns of ATTEMPT_COLUMNS, in that order."""
    finished = to_time(row[4]) if row[4] is not None else None
    outcome = AttemptOutcome(row[7]) if row[7] is not None else None
    return Attempt(
        row[0], row[1], row[2], to_time(row[3]), finished, row[5], row[6], outcome, row[8]
    )


def state_counts(rows: Iterable[Sequence[Any]]) -> dict[JobState, int]:
    """Counts per state from (state, count) rows, with every state present."""
    counts = dict.fromkeys(JobState, 0)
    for state, count in rows:
        counts[JobState(state)] = count
    return counts


def first_repeated_key(jobs: Sequence[NewJob]) -> str | None:
    """The first dedupe key that two of `jobs` share, if any."""
    seen: set[str] = set()
    for job in jobs:
        if job.dedupe_key is not None:
            if job.dedupe_key in seen:
                return job.dedupe_key
            seen.add(job.dedupe_key)
    return None


def outcome_class(record: AttemptRecord, outcome: Outcome) -> str:
    """The attempt's outcome class to store; a caller that gives none gets one by state."""
    if record.outcome is not None:
        return record.outcome.value
    completed = outcome.state is JobState.COMPLETED
    return (AttemptOutcome.OK if completed else AttemptOutcome.FAILED).value


def key_taken(job_id: str, holder: Sequence[Any] | None) -> WrongState:
    """Why a job cannot go back to pending: the (key, id, state) of the job that holds its
    dedupe key now, if one was found."""
    if holder is None:
        return WrongState(f"job {job_id!r} cannot be retried now: its dedupe key is taken")
    key, holder_id, state = holder
    return WrongState(
        f"job {job_id!r} cannot be retried: a job with dedupe key {key!r} is already"
        f" {state} ({holder_id})"
    )
