"""The Store contract: every behaviour the rest of queuectl relies on, run on each backend."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from queuectl.core.errors import DuplicateJobId
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Job, JobState, NewJob
from queuectl.core.settings import Settings
from queuectl.service import QueueService
from queuectl.store import open_store
from queuectl.store.base import AttemptOutput, AttemptRecord, JobFilter, QueueInfo, Store
from tests import pgtools
from tests.conftest import run_in_threads, wait_until

SHORT_LEASE = 0.3  # seconds; a heartbeat older than this is stale in the lease tests
CLOCK_SLACK = 5.0  # seconds allowed between "now" on the store and in the test
RACE_JOBS = 200
RACE_PROCESSES = 4
RACE_THREADS = 8

StoreOpener = Callable[[], Store]


@pytest.fixture
def open_another(db_target: str) -> Iterator[StoreOpener]:
    """Opens more connections to the same store, as other processes would have."""
    opened: list[Store] = []

    def opener() -> Store:
        opened.append(open_store(db_target))
        return opened[-1]

    yield opener
    for each in opened:
        each.close()


def new_job(job_id: str, **fields: Any) -> NewJob:
    return NewJob(id=job_id, command=f"echo {job_id}", **fields)


def insert(store: Store, *ids: str, **fields: Any) -> list[Job]:
    return store.insert_jobs([new_job(job_id, **fields) for job_id in ids])


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def claim(store: Store, worker_id: str = "w1", queues: list[str] | None = None) -> Job:
    job = store.claim_job(worker_id, queues)
    assert job is not None, "expected a runnable job"
    return job


def finish(
    store: Store,
    job: Job,
    state: JobState = JobState.COMPLETED,
    *,
    worker_id: str | None = None,
    delay: float | None = None,
    error: str | None = None,
    exit_code: int | None = 0,
    output: str | None = "out",
) -> bool:
    return store.finish_attempt(
        job,
        worker_id if worker_id is not None else job.locked_by or "",
        Outcome(state, delay, error),
        AttemptRecord(exit_code=exit_code, output=output),
    )


def close_to(value: datetime, expected: datetime, slack: float = CLOCK_SLACK) -> bool:
    return abs((value - expected).total_seconds()) <= slack


# -- insert, get, list -------------------------------------------------------------------


def test_insert_jobs_returns_what_get_job_reads(store: Store) -> None:
    (inserted,) = insert(store, "job-1", queue="q1", priority=-7, max_retries=5, timeout=2.5)
    assert store.get_job("job-1") == inserted
    assert inserted.state is JobState.PENDING
    assert (inserted.queue, inserted.priority, inserted.max_retries) == ("q1", -7, 5)
    assert (inserted.attempts, inserted.timeout, inserted.output) == (0, 2.5, "")
    assert inserted.created_at.utcoffset() == timedelta(0)
    assert close_to(inserted.created_at, store.now())
    assert inserted.run_at == inserted.created_at == inserted.updated_at
    assert inserted.scheduled_at is None
    assert inserted.locked_by is None


def test_insert_jobs_scheduled_at_sets_run_at(store: Store) -> None:
    later = (store.now() + timedelta(hours=1)).replace(microsecond=250000)
    (inserted,) = insert(store, "later", scheduled_at=later)
    stored = store.get_job("later")
    assert stored == inserted
    assert stored.scheduled_at == later
    assert stored.run_at == later


def test_get_job_unknown_returns_none(store: Store) -> None:
    assert store.get_job("missing") is None


def test_list_jobs_in_enqueue_order(store: Store) -> None:
    insert(store, "c", "a")
    insert(store, "b")
    insert(store, "0")
    assert ids(store.list_jobs(JobFilter(limit=0))) == ["c", "a", "b", "0"]


def test_list_jobs_limit_keeps_the_newest(store: Store) -> None:
    insert(store, *[f"j{n}" for n in range(5)])
    assert ids(store.list_jobs(JobFilter(limit=2))) == ["j3", "j4"]
    assert ids(store.list_jobs(JobFilter(limit=10))) == [f"j{n}" for n in range(5)]
    assert len(store.list_jobs(JobFilter(limit=0))) == 5


def test_list_jobs_filters_by_state_and_queue(store: Store) -> None:
    insert(store, "a1", "a2", queue="a")
    insert(store, "b1", queue="b")
    finish(store, claim(store, queues=["a"]))  # a1 completed
    assert ids(store.list_jobs(JobFilter(queue="a", limit=0))) == ["a1", "a2"]
    assert ids(store.list_jobs(JobFilter(states=(JobState.PENDING,), limit=0))) == ["a2", "b1"]
    both = JobFilter(states=(JobState.COMPLETED, JobState.PENDING), queue="a", limit=1)
    assert ids(store.list_jobs(both)) == ["a2"]
    assert store.list_jobs(JobFilter(states=(JobState.DEAD,))) == []


def test_insert_jobs_duplicate_id_inserts_nothing(store: Store) -> None:
    insert(store, "taken")
    with pytest.raises(DuplicateJobId, match="taken"):
        insert(store, "new-1", "taken", "new-2")
    assert ids(store.list_jobs(JobFilter(limit=0))) == ["taken"]


def test_insert_jobs_duplicate_within_batch_inserts_nothing(store: Store) -> None:
    with pytest.raises(DuplicateJobId):
        insert(store, "x", "y", "x")
    assert store.list_jobs(JobFilter(limit=0)) == []


# -- claim -------------------------------------------------------------------------------


def test_claim_job_order_is_priority_then_run_at_then_enqueue(store: Store) -> None:
    now = store.now()
    insert(store, "low-old", priority=-1, scheduled_at=now - timedelta(minutes=9))
    insert(store, "mid-new", scheduled_at=now - timedelta(minutes=1))
    insert(store, "mid-first")
    insert(store, "mid-old", scheduled_at=now - timedelta(minutes=5))
    insert(store, "mid-second")
    insert(store, "high", priority=10)
    claimed = [claim(store).id for _ in range(6)]
    # mid-first/mid-second have run_at = their creation; both are newer than mid-new.
    assert claimed == ["high", "mid-old", "mid-new", "mid-first", "mid-second", "low-old"]
    assert store.claim_job("w1", None) is None


def test_claim_job_skips_jobs_not_yet_due(store: Store) -> None:
    insert(store, "later", priority=5, scheduled_at=store.now() + timedelta(minutes=5))
    insert(store, "now")
    assert claim(store).id == "now"
    assert store.claim_job("w1", None) is None


def test_claim_job_serves_only_the_given_queues(store: Store) -> None:
    insert(store, "a", queue="alpha", priority=9)
    insert(store, "b", queue="beta")
    insert(store, "c", queue="gamma")
    assert claim(store, queues=["beta", "gamma"]).id == "b"
    assert claim(store, queues=["gamma"]).id == "c"
    assert store.claim_job("w1", ["beta", "gamma"]) is None
    assert claim(store, queues=None).id == "a"


def test_claim_job_marks_the_job_and_opens_an_attempt(store: Store) -> None:
    store.register_worker("w1", "host-1", 4242, None)
    insert(store, "job")
    job = claim(store, "w1")
    assert store.get_job("job") == job
    assert job.state is JobState.PROCESSING
    assert job.attempts == 1
    assert job.locked_by == "w1"
    assert job.locked_at is not None
    assert job.started_at == job.locked_at
    assert close_to(job.locked_at, store.now())
    assert job.updated_at >= job.created_at
    assert job.finished_at is None
    (attempt,) = store.list_attempts("job")
    assert (attempt.job_id, attempt.attempt, attempt.worker_id) == ("job", 1, "w1")
    assert attempt.started_at == job.started_at
    assert attempt.finished_at is None
    assert [w.current_job_id for w in store.list_workers(30)] == ["job"]


def test_claim_job_returns_none_when_nothing_is_runnable(store: Store) -> None:
    assert store.claim_job("w1", None) is None
    insert(store, "one")
    finish(store, claim(store))
    insert(store, "two")
    claim(store)
    assert store.claim_job("w2", None) is None


def test_claim_job_never_returns_a_job_twice(store: Store, open_another: StoreOpener) -> None:
    insert(store, *[f"j{n}" for n in range(6)])
    other = open_another()
    claimed = [claim(store if n % 2 else other, f"w{n % 2}").id for n in range(6)]
    assert sorted(claimed) == [f"j{n}" for n in range(6)]
    assert store.claim_job("w0", None) is None
    assert other.claim_job("w1", None) is None


def _claim_until_empty(target: str, worker_id: str, start: threading.Barrier) -> list[str]:
    """One racer: claim until nothing is left, as fast as possible."""
    racer = open_store(target)
    try:
        start.wait(timeout=30)
        claimed = []
        while (job := racer.claim_job(worker_id, None)) is not None:
            claimed.append(job.id)
        return claimed
    finally:
        racer.close()


def _racing_process(
    target: str, worker_id: str, start: threading.Barrier, results: multiprocessing.Queue[list[str]]
) -> None:
    results.put(_claim_until_empty(target, worker_id, start))


def test_claim_job_racing_processes_claim_each_job_once(store: Store, db_target: str) -> None:
    insert(store, *[f"job-{n}" for n in range(RACE_JOBS)])
    # spawn, not fork: each racer opens its own connection from scratch, as workers do.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(RACE_PROCESSES)
    results: multiprocessing.Queue[list[str]] = context.Queue()
    racers = [
        context.Process(target=_racing_process, args=(db_target, f"w{n}", start, results))
        for n in range(RACE_PROCESSES)
    ]
    for racer in racers:
        racer.start()
    claimed = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    everything = [job_id for batch in claimed for job_id in batch]
    assert sorted(everything) == sorted(f"job-{n}" for n in range(RACE_JOBS))
    assert store.count_jobs_by_state()[JobState.PROCESSING] == RACE_JOBS


def test_claim_job_racing_threads_claim_each_job_once(store: Store, db_target: str) -> None:
    insert(store, *[f"job-{n}" for n in range(RACE_JOBS)])
    start = threading.Barrier(RACE_THREADS)
    claimed: list[list[str]] = [[] for _ in range(RACE_THREADS)]

    def race(slot: int) -> None:
        claimed[slot] = _claim_until_empty(db_target, f"w{slot}", start)

    run_in_threads(RACE_THREADS, race)
    everything = [job_id for batch in claimed for job_id in batch]
    assert sorted(everything) == sorted(f"job-{n}" for n in range(RACE_JOBS))
    for job_id in ("job-0", f"job-{RACE_JOBS - 1}"):
        assert len(store.list_attempts(job_id)) == 1


# -- finish ------------------------------------------------------------------------------


def test_finish_attempt_completed_records_the_result(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    insert(store, "job")
    job = claim(store, "w1")
    assert finish(store, job, exit_code=0, output="hello\n")
    done = store.get_job("job")
    assert done is not None
    assert done.state is JobState.COMPLETED
    assert (done.exit_code, done.output, done.last_error, done.attempts) == (0, "hello\n", None, 1)
    assert done.locked_by is None
    assert done.locked_at is None
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.finished_at >= done.started_at
    assert close_to(done.finished_at, store.now())
    assert done.run_at == job.run_at
    (attempt,) = store.list_attempts("job")
    assert (attempt.finished_at, attempt.exit_code, attempt.error) == (done.finished_at, 0, None)
    assert [w.current_job_id for w in store.list_workers(30)] == [None]


def test_finish_attempt_wrong_worker_changes_nothing(store: Store) -> None:
    insert(store, "job")
    job = claim(store, "w1")
    assert not finish(store, job, worker_id="w2")
    assert store.get_job("job") == job
    assert [a.finished_at for a in store.list_attempts("job")] == [None]


def test_finish_attempt_wrong_attempt_number_changes_nothing(store: Store) -> None:
    insert(store, "job")
    job = claim(store, "w1")
    assert not finish(store, replace(job, attempts=0))
    assert store.get_job("job") == job


def test_finish_attempt_only_once_per_claim(store: Store) -> None:
    insert(store, "job")
    job = claim(store)
    assert finish(store, job, output="first")
    assert not finish(store, job, JobState.DEAD, error="late", output="second")
    done = store.get_job("job")
    assert done is not None
    assert (done.state, done.output) == (JobState.COMPLETED, "first")


def test_finish_attempt_failed_sets_run_at_after_the_delay(store: Store) -> None:
    insert(store, "job")
    job = claim(store)
    assert finish(store, job, JobState.FAILED, delay=30.0, error="exited with code 3", exit_code=3)
    failed = store.get_job("job")
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.last_error == "exited with code 3"
    assert failed.exit_code == 3
    assert close_to(failed.run_at, store.now() + timedelta(seconds=30))
    assert store.claim_job("w1", None) is None
    wait = store.seconds_until_next_job(None)
    assert wait is not None
    assert 25 < wait <= 30


def test_finish_attempt_retry_keeps_history_and_saved_output(store: Store) -> None:
    insert(store, "job")
    assert finish(store, claim(store), JobState.FAILED, delay=0.0, error="boom", output="one")
    second = claim(store, "w2")
    assert second.attempts == 2
    assert second.exit_code is None
    assert second.finished_at is None
    # output=None: the worker saved nothing new, so the stored output stays.
    assert finish(store, second, JobState.DEAD, error="lost", exit_code=None, output=None)
    dead = store.get_job("job")
    assert dead is not None
    assert (dead.state, dead.output, dead.attempts) == (
        JobState.DEAD,
        "one",
        2,
    )
    history = store.list_attempts("job")
    assert [(a.attempt, a.worker_id, a.error) for a in history] == [
        (1, "w1", "boom"),
        (2, "w2", "lost"),
    ]
    assert history[0].finished_at is not None
    assert history[1].started_at >= history[0].finished_at


def test_finish_attempt_keeps_binary_output(store: Store) -> None:
    insert(store, "job")
    sent = "before\x00after \ufffd \u00e9\U0001f600\n" * 100
    assert finish(store, claim(store), output=sent)
    done = store.get_job("job")
    assert done is not None
    # PostgreSQL text cannot hold NUL: it may come back as U+FFFD, like any byte that was
    # not UTF-8 in the first place. Everything else is kept as it was.
    assert done.output.replace("\x00", "\ufffd") == sent.replace("\x00", "\ufffd")


# -- stale jobs and rescue ---------------------------------------------------------------


def test_find_stale_jobs_ignores_a_fresh_heartbeat(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    insert(store, "job")
    claim(store, "w1")
    assert store.find_stale_jobs(30) == []


def test_find_stale_jobs_finds_a_stale_heartbeat(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    insert(store, "job", "other")
    job = claim(store, "w1")
    stale = wait_until(lambda: store.find_stale_jobs(SHORT_LEASE), message="a stale job")
    assert stale == [job]
    assert store.heartbeat("w1", "job") is False
    assert store.find_stale_jobs(SHORT_LEASE) == []


def test_find_stale_jobs_finds_jobs_of_stopped_or_unknown_workers(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    insert(store, "a", "b")
    claim(store, "w1")
    claim(store, "ghost")
    assert ids(store.find_stale_jobs(30)) == ["b"]
    store.deregister_worker("w1")
    assert ids(store.find_stale_jobs(30)) == ["a", "b"]


def test_rescue_stale_fails_the_lost_run(store: Store) -> None:
    service = QueueService(store)
    settings = Settings(lease_timeout=SHORT_LEASE, backoff_base=2.0)
    store.register_worker("w1", "host", 1, None)
    insert(store, "retried", max_retries=3)
    insert(store, "buried", max_retries=1)
    claim(store, "w1")
    claim(store, "w1")
    rescued = wait_until(lambda: service.rescue_stale(settings), message="a rescue")
    assert ids(rescued) == ["retried", "buried"]
    assert service.rescue_stale(settings) == []
    retried, buried = store.get_job("retried"), store.get_job("buried")
    assert retried is not None
    assert buried is not None
    assert (retried.state, retried.attempts, retried.locked_by) == (JobState.FAILED, 1, None)
    assert retried.last_error is not None
    assert "w1" in retried.last_error
    assert close_to(retried.run_at, store.now() + timedelta(seconds=2))
    assert buried.state is JobState.DEAD
    (attempt,) = store.list_attempts("retried")
    assert attempt.finished_at is not None
    assert attempt.error == retried.last_error


def test_rescue_stale_racing_rescuers_rescue_once(store: Store, db_target: str) -> None:
    insert(store, "job")
    claim(store, "ghost")  # never registered: stale at once
    settings = Settings(lease_timeout=SHORT_LEASE)
    start = threading.Barrier(4)
    counts: list[int] = []

    def rescue(_: int) -> None:
        rescuer = open_store(db_target)
        try:
            start.wait(timeout=30)
            counts.append(len(QueueService(rescuer).rescue_stale(settings)))
        finally:
            rescuer.close()

    run_in_threads(4, rescue)
    assert sorted(counts) == [0, 0, 0, 1]
    assert len(store.list_attempts("job")) == 1


# -- requeue, counts, schedule -----------------------------------------------------------


def test_requeue_dead_moves_only_dead_jobs(store: Store) -> None:
    insert(store, "done", "held", "buried", "waiting")
    finish(store, claim(store))
    held = claim(store)
    finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)
    for job_id in ("done", "held", "waiting", "missing"):
        assert store.requeue_dead(job_id) is False
    assert store.get_job("held") == held
    assert store.requeue_dead("buried") is True
    again = store.get_job("buried")
    assert again is not None
    assert (again.state, again.attempts) == (JobState.PENDING, 0)
    assert again.locked_by is None
    assert close_to(again.run_at, store.now())
    assert again.last_error == "boom"  # what the dead run left stays visible
    assert store.requeue_dead("buried") is False
    # Claimable again, behind jobs that were due before it came back.
    assert [claim(store).id, claim(store).id] == ["waiting", "buried"]


def test_count_jobs_by_state_counts_every_state(store: Store) -> None:
    assert store.count_jobs_by_state() == dict.fromkeys(JobState, 0)
    insert(store, "a", "b", "c", "d")
    finish(store, claim(store))
    finish(store, claim(store), JobState.FAILED, delay=60.0, error="x", exit_code=1)
    claim(store)
    counts = store.count_jobs_by_state()
    assert counts == {
        **dict.fromkeys(JobState, 0),
        JobState.PENDING: 1,
        JobState.PROCESSING: 1,
        JobState.COMPLETED: 1,
        JobState.FAILED: 1,
    }


def test_seconds_until_next_job_is_none_zero_or_the_wait(store: Store) -> None:
    assert store.seconds_until_next_job(None) is None
    insert(store, "later", queue="slow", scheduled_at=store.now() + timedelta(seconds=60))
    wait = store.seconds_until_next_job(None)
    assert wait is not None
    assert 55 < wait <= 60
    assert store.seconds_until_next_job(["other"]) is None
    insert(store, "due", queue="fast")
    assert store.seconds_until_next_job(None) == 0
    wait = store.seconds_until_next_job(["slow"])
    assert wait is not None
    assert wait > 55


def test_now_is_aware_utc(store: Store) -> None:
    now = store.now()
    assert now.utcoffset() == timedelta(0)
    assert close_to(now, datetime.now(UTC), slack=60)


# -- wakeups -----------------------------------------------------------------------------


def test_wait_for_jobs_wakes_soon_after_another_connection_inserts(
    store: Store, open_another: StoreOpener
) -> None:
    other = open_another()
    store.wait_for_jobs(0.01)  # starts watching (PG: LISTEN; SQLite: data_version)
    timer = threading.Timer(0.3, lambda: other.insert_jobs([new_job("late")]))
    started = time.monotonic()
    timer.start()
    try:
        woken = store.wait_for_jobs(5.0)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert woken is True
    assert 0.25 <= elapsed < 1.5


def test_wait_for_jobs_wakes_on_requeue_dead(store: Store, open_another: StoreOpener) -> None:
    insert(store, "job")
    finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)
    store.wait_for_jobs(0.01)
    assert open_another().requeue_dead("job")
    assert store.wait_for_jobs(5.0) is True


def test_wait_for_jobs_times_out_without_changes(store: Store) -> None:
    store.wait_for_jobs(0.01)
    started = time.monotonic()
    assert store.wait_for_jobs(0.3) is False
    assert time.monotonic() - started >= 0.25


# -- workers -----------------------------------------------------------------------------


def test_register_worker_lists_it_as_active(store: Store) -> None:
    store.register_worker("w1", "host-1", 101, ["alpha", "beta"])
    store.register_worker("w2", "host-2", 102, None)
    workers = store.list_workers(30)
    assert [(w.id, w.host, w.pid, w.status) for w in workers] == [
        ("w1", "host-1", 101, "running"),
        ("w2", "host-2", 102, "running"),
    ]
    assert workers[0].queues == ("alpha", "beta")
    assert workers[1].queues is None
    assert workers[0].current_job_id is None
    assert close_to(workers[0].started_at, store.now())
    assert workers[0].last_heartbeat >= workers[0].started_at


def test_heartbeat_refreshes_and_records_status(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    (before,) = store.list_workers(30)
    assert store.heartbeat("w1", None, "stopping") is False
    (after,) = store.list_workers(30)
    assert after.status == "stopping"
    assert after.last_heartbeat >= before.last_heartbeat


def test_heartbeat_returns_true_once_stop_is_requested(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    store.register_worker("w2", "host", 2, None)
    store.request_stop(["w1"])
    assert store.heartbeat("w1", None) is True
    assert store.heartbeat("w2", None) is False
    store.request_stop([])


def test_heartbeat_unknown_worker_is_told_to_stop(store: Store) -> None:
    assert store.heartbeat("never-registered", None) is True


def test_list_workers_hides_stopped_and_stale_workers(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    store.register_worker("w2", "host", 2, None)
    store.deregister_worker("w1")
    assert [w.id for w in store.list_workers(30)] == ["w2"]
    wait_until(lambda: not store.list_workers(SHORT_LEASE), message="a stale heartbeat")
    store.heartbeat("w2", None)
    assert [w.id for w in store.list_workers(SHORT_LEASE)] == ["w2"]


# -- config and schema -------------------------------------------------------------------


def test_config_set_overwrites_and_get_reads(store: Store) -> None:
    assert store.get_config() == {}
    store.set_config("max-retries", "5")
    store.set_config("backoff-base", "3")
    store.set_config("max-retries", "7")
    assert store.get_config() == {"max-retries": "7", "backoff-base": "3"}


def test_migrate_twice_keeps_the_data(store: Store) -> None:
    insert(store, "job")
    store.migrate()
    store.migrate()
    assert ids(store.list_jobs(JobFilter())) == ["job"]


def test_migrate_racing_first_starts_create_the_schema_once(backend: str, tmp_path: Path) -> None:
    with _empty_target(backend, tmp_path) as target:
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def first_start(n: int) -> None:
            try:
                start.wait(timeout=30)
                opened = open_store(target)
                try:
                    opened.insert_jobs([new_job(f"job-{n}")])
                finally:
                    opened.close()
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        run_in_threads(4, first_start)
        assert errors == []
        check = open_store(target)
        try:
            assert len(check.list_jobs(JobFilter(limit=0))) == 4
        finally:
            check.close()


@contextmanager
def _empty_target(backend: str, tmp_path: Path) -> Iterator[str]:
    """A target with no schema yet: a new SQLite path, or an empty PostgreSQL database."""
    if backend == "sqlite":
        # The folder exists but not the file: this is about the schema, not the mkdir.
        folder = tmp_path / "empty"
        folder.mkdir(mode=0o700)
        yield str(folder / "queuectl.db")
    else:
        with pgtools.fresh_database(migrated=False) as url:
            yield url


# -- cancel ------------------------------------------------------------------------------


def test_cancel_job_pending_or_failed_becomes_cancelled(store: Store) -> None:
    insert(store, "failing", "waiting")
    assert finish(store, claim(store), JobState.FAILED, delay=60.0, error="boom", exit_code=1)
    before = {job_id: store.get_job(job_id) for job_id in ("waiting", "failing")}
    for job_id, job in before.items():
        assert store.cancel_job(job_id) == job  # as it was: the caller learns what it stopped
        cancelled = store.get_job(job_id)
        assert cancelled is not None
        assert (cancelled.state, cancelled.locked_by) == (JobState.CANCELLED, None)
    failed = store.get_job("failing")
    assert failed is not None
    assert (failed.last_error, failed.attempts) == ("boom", 1)  # why it failed stays visible
    assert store.claim_job("w1", None) is None  # a cancelled job is never claimed
    assert store.seconds_until_next_job(None) is None


def test_cancel_job_processing_ends_the_claim_and_the_attempt(store: Store) -> None:
    store.register_worker("w1", "host", 1, None)
    insert(store, "running")
    job = claim(store, "w1")
    assert store.holds_claim(job, "w1")
    was = store.cancel_job("running")
    assert was is not None
    assert (was.state, was.locked_by) == (JobState.PROCESSING, "w1")
    assert not store.holds_claim(job, "w1")
    assert not store.save_output(job, "w1", "late output")
    assert not finish(store, job)  # the worker's result is refused
    cancelled = store.get_job("running")
    assert cancelled is not None
    assert (cancelled.state, cancelled.locked_by, cancelled.locked_at) == (
        JobState.CANCELLED,
        None,
        None,
    )
    assert cancelled.last_error == "cancelled while running"
    assert cancelled.finished_at is not None
    (attempt,) = store.list_attempts("running")
    assert (attempt.error, attempt.exit_code) == ("cancelled while running", None)
    assert attempt.finished_at is not None
    # The worker is idle again, not shown busy with a job that is over.
    assert [w.current_job_id for w in store.list_workers(30)] == [None]
    assert store.find_stale_jobs(0) == []


def test_cancel_job_refuses_finished_or_unknown_jobs(store: Store) -> None:
    insert(store, "done", "buried", "gone")
    finish(store, claim(store))
    finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)
    store.cancel_job("gone")
    jobs = {job_id: store.get_job(job_id) for job_id in ("done", "buried", "gone")}
    for job_id, job in jobs.items():
        assert store.cancel_job(job_id) is None
        assert store.get_job(job_id) == job
    assert store.cancel_job("missing") is None


# -- requeue -----------------------------------------------------------------------------


def test_requeue_job_moves_only_jobs_in_the_given_states(store: Store) -> None:
    insert(store, "cancelled", "pending")
    store.cancel_job("cancelled")
    states = (JobState.DEAD, JobState.CANCELLED)
    pending = store.get_job("pending")
    assert store.requeue_job("pending", states) is None
    assert store.get_job("pending") == pending
    assert store.requeue_job("missing", states) is None
    assert store.requeue_job("cancelled", (JobState.DEAD,)) is None
    again = store.requeue_job("cancelled", states)
    assert again == store.get_job("cancelled")  # the job as the requeue left it
    assert again is not None
    assert (again.state, again.attempts, again.locked_by) == (JobState.PENDING, 0, None)
    assert close_to(again.run_at, store.now())
    assert store.requeue_job("cancelled", states) is None


def test_requeue_job_of_a_job_cancelled_while_running_starts_afresh(store: Store) -> None:
    insert(store, "job")
    first = claim(store, "w1")
    store.cancel_job("job")
    assert store.requeue_job("job", (JobState.CANCELLED,)) is not None
    second = claim(store, "w2")
    assert (second.attempts, second.locked_by) == (1, "w2")
    # The first worker's claim on the same attempt number stays dead: a new claim is new.
    assert not store.holds_claim(first, "w1")
    assert not finish(store, first, worker_id="w1")
    assert store.holds_claim(second, "w2")
    assert [(a.attempt, a.worker_id) for a in store.list_attempts("job")] == [(1, "w1"), (1, "w2")]


def test_requeue_all_dead_moves_every_dead_job_of_a_queue(store: Store) -> None:
    insert(store, "a1", "a2", queue="a")
    insert(store, "b1", queue="b")
    insert(store, "a-ok", queue="a")
    for _ in range(3):
        finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)
    finish(store, claim(store))
    assert store.requeue_all_dead("a") == 2
    assert store.requeue_all_dead("a") == 0
    counts = store.count_jobs_by_state(JobFilter(queue="a"))
    assert (counts[JobState.PENDING], counts[JobState.COMPLETED]) == (2, 1)
    assert store.requeue_all_dead(None) == 1
    assert store.count_jobs_by_state()[JobState.DEAD] == 0
    job = store.get_job("b1")
    assert job is not None
    assert (job.state, job.attempts) == (JobState.PENDING, 0)


# -- delete ------------------------------------------------------------------------------


def test_delete_jobs_by_state_age_and_queue_with_their_history(store: Store) -> None:
    insert(store, "done", "buried", "waiting")
    insert(store, "other", queue="other")
    finish(store, claim(store), output="kept until deleted")
    finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)
    store.cancel_job("waiting")
    finish(store, claim(store), JobState.DEAD, error="boom", exit_code=1)  # other
    finished = (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)
    assert store.delete_jobs(finished, 3600) == 0  # none is an hour old
    assert store.delete_jobs(finished, 0, dry_run=True) == 4
    assert store.delete_jobs(finished, 0, dry_run=True, limit=3) == 3
    assert len(store.list_jobs(JobFilter(limit=0))) == 4
    assert store.delete_jobs((JobState.DEAD,), 0, queue="other") == 1
    assert store.delete_jobs((JobState.COMPLETED,), 0) == 1
    assert ids(store.list_jobs(JobFilter(limit=0))) == ["buried", "waiting"]
    assert store.list_attempts("done") == []
    assert store.get_attempt_output("done", None) is None
    insert(store, "done")  # the id is free again, and its history clean
    assert store.list_attempts("done") == []


def test_delete_jobs_limit_bounds_one_call(store: Store) -> None:
    insert(store, *[f"j{n}" for n in range(5)])
    for _ in range(5):
        finish(store, claim(store))
    assert store.delete_jobs((JobState.COMPLETED,), 0, limit=2) == 2
    assert ids(store.list_jobs(JobFilter(limit=0))) == ["j2", "j3", "j4"]  # oldest first
    assert store.delete_jobs((JobState.COMPLETED,), 0, limit=10) == 3


def test_delete_jobs_never_touches_unfinished_states_it_is_not_given(store: Store) -> None:
    insert(store, "pending", "running")
    claim(store)
    assert store.delete_jobs((JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED), 0) == 0
    assert len(store.list_jobs(JobFilter(limit=0))) == 2


# -- claims, live output -----------------------------------------------------------------


def test_holds_claim_only_for_the_holder_and_its_attempt(store: Store) -> None:
    insert(store, "job")
    job = claim(store, "w1")
    assert store.holds_claim(job, "w1")
    assert not store.holds_claim(job, "w2")
    assert not store.holds_claim(replace(job, attempts=2), "w1")
    finish(store, job)
    assert not store.holds_claim(job, "w1")


def test_save_output_is_read_back_live_and_kept_at_the_finish(store: Store) -> None:
    insert(store, "job")
    job = claim(store, "w1")
    assert store.get_attempt_output("job", None) == AttemptOutput("job", 1, "w1", False, "")
    assert store.save_output(job, "w1", "line 1\n")
    assert not store.save_output(job, "w2", "not the holder\n")
    assert store.get_attempt_output("job", None) == AttemptOutput("job", 1, "w1", False, "line 1\n")
    assert store.save_output(job, "w1", "line 1\nline 2\n")
    # A finish without output (a lost run) keeps what was saved.
    assert finish(store, job, JobState.FAILED, delay=0.0, error="lost", exit_code=None, output=None)
    assert not store.save_output(job, "w1", "too late")
    first = AttemptOutput("job", 1, "w1", True, "line 1\nline 2\n")
    assert store.get_attempt_output("job", None) == first
    second = claim(store, "w2")
    assert finish(store, second, output="second run\n")
    assert store.get_attempt_output("job", None) == AttemptOutput(
        "job", 2, "w2", True, "second run\n"
    )
    assert store.get_attempt_output("job", 1) == first
    assert store.get_attempt_output("job", 3) is None
    assert store.get_attempt_output("missing", None) is None


# -- queues ------------------------------------------------------------------------------


def test_list_queues_has_counts_pause_and_limit(store: Store) -> None:
    assert store.list_queues() == []
    insert(store, "m1", "m2", queue="mail")
    insert(store, "d1")
    finish(store, claim(store, queues=["default"]))
    store.set_queue_paused("mail", True)
    store.set_queue_limit("reports", 3)  # settings alone make a queue appear
    store.set_queue_limit("mail", 2)  # and one setting leaves the other alone
    zero = dict.fromkeys(JobState, 0)
    assert store.list_queues() == [
        QueueInfo("default", False, None, {**zero, JobState.COMPLETED: 1}),
        QueueInfo("mail", True, 2, {**zero, JobState.PENDING: 2}),
        QueueInfo("reports", False, 3, zero),
    ]
    store.set_queue_paused("mail", False)
    store.set_queue_limit("mail", None)
    mail = store.list_queues()[1]
    assert (mail.name, mail.paused, mail.max_running) == ("mail", False, None)


def test_claim_job_skips_a_paused_queue(store: Store) -> None:
    insert(store, "held", queue="slow", priority=10)
    insert(store, "free")
    store.set_queue_paused("slow", True)
    assert claim(store).id == "free"
    assert store.claim_job("w1", None) is None
    assert store.claim_job("w1", ["slow"]) is None
    # Not due either: an idle worker must not spin on a job it cannot claim.
    assert store.seconds_until_next_job(None) is None
    store.set_queue_paused("slow", False)
    assert store.seconds_until_next_job(None) == 0
    assert claim(store, queues=["slow"]).id == "held"


def test_claim_job_respects_a_queue_limit(store: Store) -> None:
    insert(store, "l1", "l2", "l3", queue="limited")
    insert(store, "free", priority=-1)
    store.set_queue_limit("limited", 2)
    first, second = claim(store, "w1"), claim(store, "w2")
    assert {first.id, second.id} == {"l1", "l2"}
    assert claim(store, "w3").id == "free"  # the limited queue is full, others are not
    assert store.claim_job("w4", None) is None
    assert store.seconds_until_next_job(None) is None
    finish(store, first)
    assert claim(store, "w4").id == "l3"
    store.set_queue_limit("limited", 0)
    insert(store, "l4", queue="limited")
    assert store.claim_job("w5", None) is None
    store.set_queue_limit("limited", None)
    assert claim(store, "w5").id == "l4"


def test_claim_job_racing_workers_never_exceed_a_queue_limit(store: Store, db_target: str) -> None:
    insert(store, *[f"job-{n}" for n in range(RACE_THREADS * 2)], queue="limited")
    store.set_queue_limit("limited", 2)
    start = threading.Barrier(RACE_THREADS)
    claimed: list[list[str]] = [[] for _ in range(RACE_THREADS)]

    def race(slot: int) -> None:
        claimed[slot] = _claim_until_empty(db_target, f"w{slot}", start)

    run_in_threads(RACE_THREADS, race)
    assert sum(len(batch) for batch in claimed) == 2
    assert store.count_jobs_by_state()[JobState.PROCESSING] == 2


# -- counts ------------------------------------------------------------------------------


def test_count_finished_attempts_per_minute(store: Store) -> None:
    assert store.count_finished_attempts(3600) == []
    insert(store, "ok", "bad", "running")
    finish(store, claim(store))
    finish(store, claim(store), JobState.FAILED, delay=3600.0, error="boom", exit_code=1)
    claim(store)  # unfinished attempts do not count
    buckets = store.count_finished_attempts(3600)
    assert (sum(b.completed for b in buckets), sum(b.failed for b in buckets)) == (1, 1)
    for bucket in buckets:
        assert bucket.start.second == bucket.start.microsecond == 0
        assert close_to(bucket.start, store.now(), slack=120)


def test_count_jobs_by_state_with_a_filter(store: Store) -> None:
    insert(store, "a", "b", queue="q1")
    insert(store, "c", queue="q2")
    finish(store, claim(store, queues=["q1"]))  # a
    since = store.now()
    store.cancel_job("c")
    zero = dict.fromkeys(JobState, 0)
    assert store.count_jobs_by_state(JobFilter(queue="q1")) == {
        **zero,
        JobState.PENDING: 1,
        JobState.COMPLETED: 1,
    }
    assert store.count_jobs_by_state(JobFilter(ids=("a", "c", "missing"))) == {
        **zero,
        JobState.COMPLETED: 1,
        JobState.CANCELLED: 1,
    }
    assert store.count_jobs_by_state(JobFilter(states=(JobState.PENDING, JobState.CANCELLED))) == {
        **zero,
        JobState.PENDING: 1,
        JobState.CANCELLED: 1,
    }
    assert store.count_jobs_by_state(JobFilter(updated_since=since)) == {
        **zero,
        JobState.CANCELLED: 1,
    }
    assert store.count_jobs_by_state(JobFilter(limit=1)) == store.count_jobs_by_state()
