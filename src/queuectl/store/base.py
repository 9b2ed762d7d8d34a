"""The Store protocol: persistence verbs, one transaction each, no lifecycle rules.

Every transition is guarded by the state it expects, so a caller that lost a race
learns so from a False or None instead of overwriting someone else's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, AttemptOutcome, Job, JobState, NewJob, WorkerInfo

if TYPE_CHECKING:  # `queuectl enqueue` never needs the health checks
    from queuectl.core.health import StoreFacts

if TYPE_CHECKING:
    from collections.abc import Iterator

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

    def to_json(self) -> dict[str, object]:
        """One queue as `queue list --json` and GET /api/queues give it."""
        return {
            "name": self.name,
            "paused": self.paused,
            "max_running": self.max_running,
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


@dataclass(frozen=True, slots=True)
class StoreContents:
    """Everything a store holds that outlives its workers, for import and `store migrate`."""

    jobs: Sequence[JobRecord] = ()
    config: dict[str, str] | None = None
    queues: Sequence[QueueSetting] = ()
    schedules: Sequence[Schedule] = ()


class Store(Protocol):
    supports_notify: bool  # True: wait_for_jobs is woken by pushes, not only by polling

    def now(self) -> datetime:
        """The store's idea of the current time (the database's for PostgreSQL)."""
        ...

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call from several processes at once."""
        ...

    def close(self) -> None: ...

    # jobs
    def insert_jobs(
        self, jobs: Sequence[NewJob], *, skip_duplicate_keys: bool = False
    ) -> list[Job]:
        """Insert all jobs in one transaction, or none (DuplicateJobId, DuplicateDedupeKey;
        UnknownDependency or DependencyEnded when a dependency outside the batch is missing,
        dead or cancelled).

        With `skip_duplicate_keys`, a job whose dedupe key an unfinished job holds is not
        inserted and that job stands in its place in the result; the rest are inserted.
        """
        ...

    def get_job(self, job_id: str) -> Job | None: ...

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        """Jobs in enqueue order; with a limit, the newest `limit` of them."""
        ...

    def count_jobs_by_state(self, job_filter: JobFilter | None = None) -> dict[JobState, int]:
        """Counts per state of the jobs matching `job_filter` (its limit is ignored)."""
        ...

    def list_attempts(self, job_id: str) -> list[Attempt]: ...

    def claim_job(self, worker_id: str, queues: Sequence[str] | None) -> Job | None:
        """Atomically take the next runnable job (SPEC 2.2 order) for `worker_id`."""
        ...

    def finish_attempt(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        """Apply `outcome` to the attempt `job.attempts` held by `worker_id`.

        False when that claim is no longer held (rescued, cancelled): nothing changes.
        """
        ...

    def finish_and_claim(
        self,
        job: Job,
        worker_id: str,
        outcome: Outcome,
        record: AttemptRecord,
        queues: Sequence[str] | None,
    ) -> tuple[bool, Job | None]:
        """finish_attempt, then claim_job for the same worker, at the cost of about one.

        A worker's steady state: (what finish_attempt returned, the next job or None).
        """
        ...

    def find_stale_jobs(self, lease_timeout: float) -> list[Job]:
        """Processing jobs whose worker has not sent a heartbeat for `lease_timeout` s."""
        ...

    def requeue_dead(self, job_id: str) -> bool:
        """A dead job back to pending with attempts=0; False if it is not dead."""
        ...

    def requeue_job(self, job_id: str, states: Sequence[JobState]) -> Job | None:
        """A job in one of `states` back to pending with attempts=0; None otherwise.
        DependencyEnded (nothing changed) while one of its dependencies is dead or cancelled.

        Returns the job as this change left it: a worker may claim it the moment it commits.
        """
        ...

    def requeue_all_dead(self, queue: str | None) -> int:
        """Every dead job (of `queue`) back to pending, but those with a dependency that
        stays dead or cancelled; returns how many."""
        ...

    def cancel_job(self, job_id: str) -> Job | None:
        """A pending, failed or processing job becomes cancelled; returns it as it was.

        A processing job's claim ends here: its worker notices (holds_claim) and kills the
        run. None when there is no such job or it is already finished.
        """
        ...

    def delete_jobs(
        self,
        states: Sequence[JobState],
        older_than: float,
        *,
        queue: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete jobs in `states` unchanged for `older_than` seconds, with their history.

        Returns how many (would have been) deleted; `limit` bounds one call's work.
        """
        ...

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        """True while attempt `job.attempts` of the job is still held by `worker_id`."""
        ...

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        """Store the output so far of a running attempt; False if the claim is gone."""
        ...

    def get_attempt_output(self, job_id: str, attempt: int | None) -> AttemptOutput | None:
        """The output of attempt number `attempt` (the latest one if None)."""
        ...

    def list_queues(self) -> list[QueueInfo]:
        """Every queue that has jobs or settings, by name."""
        ...

    def set_queue_paused(self, name: str, paused: bool) -> None: ...

    def set_queue_limit(self, name: str, max_running: int | None) -> None: ...

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        """Per minute over the last `since` seconds, oldest first; empty minutes left out."""
        ...

    def seconds_until_next_job(self, queues: Sequence[str] | None) -> float | None:
        """Seconds until the earliest claimable job's run_at (0 if one is due), None if none."""
        ...

    def wait_for_jobs(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a change to the store; True if one came."""
        ...

    # workers
    def register_worker(
        self, worker_id: str, host: str, pid: int, queues: Sequence[str] | None
    ) -> None: ...

    def heartbeat(
        self, worker_id: str, current_job_id: str | None, status: str = "running"
    ) -> bool:
        """Record that the worker is alive; True when someone asked it to stop."""
        ...

    def deregister_worker(self, worker_id: str) -> None:
        """Mark the worker stopped."""
        ...

    def list_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        """Active workers: not stopped, heartbeat younger than `lease_timeout`."""
        ...

    def request_stop(self, worker_ids: Sequence[str]) -> None: ...

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        """A worker as registered, active or not (for explaining a job it holds)."""
        ...

    # config
    def get_config(self) -> dict[str, str]: ...

    def set_config(self, key: str, value: str) -> None: ...

    # health (`queuectl doctor`)
    def list_worker_records(self) -> list[WorkerInfo]:
        """Every registered worker, active, stale or stopped, oldest first."""
        ...

    def delete_workers(self, worker_ids: Sequence[str], lease_timeout: float) -> list[str]:
        """Forget the records of these workers that are gone (stopped, or no heartbeat for
        `lease_timeout` s) and hold no processing job; the ids forgotten."""
        ...

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        """Workers not stopped whose heartbeat is older than `lease_timeout` seconds."""
        ...

    def inspect_storage(self) -> StoreFacts:
        """What the backend knows of itself: schema version, server, files, WAL size."""
        ...

    # schedules (store/schedules.py holds the shared SQL)
    def insert_schedule(self, schedule: Schedule) -> None:
        """Add a schedule; DuplicateSchedule when the name is taken."""
        ...

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        """Schedules by name (only `name`'s, if given)."""
        ...

    def delete_schedule(self, name: str) -> bool: ...

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        """Pause (next_fire_at None) or resume a schedule; False if there is none."""
        ...

    def list_due_schedules(self) -> list[Schedule]:
        """Unpaused schedules whose next firing is at or before the store's now."""
        ...

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:
        """Move `schedule` on to `next_fire_at` and enqueue `jobs`, in one transaction.

        Guarded by the next_fire_at the caller read: of several workers racing for the same
        firing, one returns True and the others change nothing. Jobs whose id exists already
        are left alone.
        """
        ...

    # moving between stores
    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        """Every job (in `states`) with its history, in enqueue order, read in batches."""
        ...

    def list_queue_settings(self) -> list[QueueSetting]: ...

    def count_attempts(self) -> int: ...

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        """Write jobs as they were (state, times, history), config, queue settings and
        schedules, all in one transaction. An id or schedule name already in this store is
        DuplicateJobId/DuplicateSchedule unless `skip_existing`. Returns how many jobs and
        schedules were written."""
        ...
