"""Exit-code policies, attempt outcome classes and backoff jitter: the pure decisions
(issue 8, item 1)."""

from __future__ import annotations

import random
import signal

import pytest

from queuectl.core.backoff import full_jitter
from queuectl.core.errors import InvalidConfig
from queuectl.core.lifecycle import (
    NO_POLICY,
    ExitPolicy,
    after_attempt,
    after_failure,
    after_lost_run,
    classify,
)
from queuectl.core.models import AttemptOutcome, JobState, RunResult
from queuectl.core.settings import Settings, normalize

SETTINGS = Settings()
FATAL_2 = ExitPolicy(fatal_on_exit=(2, 126))
ONLY_75 = ExitPolicy(retry_on_exit=(75, 111))


def exited(code: int) -> RunResult:
    return RunResult(exit_code=code)


# -- the exit policy --------------------------------------------------------------------


def test_a_fatal_exit_code_is_dead_at_once_whatever_attempts_remain() -> None:
    outcome = after_attempt(1, 5, exited(2), 300, SETTINGS, policy=FATAL_2)
    assert (outcome.state, outcome.retry_delay) == (JobState.DEAD, None)
    assert outcome.last_error == "exit code 2 is fatal (fatal_on_exit)"


def test_a_code_not_in_fatal_on_exit_retries_as_usual() -> None:
    outcome = after_attempt(1, 5, exited(1), 300, SETTINGS, policy=FATAL_2)
    assert (outcome.state, outcome.retry_delay) == (JobState.FAILED, 2.0)
    assert outcome.last_error == "exited with code 1"


def test_a_code_in_retry_on_exit_retries_until_max_retries() -> None:
    first = after_attempt(1, 3, exited(75), 300, SETTINGS, policy=ONLY_75)
    assert (first.state, first.retry_delay, first.last_error) == (
        JobState.FAILED,
        2.0,
        "exited with code 75",
    )
    last = after_attempt(3, 3, exited(111), 300, SETTINGS, policy=ONLY_75)
    assert (last.state, last.last_error) == (JobState.DEAD, "exited with code 111")


def test_a_code_outside_retry_on_exit_is_dead_at_once() -> None:
    outcome = after_attempt(1, 5, exited(1), 300, SETTINGS, policy=ONLY_75)
    assert outcome.state == JobState.DEAD
    assert outcome.last_error == "exit code 1 is not retried (retry_on_exit: 75, 111)"


def test_command_not_found_is_judged_by_the_policy_too() -> None:
    outcome = after_attempt(1, 5, exited(127), 300, SETTINGS, policy=ONLY_75)
    assert outcome.state == JobState.DEAD
    assert "127" in (outcome.last_error or "")


def test_success_completes_whatever_the_policy() -> None:
    policy = ExitPolicy(retry_on_exit=(75,), fatal_on_exit=(0,))
    assert after_attempt(1, 3, exited(0), 300, SETTINGS, policy=policy).state == (
        JobState.COMPLETED
    )


@pytest.mark.parametrize(
    "run",
    [
        RunResult(exit_code=None, timed_out=True),
        RunResult(exit_code=None, signal=signal.SIGKILL),
        RunResult(exit_code=None, spawn_error="no such directory"),
    ],
    ids=["timeout", "signal", "spawn-error"],
)
def test_timeouts_signals_and_spawn_errors_follow_the_normal_retry_rules(run: RunResult) -> None:
    strict = ExitPolicy(retry_on_exit=(75,), fatal_on_exit=(2,))
    outcome = after_attempt(1, 3, run, 300, SETTINGS, policy=strict)
    assert (outcome.state, outcome.retry_delay) == (JobState.FAILED, 2.0)


def test_a_lost_run_follows_the_normal_retry_rules() -> None:
    assert after_lost_run(1, 3, "w1", SETTINGS).state == JobState.FAILED
    assert after_lost_run(3, 3, "w1", SETTINGS).state == JobState.DEAD


def test_without_a_policy_nothing_changes() -> None:
    assert NO_POLICY.refusal(2) is None
    assert after_failure(1, 3, "exited with code 2", SETTINGS, exit_code=2).state == (
        JobState.FAILED
    )


# -- outcome classes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "killed", "expected"),
    [
        (RunResult(exit_code=0), False, (AttemptOutcome.OK, None)),
        (RunResult(exit_code=3), False, (AttemptOutcome.FAILED, None)),
        (RunResult(exit_code=127), False, (AttemptOutcome.FAILED, None)),
        (RunResult(exit_code=None, timed_out=True), False, (AttemptOutcome.TIMEOUT, None)),
        (
            RunResult(exit_code=None, signal=signal.SIGTERM, timed_out=True),
            False,
            (AttemptOutcome.TIMEOUT, None),
        ),
        (
            RunResult(exit_code=None, signal=signal.SIGKILL),
            False,
            (AttemptOutcome.KILLED, "SIGKILL"),
        ),
        (RunResult(exit_code=None, signal=99), False, (AttemptOutcome.KILLED, "99")),
        # killed by its worker: the shell reports the command's signal as 128 + n
        (RunResult(exit_code=143), True, (AttemptOutcome.KILLED, "SIGTERM")),
        (RunResult(exit_code=1), True, (AttemptOutcome.KILLED, None)),
        (RunResult(exit_code=0), True, (AttemptOutcome.OK, None)),
        (
            RunResult(exit_code=None, spawn_error="no such directory"),
            False,
            (AttemptOutcome.SPAWN_ERROR, None),
        ),
    ],
)
def test_classify_names_how_a_run_ended(
    run: RunResult, killed: bool, expected: tuple[AttemptOutcome, str | None]
) -> None:
    assert classify(run, killed=killed) == expected


def test_outcome_values_are_the_documented_words() -> None:
    assert [kind.value for kind in AttemptOutcome] == [
        "ok",
        "failed",
        "timeout",
        "killed",
        "lost",
        "spawn-error",
    ]


# -- backoff jitter -----------------------------------------------------------------------


def test_without_jitter_delays_are_exact_and_need_no_randomness() -> None:
    def no_randomness(low: float, high: float) -> float:
        raise AssertionError("drew a random number with backoff-jitter none")

    delays = [
        after_failure(n, 9, "boom", SETTINGS, uniform=no_randomness).retry_delay for n in (1, 2, 3)
    ]
    assert delays == [2.0, 4.0, 8.0]


def test_full_jitter_draws_between_zero_and_the_computed_delay() -> None:
    settings = Settings(backoff_jitter="full", backoff_base=2, backoff_max=6)
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high * 0.25

    delays = [after_failure(n, 9, "boom", settings, uniform=uniform).retry_delay for n in (1, 2, 3)]
    assert draws == [(0.0, 2.0), (0.0, 4.0), (0.0, 6.0)]  # the cap applies before the draw
    assert delays == [0.5, 1.0, 1.5]


def test_full_jitter_with_a_seeded_random_is_reproducible_and_in_range() -> None:
    settings = Settings(backoff_jitter="full", backoff_base=2, backoff_max=3600)

    def delays(seed: int) -> list[float | None]:
        rng = random.Random(seed)
        return [
            after_failure(n, 20, "boom", settings, uniform=rng.uniform).retry_delay
            for n in range(1, 11)
        ]

    first = delays(7)
    assert first == delays(7)
    assert first != delays(8)
    for attempt, delay in enumerate(first, start=1):
        assert delay is not None
        assert 0.0 <= delay <= min(2.0**attempt, 3600.0)
    assert len(set(first)) == len(first)  # spread out, not the fixed ladder


def test_full_jitter_applies_to_lost_runs_too() -> None:
    settings = Settings(backoff_jitter="full")
    outcome = after_lost_run(1, 3, "w1", settings, uniform=lambda low, high: 0.125)
    assert (outcome.state, outcome.retry_delay) == (JobState.FAILED, 0.125)


def test_full_jitter_never_leaves_the_range_whatever_the_draw() -> None:
    assert full_jitter(4.0, lambda low, high: -1.0) == 0.0
    assert full_jitter(4.0, lambda low, high: 9.0) == 4.0


def test_backoff_jitter_config_accepts_none_and_full_only() -> None:
    assert Settings().backoff_jitter == "none"
    assert normalize("backoff-jitter", " FULL ") == "full"
    assert normalize("backoff-jitter", "none") == "none"
    with pytest.raises(InvalidConfig, match="backoff-jitter: 'some' is not one of none, full"):
        normalize("backoff-jitter", "some")
    assert Settings.from_stored({"backoff-jitter": "full"}).backoff_jitter == "full"
    assert Settings.from_stored({"backoff-jitter": "bogus"}).backoff_jitter == "none"
