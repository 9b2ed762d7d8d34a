"""The Store contract for job dependencies (issue 8, item 2), on each backend: a job waits
until every dependency completed, dies with a dead or cancelled one, and comes back from the
DLQ only together with its dependencies."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from queuectl.core.errors import DependencyEnded, UnknownDependency
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Job, JobState, NewJob
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, JobFilter, Store


def add(store: Store, job_id: str, *depends_on: str, **fields: Any) -> Job:
    (job,) = store.insert_jobs(
        [NewJob(id=job_id, command=f"echo {job_id}", depends_on=depends_on, **fields)]
    )
    return job


def run(store: Store, job_id: str, state: JobState, worker: str = "w1") -> None:
    """Claim the next job, which must be `job_id`, and finish it in `state`."""
    job = store.claim_job(worker, None)
    assert job is not None, f"expected {job_id} to be claimable"
    assert job.id == job_id
    error = None if state is JobState.COMPLETED else "exited with code 1"
    finished = store.finish_attempt(
        job, worker, Outcome(state, None, error), AttemptRecord(exit_code=1, output="")
    )
    assert finished


def states(store: Store) -> dict[str, str]:
    return {job.id: job.state.value for job in store.list_jobs(JobFilter(limit=0))}


def test_insert_jobs_keeps_depends_on_and_reads_it_back(store: Store) -> None:
    add(store, "a")
    add(store, "b")
    inserted = add(store, "c", "a", "b")
    assert inserted.depends_on == ("a", "b")
    assert store.get_job("c") == inserted
    assert store.get_job("a").depends_on == ()  # type: ignore[union-attr]


def test_claim_job_waits_until_every_dependency_completed(store: Store) -> None:
    add(store, "a", priority=1)
    add(store, "b", priority=1)
    add(store, "c", "a", "b", priority=5)  # highest priority, but it must wait
    run(store, "a", JobState.COMPLETED)
    assert store.seconds_until_next_job(None) == 0.0  # b is due
    run(store, "b", JobState.COMPLETED)
    run(store, "c", JobState.COMPLETED)
    assert store.claim_job("w1", None) is None


def test_waiting_job_is_not_counted_as_due(store: Store) -> None:
    """An idle worker must sleep, not spin on claims that find nothing."""
    add(store, "a")
    add(store, "b", "a")
    job = store.claim_job("w1", None)
    assert job is not None
    assert store.seconds_until_next_job(None) is None
    assert store.claim_job("w2", None) is None


def test_a_failed_attempt_of_a_dependency_keeps_its_dependents_waiting(store: Store) -> None:
    add(store, "a", max_retries=3)
    add(store, "b", "a")
    run(store, "a", JobState.FAILED)
    assert states(store) == {"a": "failed", "b": "pending"}
    run(store, "a", JobState.COMPLETED)
    run(store, "b", JobState.COMPLETED)


def test_batch_may_depend_on_its_own_jobs_in_any_order(store: Store) -> None:
    jobs = [
        NewJob(id="second", command="true", depends_on=("first",)),
        NewJob(id="first", command="true"),
    ]
    store.insert_jobs(jobs)
    run(store, "first", JobState.COMPLETED)
    run(store, "second", JobState.COMPLETED)


def test_unknown_dependency_inserts_nothing(store: Store) -> None:
    add(store, "a")
    batch = [
        NewJob(id="b", command="true", depends_on=("a",)),
        NewJob(id="c", command="true", depends_on=("b", "missing")),
    ]
    with pytest.raises(UnknownDependency, match="'missing'") as caught:
        store.insert_jobs(batch)
    assert caught.value.job_id == "c"
    assert states(store) == {"a": "pending"}


@pytest.mark.parametrize("ended", [JobState.DEAD, JobState.CANCELLED])
def test_dependency_that_ended_is_refused_at_insert(store: Store, ended: JobState) -> None:
    add(store, "a", max_retries=1)
    if ended is JobState.DEAD:
        run(store, "a", JobState.DEAD)
    else:
        store.cancel_job("a")
    with pytest.raises(DependencyEnded, match=f"'a', which is {ended.value}"):
        add(store, "b", "a")
    assert store.get_job("b") is None


def test_completed_dependency_does_not_hold_a_new_job(store: Store) -> None:
    add(store, "a")
    run(store, "a", JobState.COMPLETED)
    add(store, "b", "a")
    run(store, "b", JobState.COMPLETED)


def test_dead_dependency_kills_its_dependents_transitively(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    add(store, "c", "b")
    add(store, "other")
    run(store, "a", JobState.DEAD)
    assert states(store) == {"a": "dead", "b": "dead", "c": "dead", "other": "pending"}
    assert store.get_job("b").last_error == "dependency a ended dead"  # type: ignore[union-attr]
    assert store.get_job("c").last_error == "dependency b ended dead"  # type: ignore[union-attr]
    assert store.list_attempts("b") == []  # they never ran


def test_cancelled_dependency_kills_its_dependents(store: Store) -> None:
    add(store, "a")
    add(store, "b", "a")
    store.cancel_job("a")
    assert states(store) == {"a": "cancelled", "b": "dead"}
    assert store.get_job("b").last_error == "dependency a ended cancelled"  # type: ignore[union-attr]


def test_cancelled_dependent_stays_cancelled_when_its_dependency_dies(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    store.cancel_job("b")
    run(store, "a", JobState.DEAD)
    assert states(store) == {"a": "dead", "b": "cancelled"}


def test_retry_of_a_dependency_does_not_revive_its_dependents(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    run(store, "a", JobState.DEAD)
    assert store.requeue_dead("a")
    assert states(store) == {"a": "pending", "b": "dead"}
    run(store, "a", JobState.COMPLETED)
    assert store.claim_job("w1", None) is None  # b stays in the DLQ


def test_retry_of_a_dependent_while_its_dependency_is_dead_is_refused(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    run(store, "a", JobState.DEAD)
    with pytest.raises(DependencyEnded, match="retry 'a' first"):
        store.requeue_dead("b")
    assert states(store) == {"a": "dead", "b": "dead"}


def test_retry_of_dependency_then_dependent_makes_it_wait_again(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    run(store, "a", JobState.DEAD)
    assert store.requeue_dead("a")
    requeued = store.requeue_job("b", (JobState.DEAD,))
    assert requeued is not None
    assert requeued.state is JobState.PENDING
    run(store, "a", JobState.COMPLETED)  # b was not claimable before a completed
    run(store, "b", JobState.COMPLETED)


def test_retry_of_a_dependent_whose_dependency_completed_runs_it(store: Store) -> None:
    add(store, "a")
    add(store, "b")
    add(store, "c", "a", "b")
    run(store, "a", JobState.COMPLETED)
    store.cancel_job("c")
    assert store.requeue_job("c", (JobState.CANCELLED,)) is not None
    run(store, "b", JobState.COMPLETED)
    run(store, "c", JobState.COMPLETED)


def test_requeue_all_dead_brings_a_chain_back_in_order(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    add(store, "c", "b")
    run(store, "a", JobState.DEAD)
    assert store.requeue_all_dead(None) == 3
    run(store, "a", JobState.COMPLETED)
    run(store, "b", JobState.COMPLETED)
    run(store, "c", JobState.COMPLETED)


def test_requeue_all_dead_leaves_jobs_whose_dependency_stays_ended(store: Store) -> None:
    add(store, "gone")
    add(store, "by-cancel", "gone")  # dies with the cancel below; the cancel is not retried
    add(store, "after-it", "by-cancel")
    add(store, "elsewhere", queue="other", max_retries=1)
    add(store, "by-queue", "elsewhere")
    add(store, "plain", max_retries=1)
    store.cancel_job("gone")
    run(store, "elsewhere", JobState.DEAD)
    run(store, "plain", JobState.DEAD)
    # Only the default queue: `elsewhere` stays dead, so `by-queue` must too.
    assert store.requeue_all_dead("default") == 1
    assert states(store) == {
        "gone": "cancelled",
        "by-cancel": "dead",
        "after-it": "dead",
        "elsewhere": "dead",
        "by-queue": "dead",
        "plain": "pending",
    }
    assert store.requeue_all_dead(None) == 2  # now `elsewhere` comes back, with `by-queue`
    run(store, "plain", JobState.COMPLETED)
    run(store, "elsewhere", JobState.COMPLETED)
    run(store, "by-queue", JobState.COMPLETED)


def test_delete_jobs_forgets_the_dependencies_of_deleted_jobs(store: Store) -> None:
    add(store, "a", max_retries=1)
    add(store, "b", "a")
    run(store, "a", JobState.DEAD)
    assert store.delete_jobs((JobState.DEAD,), 0.0) == 2
    add(store, "b")  # the id is free again, with no dependencies left over
    run(store, "b", JobState.COMPLETED)


def test_get_worker_reads_any_registered_worker(store: Store) -> None:
    assert store.get_worker("nobody") is None
    store.register_worker("w1", "host-a", 123, ["q1"])
    store.deregister_worker("w1")
    worker = store.get_worker("w1")
    assert worker is not None
    assert (worker.host, worker.pid, worker.status, worker.queues) == (
        "host-a",
        123,
        "stopped",
        ("q1",),
    )


def test_dependent_added_while_its_dependency_runs_is_released(store: Store) -> None:
    add(store, "a")
    job = store.claim_job("w1", None)
    assert job is not None
    add(store, "b", "a")
    record = AttemptRecord(exit_code=0, output="")
    assert store.finish_attempt(job, "w1", Outcome(JobState.COMPLETED, None, None), record)
    run(store, "b", JobState.COMPLETED)


RACE_ROUNDS = 40


def test_dependents_added_while_their_dependency_finishes_are_never_lost(db_target: str) -> None:
    """The finish of a dependency and the insert of a job that waits for it, at the same
    moment on two connections: whichever commits first, the dependent must become claimable."""
    finisher, adder = open_store(db_target), open_store(db_target)
    try:
        for round_ in range(RACE_ROUNDS):
            add(finisher, f"x{round_}", queue="x")
            job = finisher.claim_job("w1", ["x"])
            assert job is not None
            start = threading.Barrier(2)

            def finish(job: Job = job, start: threading.Barrier = start) -> None:
                record = AttemptRecord(exit_code=0, output="")
                start.wait()
                finisher.finish_attempt(job, "w1", Outcome(JobState.COMPLETED, None, None), record)

            thread = threading.Thread(target=finish)
            thread.start()
            start.wait()
            add(adder, f"y{round_}", f"x{round_}")
            thread.join()
        claimed = []
        while (job := adder.claim_job("w2", ["default"])) is not None:
            claimed.append(job.id)
        assert sorted(claimed) == sorted(f"y{round_}" for round_ in range(RACE_ROUNDS))
    finally:
        finisher.close()
        adder.close()
