"""The job state machine: what a finished or lost run turns a job into.

Decisions only; the store applies them. The diagram lives in the SPEC (2.2).
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass

from queuectl.core.backoff import Uniform, full_jitter, retry_delay
from queuectl.core.models import AttemptOutcome, Job, JobState, RunResult
from queuectl.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a job goes after an attempt."""

    state: JobState  # COMPLETED, FAILED or DEAD
    retry_delay: float | None  # seconds from now until run_at, set when FAILED
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ExitPolicy:
    """A job's say over which failed exits are worth another attempt."""

    retry_on_exit: tuple[int, ...] = ()  # only these codes are retried; empty: any code
    fatal_on_exit: tuple[int, ...] = ()  # these codes go to the DLQ at once

    @classmethod
    def of(cls, job: Job) -> ExitPolicy:
        return cls(job.retry_on_exit, job.fatal_on_exit)

    def refusal(self, exit_code: int) -> str | None:
        """Why a run that exited with `exit_code` must not be retried; None: it may be."""
        if exit_code in self.fatal_on_exit:
            return f"exit code {exit_code} is fatal (fatal_on_exit)"
        if self.retry_on_exit and exit_code not in self.retry_on_exit:
            codes = ", ".join(str(code) for code in self.retry_on_exit)
            return f"exit code {exit_code} is not retried (retry_on_exit: {codes})"
        return None


NO_POLICY = ExitPolicy()


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


def classify(run: RunResult, *, killed: bool = False) -> tuple[AttemptOutcome, str | None]:
    """How a run ended, for its attempt's history: the outcome and, when a signal ended
    it, the signal's name. `killed`: its worker killed it (a cancel, a second Ctrl+C)."""
    if run.spawn_error is not None:
        return AttemptOutcome.SPAWN_ERROR, None
    if run.timed_out:
        return AttemptOutcome.TIMEOUT, None
    if run.succeeded:
        return AttemptOutcome.OK, None
    if run.signal is not None:
        return AttemptOutcome.KILLED, _signal_name(run.signal)
    if killed:
        # The shell outlived the signal its command died of and exited 128 + its number.
        code = run.exit_code or 0
        known = code > 128 and (code - 128) in set(signals.Signals)
        return AttemptOutcome.KILLED, _signal_name(code - 128) if known else None
    return AttemptOutcome.FAILED, None


def after_attempt(
    attempts: int,
    max_retries: int,
    run: RunResult,
    timeout: float,
    settings: Settings,
    *,
    policy: ExitPolicy = NO_POLICY,
    uniform: Uniform | None = None,
) -> Outcome:
    """The outcome of attempt number `attempts` that ended as `run`. The job's exit
    `policy` judges exit codes only: timeouts, signals and spawn errors always retry."""
    error = describe_failure(run, timeout)
    if error is None:
        return Outcome(JobState.COMPLETED, None, None)
    exited = run.signal is None and not run.timed_out and run.spawn_error is None
    exit_code = run.exit_code if exited else None
    return after_failure(
        attempts,
        max_retries,
        error,
        settings,
        exit_code=exit_code,
        policy=policy,
        uniform=uniform,
    )


def after_failure(
    attempts: int,
    max_retries: int,
    error: str,
    settings: Settings,
    *,
    exit_code: int | None = None,
    policy: ExitPolicy = NO_POLICY,
    uniform: Uniform | None = None,
) -> Outcome:
    """The DLQ at once when the exit `policy` refuses `exit_code`; else retry with backoff
    while attempts remain, then the DLQ (SPEC 2.2). `uniform` draws the jitter (config
    backoff-jitter = full); random.uniform unless a test injects its own."""
    refusal = policy.refusal(exit_code) if exit_code is not None else None
    if refusal is not None:
        return Outcome(JobState.DEAD, None, refusal)
    if attempts >= max_retries:
        return Outcome(JobState.DEAD, None, error)
    delay = retry_delay(attempts, settings.backoff_base, settings.backoff_max)
    if settings.backoff_jitter == "full":
        if uniform is None:
            import random  # here, not at the top: `enqueue` imports this module, and is timed

            uniform = random.uniform
        delay = full_jitter(delay, uniform)
    return Outcome(JobState.FAILED, delay, error)


def after_lost_run(
    attempts: int,
    max_retries: int,
    worker_id: str | None,
    settings: Settings,
    *,
    uniform: Uniform | None = None,
) -> Outcome:
    """A run whose worker died counts as a failed attempt (no exit code to judge)."""
    holder = f"worker {worker_id}" if worker_id else "its worker"
    error = f"lost: {holder} stopped sending heartbeats while running it"
    return after_failure(attempts, max_retries, error, settings, uniform=uniform)


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return str(number)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
