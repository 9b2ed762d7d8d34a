"""The job state machine: what a finished or lost run turns a job into.

Decisions only; the store applies them. The diagram lives in the SPEC (2.2).
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass

from queuectl.core.backoff import retry_delay
from queuectl.core.models import JobState, RunResult
from queuectl.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a job goes after an attempt."""

    state: JobState  # COMPLETED, FAILED or DEAD
    retry_delay: float | None  # seconds from now until run_at, set when FAILED
    last_error: str | None


def describe_failure(run: RunResult, timeout: float) -> str | None:
    """Why a run failed, in words for `last_error`; None when it succeeded."""
    if run.spawn_error is not None:
        return f"could not start: {run.spawn_error}"
    if run.timed_out:
        return f"timed out after {_seconds(timeout)}s"
    if run.signal is not None:
        return f"killed by signal {_signal_name(run.signal)}"
    if run.exit_code not in (0, None):
        if run.exit_code == 127:
            return "exited with code 127 (command not found)"
        return f"exited with code {run.exit_code}"
    return None


def after_attempt(
    attempts: int, max_retries: int, run: RunResult, timeout: float, settings: Settings
) -> Outcome:
    """The outcome of attempt number `attempts` that ended as `run`."""
    error = describe_failure(run, timeout)
    if error is None:
        return Outcome(JobState.COMPLETED, None, None)
    return after_failure(attempts, max_retries, error, settings)


def after_failure(attempts: int, max_retries: int, error: str, settings: Settings) -> Outcome:
    """Retry with backoff while attempts remain, else the DLQ (SPEC 2.2)."""
    if attempts >= max_retries:
        return Outcome(JobState.DEAD, None, error)
    delay = retry_delay(attempts, settings.backoff_base, settings.backoff_max)
    return Outcome(JobState.FAILED, delay, error)


def after_lost_run(
    attempts: int, max_retries: int, worker_id: str | None, settings: Settings
) -> Outcome:
    """A run whose worker died counts as a failed attempt."""
    holder = f"worker {worker_id}" if worker_id else "its worker"
    error = f"lost: {holder} stopped sending heartbeats while running it"
    return after_failure(attempts, max_retries, error, settings)


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return str(number)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
