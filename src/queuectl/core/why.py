"""Why a job is not running now, in words: a pure reading of facts the service gathers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from queuectl.core.clock import format_timestamp
from queuectl.core.durations import format_span
from queuectl.core.models import Job, JobState, WorkerInfo
from queuectl.core.rates import Rate

HEARTBEAT_INTERVAL_MAX = 2.0  # seconds; workers beat every min(lease-timeout / 3, this)
STALE_AFTER_BEATS = 2  # a heartbeat older than this many intervals (+1 s) counts as stale


@dataclass(frozen=True, slots=True)
class QueueFacts:
    name: str
    paused: bool
    max_running: int | None  # None: no limit
    running: tuple[tuple[str, str | None], ...]  # (job id, worker id) of its processing jobs
    rate: Rate | None = None  # None: no rate limit
    # When the window next loses the start that keeps it full (None: it is not full).
    rate_opens_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobFacts:
    """Everything `why` looks at, read by the service at one moment."""

    job: Job
    now: datetime
    lease_timeout: float  # seconds
    queue: QueueFacts
    workers: tuple[WorkerInfo, ...]  # the active ones
    holder: WorkerInfo | None  # the worker in job.locked_by as registered, active or not
    dependencies: tuple[tuple[str, JobState | None], ...]  # (id, state; None: gone)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # finished, running, stale_worker, scheduled, retry_wait, dependencies,
    # queue_paused, queue_full, queue_rate, no_worker, runnable
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


@dataclass(frozen=True, slots=True)
class Explanation:
    job_id: str
    state: JobState
    runnable: bool  # a worker serving its queue may claim it right now
    summary: str
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "state": self.state.value,
            "runnable": self.runnable,
            "summary": self.summary,
            "reasons": [reason.to_json() for reason in self.reasons],
        }


def explain(facts: JobFacts) -> Explanation:
    """Why `facts.job` is not running now (or that it is, or could be)."""
    job = facts.job
    match job.state:
        case JobState.COMPLETED | JobState.DEAD | JobState.CANCELLED:
            reason = _finished(job, facts.now)
            return Explanation(job.id, job.state, False, reason.message, (reason,))
        case JobState.PROCESSING:
            reason = _held(facts)
            return Explanation(job.id, job.state, False, reason.message, (reason,))
        case JobState.PENDING | JobState.FAILED:
            blockers = _blockers(facts)
            if blockers:
                count = "one reason" if len(blockers) == 1 else f"{len(blockers)} reasons"
                summary = f"{job.state.value}, not running for {count}"
                return Explanation(job.id, job.state, False, summary, tuple(blockers))
            reason = _runnable(facts)
            return Explanation(job.id, job.state, True, reason.message, (reason,))
    raise AssertionError(f"unknown state {job.state!r}")  # pragma: no cover


# -- finished and running jobs -----------------------------------------------------------


def _finished(job: Job, now: datetime) -> Reason:
    at = job.finished_at or job.updated_at
    attempts = _attempts(job.attempts)
    details: dict[str, Any] = {"finished_at": format_timestamp(at), "attempts": job.attempts}
    if job.state is JobState.COMPLETED:
        message = f"finished: completed {_when(at, now)} after {attempts}"
    elif job.state is JobState.DEAD:
        at = job.updated_at
        details["finished_at"] = format_timestamp(at)
        cause = job.last_error or "no error recorded"
        ran = f"after {attempts}" if job.attempts else "without running"
        message = (
            f"finished: dead (in the DLQ) {_when(at, now, 'since')}, {ran}: {cause}; "
            f"`queuectl dlq retry {job.id}` gives it another chance"
        )
        details["last_error"] = job.last_error
    else:
        at = job.updated_at
        details["finished_at"] = format_timestamp(at)
        message = f"finished: cancelled {_when(at, now)}"
    return Reason("finished", message, details)


def _held(facts: JobFacts) -> Reason:
    job, now, holder = facts.job, facts.now, facts.holder
    worker_id = job.locked_by or "an unknown worker"
    since = job.started_at or job.locked_at or job.updated_at
    details: dict[str, Any] = {"worker_id": job.locked_by, "started_at": format_timestamp(since)}
    if holder is None:
        message = (
            f"held by worker {worker_id}, which is not registered: the next worker or "
            "command to look for lost runs rescues it"
        )
        return Reason("stale_worker", message, details)
    beat = holder.last_heartbeat
    rescue_at = beat + timedelta(seconds=facts.lease_timeout)
    details |= {
        "last_heartbeat": format_timestamp(beat),
        "rescue_at": format_timestamp(rescue_at),
    }
    if holder.status != "stopped" and not _is_stale(beat, now, facts.lease_timeout):
        where = f" on {holder.host} (pid {holder.pid})"
        return Reason(
            "running", f"running on worker {worker_id}{where} {_when(since, now, 'since')}", details
        )
    stopped = " (it is marked stopped)" if holder.status == "stopped" else ""
    if rescue_at > now:
        then = f"unless it beats again, the job is rescued {_when(rescue_at, now)}"
    else:
        then = (
            f"its lease ran out {_when(rescue_at, now)}: the next worker or command to look "
            "for lost runs rescues it"
        )
    message = (
        f"held by worker {worker_id}{stopped}, whose heartbeat is stale: the last came "
        f"{_when(beat, now)}; {then}"
    )
    return Reason("stale_worker", message, details)


def _is_stale(beat: datetime, now: datetime, lease_timeout: float) -> bool:
    interval = min(lease_timeout / 3, HEARTBEAT_INTERVAL_MAX)
    return (now - beat).total_seconds() > STALE_AFTER_BEATS * interval + 1.0


# -- jobs that could be claimed ----------------------------------------------------------


def _blockers(facts: JobFacts) -> list[Reason]:
    reasons = []
    for check in (_not_due, _dependencies, _queue_paused, _queue_full, _queue_rate, _no_worker):
        reason = check(facts)
        if reason is not None:
            reasons.append(reason)
    return reasons


def _not_due(facts: JobFacts) -> Reason | None:
    job, now = facts.job, facts.now
    if job.run_at <= now:
        return None
    details: dict[str, Any] = {"run_at": format_timestamp(job.run_at)}
    if job.state is JobState.FAILED:
        failed_at = job.finished_at or job.updated_at
        message = (
            f"waiting to retry {_when(job.run_at, now)}: attempt {job.attempts} of "
            f"{job.max_retries} failed {_when(failed_at, now)}: "
            f"{job.last_error or 'no error recorded'}"
        )
        details |= {"attempt": job.attempts, "last_error": job.last_error}
        return Reason("retry_wait", message, details)
    return Reason("scheduled", f"scheduled to start {_when(job.run_at, now)}", details)


def _dependencies(facts: JobFacts) -> Reason | None:
    unfinished = [(dep, state) for dep, state in facts.dependencies if state != JobState.COMPLETED]
    if not unfinished:
        return None
    listed = ", ".join(
        f"{dep} ({state.value if state else 'no longer exists'})" for dep, state in unfinished
    )
    total = len(facts.dependencies)
    message = f"waiting on {len(unfinished)} of {total} dependencies: {listed}"
    if total == 1:
        message = f"waiting on its dependency {listed}"
    details = {
        "dependencies": [
            {"id": dep, "state": state.value if state else None}
            for dep, state in facts.dependencies
        ]
    }
    return Reason("dependencies", message, details)


def _queue_paused(facts: JobFacts) -> Reason | None:
    queue = facts.queue
    if not queue.paused:
        return None
    message = f"queue {queue.name} is paused: `queuectl queue resume {queue.name}` resumes it"
    return Reason("queue_paused", message, {"queue": queue.name})


def _queue_full(facts: JobFacts) -> Reason | None:
    queue = facts.queue
    if queue.max_running is None or len(queue.running) < queue.max_running:
        return None
    holders = ", ".join(
        f"{job_id} on {worker or 'an unknown worker'}" for job_id, worker in queue.running
    )
    message = (
        f"queue {queue.name} is at its limit of {queue.max_running} running "
        f"job{'' if queue.max_running == 1 else 's'}" + (f", held by {holders}" if holders else "")
    )
    details = {
        "queue": queue.name,
        "max_running": queue.max_running,
        "held_by": [{"job_id": job_id, "worker_id": worker} for job_id, worker in queue.running],
    }
    return Reason("queue_full", message, details)


def rate_facts(
    queue: str, rate: Rate | None, recent_start: Callable[[str, int], datetime | None]
) -> tuple[Rate | None, datetime | None]:
    """QueueFacts.rate and .rate_opens_at, from the queue's rate and its start log: a
    window holding rate.count starts opens when the oldest of them is a period old."""
    if rate is None:
        return None, None
    start = recent_start(queue, rate.count)
    return rate, start + timedelta(seconds=rate.period) if start is not None else None


def _queue_rate(facts: JobFacts) -> Reason | None:
    queue, now = facts.queue, facts.now
    if queue.rate is None or queue.rate_opens_at is None or queue.rate_opens_at <= now:
        return None
    message = (
        f"queue {queue.name} has started as many jobs as its rate limit allows "
        f"({queue.rate}): the next slot opens {_when(queue.rate_opens_at, now)}"
    )
    details = {
        "queue": queue.name,
        "rate": str(queue.rate),
        "next_slot_at": format_timestamp(queue.rate_opens_at),
    }
    return Reason("queue_rate", message, details)


def _no_worker(facts: JobFacts) -> Reason | None:
    if _serving(facts.workers, facts.queue.name):
        return None
    name = facts.queue.name
    if facts.workers:
        served = sorted({q for worker in facts.workers for q in worker.queues or ()})
        message = (
            f"no active worker serves queue {name} (they serve only {', '.join(served)}): "
            f"start one with `queuectl worker start --queue {name}`"
        )
    else:
        message = "no worker is active: start one with `queuectl worker start`"
    return Reason("no_worker", message, {"queue": name})


def _runnable(facts: JobFacts) -> Reason:
    serving = _serving(facts.workers, facts.queue.name)
    idle = sum(1 for worker in serving if worker.current_job_id is None)
    busy = (
        "1 active worker serves its queue"
        if len(serving) == 1
        else f"{len(serving)} active workers serve its queue"
    )
    load = f", {idle} of them idle" if idle != len(serving) else ""
    what = "its retry is due" if facts.job.state is JobState.FAILED else "pending and runnable now"
    message = f"{what}; a worker should pick it up ({busy}{load})"
    return Reason("runnable", message, {"workers": len(serving), "idle_workers": idle})


def _serving(workers: Sequence[WorkerInfo], queue: str) -> list[WorkerInfo]:
    return [w for w in workers if w.status == "running" and (w.queues is None or queue in w.queues)]


# -- words for numbers and times ---------------------------------------------------------


def _attempts(count: int) -> str:
    return f"{count} attempt{'' if count == 1 else 's'}"


def _when(value: datetime, now: datetime, preposition: str = "at") -> str:
    """'at 2026-01-31T09:30:00.000Z (in 5m 3s)' or '... (12s ago)'."""
    seconds = (value - now).total_seconds()
    relative = f"in {_span(seconds)}" if seconds >= 0.5 else f"{_span(-seconds)} ago"
    if abs(seconds) < 0.5:
        relative = "just now"
    return f"{preposition} {format_timestamp(value)} ({relative})"


def _span(seconds: float) -> str:
    return format_span(round(seconds))
