"""Real workers under exit-code policies, recording attempt outcomes, with backoff jitter
(issue 8, item 1)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import Queuectl, parse_time, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


def burst(q: Queuectl) -> None:
    code, err = q.finish(q.start_workers("--burst"), timeout=60)
    assert code == 0, err


def outcomes(q: Queuectl, job_id: str) -> list[tuple[str, str | None]]:
    return [(attempt["outcome"], attempt["signal"]) for attempt in q.history(job_id)]


def test_a_fatal_exit_code_goes_to_the_dlq_after_one_attempt(q: Queuectl) -> None:
    job_id = q.ok("add", "--fatal-on-exit", "2,126", "--max-retries", "5", "--", "exit 2").strip()
    burst(q)
    job = q.job(job_id)
    assert (job["state"], job["attempts"], job["exit_code"]) == ("dead", 1, 2)
    assert job["last_error"] == "exit code 2 is fatal (fatal_on_exit)"
    assert outcomes(q, job_id) == [("failed", None)]
    assert [dead["id"] for dead in q.json("dlq", "list")] == [job_id]
    assert "failed" in q.ok("show", job_id).split("History:")[1]


def test_a_code_in_retry_on_exit_is_retried_and_others_are_not(q: Queuectl) -> None:
    q.config("backoff-max", "0")  # retries are due at once, so one burst runs them all
    retried = q.ok("add", "--retry-on-exit", "75", "--max-retries", "3", "--", "exit 75").strip()
    refused = q.ok("add", "--retry-on-exit", "75", "--max-retries", "3", "--", "exit 1").strip()
    plain = q.ok("add", "--fatal-on-exit", "2", "--max-retries", "2", "--", "exit 3").strip()
    burst(q)
    job = q.job(retried)
    assert (job["state"], job["attempts"]) == ("dead", 3)
    assert job["last_error"] == "exited with code 75"
    assert [a["exit_code"] for a in job["history"]] == [75, 75, 75]
    assert outcomes(q, retried) == [("failed", None)] * 3
    job = q.job(refused)
    assert (job["state"], job["attempts"]) == ("dead", 1)
    assert job["last_error"] == "exit code 1 is not retried (retry_on_exit: 75)"
    assert q.job(plain)["attempts"] == 2  # a code outside fatal_on_exit retries as usual


def test_a_retried_exit_waits_for_its_backoff(q: Queuectl) -> None:
    job_id = q.ok("add", "--retry-on-exit", "75", "--", "exit 75").strip()
    burst(q)
    job = q.job(job_id)
    assert (job["state"], job["attempts"]) == ("failed", 1)
    waited = (parse_time(job["run_at"]) - parse_time(job["finished_at"])).total_seconds()
    assert 1.9 <= waited <= 2.1  # backoff-base 2, jitter off: exactly 2 s


def test_timeouts_retry_even_with_a_strict_policy(q: Queuectl) -> None:
    q.config("backoff-max", "0")
    job_id = q.ok(
        "add", "--retry-on-exit", "75", "--max-retries", "2", "--timeout", "0.3", "--", "sleep 5"
    ).strip()
    burst(q)
    job = q.job(job_id)
    assert (job["state"], job["attempts"]) == ("dead", 2)
    assert outcomes(q, job_id) == [("timeout", None), ("timeout", None)]


def test_each_attempt_records_how_it_ended(q: Queuectl, tmp_path: Path) -> None:
    q.config("backoff-max", "0")
    missing = tmp_path / "missing"
    jobs = {
        "ok": q.enqueue(command="true", max_retries=1),
        "failed": q.enqueue(command="exit 4", max_retries=1),
        "timeout": q.enqueue(command="sleep 5", timeout=0.3, max_retries=1),
        "killed": q.enqueue(command="kill -KILL $$", max_retries=1),
        "spawn-error": q.enqueue(command="true", cwd=str(missing), max_retries=1),
    }
    burst(q)
    got = {kind: outcomes(q, job_id) for kind, job_id in jobs.items()}
    assert got == {
        "ok": [("ok", None)],
        "failed": [("failed", None)],
        "timeout": [("timeout", None)],
        "killed": [("killed", "SIGKILL")],
        "spawn-error": [("spawn-error", None)],
    }
    history = q.ok("show", jobs["killed"]).split("History:")[1]
    assert "killed (SIGKILL)" in history
    assert "killed by signal SIGKILL" in history


def test_a_run_whose_worker_died_is_recorded_as_lost(q: Queuectl, tmp_path: Path) -> None:
    q.config("backoff-max", "0")
    first_run = tmp_path / "first-run"
    job_id = q.enqueue(
        command=f"if [ -e {first_run} ]; then echo second run; else echo $$ > {first_run};"
        " exec sleep 30; fi",
        fatal_on_exit=[1],
    )
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    wait_until(lambda: first_run.exists() and first_run.read_text().strip(), message="job pid")
    q.signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(first_run.read_text()), signal.SIGKILL)
    q.config("lease-timeout", "1")
    wait_until(
        lambda: q.job(job_id)["state"] == "failed", timeout=20, interval=0.3, message="rescue"
    )
    burst(q)
    job = q.job(job_id)
    assert job["state"] == "completed"
    assert outcomes(q, job_id) == [("lost", None), ("ok", None)]


def test_full_jitter_spreads_the_retry_times(q: Queuectl) -> None:
    q.config("backoff-base", "1000")
    q.config("backoff-jitter", "full")
    ids = [q.enqueue(command="exit 1", max_retries=2) for _ in range(8)]
    burst(q)
    waits = []
    for job_id in ids:
        job = q.job(job_id)
        if job["state"] == "failed":  # one drawn under a second may have run again already
            waits.append(
                (parse_time(job["run_at"]) - parse_time(job["finished_at"])).total_seconds()
            )
    assert len(waits) >= 6
    assert all(0.0 <= wait <= 1000.0 for wait in waits), waits
    # Without jitter every wait would be 1000 s; drawn uniformly they are spread out.
    assert max(waits) - min(waits) > 100, waits
