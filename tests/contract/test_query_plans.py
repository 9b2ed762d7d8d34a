"""The hot paths read through indexes, never by scanning jobs or attempts (issue 5).

Each store runs its real statements (captured as it sends them), and each is then
EXPLAINed: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (FORMAT JSON) on PostgreSQL with
sequential scans priced out (enable_seqscan = off), so that a Seq Scan left in a plan means
no index can serve it, whatever the planner would pick on a table this small.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import JobState, NewJob
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, JobFilter, Store

# What grows with history; workers/queues/config stay small.
BIG_TABLES = ("jobs", "attempts", "job_events")
WORKER = "worker-plans"

Statement = tuple[str, Any]  # (sql, params) as the store sent it


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    opened = open_store(db_target)
    opened.insert_jobs([NewJob(id=f"job-{n}", command="true") for n in range(50)])
    opened.register_worker(WORKER, "host", 1, None)
    yield opened
    opened.close()


@contextmanager
def captured(store: Store) -> Iterator[list[Statement]]:
    """Every statement `store` sends on its main connection while the block runs."""
    sent: list[Statement] = []
    conn: Any = store.conn  # type: ignore[attr-defined]
    if isinstance(conn, sqlite3.Connection):
        conn.set_trace_callback(lambda sql: sent.append((sql, ())))
        try:
            yield sent
        finally:
            conn.set_trace_callback(None)
        return
    original = conn.execute

    def recording(sql: str, params: Any = None, **kwargs: Any) -> Any:
        sent.append((sql, params))
        return original(sql, params, **kwargs)

    conn.execute = recording
    try:
        yield sent
    finally:
        del conn.execute


def scans_of_big_tables(store: Store, statements: list[Statement]) -> list[str]:
    """The plan lines, over every query among `statements`, that scan a big table whole."""
    queries = [
        (sql, params)
        for sql, params in statements
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "DELETE", "INSERT"))
        and not sql.lstrip().startswith("SELECT pg_notify")  # a wake-up, no table read
    ]
    assert queries, "the store sent no query"
    conn: Any = store.conn  # type: ignore[attr-defined]
    found = []
    if isinstance(conn, sqlite3.Connection):
        for sql, _ in queries:
            plan = [(row[1], str(row[3])) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for parent, detail in plan:
                # "SCAN jobs" reads the table; "SCAN jobs USING [COVERING] INDEX" walks an
                # index in order; "SEARCH" seeks.
                words = detail.split()
                whole = words[:1] == ["SCAN"] and "USING" not in words
                if whole and _big(words[1]) and not _newest_by_rowid(sql, plan, parent):
                    found.append(f"{detail}  <-  {sql}")
        return found
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        for sql, params in queries:
            (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for node in _nodes(plan[0]["Plan"]):
                if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
                    found.append(f"Seq Scan on {node['Relation Name']}  <-  {sql}")
    return found


def _big(name: str) -> bool:
    """A table, or an alias of one, among BIG_TABLES (SQLite plans name aliases)."""
    return name in BIG_TABLES or name == "running"  # `jobs AS running` in CLOSED_QUEUES


def _newest_by_rowid(sql: str, plan: list[tuple[int, str]], parent: int) -> bool:
    """SQLite says "SCAN jobs" too for a walk of the rowid (seq) from its end that stops
    after LIMIT rows: no sort (temp b-tree) at the same level of the plan tells them apart."""
    ordered = "ORDER BY seq DESC LIMIT" in " ".join(sql.split())
    return ordered and not any(p == parent and "TEMP B-TREE" in d for p, d in plan)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def finish_one(store: Store) -> None:
    job = store.claim_job(WORKER, None)
    assert job is not None
    outcome = Outcome(JobState.COMPLETED, None, None)
    assert store.finish_attempt(job, WORKER, outcome, AttemptRecord(0, "ok"))


def finish_and_claim_one(store: Store) -> None:
    """A busy worker's step: the finish (with the release of dependents) and the next claim
    in one transaction."""
    job = store.claim_job(WORKER, None)
    assert job is not None
    outcome = Outcome(JobState.COMPLETED, None, None)
    finished, _ = store.finish_and_claim(job, WORKER, outcome, AttemptRecord(0, "ok"), None)
    assert finished


def finish_with_dependents(store: Store) -> None:
    """A finish that releases jobs waiting for it."""
    job = store.claim_job(WORKER, None)
    assert job is not None
    store.insert_jobs([NewJob(id=f"after-{job.id}", command="true", depends_on=(job.id,))])
    outcome = Outcome(JobState.COMPLETED, None, None)
    assert store.finish_attempt(job, WORKER, outcome, AttemptRecord(0, "ok"))


def finish_with_hooks(store: Store) -> None:
    """A finish that writes outbox rows, and a deliverer taking one and recording it."""
    store.set_config("on-complete", "true")
    store.set_queue_webhook("default", "http://127.0.0.1:9/")
    finish_one(store)
    event = store.claim_event(WORKER, 60.0)
    assert event is not None
    assert store.finish_event(event.id, WORKER, "hook exited 1", None)


HOT_PATHS: dict[str, Callable[[Store], object]] = {
    "claim": lambda store: store.claim_job(WORKER, None),
    "claim from named queues": lambda store: store.claim_job(WORKER, ["default", "other"]),
    "finish": finish_one,
    "finish with dependents": finish_with_dependents,
    "finish and claim": finish_and_claim_one,
    "idle worker's next due time": lambda store: store.seconds_until_next_job(None),
    "status counts": lambda store: store.count_jobs_by_state(),
    "status workers": lambda store: store.list_workers(30.0),
    "rescue check (every command)": lambda store: store.find_stale_jobs(30.0),
    "list by state": lambda store: store.list_jobs(JobFilter(states=(JobState.PENDING,), limit=20)),
    "list newest": lambda store: store.list_jobs(JobFilter(limit=20)),
    "show": lambda store: (store.get_job("job-7"), store.list_attempts("job-7")),
    "finish with hooks, delivered": finish_with_hooks,
    "idle deliverer's look": lambda store: store.claim_event(WORKER, 60.0),
    "show's hook deliveries": lambda store: store.list_job_events("job-7"),
    "doctor's failed deliveries": lambda store: store.failed_events(86400.0, 100),
    "prune of old deliveries": lambda store: store.prune_events(86400.0),
}


@pytest.mark.parametrize("path", list(HOT_PATHS))
def test_hot_path_scans_no_big_table(store: Store, path: str) -> None:
    finish_one(store)  # some history, and a job to show
    with captured(store) as statements:
        HOT_PATHS[path](store)
    assert scans_of_big_tables(store, statements) == []


def test_a_query_without_an_index_is_caught(store: Store) -> None:
    """The check itself: a filter on an unindexed column is reported."""
    sql = "SELECT id FROM jobs WHERE command = 'true'"
    assert scans_of_big_tables(store, [(sql, ())]) != []
