"""Every state change is one transaction (issue 12, item 3), on each backend.

Each store write runs again and again with a fault injected at its k-th statement (k = 1,
2, ... until a run sends fewer than k): the store must then be exactly as it was before the
write, or exactly as a clean run of the write leaves it, never in between. Stored times are
left out of the comparison (a clean run and a faulted one run at different moments).

A crash point between a finish and the release of its dependents shows the same from the
outside: a worker that dies there leaves the job as it was, its dependents still waiting.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Job, JobState, NewJob
from queuectl.core.schedule import Schedule, firing_job
from queuectl.core.settings import Settings
from queuectl.crashpoint import CRASH_EXIT_STATUS, FAULT_VARIABLE, POINTS
from queuectl.service import QueueService
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, Store
from tests.storetools import age_worker, raw, tables

WORKER = "w1"
MAX_STATEMENTS = 200  # a write that sends more than this is a bug of its own
TIME_COLUMNS = {"last_heartbeat", "seq"}  # besides every *_at column: differ run to run

Snapshot = dict[str, list[tuple[str, ...]]]


def data_tables(conn: Any) -> list[str]:
    """Every table but the schema's version, which a write never touches."""
    return [table for table in tables(conn) if table != "queuectl_schema"]


class InjectedFault(Exception):
    """Stands for a driver error at one statement (the disk, the server, the network)."""


@dataclass
class FaultPlan:
    """Raise at the `fail_at`-th statement sent (0: never); count them all."""

    fail_at: int = 0
    sent: int = 0
    fired: bool = False

    def tick(self, error: type[Exception]) -> None:
        self.sent += 1
        if self.sent == self.fail_at:
            self.fired = True
            raise error(f"injected fault at statement {self.sent}")


class FaultySqliteConnection:
    """A sqlite3 connection whose execute and executemany obey a FaultPlan."""

    def __init__(self, conn: sqlite3.Connection, plan: FaultPlan) -> None:
        self._conn = conn
        self._plan = plan

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._plan.tick(sqlite3.OperationalError)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._plan.tick(sqlite3.OperationalError)
        return self._conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextlib.contextmanager
def faults(store: Store, plan: FaultPlan) -> Iterator[None]:
    """Route every statement `store` sends on its main connection through `plan`."""
    conn: Any = store.conn  # type: ignore[attr-defined]
    if isinstance(conn, sqlite3.Connection):
        store.conn = FaultySqliteConnection(conn, plan)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            store.conn = conn  # type: ignore[attr-defined]
        return
    import psycopg

    original = conn.cursor_factory

    class FaultyCursor(original):  # type: ignore[valid-type,misc]
        """The store's own cursor (it names the schema of each table), made to fail."""

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            plan.tick(psycopg.OperationalError)
            return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            plan.tick(psycopg.OperationalError)
            return super().executemany(*args, **kwargs)

    conn.cursor_factory = FaultyCursor
    try:
        yield
    finally:
        conn.cursor_factory = original


# -- reading and clearing a store behind its back -----------------------------------------


def snapshot(target: str) -> Snapshot:
    """Every committed row of every table, times left out, in a stable order."""
    found: Snapshot = {}
    with raw(target) as conn:
        for table in data_tables(conn):
            cursor = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - names from the catalog
            names = [column[0] for column in cursor.description]
            keep = [
                i
                for i, name in enumerate(names)
                if not name.endswith("_at") and name not in TIME_COLUMNS
            ]
            found[table] = sorted(tuple(repr(row[i]) for i in keep) for row in cursor.fetchall())
    return found


def wipe(target: str) -> None:
    with raw(target) as conn:
        for table in data_tables(conn):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from the catalog


# -- the writes ---------------------------------------------------------------------------

Setup = Callable[[Store, str], Any]
Write = Callable[[Store, Any], object]


def add(store: Store, job_id: str, *depends_on: str, **fields: Any) -> Job:
    job = NewJob(id=job_id, command=f"echo {job_id}", depends_on=depends_on, **fields)
    return store.insert_jobs([job])[0]


def claim(store: Store, job_id: str, worker: str = WORKER) -> Job:
    job = store.claim_job(worker, None)
    assert job is not None
    assert job.id == job_id
    return job


def completed() -> tuple[Outcome, AttemptRecord]:
    return Outcome(JobState.COMPLETED, None, None), AttemptRecord(0, "done")


def dead() -> tuple[Outcome, AttemptRecord]:
    return Outcome(JobState.DEAD, None, "exited with code 1"), AttemptRecord(1, "boom")


def running_with_dependents(store: Store, target: str) -> Job:
    """a runs under w1; b and c wait for it, d for b, e for nothing."""
    store.register_worker(WORKER, "host", os.getpid(), None)
    add(store, "a", priority=9, max_retries=0)
    add(store, "b", "a")
    add(store, "c", "a")
    add(store, "d", "b")
    add(store, "e")
    return claim(store, "a")


def dead_with_dependents(store: Store, target: str) -> None:
    job = running_with_dependents(store, target)
    assert store.finish_attempt(job, WORKER, *dead())


def stale_with_dependents(store: Store, target: str) -> None:
    running_with_dependents(store, target)
    age_worker(target, WORKER, 3600.0)


def due_schedule(store: Store, target: str) -> Schedule:
    now = store.now()
    schedule = Schedule(
        name="nightly",
        cron="* * * * *",
        timezone="UTC",
        command="echo tick",
        created_at=now,
        next_fire_at=now - timedelta(minutes=1),
    )
    store.insert_schedule(schedule)
    return schedule


def fire(store: Store, schedule: Schedule) -> bool:
    assert schedule.next_fire_at is not None
    jobs = [firing_job(schedule, schedule.next_fire_at)]
    return store.fire_schedule(schedule, jobs, schedule.next_fire_at + timedelta(minutes=1))


HOOK_CONFIG = {
    "on-complete": "true",
    "on-fail": "true",
    "on-dead": "true",
    "on-cancel": "true",
    "webhook-url": "http://127.0.0.1:9/hook",
}


def with_hooks(setup: Setup) -> Setup:
    """`setup` in a store with every hook and a webhook configured: each state change then
    writes outbox rows, which must commit with it or not at all."""

    def configured(store: Store, target: str) -> Any:
        for key, value in HOOK_CONFIG.items():
            store.set_config(key, value)
        return setup(store, target)

    return configured


def finished_with_hook(store: Store, target: str) -> None:
    """a completed with an on-complete hook configured: its outbox row is due."""
    job = running_with_dependents(store, target)
    store.set_config("on-complete", "true")
    assert store.finish_attempt(job, WORKER, *completed())


def due_delivery(store: Store, target: str) -> int:
    """An outbox row of a completed job, leased to w1."""
    finished_with_hook(store, target)
    event = store.claim_event(WORKER, 60.0)
    assert event is not None
    return event.id


def pending_and_key_holder(store: Store, target: str) -> None:
    add(store, "a")
    add(store, "holder", dedupe_key="k")


WRITES: dict[str, tuple[Setup, Write]] = {
    "finish, releasing dependents": (
        running_with_dependents,
        lambda store, job: store.finish_attempt(job, WORKER, *completed()),
    ),
    "finish dead, killing dependents": (
        running_with_dependents,
        lambda store, job: store.finish_attempt(job, WORKER, *dead()),
    ),
    "finish and claim": (
        running_with_dependents,
        lambda store, job: store.finish_and_claim(job, WORKER, *completed(), None),
    ),
    "finish dead and claim": (
        running_with_dependents,
        lambda store, job: store.finish_and_claim(job, WORKER, *dead(), None),
    ),
    "finish for a retry": (
        running_with_dependents,
        lambda store, job: store.finish_attempt(
            job, WORKER, Outcome(JobState.FAILED, 5.0, "exited with code 1"), AttemptRecord(1, "")
        ),
    ),
    "rescue": (
        stale_with_dependents,
        lambda store, _: QueueService(store).rescue_stale(Settings()),
    ),
    "cancel a running job": (running_with_dependents, lambda store, _: store.cancel_job("a")),
    "cancel a waiting job": (running_with_dependents, lambda store, _: store.cancel_job("b")),
    "dlq retry of one job": (
        dead_with_dependents,
        lambda store, _: store.requeue_job("a", (JobState.DEAD,)),
    ),
    "dlq retry --all": (dead_with_dependents, lambda store, _: store.requeue_all_dead(None)),
    "claim": (running_with_dependents, lambda store, _: store.claim_job("w2", None)),
    "insert with dependencies": (
        pending_and_key_holder,
        lambda store, _: store.insert_jobs(
            [
                NewJob(id="x", command="true", depends_on=("a",)),
                NewJob(id="y", command="true", depends_on=("a", "x")),
            ]
        ),
    ),
    "insert skipping held keys": (
        pending_and_key_holder,
        lambda store, _: store.insert_jobs(
            [
                NewJob(id="x", command="true", dedupe_key="k"),
                NewJob(id="y", command="true", dedupe_key="other"),
                NewJob(id="z", command="true", depends_on=("y", "a")),
            ],
            skip_duplicate_keys=True,
        ),
    ),
    "schedule firing": (due_schedule, fire),
    "prune": (
        dead_with_dependents,
        lambda store, _: store.delete_jobs((JobState.DEAD,), 0.0, limit=10),
    ),
    "finish with hooks": (
        with_hooks(running_with_dependents),
        lambda store, job: store.finish_attempt(job, WORKER, *completed()),
    ),
    "finish dead with hooks, killing dependents": (
        with_hooks(running_with_dependents),
        lambda store, job: store.finish_attempt(job, WORKER, *dead()),
    ),
    "finish and claim with hooks": (
        with_hooks(running_with_dependents),
        lambda store, job: store.finish_and_claim(job, WORKER, *completed(), None),
    ),
    "finish for a retry with hooks": (
        with_hooks(running_with_dependents),
        lambda store, job: store.finish_attempt(
            job, WORKER, Outcome(JobState.FAILED, 5.0, "exited with code 1"), AttemptRecord(1, "")
        ),
    ),
    "rescue with hooks": (
        with_hooks(stale_with_dependents),
        lambda store, _: QueueService(store).rescue_stale(Settings()),
    ),
    "cancel with hooks": (
        with_hooks(running_with_dependents),
        lambda store, _: store.cancel_job("a"),
    ),
    "delivery claimed": (finished_with_hook, lambda store, _: store.claim_event("w2", 60.0)),
    "delivery recorded": (
        due_delivery,
        lambda store, event_id: store.finish_event(event_id, WORKER, "hook exited 1", None),
    ),
}


@pytest.mark.parametrize(
    ("name", "events"),
    [
        ("finish with hooks", {("a", "complete")}),
        ("finish dead with hooks, killing dependents", {(j, "dead") for j in "abcd"}),
        ("finish for a retry with hooks", {("a", "fail")}),
        ("rescue with hooks", {(j, "dead") for j in "abcd"}),
        ("cancel with hooks", {("a", "cancel"), *((j, "dead") for j in "bcd")}),
    ],
)
def test_a_state_change_writes_a_hook_and_a_webhook_row_per_event(
    db_target: str, name: str, events: set[tuple[str, str]]
) -> None:
    setup, write = WRITES[name]
    store = open_store(db_target)
    try:
        context = setup(store, db_target)
        assert not any(store.list_job_events(j) for j in "abcde")
        write(store, context)
        rows = [event for j in "abcde" for event in store.list_job_events(j)]
        assert {(event.job_id, event.event) for event in rows} == events
        assert sorted(event.channel for event in rows) == sorted(["hook", "webhook"] * len(events))
    finally:
        store.close()


def test_a_store_without_hooks_writes_no_outbox_rows(db_target: str) -> None:
    store = open_store(db_target)
    try:
        for key in HOOK_CONFIG:  # as `config set KEY none` leaves them
            store.set_config(key, "none")
        job = running_with_dependents(store, db_target)
        assert store.finish_attempt(job, WORKER, *dead())
        assert not any(store.list_job_events(j) for j in "abcde")
    finally:
        store.close()


@pytest.mark.parametrize("name", list(WRITES))
def test_a_fault_at_any_statement_leaves_the_write_whole_or_undone(
    db_target: str, name: str
) -> None:
    setup, write = WRITES[name]
    store = open_store(db_target)
    try:

        def fresh() -> tuple[Any, Snapshot]:
            wipe(db_target)
            context = setup(store, db_target)
            return context, snapshot(db_target)

        context, before = fresh()
        write(store, context)
        after = snapshot(db_target)
        assert after != before, "the write changed nothing: this case tests nothing"
        interrupted = 0
        for fail_at in range(1, MAX_STATEMENTS):
            context, before_again = fresh()
            assert before_again == before
            plan = FaultPlan(fail_at)
            with faults(store, plan), contextlib.suppress(Exception):
                write(store, context)
            if not plan.fired:
                # The write sent fewer statements: every one has had its fault. Through the
                # faulty connection, unfaulted, it must still write (the same rows but for
                # generated names); else the faults above tested a connection that could not
                # write at all.
                assert snapshot(db_target) != before
                break
            interrupted += 1
            seen = snapshot(db_target)
            assert seen in (before, after), (
                f"a fault at statement {fail_at} of {name!r} left the store half-changed:\n"
                f"{_difference(before, seen)}"
            )
        else:
            pytest.fail(f"{name!r} sent more than {MAX_STATEMENTS} statements")
        assert interrupted >= 1
    finally:
        store.close()


def _difference(before: Snapshot, seen: Snapshot) -> str:
    lines = []
    for table in sorted(before):
        gone = sorted(set(before[table]) - set(seen.get(table, [])))
        new = sorted(set(seen.get(table, [])) - set(before[table]))
        lines += [f"{table} - {row}" for row in gone] + [f"{table} + {row}" for row in new]
    return "\n".join(lines)


# -- a crash between the finish and the release -------------------------------------------

FINISH_IN_CHILD = """
import sys
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import JobState
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord

store = open_store(sys.argv[1])
job = store.get_job("a")
outcome = Outcome(JobState.COMPLETED, None, None)
if sys.argv[2] == "finish":
    store.finish_attempt(job, "w1", outcome, AttemptRecord(0, "done"))
else:
    store.finish_and_claim(job, "w1", outcome, AttemptRecord(0, "done"), None)
print("finished without crashing")
"""


def test_the_crash_point_between_finish_and_release_is_known() -> None:
    assert "between-finish-and-release" in POINTS


@pytest.mark.parametrize("call", ["finish", "finish_and_claim"])
def test_a_crash_between_finish_and_release_rolls_both_back(db_target: str, call: str) -> None:
    store = open_store(db_target)
    try:
        running_with_dependents(store, db_target)
        before = snapshot(db_target)
        env = dict(os.environ, **{FAULT_VARIABLE: "between-finish-and-release"})
        child = subprocess.run(
            [sys.executable, "-c", FINISH_IN_CHILD, db_target, call],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == CRASH_EXIT_STATUS, (child.stdout, child.stderr)
        # Nothing of the finish stayed: a still runs under w1, b and c still wait for it.
        assert snapshot(db_target) == before
        job = store.get_job("a")
        assert job is not None
        assert job.state is JobState.PROCESSING
        assert store.claim_job("w2", None) is not None  # e, the only job free to run
        assert store.claim_job("w2", None) is None  # b and c still wait
        # The finish, retried by a live worker, goes through whole.
        assert store.finish_attempt(replace(job), WORKER, *completed())
        released = [store.claim_job("w3", None), store.claim_job("w3", None)]
        assert {job.id for job in released if job is not None} == {"b", "c"}
    finally:
        store.close()


def test_a_dead_deliverers_rows_are_taken_over_once_its_lease_runs_out(db_target: str) -> None:
    store = open_store(db_target)
    try:
        finished_with_hook(store, db_target)
        taken = store.claim_event("w-dead", 3600.0)
        assert taken is not None
        assert store.claim_event("w2", 3600.0) is None  # leased: nobody else takes it
        again = store.claim_event("w2", 0.0)  # a lease of 0 s has run out at once
        assert again is not None
        assert again.id == taken.id
        # The first deliverer, back too late, can no longer record it: w2 holds it now.
        assert not store.finish_event(taken.id, "w-dead", None, None)
        assert store.finish_event(again.id, "w2", None, None)
        (delivered,) = store.list_job_events("a")
        assert (delivered.status, delivered.tries) == ("delivered", 1)
        assert store.claim_event("w3", 0.0) is None  # delivered: never again
    finally:
        store.close()


def test_a_retried_delivery_waits_and_a_final_failure_stays_recorded(db_target: str) -> None:
    store = open_store(db_target)
    try:
        finished_with_hook(store, db_target)
        first = store.claim_event(WORKER, 60.0)
        assert first is not None
        assert store.finish_event(first.id, WORKER, "webhook answered HTTP 500", 3600.0)
        assert store.claim_event(WORKER, 60.0) is None  # not due for an hour
        (waiting,) = store.list_job_events("a")
        assert (waiting.status, waiting.tries, waiting.error) == (
            "pending",
            1,
            "webhook answered HTTP 500",
        )
        assert store.finish_event(first.id, WORKER, "nope", None) is False  # not leased
        assert store.failed_events(3600.0, 10) == []
    finally:
        store.close()
