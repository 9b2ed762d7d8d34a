"""The records the store reads and writes besides the core models: what a worker reports,
filters, queue and throughput summaries, and the units of a transfer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from queuectl.core.clock import format_timestamp
from queuectl.core.models import Attempt, AttemptOutcome, Job, JobState
from queuectl.core.rates import Rate
from queuectl.core.redact import redact

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What a worker reports about an attempt it ran."""

    exit_code: int | None
    output: str | None  # None keeps what was saved while the job ran
    outcome: AttemptOutcome | None = None
    signal: str | None = None  # the name of the signal that ended a killed run


@dataclass(frozen=True, slots=True)
class JobFilter:
    states: tuple[JobState, ...] = ()
    queue: str | None = None
    limit: int = 100  # newest N; 0 = all
    ids: tuple[str, ...] = ()  # only these jobs; empty: any
    updated_since: datetime | None = None  # only jobs changed at or after this time


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    paused: bool
    max_running: int | None  # None: no limit
    counts: dict[JobState, int]
    rate: Rate | None = None  # None: no rate limit

    def to_json(self) -> dict[str, object]:
        """One queue as `queue list --json` and GET /api/queues give it."""
        return {
            "name": self.name,
            "paused": self.paused,
            "max_running": self.max_running,
            "rate": str(self.rate) if self.rate else None,
            "counts": {state.value: self.counts.get(state, 0) for state in JobState},
        }


@dataclass(frozen=True, slots=True)
class ThroughputBucket:
    """Attempts that finished within one minute starting at `start`."""

    start: datetime
    completed: int
    failed: int


@dataclass(frozen=True, slots=True)
class AttemptOutput:
    job_id: str
    attempt: int
    worker_id: str | None
    finished: bool
    output: str


@dataclass(frozen=True, slots=True)
class StoredAttempt:
    """An attempt of a job's history with the output it kept, as export copies it."""

    attempt: Attempt
    output: str | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job with its whole history: the unit that export writes and import reads."""

    job: Job
    history: tuple[StoredAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSetting:
    name: str
    paused: bool
    max_running: int | None
    rate_count: int | None = None  # with rate_period: the rate limit (core.rates.Rate)
    rate_period: int | None = None
    webhook_url: str | None = None  # the queue's own webhook (an older export has none)


@dataclass(frozen=True, slots=True)
class StoreContents:
    """Everything a store holds that outlives its workers, for import and `store migrate`."""

    jobs: Sequence[JobRecord] = ()
    config: dict[str, str] | None = None
    queues: Sequence[QueueSetting] = ()
    schedules: Sequence[Schedule] = ()


@dataclass(frozen=True, slots=True)
class HookEvent:
    """One hook or webhook delivery in the outbox: the job's facts when it happened, and
    how delivering it went (status pending, delivered or failed; the last error)."""

    id: int
    job_id: str
    event: str  # complete, fail, dead, cancel
    channel: str  # hook or webhook
    target: str  # the command or the URL
    state: str
    exit_code: int | None
    attempt: int
    queue: str
    command: str
    last_error: str | None
    output: str  # the end of the job's output
    created_at: datetime
    status: str
    tries: int
    next_attempt_at: datetime
    finished_at: datetime | None
    error: str | None

    def to_json(self) -> dict[str, object]:
        """As `show --json` lists it: how it went, not the facts the job shows itself."""
        return {
            "event": self.event,
            "channel": self.channel,
            "target": redact(self.target),
            "status": self.status,
            "tries": self.tries,
            "created_at": format_timestamp(self.created_at),
            "finished_at": format_timestamp(self.finished_at) if self.finished_at else None,
            "error": redact(self.error) if self.error else None,
        }
