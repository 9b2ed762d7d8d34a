"""The Store contract for exit policies, attempt outcomes and dedupe keys (issue 8, items 1
and 4), run on each backend."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from queuectl.core.errors import DuplicateDedupeKey, DuplicateJobId, WrongState
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import AttemptOutcome, Job, JobState, NewJob
from queuectl.core.settings import Settings
from queuectl.service import QueueService
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, JobFilter, Store
from queuectl.store.migrate import migration_scripts, statements
from tests import pgtools
from tests.conftest import run_in_threads, wait_until

SHORT_LEASE = 0.3  # seconds; a heartbeat older than this is stale
RACERS = 6


def new_job(job_id: str, **fields: Any) -> NewJob:
    return NewJob(id=job_id, command=f"echo {job_id}", **fields)


def insert(store: Store, *ids: str, **fields: Any) -> list[Job]:
    return store.insert_jobs([new_job(job_id, **fields) for job_id in ids])


def all_ids(store: Store) -> list[str]:
    return [job.id for job in store.list_jobs(JobFilter(limit=0))]


def claim(store: Store, worker_id: str = "w1") -> Job:
    job = store.claim_job(worker_id, None)
    assert job is not None, "expected a runnable job"
    return job


def finish(store: Store, job: Job, state: JobState, record: AttemptRecord | None = None) -> None:
    error = None if state is JobState.COMPLETED else "exited with code 1"
    exit_code = 0 if state is JobState.COMPLETED else 1
    assert store.finish_attempt(
        job,
        job.locked_by or "",
        Outcome(state, 0.0 if state is JobState.FAILED else None, error),
        record or AttemptRecord(exit_code=exit_code, output=""),
    )


def state_of(store: Store, job_id: str) -> JobState:
    job = store.get_job(job_id)
    assert job is not None
    return job.state


# -- the policy fields --------------------------------------------------------------------


def test_policy_fields_are_stored_and_read_back(store: Store) -> None:
    (inserted,) = insert(
        store, "a", retry_on_exit=(75, 111), fatal_on_exit=(2, 126), dedupe_key="nightly"
    )
    (plain,) = insert(store, "b")
    assert store.get_job("a") == inserted
    assert (inserted.retry_on_exit, inserted.fatal_on_exit) == ((75, 111), (2, 126))
    assert inserted.dedupe_key == "nightly"
    assert (plain.retry_on_exit, plain.fatal_on_exit, plain.dedupe_key) == ((), (), None)
    assert store.list_jobs(JobFilter(limit=0)) == [inserted, plain]
    assert claim(store) == store.get_job("a")  # a claim returns them too


# -- attempt outcomes ---------------------------------------------------------------------


def test_finish_attempt_records_the_outcome_and_signal(store: Store) -> None:
    insert(store, "job", max_retries=3)
    killed = AttemptRecord(None, "", AttemptOutcome.KILLED, "SIGKILL")
    finish(store, claim(store), JobState.FAILED, killed)
    finish(store, claim(store), JobState.FAILED, AttemptRecord(None, "", AttemptOutcome.TIMEOUT))
    finish(store, claim(store), JobState.COMPLETED, AttemptRecord(0, "", AttemptOutcome.OK))
    history = store.list_attempts("job")
    assert [(a.outcome, a.signal) for a in history] == [
        (AttemptOutcome.KILLED, "SIGKILL"),
        (AttemptOutcome.TIMEOUT, None),
        (AttemptOutcome.OK, None),
    ]


def test_an_attempt_has_no_outcome_while_it_runs(store: Store) -> None:
    insert(store, "job")
    claim(store)
    (attempt,) = store.list_attempts("job")
    assert (attempt.outcome, attempt.signal) == (None, None)


def test_an_outcome_left_out_is_taken_from_the_state(store: Store) -> None:
    insert(store, "good", "bad")
    finish(store, claim(store), JobState.COMPLETED)
    finish(store, claim(store), JobState.DEAD)
    assert store.list_attempts("good")[0].outcome is AttemptOutcome.OK
    assert store.list_attempts("bad")[0].outcome is AttemptOutcome.FAILED


def test_a_rescued_run_is_recorded_as_lost(store: Store) -> None:
    service = QueueService(store)
    store.register_worker("w1", "host", 1, None)
    insert(store, "job", max_retries=3)
    claim(store, "w1")
    settings = Settings(lease_timeout=SHORT_LEASE)
    wait_until(lambda: service.rescue_stale(settings), message="a rescue")
    (attempt,) = store.list_attempts("job")
    assert (attempt.outcome, attempt.exit_code) == (AttemptOutcome.LOST, None)
    assert state_of(store, "job") is JobState.FAILED


def test_a_run_cancelled_while_running_is_recorded_as_killed(store: Store) -> None:
    insert(store, "job")
    claim(store)
    assert store.cancel_job("job") is not None
    (attempt,) = store.list_attempts("job")
    assert attempt.outcome is AttemptOutcome.KILLED
    assert attempt.error == "cancelled while running"


# -- dedupe keys --------------------------------------------------------------------------


def test_a_held_dedupe_key_refuses_the_whole_batch(store: Store) -> None:
    insert(store, "first", dedupe_key="k")
    batch = [new_job("x"), new_job("second", dedupe_key="k"), new_job("y")]
    with pytest.raises(DuplicateDedupeKey) as refused:
        store.insert_jobs(batch)
    assert refused.value.message == "a job with dedupe key 'k' is already pending (first)"
    assert (refused.value.key, refused.value.existing_id) == ("k", "first")
    assert all_ids(store) == ["first"]


def test_a_dedupe_key_twice_in_one_batch_inserts_nothing(store: Store) -> None:
    with pytest.raises(DuplicateDedupeKey, match="given twice"):
        insert(store, "a", "b", dedupe_key="k")
    assert all_ids(store) == []


def test_a_duplicate_id_is_still_a_duplicate_id(store: Store) -> None:
    insert(store, "a", dedupe_key="k1")
    with pytest.raises(DuplicateJobId, match="'a' already exists"):
        insert(store, "a", dedupe_key="k2")


def test_jobs_without_a_key_never_collide(store: Store) -> None:
    insert(store, "a", "b")
    insert(store, "c", dedupe_key=None)
    assert all_ids(store) == ["a", "b", "c"]


def test_failed_and_processing_jobs_hold_their_key(store: Store) -> None:
    insert(store, "holder", dedupe_key="k", max_retries=3)
    job = claim(store)
    with pytest.raises(DuplicateDedupeKey, match=r"already processing \(holder\)"):
        insert(store, "again", dedupe_key="k")
    finish(store, job, JobState.FAILED)
    with pytest.raises(DuplicateDedupeKey, match=r"already failed \(holder\)"):
        insert(store, "again", dedupe_key="k")


@pytest.mark.parametrize("ending", ["completed", "dead", "cancelled"])
def test_a_finished_job_frees_its_key(store: Store, ending: str) -> None:
    insert(store, "old", dedupe_key="k")
    if ending == "cancelled":
        assert store.cancel_job("old") is not None
    else:
        finish(store, claim(store), JobState(ending))
    (new,) = insert(store, "new", dedupe_key="k")
    assert new.state is JobState.PENDING
    assert all_ids(store) == ["old", "new"]


def test_skip_returns_the_holder_and_inserts_the_rest(store: Store) -> None:
    (holder,) = insert(store, "holder", dedupe_key="k")
    batch = [new_job("x"), new_job("skipped", dedupe_key="k"), new_job("y", dedupe_key="other")]
    result = store.insert_jobs(batch, skip_duplicate_keys=True)
    assert [job.id for job in result] == ["x", "holder", "y"]
    assert result[1] == holder
    assert all_ids(store) == ["holder", "x", "y"]
    assert store.get_job("skipped") is None


def test_skip_inserts_when_the_key_is_free(store: Store) -> None:
    insert(store, "old", dedupe_key="k")
    finish(store, claim(store), JobState.COMPLETED)
    (new,) = store.insert_jobs([new_job("new", dedupe_key="k")], skip_duplicate_keys=True)
    assert (new.id, new.state) == ("new", JobState.PENDING)


def test_retry_of_a_dead_job_whose_key_is_held_is_refused(store: Store) -> None:
    insert(store, "old", dedupe_key="k", max_retries=1)
    finish(store, claim(store), JobState.DEAD)
    insert(store, "new", dedupe_key="k")
    with pytest.raises(WrongState) as refused:
        store.requeue_job("old", (JobState.DEAD,))
    assert refused.value.message == (
        "job 'old' cannot be retried: a job with dedupe key 'k' is already pending (new)"
    )
    assert state_of(store, "old") is JobState.DEAD
    assert store.requeue_job("new", (JobState.DEAD,)) is None  # not dead: untouched


def test_retry_all_dead_leaves_jobs_whose_key_is_held(store: Store) -> None:
    for job_id, key in [("held", "k"), ("twin-1", "t"), ("twin-2", "t"), ("free", None)]:
        insert(store, job_id, dedupe_key=key, max_retries=1)
        finish(store, claim(store), JobState.DEAD)
    insert(store, "holder", dedupe_key="k")
    assert store.requeue_all_dead(None) == 2
    states = {job.id: job.state for job in store.list_jobs(JobFilter(limit=0))}
    assert states == {
        "held": JobState.DEAD,  # "holder" has its key
        "twin-1": JobState.DEAD,  # of two dead jobs with one key, the newest comes back
        "twin-2": JobState.PENDING,
        "free": JobState.PENDING,
        "holder": JobState.PENDING,
    }
    assert store.requeue_all_dead(None) == 0


def test_retry_all_dead_of_one_queue_picks_the_newest_twin_there(store: Store) -> None:
    for job_id, queue in [("a-1", "a"), ("b-1", "b")]:
        insert(store, job_id, dedupe_key="t", queue=queue, max_retries=1)
        finish(store, claim(store), JobState.DEAD)
    assert store.requeue_all_dead("a") == 1
    assert state_of(store, "a-1") is JobState.PENDING
    assert state_of(store, "b-1") is JobState.DEAD


def _enqueue_racing(target: str, job_id: str, skip: bool, start: Any, results: Any) -> None:
    racer = open_store(target)
    try:
        start.wait(timeout=30)
        try:
            (job,) = racer.insert_jobs(
                [new_job(job_id, dedupe_key="once")], skip_duplicate_keys=skip
            )
            results.put(("ok", job.id))
        except DuplicateDedupeKey as exc:
            results.put(("refused", exc.existing_id or ""))
    finally:
        racer.close()


def test_racing_enqueuers_of_one_key_create_exactly_one_job(store: Store, db_target: str) -> None:
    # spawn, not fork: each racer opens its own connection, as separate commands do.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(RACERS)
    results = context.Queue()
    racers = [
        context.Process(
            target=_enqueue_racing, args=(db_target, f"r{n}", n % 2 == 0, start, results)
        )
        for n in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    (winner,) = all_ids(store)
    # Every racer names the one job: its own, the one it skipped to, or the one that refused it.
    assert {job_id for _, job_id in outcomes} == {winner}
    refused = [kind for kind, _ in outcomes if kind == "refused"]
    assert len(refused) <= RACERS // 2  # only racers without skip are ever refused


def test_racing_threads_with_skip_all_get_the_same_job(store: Store, db_target: str) -> None:
    start = threading.Barrier(RACERS)
    got: list[str] = []

    def race(n: int) -> None:
        racer = open_store(db_target)
        try:
            start.wait(timeout=30)
            (job,) = racer.insert_jobs([new_job(f"t{n}", dedupe_key="k")], skip_duplicate_keys=True)
            got.append(job.id)
        finally:
            racer.close()

    run_in_threads(RACERS, race)
    (winner,) = all_ids(store)
    assert got == [winner] * RACERS


# -- migration from schema version 2 -------------------------------------------------------

V2_JOBS = [
    ("ok", "completed", None, 0),
    ("timeout", "failed", "timed out after 5s", None),
    ("spawn", "failed", "could not start: no such file", None),
    ("lost", "failed", "lost: worker w1 stopped sending heartbeats while running it", None),
    ("failed", "dead", "exited with code 3", 3),
    ("killed", "dead", "killed by signal SIGKILL", None),
]


@contextlib.contextmanager
def _version_2_store(backend: str, tmp_path: Any) -> Iterator[str]:
    """A store as release 2 left it: jobs with finished attempts, no policy columns."""
    scripts = [statement for number, script in migration_scripts(backend) if number <= 2
               for statement in statements(script)]  # fmt: skip
    if backend == "sqlite":
        path = tmp_path / "old.db"
        with contextlib.closing(sqlite3.connect(path)) as old, old:
            for statement in scripts:
                old.execute(statement)
            for n, (job_id, state, error, code) in enumerate(V2_JOBS):
                old.execute(
                    "INSERT INTO jobs (id, command, state, max_retries, timeout, created_at,"
                    " updated_at, run_at, attempts) VALUES (?, 'true', ?, 3, 300, ?, ?, ?, 1)",
                    (job_id, state, n, n, n),
                )
                old.execute(
                    "INSERT INTO attempts (job_id, attempt, started_at, finished_at, exit_code,"
                    " error) VALUES (?, 1, ?, ?, ?, ?)",
                    (job_id, n, n + 0.5, code, error),
                )
            old.execute("PRAGMA user_version = 2")
        yield str(path)
        return
    import psycopg

    with pgtools.fresh_database(migrated=False) as url, psycopg.connect(url) as server:
        server.execute("CREATE SCHEMA queuectl")
        server.execute("SET search_path TO queuectl")
        for statement in scripts:
            server.execute(statement)
        for number in (1, 2):
            server.execute("INSERT INTO queuectl_schema (version) VALUES (%s)", (number,))
        for job_id, state, error, code in V2_JOBS:
            server.execute(
                "INSERT INTO jobs (id, command, state, max_retries, timeout, created_at,"
                " updated_at, run_at, attempts) VALUES (%s, 'true', %s, 3, 300, now(), now(),"
                " now(), 1)",
                (job_id, state),
            )
            server.execute(
                "INSERT INTO attempts (job_id, attempt, started_at, finished_at, exit_code,"
                " error) VALUES (%s, 1, now(), now(), %s, %s)",
                (job_id, code, error),
            )
        server.commit()
        yield url


def test_a_version_2_store_is_migrated_with_outcomes_for_old_attempts(
    backend: str, tmp_path: Any
) -> None:
    with _version_2_store(backend, tmp_path) as target:
        migrated = open_store(target)
        try:
            outcomes = {job_id: migrated.list_attempts(job_id)[0].outcome for job_id, *_ in V2_JOBS}
            assert outcomes == {
                "ok": AttemptOutcome.OK,
                "timeout": AttemptOutcome.TIMEOUT,
                "spawn": AttemptOutcome.SPAWN_ERROR,
                "lost": AttemptOutcome.LOST,
                "failed": AttemptOutcome.FAILED,
                "killed": AttemptOutcome.KILLED,
            }
            old = migrated.get_job("timeout")
            assert old is not None
            assert (old.retry_on_exit, old.fatal_on_exit, old.dedupe_key) == ((), (), None)
            # The unique index is in place: failed jobs hold their key from now on.
            insert(migrated, "new", dedupe_key="k")
            with pytest.raises(DuplicateDedupeKey):
                insert(migrated, "newer", dedupe_key="k")
        finally:
            migrated.close()
