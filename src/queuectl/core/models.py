"""The nouns of the SPEC: job states, jobs, attempts, workers, run results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from queuectl.core.clock import format_timestamp
from queuectl.core.states import JobState as JobState  # re-exported: the nouns live here

CLAIMABLE_STATES = (JobState.PENDING, JobState.FAILED)
FINISHED_STATES = (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)
# While a job is in one of these, no other job may hold its dedupe key.
DEDUPE_STATES = (JobState.PENDING, JobState.FAILED, JobState.PROCESSING)


class AttemptOutcome(StrEnum):
    """How one attempt ended, as its history records it."""

    OK = "ok"  # exited 0
    FAILED = "failed"  # exited with a non-zero code
    TIMEOUT = "timeout"  # ran past the job's timeout and was killed
    KILLED = "killed"  # ended by a signal (named in the attempt), or killed by its worker
    LOST = "lost"  # its worker died while running it (found by a rescue)
    SPAWN_ERROR = "spawn-error"  # the shell could not be started


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job as given by the user, before the store adds its bookkeeping."""

    id: str
    command: str
    queue: str = "default"
    priority: int = 0
    max_retries: int = 3
    timeout: float = 300.0
    scheduled_at: datetime | None = None
    cwd: str | None = None  # working directory of the run; None: the worker's
    env: dict[str, str] | None = None  # added to the worker's environment
    retry_on_exit: tuple[int, ...] = ()  # only these exit codes are retried; empty: any
    fatal_on_exit: tuple[int, ...] = ()  # these exit codes are never retried
    dedupe_key: str | None = None  # at most one pending, failed or processing job per key
    depends_on: tuple[str, ...] = ()  # ids of jobs that must complete before this one runs
    hooks: dict[str, str] | None = None  # its own hook commands: {"on_dead": "..."}
    # The id was generated, not given: messages say "this job" rather than name an id the
    # user never saw and that, when the job is refused, never existed.
    id_generated: bool = False

    @property
    def name(self) -> str:
        """How a message names this job."""
        return "this job" if self.id_generated else f"job {self.id!r}"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as it was when read: frozen, so read it again to see it change. Its fields
    are those of `queuectl show --json`; `env` is a copy of its own, for reading only."""

    id: str
    command: str
    state: JobState
    queue: str
    priority: int
    attempts: int
    max_retries: int
    timeout: float
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None
    run_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    last_error: str | None
    output: str
    locked_by: str | None
    locked_at: datetime | None
    cwd: str | None = None
    env: dict[str, str] | None = None
    retry_on_exit: tuple[int, ...] = ()
    fatal_on_exit: tuple[int, ...] = ()
    dedupe_key: str | None = None
    depends_on: tuple[str, ...] = ()  # claimable only once each of these has completed
    hooks: dict[str, str] | None = None  # its own hook commands, by key (on_dead, ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "state": self.state.value,
            "queue": self.queue,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "timeout": _number(self.timeout),
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
            "scheduled_at": _optional_time(self.scheduled_at),
            "run_at": format_timestamp(self.run_at),
            "started_at": _optional_time(self.started_at),
            "finished_at": _optional_time(self.finished_at),
            "exit_code": self.exit_code,
            "last_error": self.last_error,
            "output": self.output,
            "locked_by": self.locked_by,
            "locked_at": _optional_time(self.locked_at),
            "cwd": self.cwd,
            "env": self.env,
            "retry_on_exit": list(self.retry_on_exit),
            "fatal_on_exit": list(self.fatal_on_exit),
            "dedupe_key": self.dedupe_key,
            "depends_on": list(self.depends_on),
            "hooks": self.hooks,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a job, as kept in its history."""

    job_id: str
    attempt: int
    worker_id: str | None
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None
    error: str | None
    outcome: AttemptOutcome | None = None  # None while it runs (or from before outcomes)
    signal: str | None = None  # the signal's name (SIGKILL) when the outcome is `killed`

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "worker_id": self.worker_id,
            "started_at": format_timestamp(self.started_at),
            "finished_at": _optional_time(self.finished_at),
            "exit_code": self.exit_code,
            "error": self.error,
            "outcome": self.outcome.value if self.outcome is not None else None,
            "signal": self.signal,
        }


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    status: str  # "running", "stopping" or "stopped"
    started_at: datetime
    last_heartbeat: datetime
    current_job_id: str | None
    queues: tuple[str, ...] | None = None  # None: every queue

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "status": self.status,
            "started_at": format_timestamp(self.started_at),
            "last_heartbeat": format_timestamp(self.last_heartbeat),
            "current_job_id": self.current_job_id,
            "queues": list(self.queues) if self.queues is not None else None,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run of a shell command ended; knows nothing of jobs."""

    exit_code: int | None  # None when killed by a signal, timed out or never started
    signal: int | None = None
    timed_out: bool = False
    spawn_error: str | None = None
    output: str = ""
    duration: float = 0.0  # seconds

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.spawn_error is None


def _optional_time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _number(value: float) -> int | float:
    """300.0 prints as 300; 1e300 stays 1e+300 rather than a 301-digit integer."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value
