"""The store's roles: persistence verbs, one transaction each, no lifecycle rules.

Each caller names only the roles it uses (a worker claims, `doctor` reads health, export
transfers); the backends implement them all, and `Store` is the whole of it, which
open_store() returns. Every transition is guarded by the state it expects, so a caller that
lost a race learns so from a False or None instead of overwriting someone else's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, Job, JobState, NewJob, WorkerInfo
from queuectl.store.records import (
    AttemptOutput,
    AttemptRecord,
    HookEvent,
    JobFilter,
    JobRecord,
    QueueInfo,
    QueueSetting,
    StoreContents,
    StoredAttempt,
    ThroughputBucket,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from queuectl.core.health import StoreFacts
    from queuectl.core.rates import Rate
    from queuectl.core.schedule import Schedule

__all__ = [  # the records, for callers that import them from here
    "AttemptOutput",
    "AttemptRecord",
    "HookEvent",
    "JobFilter",
    "JobRecord",
    "QueueInfo",
    "QueueSetting",
    "StoreContents",
    "StoredAttempt",
    "ThroughputBucket",
]


class StoreLifecycle(Protocol):
    """Opening, closing and the schema: what every holder of a store needs."""

    supports_notify: bool  # True: wait_for_jobs is woken by pushes, not only by polling

    def now(self) -> datetime:
        """The store's idea of the current time (the database's for PostgreSQL)."""
        ...

    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call from several processes at once."""
        ...

    def close(self) -> None: ...


class JobStore(Protocol):
    """Adding, reading, retrying, cancelling and deleting jobs (the CLI's verbs)."""

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

    def get_attempt_output(self, job_id: str, attempt: int | None) -> AttemptOutput | None:
        """The output of attempt number `attempt` (the latest one if None)."""
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


class ClaimStore(Protocol):
    """What a worker does with jobs: claim, finish, keep its claim, wait for work."""

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

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        """True while attempt `job.attempts` of the job is still held by `worker_id`."""
        ...

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        """Store the output so far of a running attempt; False if the claim is gone."""
        ...

    def seconds_until_next_job(self, queues: Sequence[str] | None) -> float | None:
        """Seconds until the earliest claimable job's run_at (0 if one is due), None if none."""
        ...

    def wait_for_jobs(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a change to the store; True if one came."""
        ...


class QueueStore(Protocol):
    """Queue settings and the config table."""

    def list_queues(self) -> list[QueueInfo]:
        """Every queue that has jobs or settings, by name."""
        ...

    def set_queue_paused(self, name: str, paused: bool) -> None: ...

    def set_queue_limit(self, name: str, max_running: int | None) -> None: ...

    def set_queue_rate(self, name: str, rate: Rate | None) -> None:
        """Set a queue's rate limit, or remove it (None), forgetting its starts."""
        ...

    def recent_start(self, queue: str, nth: int) -> datetime | None:
        """The `nth` newest start (1: the newest) of a rate-limited queue's jobs still in
        its window, None if there are fewer."""
        ...

    def get_config(self) -> dict[str, str]: ...

    def set_config(self, key: str, value: str) -> None: ...


class WorkerStore(Protocol):
    """The workers table: registration, heartbeats, stop requests."""

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

    def list_worker_records(self) -> list[WorkerInfo]:
        """Every registered worker, active, stale or stopped, oldest first."""
        ...

    def delete_workers(self, worker_ids: Sequence[str], lease_timeout: float) -> list[str]:
        """Forget the records of these workers that are gone (stopped, or no heartbeat for
        `lease_timeout` s) and hold no processing job; the ids forgotten."""
        ...

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        """A worker as registered, active or not (for explaining a job it holds)."""
        ...


class HealthStore(Protocol):
    """What `queuectl doctor`, `top` and the dashboard read about the store itself."""

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        """Workers not stopped whose heartbeat is older than `lease_timeout` seconds."""
        ...

    def inspect_storage(self) -> StoreFacts:
        """What the backend knows of itself: schema version, server, files, WAL size."""
        ...

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        """Per minute over the last `since` seconds, oldest first; empty minutes left out."""
        ...


class ScheduleStore(Protocol):
    """Recurring jobs: the schedules table and the firing of due schedules."""

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


class TransferStore(Protocol):
    """Reading a whole store out and writing one in (export, import, store migrate)."""

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


class HookStore(Protocol):
    """The outbox of hooks and webhooks: rows written with the state changes that cause
    them (by finish, cancel and the death of dependents), delivered by workers."""

    def claim_event(self, worker_id: str, lease: float) -> HookEvent | None:
        """Lease the next due delivery to `worker_id` for `lease` seconds; a row whose
        lease ran out (its deliverer died) is taken over."""
        ...

    def finish_event(
        self, event_id: int, worker_id: str, error: str | None, retry_in: float | None
    ) -> bool:
        """Record a delivery: done (error None), tried again in `retry_in` s, or failed
        for good; False when the lease was lost meanwhile (nothing changes)."""
        ...

    def list_job_events(self, job_id: str) -> list[HookEvent]: ...

    def failed_events(self, since: float, limit: int) -> list[HookEvent]:
        """Deliveries that failed for good in the last `since` seconds, newest first."""
        ...

    def prune_events(self, older_than: float) -> int:
        """Forget deliveries finished more than `older_than` seconds ago; how many."""
        ...

    def set_queue_webhook(self, name: str, url: str | None) -> None: ...

    def queue_webhooks(self) -> dict[str, str]:
        """The queues with a webhook of their own, and its URL."""
        ...


class QueueStoreRoles(
    StoreLifecycle,
    JobStore,
    ClaimStore,
    QueueStore,
    WorkerStore,
    HealthStore,
    HookStore,
    Protocol,
):
    """What the queue's use cases (QueueService) need: everything but schedules and
    transfers, which have services of their own."""


class Store(QueueStoreRoles, ScheduleStore, TransferStore, Protocol):
    """Every role: what open_store() returns and each backend implements."""
