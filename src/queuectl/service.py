"""QueueService: every use case of the CLI (and later the web), over one Store."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from queuectl.core import lifecycle
from queuectl.core import settings as config
from queuectl.core.errors import (
    DependencyEnded,
    DuplicateDedupeKey,
    DuplicateJobId,
    InvalidConfig,
    JobNotFound,
    UnknownDependency,
    UsageError,
    WrongState,
)
from queuectl.core.fields import check_queue
from queuectl.core.ids import is_valid_job_id
from queuectl.core.models import (
    FINISHED_STATES,
    Attempt,
    AttemptOutcome,
    Job,
    JobState,
    NewJob,
    WorkerInfo,
)
from queuectl.core.run_env import job_environment
from queuectl.core.settings import Settings
from queuectl.core.spec import parse_job_json, parse_job_lines
from queuectl.crashpoint import crash_point
from queuectl.store.base import (
    AttemptOutput,
    AttemptRecord,
    HookEvent,
    JobFilter,
    QueueInfo,
    QueueStoreRoles,
    ThroughputBucket,
)

if TYPE_CHECKING:
    from queuectl.core.rates import Rate
    from queuectl.core.why import Explanation


@dataclass(frozen=True, slots=True)
class StatusReport:
    counts: dict[JobState, int]
    workers: list[WorkerInfo]
    now: datetime

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class QueueService:
    def __init__(self, store: QueueStoreRoles) -> None:
        self.store = store

    def settings(self) -> Settings:
        return Settings.from_stored(self.store.get_config())

    # -- enqueue ----------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, skip_duplicate_keys: bool = False) -> list[Job]:
        """Insert jobs all-or-nothing; DuplicateJobId when an id is taken, DuplicateDedupeKey
        when an unfinished job holds a dedupe key. With `skip_duplicate_keys`
        (`--if-exists skip`) such a job is not added and the holder stands in its place."""
        if not skip_duplicate_keys:
            return self.store.insert_jobs(jobs)
        # A key given twice in the batch: the first job holds it, later ones stand for it.
        unique: list[NewJob] = []
        first: dict[str, int] = {}
        positions = []
        for job in jobs:
            if job.dedupe_key is not None and job.dedupe_key in first:
                positions.append(first[job.dedupe_key])
                continue
            if job.dedupe_key is not None:
                first[job.dedupe_key] = len(unique)
            positions.append(len(unique))
            unique.append(job)
        stored = self.store.insert_jobs(unique, skip_duplicate_keys=True)
        return [stored[position] for position in positions]

    def enqueue_json(self, text: str, *, skip_duplicate_keys: bool = False) -> Job:
        job = parse_job_json(text, self.settings())
        return self.enqueue([job], skip_duplicate_keys=skip_duplicate_keys)[0]

    def enqueue_lines(
        self, lines: Iterable[str], *, skip_duplicate_keys: bool = False
    ) -> list[Job]:
        """`enqueue -`: all lines or none; an error names its line (SPEC 2.1)."""
        numbered = parse_job_lines(lines, self.settings(), skip_duplicate_keys=skip_duplicate_keys)
        try:
            return self.enqueue(
                [job for _, job in numbered], skip_duplicate_keys=skip_duplicate_keys
            )
        except DuplicateDedupeKey as exc:
            line = next((n for n, job in numbered if job.dedupe_key == exc.key), None)
            raise DuplicateDedupeKey(exc.key, exc.existing_id, exc.state, line=line) from None
        except (UnknownDependency, DependencyEnded) as exc:
            line = next((number for number, job in numbered if job.id == exc.job_id), None)
            if line is None:
                raise
            raise type(exc)(f"line {line}: {exc.message}", exc.job_id) from None
        except DuplicateJobId:
            # The store only knows that some id is taken; find its line, on this rare path.
            for number, job in numbered:
                if self.store.get_job(job.id) is not None:
                    raise DuplicateJobId(
                        f"line {number}: job id {job.id!r} already exists"
                    ) from None
            raise

    # -- reading ----------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        # An id no job can have (say, bytes that are not UTF-8) is simply not found.
        job = self.store.get_job(job_id) if is_valid_job_id(job_id) else None
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job

    def job_history(self, job_id: str) -> list[Attempt]:
        return self.store.list_attempts(job_id)

    def hook_deliveries(self, job_id: str) -> list[HookEvent]:
        """The job's hooks and webhooks, oldest first, with how each went."""
        return self.store.list_job_events(job_id)

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        return self.store.list_jobs(job_filter)

    def status(self) -> StatusReport:
        lease = self.settings().lease_timeout
        return StatusReport(
            self.store.count_jobs_by_state(), self.store.list_workers(lease), self.store.now()
        )

    def active_workers(self) -> list[WorkerInfo]:
        return self.store.list_workers(self.settings().lease_timeout)

    def explain(self, job_id: str) -> Explanation:
        """Why a job is not running now (`queuectl why`): reads only, changes nothing, so
        that a stale claim is shown as it is rather than rescued on the way."""
        from queuectl.core.why import JobFacts, QueueFacts, explain, rate_facts

        job = self.get_job(job_id)
        queue = next((info for info in self.store.list_queues() if info.name == job.queue), None)
        running: tuple[tuple[str, str | None], ...] = ()
        if queue is not None and queue.max_running is not None:
            holders = self.store.list_jobs(
                JobFilter(states=(JobState.PROCESSING,), queue=job.queue, limit=0)
            )
            running = tuple((held.id, held.locked_by) for held in holders)
        dependencies: tuple[tuple[str, JobState | None], ...] = ()
        if job.depends_on:
            found = self.store.list_jobs(JobFilter(ids=job.depends_on, limit=0))
            states = {dep.id: dep.state for dep in found}
            dependencies = tuple((dep, states.get(dep)) for dep in job.depends_on)
        holder = self.store.get_worker(job.locked_by) if job.locked_by else None
        facts = JobFacts(
            job=job,
            now=self.store.now(),
            lease_timeout=self.settings().lease_timeout,
            queue=QueueFacts(
                job.queue,
                queue.paused if queue else False,
                queue.max_running if queue else None,
                running,
                *rate_facts(job.queue, queue.rate if queue else None, self.store.recent_start),
            ),
            workers=tuple(self.active_workers()),
            holder=holder,
            dependencies=dependencies,
        )
        return explain(facts)

    # -- changing jobs ----------------------------------------------------------------

    def retry_dead(self, job_id: str) -> Job:
        """A dead job back to pending with attempts reset (`dlq retry`); returns it as the
        retry left it, even if a worker has claimed it since."""
        requeued = (
            self.store.requeue_job(job_id, (JobState.DEAD,)) if is_valid_job_id(job_id) else None
        )
        if requeued is None:
            job = self.get_job(job_id)
            raise WrongState(
                f"job {job_id!r} is {job.state.value}, not dead: "
                "only jobs in the DLQ can be retried"
            )
        return requeued

    def retry(self, job_id: str) -> Job:
        """A dead or cancelled job back to pending with attempts reset (`retry`); returns it
        as the retry left it, even if a worker has claimed it since."""
        retryable = (JobState.DEAD, JobState.CANCELLED)
        requeued = self.store.requeue_job(job_id, retryable) if is_valid_job_id(job_id) else None
        if requeued is None:
            job = self.get_job(job_id)
            raise WrongState(
                f"job {job_id!r} is {job.state.value}: only dead or cancelled jobs can be retried"
            )
        return requeued

    def retry_all_dead(self, queue: str | None = None) -> int:
        """Every job in the DLQ (of one queue) back to pending; returns how many."""
        return self.store.requeue_all_dead(queue)

    def purge_dead(self, older_than: float | None = None, queue: str | None = None) -> int:
        """Delete DLQ jobs (unchanged for `older_than` seconds) with their history."""
        return self.store.delete_jobs((JobState.DEAD,), older_than or 0.0, queue=queue)

    def prune(self, states: Sequence[JobState], older_than: float, *, dry_run: bool = False) -> int:
        """Delete finished jobs older than `older_than` seconds; returns how many."""
        unfinished = [state.value for state in states if state not in FINISHED_STATES]
        if unfinished:
            raise UsageError(
                f"only finished jobs can be pruned (completed, dead, cancelled), not "
                f"{', '.join(unfinished)}"
            )
        return self.store.delete_jobs(states or FINISHED_STATES, older_than, dry_run=dry_run)

    def prune_by_retention(self, current: Settings, batch: int) -> int:
        """One bounded step of automatic retention (config retention-*), for workers."""
        deleted = 0
        policies = (
            ((JobState.COMPLETED,), current.retention_completed),
            ((JobState.DEAD, JobState.CANCELLED), current.retention_dead),
        )
        for states, age in policies:
            if age > 0:
                deleted += self.store.delete_jobs(states, age, limit=batch)
        return deleted

    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel jobs: pending or failed ones at once; a processing one loses its claim
        and its worker kills the run (within a heartbeat; at once on this host).

        Every id is checked before any job changes, so a typo cancels nothing.
        """
        for job_id in job_ids:
            job = self.get_job(job_id)
            if job.state in FINISHED_STATES:
                raise WrongState(
                    f"job {job_id!r} is {job.state.value}: only pending, failed or "
                    "processing jobs can be cancelled"
                )
        cancelled = []
        for job_id in job_ids:
            before = self.store.cancel_job(job_id)
            if before is None:  # it finished in the meantime
                continue
            if before.state is JobState.PROCESSING and before.locked_by:
                self._nudge_worker(before.locked_by)
            cancelled.append(self.get_job(job_id))
        return cancelled

    def _nudge_worker(self, worker_id: str) -> None:
        """Wake a local worker's heartbeat (SIGUSR1) so it notices a cancel at once."""
        import socket

        host = socket.gethostname()
        for worker in self.active_workers():
            if worker.id == worker_id and worker.host == host and is_queuectl_process(worker.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(worker.pid, signal.SIGUSR1)

    def job_output(self, job_id: str, attempt: int | None = None) -> AttemptOutput:
        """The output of one attempt (the latest by default), live while it runs."""
        job = self.get_job(job_id)
        found = self.store.get_attempt_output(job.id, attempt)
        if found is None:
            if attempt is None and job.state in FINISHED_STATES:
                raise WrongState(f"job {job_id!r} is {job.state.value} and never ran")
            if attempt is None:
                raise WrongState(f"job {job_id!r} has not run yet")
            raise JobNotFound(f"job {job_id!r} has no attempt {attempt}")
        if found.finished and not found.output and attempt is None:
            # Stores written before outputs were kept per attempt have it on the job.
            return AttemptOutput(found.job_id, found.attempt, found.worker_id, True, job.output)
        return found

    def count_jobs(self, job_filter: JobFilter) -> dict[JobState, int]:
        return self.store.count_jobs_by_state(job_filter)

    def throughput(self, minutes: int = 60) -> list[ThroughputBucket]:
        """Completed and failed attempts per minute, oldest first, empty minutes included."""
        found = {
            bucket.start: bucket for bucket in self.store.count_finished_attempts(minutes * 60.0)
        }
        now = self.store.now()
        current = now.replace(second=0, microsecond=0)
        starts = [current - timedelta(minutes=back) for back in range(minutes - 1, -1, -1)]
        return [found.get(start, ThroughputBucket(start, 0, 0)) for start in starts]

    # -- queues -----------------------------------------------------------------------

    def list_queues(self) -> list[QueueInfo]:
        return self.store.list_queues()

    def pause_queue(self, name: str, paused: bool = True) -> None:
        self.store.set_queue_paused(check_queue(name), paused)

    def limit_queue(self, name: str, max_running: int | None) -> None:
        if max_running is not None and max_running < 0:
            raise UsageError("a queue limit must be >= 0 (or `none` to remove it)")
        self.store.set_queue_limit(check_queue(name), max_running)

    def rate_queue(self, name: str, rate: Rate | None) -> None:
        """At most rate.count starts of the queue's jobs in any window of rate.period
        seconds, across all workers and hosts (`queue rate`); None removes it."""
        self.store.set_queue_rate(check_queue(name), rate)

    def set_queue_webhook(self, name: str, url: str) -> str | None:
        """A queue's own webhook (`none` removes it: the configured webhook-url applies);
        the URL as stored, None when removed."""
        try:
            text = config.webhook_url_text(url)
        except InvalidConfig as exc:
            raise UsageError(f"invalid webhook URL: {exc.message}") from None
        self.store.set_queue_webhook(check_queue(name), text or None)
        return text or None

    def queue_webhook(self, name: str) -> str | None:
        """A queue's own webhook, None when it has none."""
        return self.store.queue_webhooks().get(check_queue(name))

    def rescue_stale(self, current: Settings | None = None) -> list[Job]:
        """Fail the runs of workers whose heartbeat is older than lease-timeout (SPEC 2.2).

        Safe to run from any number of processes: the finish is guarded by the claim, so a
        job is rescued once however many look at it. Processes of the lost run still alive
        on this host (found by the environment every run gets) are killed first.
        """
        current = current or self.settings()
        rescued = []
        stale = self.store.find_stale_jobs(current.lease_timeout)
        if stale:
            # Here, not at the top: `enqueue` imports this module and must start fast.
            from queuectl.leftovers import kill_processes_with_environment
        for job in stale:
            outcome = lifecycle.after_lost_run(
                job.attempts, job.max_retries, job.locked_by, current
            )
            record = AttemptRecord(exit_code=None, output=None, outcome=AttemptOutcome.LOST)
            # What is left of the lost run on this host must not run on beside the next
            # attempt: kill it before the job can be claimed again.
            if job.locked_by:
                kill_processes_with_environment(job_environment(job, job.locked_by))
            crash_point("during-rescue")
            if self.store.finish_attempt(job, job.locked_by or "", outcome, record):
                rescued.append(job)
        return rescued

    # -- config -----------------------------------------------------------------------

    def config_items(self) -> list[tuple[str, str]]:
        return config.listed_texts(self.settings())

    def config_values(self) -> dict[str, float | int | str]:
        """Every setting as a number (durations in seconds) or a word, for JSON."""
        return config.listed_values(self.settings())

    def config_get(self, key: str) -> str:
        spec = config.config_key(key)
        return config.shown_text(spec.key, self.settings().value_of(spec.key))

    def config_set(self, key: str, value: str) -> tuple[str, str]:
        """Store a setting; (its canonical key, the value as stored)."""
        text = config.normalize(key, value)
        canonical = config.config_key(key).key
        self.store.set_config(canonical, text)
        return canonical, text


def is_queuectl_process(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that runs queuectl."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"queuectl" in handle.read()
    except OSError:
        return False
