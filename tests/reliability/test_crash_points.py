"""A worker that dies at any point of a job's life ($QUEUECTL_FAULT): the job reruns only
when its result was not recorded, and each attempt is counted once. A job that kills its
own worker ends in the DLQ while other jobs flow."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queuectl, processes_with_argument, wait_until
from tests.reliability.tools import (
    guard_pids,
    job_processes,
    peek_job,
    start_workers_with,
    worker_pids,
)

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

LOST = "stopped sending heartbeats"


def ledgered(ledger: Path, then: str = "") -> str:
    """A job that notes each of its runs (attempt number) in `ledger`."""
    return f"echo $QUEUECTL_ATTEMPT >> {ledger}; {then}"


def runs(ledger: Path) -> list[int]:
    return [int(line) for line in ledger.read_text().split()] if ledger.exists() else []


def crash_once(q: Queuectl, point: str) -> None:
    """One worker with the crash point armed; it must die there (exit status 1 from
    `worker start`: its worker exited abruptly) without a stop request."""
    proc = start_workers_with(q, {"QUEUECTL_FAULT": point})
    code, err = q.finish(proc, timeout=30)
    assert code == 1, err


@pytest.mark.parametrize(
    ("point", "expected_runs", "history_errors"),
    [
        ("after-claim", [2], [LOST, None]),  # claimed, never started: rerun
        ("before-record", [1, 2], [LOST, None]),  # ran, result lost with the worker: rerun
        ("after-record", [1], [None]),  # the result was kept: never rerun
    ],
)
def test_worker_crash_point_reruns_only_unrecorded_runs(
    q: Queuectl,
    tmp_path: Path,
    point: str,
    expected_runs: list[int],
    history_errors: list[str | None],
) -> None:
    q.config("lease-timeout", "1")
    q.config("backoff-max", "0")
    ledger = tmp_path / "ledger"
    job_id = q.enqueue(command=ledgered(ledger, "echo ran"))
    crash_once(q, point)

    proc = q.start_workers()
    job = q.wait_for_state(job_id, "completed", timeout=30)
    # Long enough for a wrongful rescue and rerun (lease 1 s, rescues every 0.25 s).
    time.sleep(2.5)
    job = q.job(job_id)
    assert runs(ledger) == expected_runs
    assert job["state"] == "completed"
    assert job["attempts"] == len(history_errors)
    assert [attempt["attempt"] for attempt in job["history"]] == list(
        range(1, len(history_errors) + 1)
    )
    for attempt, error in zip(job["history"], history_errors, strict=True):
        assert (error is None) == (attempt["error"] is None), job["history"]
        if error is not None:
            assert error in attempt["error"]
    q.signal_group(proc, signal.SIGTERM)
    assert q.finish(proc)[0] == 0


def test_crash_during_rescue_leaves_the_rescue_to_the_next_worker(
    q: Queuectl, tmp_path: Path
) -> None:
    q.config("lease-timeout", "1")
    q.config("backoff-max", "0")
    ledger = tmp_path / "ledger"
    leftover = f"30{os.getpid() % 10000:04d}.{time.monotonic_ns() % 1000:03d}5"
    prefix = f"rescue-{os.getpid()}-{time.monotonic_ns()}-"
    job_id = q.enqueue(
        id=f"{prefix}job",
        command=ledgered(ledger, f'[ "$QUEUECTL_ATTEMPT" = 1 ] && sleep {leftover} & wait'),
    )
    first = q.start_workers()
    wait_until(lambda: processes_with_argument(leftover), message="the first run")
    (guard,) = wait_until(lambda: guard_pids(first), message="the guard")
    # The guard would kill the leftover the moment the worker dies; this test is about a
    # rescue that finds one, so the guard goes first (its supervisor frozen, so that it
    # cannot start another).
    os.kill(first.pid, signal.SIGSTOP)
    os.kill(guard, signal.SIGKILL)
    q.signal_group(first, signal.SIGKILL)
    first.wait(timeout=10)
    assert processes_with_argument(leftover)  # a background process outlives its worker

    crash_once(q, "during-rescue")  # kills the leftover, then dies before recording
    assert processes_with_argument(leftover) == []
    assert peek_job(q, job_id) == ("processing", 1)  # not rescued yet

    proc = q.start_workers()
    job = q.wait_for_state(job_id, "completed", timeout=30)
    assert runs(ledger) == [1, 2]
    assert job["attempts"] == 2
    assert [attempt["attempt"] for attempt in job["history"]] == [1, 2]
    assert LOST in job["history"][0]["error"]
    assert job["history"][1]["error"] is None
    assert job_processes(prefix) == {}
    q.signal_group(proc, signal.SIGTERM)
    assert q.finish(proc)[0] == 0


def test_job_that_kills_its_worker_ends_dead_while_others_flow(q: Queuectl) -> None:
    q.config("lease-timeout", "1")
    q.config("backoff-max", "0")
    killer = q.enqueue(command="kill -9 $PPID; sleep 5", max_retries=3, priority=10)
    others = [q.enqueue(command="echo fine") for _ in range(10)]
    proc = q.start_workers("--count", "2")

    def settled() -> dict[str, dict[str, Any]] | None:
        jobs = {job["id"]: job for job in q.jobs()}
        done = jobs[killer]["state"] == "dead"
        return jobs if done and all(jobs[i]["state"] == "completed" for i in others) else None

    jobs = wait_until(settled, timeout=60, interval=0.3, message="the killer dead, others done")
    assert all(jobs[job_id]["output"] == "fine\n" for job_id in others)
    job = q.job(killer)
    assert job["attempts"] == 3
    assert [attempt["attempt"] for attempt in job["history"]] == [1, 2, 3]
    assert all(LOST in attempt["error"] for attempt in job["history"])
    assert LOST in job["last_error"]
    assert len({attempt["worker_id"] for attempt in job["history"]}) == 3  # each one killed
    # The supervisor replaced the killed workers: the pool is back at full strength.
    assert proc.poll() is None
    wait_until(lambda: len(worker_pids(proc)) == 2, message="the pool back at two workers")
    q.signal_group(proc, signal.SIGTERM)
    code, _ = q.finish(proc)
    assert code == 0  # a graceful stop, though workers died on the way and were replaced


def test_paused_worker_loses_its_job_cleanly_to_a_rescue(q: Queuectl, tmp_path: Path) -> None:
    """A worker frozen past its lease (SIGSTOP) is taken for dead: the rescue ends its run,
    the next attempt runs once, and the thawed worker drops its stale result (fencing)."""
    q.config("lease-timeout", "1")
    q.config("backoff-max", "0")
    ledger = tmp_path / "ledger"
    # The first run would take 30 s: only the rescue can end it.
    job_id = q.enqueue(
        command=f'echo "S $QUEUECTL_ATTEMPT $QUEUECTL_WORKER_ID" >> {ledger};'
        ' [ "$QUEUECTL_ATTEMPT" = 1 ] && sleep 30;'
        f' echo "E $QUEUECTL_ATTEMPT $QUEUECTL_WORKER_ID" >> {ledger}'
    )
    frozen = q.start_workers()
    holder = q.wait_for_state(job_id, "processing")["locked_by"]
    wait_until(lambda: ledger.exists(), message="the first run")
    (frozen_pid,) = worker_pids(frozen)
    os.kill(frozen_pid, signal.SIGSTOP)
    try:
        rescuer = q.start_workers()
        job = q.wait_for_state(job_id, "completed", timeout=30)
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
    rescuer_id = job["history"][1]["worker_id"]
    assert ledger.read_text().splitlines() == [
        f"S 1 {holder}",
        f"S 2 {rescuer_id}",
        f"E 2 {rescuer_id}",
    ]
    assert [attempt["worker_id"] for attempt in job["history"]] == [holder, rescuer_id]
    assert LOST in job["history"][0]["error"]
    # Thawed, the first worker finds its claim gone: nothing of it is recorded, and it
    # goes on serving (its next heartbeat marks it alive again).
    wait_until(lambda: len(q.active_workers()) == 2, timeout=20, message="both workers alive")
    again = q.job(job_id)
    assert (again["state"], again["attempts"], again["output"]) == ("completed", 2, "")
    assert len(again["history"]) == 2
    follow_up = q.enqueue(command="echo later")
    assert q.wait_for_state(follow_up, "completed")["output"] == "later\n"
    for proc in (frozen, rescuer):
        q.signal_group(proc, signal.SIGTERM)
        assert q.finish(proc)[0] == 0
