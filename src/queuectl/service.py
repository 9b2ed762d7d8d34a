"""QueueService: every use case of the CLI (and later the web), over one Store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from queuectl.core import lifecycle
from queuectl.core import settings as config
from queuectl.core.errors import DuplicateJobId, JobNotFound, WrongState
from queuectl.core.ids import is_valid_job_id
from queuectl.core.models import Attempt, Job, JobState, NewJob, WorkerInfo
from queuectl.core.settings import Settings
from queuectl.core.spec import parse_job_json, parse_job_lines
from queuectl.store.base import AttemptRecord, JobFilter, Store


@dataclass(frozen=True, slots=True)
class StatusReport:
    counts: dict[JobState, int]
    workers: list[WorkerInfo]
    now: datetime

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class QueueService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def settings(self) -> Settings:
        return Settings.from_stored(self.store.get_config())

    # -- enqueue ----------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert jobs all-or-nothing; DuplicateJobId when an id is taken."""
        return self.store.insert_jobs(jobs)

    def enqueue_json(self, text: str) -> Job:
        return self.enqueue([parse_job_json(text, self.settings())])[0]

    def enqueue_lines(self, lines: Iterable[str]) -> list[Job]:
        """`enqueue -`: all lines or none; an error names its line (SPEC 2.1)."""
        numbered = parse_job_lines(lines, self.settings())
        try:
            return self.enqueue([job for _, job in numbered])
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

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        return self.store.list_jobs(job_filter)

    def status(self) -> StatusReport:
        lease = self.settings().lease_timeout
        return StatusReport(
            self.store.count_jobs_by_state(), self.store.list_workers(lease), self.store.now()
        )

    def active_workers(self) -> list[WorkerInfo]:
        return self.store.list_workers(self.settings().lease_timeout)

    # -- changing jobs ----------------------------------------------------------------

    def retry_dead(self, job_id: str) -> Job:
        """A dead job back to pending with attempts reset (`dlq retry`)."""
        if not is_valid_job_id(job_id) or not self.store.requeue_dead(job_id):
            job = self.get_job(job_id)
            raise WrongState(
                f"job {job_id!r} is {job.state.value}, not dead: "
                "only jobs in the DLQ can be retried"
            )
        return self.get_job(job_id)

    def rescue_stale(self, current: Settings | None = None) -> list[Job]:
        """Fail the runs of workers whose heartbeat is older than lease-timeout (SPEC 2.2).

        Safe to run from any number of processes: the finish is guarded by the claim, so a
        job is rescued once however many look at it.
        """
        current = current or self.settings()
        rescued = []
        for job in self.store.find_stale_jobs(current.lease_timeout):
            outcome = lifecycle.after_lost_run(
                job.attempts, job.max_retries, job.locked_by, current
            )
            record = AttemptRecord(exit_code=None, output=None)
            if self.store.finish_attempt(job, job.locked_by or "", outcome, record):
                rescued.append(job)
        return rescued

    # -- config -----------------------------------------------------------------------

    def config_items(self) -> list[tuple[str, str]]:
        current = self.settings()
        return [(key, config.format_value(current.value_of(key))) for key in config.CONFIG_KEYS]

    def config_get(self, key: str) -> str:
        return config.format_value(self.settings().value_of(config.config_key(key).key))

    def config_set(self, key: str, value: str) -> str:
        text = config.normalize(key, value)
        self.store.set_config(key, text)
        return text

    # -- workers ----------------------------------------------------------------------

    def stop_workers(self) -> list[WorkerInfo]:
        """Ask every active worker to stop gracefully: by signal on this host, through the
        store everywhere (a host cannot see another host's processes)."""
        workers = self.active_workers()
        self.store.request_stop([worker.id for worker in workers])
        import socket

        host = socket.gethostname()
        for worker in workers:
            if worker.host == host and _is_queuectl_process(worker.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(worker.pid, 15)
        return workers


def _is_queuectl_process(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that runs queuectl."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"queuectl" in handle.read()
    except OSError:
        return False
