"""The state machine's decisions: what an attempt or a lost run turns a job into (SPEC 2.2)."""

from __future__ import annotations

import signal

import pytest

from queuectl.core.lifecycle import after_attempt, after_lost_run, describe_failure
from queuectl.core.models import JobState, RunResult
from queuectl.core.settings import Settings

SETTINGS = Settings()
OK = RunResult(exit_code=0)
FAILED = RunResult(exit_code=1)


def test_success_completes_the_job() -> None:
    outcome = after_attempt(1, 3, OK, 300, SETTINGS)
    assert (outcome.state, outcome.retry_delay, outcome.last_error) == (
        JobState.COMPLETED,
        None,
        None,
    )


def test_success_on_the_last_attempt_still_completes() -> None:
    assert after_attempt(3, 3, OK, 300, SETTINGS).state == JobState.COMPLETED


@pytest.mark.parametrize(("attempts", "delay"), [(1, 2.0), (2, 4.0)])
def test_failure_with_attempts_left_retries_after_backoff(attempts: int, delay: float) -> None:
    outcome = after_attempt(attempts, 3, FAILED, 300, SETTINGS)
    assert (outcome.state, outcome.retry_delay) == (JobState.FAILED, delay)
    assert outcome.last_error == "exited with code 1"


def test_failure_of_the_last_attempt_is_dead() -> None:
    outcome = after_attempt(3, 3, FAILED, 300, SETTINGS)
    assert (outcome.state, outcome.retry_delay) == (JobState.DEAD, None)
    assert outcome.last_error == "exited with code 1"


def test_max_retries_zero_is_dead_after_the_one_run() -> None:
    assert after_attempt(1, 0, FAILED, 300, SETTINGS).state == JobState.DEAD


def test_backoff_follows_the_settings() -> None:
    settings = Settings(backoff_base=3, backoff_max=20)
    assert after_attempt(2, 9, FAILED, 300, settings).retry_delay == 9.0
    assert after_attempt(3, 9, FAILED, 300, settings).retry_delay == 20.0


@pytest.mark.parametrize(
    ("run", "timeout", "error"),
    [
        (RunResult(exit_code=0), 300, None),
        (RunResult(exit_code=2), 300, "exited with code 2"),
        (RunResult(exit_code=127), 300, "exited with code 127 (command not found)"),
        (RunResult(exit_code=None, timed_out=True, signal=15), 1, "timed out after 1s"),
        (RunResult(exit_code=None, timed_out=True), 0.5, "timed out after 0.5s"),
        (RunResult(exit_code=None, signal=signal.SIGKILL), 300, "killed by signal SIGKILL"),
        (RunResult(exit_code=None, signal=200), 300, "killed by signal 200"),
        (
            RunResult(exit_code=None, spawn_error="No such file"),
            300,
            "could not start: No such file",
        ),
    ],
)
def test_describe_failure_says_why(run: RunResult, timeout: float, error: str | None) -> None:
    assert describe_failure(run, timeout) == error


def test_a_timed_out_run_fails_even_if_the_shell_exited_0() -> None:
    run = RunResult(exit_code=None, timed_out=True)
    assert after_attempt(1, 1, run, 2, SETTINGS).state == JobState.DEAD


def test_lost_run_counts_as_a_failed_attempt() -> None:
    outcome = after_lost_run(1, 3, "worker-abc", SETTINGS)
    assert (outcome.state, outcome.retry_delay) == (JobState.FAILED, 2.0)
    assert outcome.last_error is not None
    assert "worker-abc" in outcome.last_error
    assert "lost" in outcome.last_error


def test_lost_last_run_is_dead() -> None:
    outcome = after_lost_run(2, 2, None, SETTINGS)
    assert outcome.state == JobState.DEAD
    assert outcome.last_error is not None
    assert "its worker" in outcome.last_error
