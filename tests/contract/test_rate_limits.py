"""Queue rate limits in the store (issue 16, item 3): at most N job starts of a queue in any
window of its period, enforced by the claim on each backend, for racing claimers too."""

from __future__ import annotations

import threading

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import JobState, NewJob
from queuectl.core.rates import Rate
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, Store
from tests.conftest import run_in_threads, wait_until
from tests.storetools import age_starts

HOUR = 3600
RACERS = 8
DONE = Outcome(JobState.COMPLETED, None, None)


def add(store: Store, queue: str, *ids: str) -> None:
    store.insert_jobs([NewJob(id=job_id, command="true", queue=queue) for job_id in ids])


def claimed_id(store: Store, worker: str = "w1", queues: list[str] | None = None) -> str | None:
    job = store.claim_job(worker, queues)
    return job.id if job is not None else None


def test_queue_list_shows_the_rate_and_none_removes_it(store: Store) -> None:
    store.set_queue_rate("api", Rate(30, 60))  # a rate alone makes a queue appear
    store.set_queue_limit("api", 2)  # and the limit leaves the rate alone
    store.set_queue_paused("api", True)
    (api,) = store.list_queues()
    assert (api.paused, api.max_running, api.rate) == (True, 2, Rate(30, 60))
    assert api.to_json()["rate"] == "30/m"
    store.set_queue_rate("api", None)
    (api,) = store.list_queues()
    assert (api.paused, api.max_running, api.rate) == (True, 2, None)


def test_claim_starts_n_jobs_then_waits_for_the_window(store: Store, db_target: str) -> None:
    add(store, "api", "a1", "a2", "a3")
    add(store, "other", "o1", "o2")
    store.set_queue_rate("api", Rate(2, HOUR))
    assert [claimed_id(store, queues=["api"]) for _ in range(3)] == ["a1", "a2", None]
    # Not due for an hour: an idle worker sleeps until the slot opens, not a poll interval.
    wait = store.seconds_until_next_job(["api"])
    assert wait is not None
    assert HOUR - 60 < wait <= HOUR
    # Other queues are not held back by it.
    assert claimed_id(store) == "o1"
    assert claimed_id(store, queues=["api", "other"]) == "o2"
    assert store.claim_job("w1", None) is None
    age_starts(db_target, "api", HOUR)  # the window moves past both starts
    assert store.seconds_until_next_job(None) == 0
    assert claimed_id(store) == "a3"


def test_a_start_leaves_the_window_one_period_after_it_was_made(store: Store) -> None:
    add(store, "api", "first", "second")
    store.set_queue_rate("api", Rate(1, 1))
    assert claimed_id(store) == "first"
    second = wait_until(lambda: store.claim_job("w1", None), message="the next slot")
    assert second.id == "second"
    first_start, second_start = (
        store.list_attempts(job_id)[0].started_at for job_id in ("first", "second")
    )
    assert (second_start - first_start).total_seconds() >= 1.0


def test_finishing_frees_no_slot_and_the_next_claim_respects_the_rate(store: Store) -> None:
    add(store, "api", "a1", "a2", "a3")
    store.set_queue_rate("api", Rate(2, HOUR))
    first = store.claim_job("w1", None)
    assert first is not None
    record = AttemptRecord(0, "")
    finished, second = store.finish_and_claim(first, "w1", DONE, record, None)
    assert finished
    assert second is not None
    assert second.id == "a2"
    finished, third = store.finish_and_claim(second, "w1", DONE, record, None)
    assert finished
    assert third is None


def test_a_rate_and_a_limit_together(store: Store, db_target: str) -> None:
    add(store, "api", "a1", "a2", "a3")
    store.set_queue_limit("api", 1)
    store.set_queue_rate("api", Rate(2, HOUR))
    a1 = store.claim_job("w1", None)
    assert a1 is not None
    assert store.claim_job("w2", None) is None  # the limit: one running
    # Full: a finish opens it, so an idle worker has no time to wake for.
    assert store.seconds_until_next_job(None) is None
    assert store.finish_attempt(a1, "w1", DONE, AttemptRecord(0, ""))
    assert claimed_id(store, "w2") == "a2"
    assert store.claim_job("w3", None) is None  # the limit again
    a2 = store.get_job("a2")
    assert a2 is not None
    assert store.finish_attempt(a2, "w2", DONE, AttemptRecord(0, ""))
    assert store.claim_job("w3", None) is None  # nothing runs, but the rate is spent
    wait = store.seconds_until_next_job(None)
    assert wait is not None
    assert wait > 60
    age_starts(db_target, "api", HOUR)
    assert claimed_id(store, "w3") == "a3"


def test_removing_the_rate_forgets_the_starts(store: Store) -> None:
    add(store, "api", "a1", "a2", "a3")
    store.set_queue_rate("api", Rate(1, HOUR))
    assert claimed_id(store) == "a1"
    assert store.claim_job("w1", None) is None
    store.set_queue_rate("api", None)
    assert claimed_id(store) == "a2"
    store.set_queue_rate("api", Rate(1, HOUR))  # a fresh window: a2 ran without a rate
    assert claimed_id(store) == "a3"


def test_a_lowered_rate_counts_the_starts_already_made(store: Store) -> None:
    add(store, "api", "a1", "a2", "a3")
    store.set_queue_rate("api", Rate(5, HOUR))
    assert [claimed_id(store) for _ in range(2)] == ["a1", "a2"]
    store.set_queue_rate("api", Rate(2, HOUR))
    assert store.claim_job("w1", None) is None


def test_racing_claimers_never_exceed_the_rate(store: Store, db_target: str) -> None:
    add(store, "api", *[f"job-{n}" for n in range(RACERS * 2)])
    store.set_queue_rate("api", Rate(3, HOUR))
    start = threading.Barrier(RACERS)
    claimed: list[list[str]] = [[] for _ in range(RACERS)]

    def race(slot: int) -> None:
        racer = open_store(db_target)
        try:
            start.wait()
            while (job := racer.claim_job(f"w{slot}", None)) is not None:
                claimed[slot].append(job.id)
                assert racer.finish_attempt(job, f"w{slot}", DONE, AttemptRecord(0, ""))
        finally:
            racer.close()

    run_in_threads(RACERS, race)
    assert sum(len(batch) for batch in claimed) == 3
