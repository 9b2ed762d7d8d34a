"""Transfers that cannot forget a table (issue 13, item 4), on each backend and across them.

What a transfer carries is declared in queuectl.store.tables; these tests hold that list to
the schema as the database catalog has it, so a migration that adds a table or a column
fails here until the transfer handles it. Then export -> import -> export must give the
same lines, and what the jobs do must survive the move: a dependent still waits for its
dependency, a dedupe key still refuses a duplicate, a schedule still fires once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl.core.errors import DuplicateDedupeKey
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, Job, JobState, NewJob
from queuectl.core.rates import Rate
from queuectl.core.schedule import Schedule
from queuectl.scheduling import ScheduleService
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, QueueSetting, Store
from queuectl.store.tables import CARRIED_TABLES, DERIVED_COLUMNS, LEFT_BEHIND
from queuectl.transfer import export_lines, import_contents, migrate_store, read_export
from tests import pgtools
from tests.storetools import columns, raw, tables

WORKER = "w1"
# The record each carried table's rows come from: its columns are the record's fields.
RECORD_OF: dict[str, set[str]] = {
    "jobs": {field.name for field in dataclasses.fields(Job)},
    "attempts": {field.name for field in dataclasses.fields(Attempt)},
    "schedules": {field.name for field in dataclasses.fields(Schedule)},
    "queues": {field.name for field in dataclasses.fields(QueueSetting)},
    "config": {"key", "value"},
    "job_dependencies": {"job_id", "depends_on_id"},  # an edge per entry of Job.depends_on
}


@pytest.fixture
def other(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A second, empty store of the same backend as `store`."""
    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            target = stack.enter_context(pgtools.fresh_database())
        else:
            target = str(tmp_path / "other" / "queuectl.db")
        opened = open_store(target)
        yield opened
        opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "second" / "queuectl.db"))
    yield opened
    opened.close()


@pytest.fixture
def postgres_store() -> Iterator[Store]:
    with pgtools.fresh_database() as url:
        opened = open_store(url)
        yield opened
        opened.close()


def target_of(store: Store) -> str:
    """The target string a store was opened with (for reading it behind its back)."""
    return str(getattr(store, "url", None) or store.path)  # type: ignore[attr-defined]


def test_every_table_of_the_schema_is_carried_or_left_behind_on_purpose(db_target: str) -> None:
    open_store(db_target).close()
    with raw(db_target) as conn:
        found = set(tables(conn))
        assert set(CARRIED_TABLES) <= found
        assert found - set(CARRIED_TABLES) <= set(LEFT_BEHIND), (
            "a table that no transfer carries: carry it, or say in store/tables.py why not"
        )
        for table in CARRIED_TABLES:
            have = columns(conn, table)
            fields = RECORD_OF[table]
            derived = set(DERIVED_COLUMNS.get(table, {}))
            assert fields <= have, f"{table}: fields without a column: {fields - have}"
            assert have <= fields | derived, (
                f"{table}: columns that no record carries and import does not rebuild: "
                f"{sorted(have - fields - derived)}"
            )


def test_the_export_header_lists_the_carried_tables(store: Store) -> None:
    header = json.loads(next(iter(export_lines(store))))
    assert header["version"] == 2
    assert header["tables"] == sorted(CARRIED_TABLES)


def test_an_export_carrying_an_unknown_table_is_refused() -> None:
    header = {"type": "header", "format": "queuectl-export", "version": 2}
    with pytest.raises(Exception, match="table 'tags', which this queuectl cannot import"):
        read_export([json.dumps({**header, "tables": [*CARRIED_TABLES, "tags"]})])


# -- a store with something of everything -------------------------------------------------


def fill(store: Store) -> None:
    """Dependencies (one met, one not, a chain), a held dedupe key, history, a due
    schedule, config and queue settings, a job's own hooks and a queue's webhook."""
    store.set_config("backoff-base", "7")
    store.set_queue_limit("reports", 2)
    store.set_queue_rate("reports", Rate(30, 60))
    store.set_queue_webhook("reports", "https://hooks.example.com/reports")
    store.set_queue_paused("slow", True)
    store.register_worker(WORKER, "host", 1, None)
    for job in [
        NewJob(id="done", command="true", priority=9),
        NewJob(id="a", command="sleep 1", priority=5),
        NewJob(id="after-done", command="true", depends_on=("done",)),
        NewJob(id="b", command="echo b", depends_on=("a",)),
        NewJob(id="c", command="echo c", depends_on=("a", "b")),
        NewJob(
            id="keyed",
            command="true",
            dedupe_key="nightly-report",
            queue="reports",
            hooks={"on_dead": "notify-send dead", "on_complete": "true"},
        ),
    ]:
        store.insert_jobs([job])
    first = store.claim_job(WORKER, None)
    assert first is not None
    assert first.id == "done"
    outcome = Outcome(JobState.COMPLETED, None, None)
    assert store.finish_attempt(first, WORKER, outcome, AttemptRecord(0, "done\n"))
    store.deregister_worker(WORKER)
    now = store.now()
    store.insert_schedule(
        Schedule(
            name="every-minute",
            cron="* * * * *",
            timezone="UTC",
            command="echo tick",
            created_at=now,
            next_fire_at=now.replace(second=0, microsecond=0),  # due, and the only one due
        )
    )


def export_body(store: Store) -> list[str]:
    """The export's lines, its header without the moment it was taken."""
    lines = list(export_lines(store))
    header = json.loads(lines[0])
    del header["exported_at"]
    return [json.dumps(header), *lines[1:]]


def move(source: Store, target: Store) -> None:
    import_contents(target, read_export(export_lines(source)), skip_existing=False)


def dependency_rows(store: Store) -> list[Any]:
    with raw(target_of(store)) as conn:
        edges = conn.execute("SELECT job_id, depends_on_id FROM job_dependencies").fetchall()
        waits = conn.execute("SELECT id, waiting_on FROM jobs").fetchall()
    return [sorted(map(tuple, edges)), sorted(map(tuple, waits))]


def assert_behaviour_survived(store: Store) -> None:
    """The moved store acts as the source would have."""
    # The job's own hooks and the queue's webhook came along.
    keyed = store.get_job("keyed")
    assert keyed is not None
    assert keyed.hooks == {"on_dead": "notify-send dead", "on_complete": "true"}
    assert store.queue_webhooks() == {"reports": "https://hooks.example.com/reports"}
    # The dedupe key is still held by the pending job.
    with pytest.raises(DuplicateDedupeKey):
        store.insert_jobs([NewJob(id="again", command="true", dedupe_key="nightly-report")])
    # The schedule that was due fires once, however often the workers look.
    schedules = ScheduleService(store)
    assert schedules.fire_due() == 1
    assert schedules.fire_due() == 0
    # a runs first; b and c wait for it (and c for b) however many workers claim.
    claimed = [store.claim_job(f"w{n}", None) for n in range(6)]
    ids = {job.id for job in claimed if job is not None}
    assert "a" in ids
    assert not ids & {"b", "c"}, f"a dependent ran before its dependency: {ids}"
    assert "after-done" in ids  # its dependency had completed before the move
    a = next(job for job in claimed if job is not None and job.id == "a")
    assert store.finish_attempt(a, a.locked_by or "", Outcome(JobState.COMPLETED, None, None),
                                AttemptRecord(0, ""))  # fmt: skip
    b = store.claim_job("w9", None)
    assert b is not None
    assert b.id == "b"
    assert store.claim_job("w9", None) is None  # c still waits for b


def test_export_import_export_is_identical_and_jobs_behave_the_same(
    store: Store, other: Store
) -> None:
    fill(store)
    move(store, other)
    assert export_body(other) == export_body(store)
    assert dependency_rows(other) == dependency_rows(store)
    assert_behaviour_survived(other)


@pytest.mark.postgres
def test_sqlite_to_postgresql_to_sqlite_keeps_everything(
    tmp_path: Path, postgres_store: Store
) -> None:
    source = open_store(str(tmp_path / "source" / "queuectl.db"))
    back = open_store(str(tmp_path / "back" / "queuectl.db"))
    try:
        fill(source)
        move(source, postgres_store)
        move(postgres_store, back)
        assert export_body(postgres_store) == export_body(source)
        assert export_body(back) == export_body(source)
        assert dependency_rows(postgres_store) == dependency_rows(source)
        assert dependency_rows(back) == dependency_rows(source)
        assert_behaviour_survived(postgres_store)
        assert_behaviour_survived(back)
    finally:
        source.close()
        back.close()


@pytest.mark.postgres
@pytest.mark.parametrize("merge", [False, True])
def test_store_migrate_keeps_dependencies_across_backends(
    sqlite_store: Store, postgres_store: Store, merge: bool
) -> None:
    fill(sqlite_store)
    if merge:
        postgres_store.insert_jobs([NewJob(id="already-there", command="true")])
    report = migrate_store(
        sqlite_store, postgres_store, pause=False, wait_timeout=1.0, merge=merge, say=print
    )
    assert sum(report.counts.values()) == 6
    assert dependency_rows(postgres_store)[0] == dependency_rows(sqlite_store)[0]
    assert_behaviour_survived(postgres_store)


def test_an_import_of_the_previous_format_keeps_dependencies(store: Store, other: Store) -> None:
    """Version 1 files (no table list) carried depends_on in each job: enough to rebuild."""
    fill(store)
    lines = list(export_lines(store))
    header = json.loads(lines[0])
    header["version"] = 1
    del header["tables"]
    import_contents(other, read_export([json.dumps(header), *lines[1:]]), skip_existing=False)
    assert dependency_rows(other) == dependency_rows(store)
    assert_behaviour_survived(other)
