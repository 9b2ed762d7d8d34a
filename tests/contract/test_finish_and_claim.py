"""finish_and_claim: a busy worker's record-then-claim step, on each backend (issue 5).

It must leave the store exactly as finish_attempt followed by claim_job would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Job, JobState, NewJob
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, Store

WORKER = "w1"


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    opened = open_store(db_target)
    opened.register_worker(WORKER, "host", 1, None)
    yield opened
    opened.close()


def add(store: Store, *ids: str, priority: int = 0, queue: str = "default") -> None:
    store.insert_jobs(
        [NewJob(id=job_id, command="true", priority=priority, queue=queue) for job_id in ids]
    )


def claimed(store: Store) -> Job:
    job = store.claim_job(WORKER, None)
    assert job is not None
    return job


def completed() -> tuple[Outcome, AttemptRecord]:
    return Outcome(JobState.COMPLETED, None, None), AttemptRecord(exit_code=0, output="done")


def test_finish_and_claim_records_the_job_and_takes_the_next_in_order(store: Store) -> None:
    add(store, "first", "low")
    add(store, "high", priority=5)
    job = claimed(store)
    assert job.id == "high"
    finished, following = store.finish_and_claim(job, WORKER, *completed(), None)
    assert finished is True
    assert following is not None
    assert (following.id, following.state, following.locked_by) == ("first", "processing", WORKER)
    done = store.get_job("high")
    assert done is not None
    assert (done.state, done.exit_code, done.output) == ("completed", 0, "done")
    assert done.locked_by is None
    [attempt] = store.list_attempts("high")
    assert (attempt.finished_at is not None, attempt.exit_code) == (True, 0)
    assert [a.attempt for a in store.list_attempts("first")] == [1]
    [worker] = store.list_workers(30)
    assert worker.current_job_id == "first"


def test_finish_and_claim_with_nothing_left_returns_none(store: Store) -> None:
    add(store, "only")
    finished, following = store.finish_and_claim(claimed(store), WORKER, *completed(), None)
    assert (finished, following) == (True, None)
    [worker] = store.list_workers(30)
    assert worker.current_job_id is None


def test_finish_and_claim_of_a_lost_claim_changes_it_not_but_still_claims(store: Store) -> None:
    add(store, "cancelled", "next")
    job = claimed(store)
    assert store.cancel_job(job.id) is not None
    finished, following = store.finish_and_claim(job, WORKER, *completed(), None)
    assert finished is False
    assert following is not None
    assert following.id == "next"
    gone = store.get_job("cancelled")
    assert gone is not None
    assert gone.state is JobState.CANCELLED
    assert gone.exit_code is None


def test_finish_and_claim_serves_only_the_given_queues(store: Store) -> None:
    add(store, "mine", queue="alpha")
    add(store, "theirs", queue="beta")
    add(store, "mine-too", queue="alpha")
    job = store.claim_job(WORKER, ["alpha"])
    assert job is not None
    assert job.id == "mine"
    _, following = store.finish_and_claim(job, WORKER, *completed(), ["alpha"])
    assert following is not None
    assert following.id == "mine-too"


def test_finish_and_claim_does_not_retake_a_job_it_failed_for_later(store: Store) -> None:
    add(store, "flaky")
    outcome = Outcome(JobState.FAILED, 60.0, "exit code 1")
    finished, following = store.finish_and_claim(
        claimed(store), WORKER, outcome, AttemptRecord(exit_code=1, output=""), None
    )
    assert (finished, following) == (True, None)
    job = store.get_job("flaky")
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.last_error == "exit code 1"
