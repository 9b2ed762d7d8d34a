"""Reaching into a test's store where no command can: ageing jobs for the retention tests."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

DAY = 86400.0  # seconds


def move_back(
    target: str, table: str, times: tuple[str, ...], key: str, value: str, seconds: float
) -> int:
    """Move the time columns `times` of the `table` rows whose `key` is `value` back by
    `seconds`, on either backend; how many rows changed."""
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg

        moved = ", ".join(
            f"{column} = {column} - %(age)s * interval '1 second'" for column in times
        )
        with psycopg.connect(target, autocommit=True) as server:
            return server.execute(
                f"UPDATE queuectl.{table} SET {moved} WHERE {key} = %(value)s",  # noqa: S608 - names from the callers
                {"age": seconds, "value": value},
            ).rowcount
    moved = ", ".join(f"{column} = {column} - :age" for column in times)
    path = target.removeprefix("sqlite://")
    with contextlib.closing(sqlite3.connect(path)) as database, database:
        return database.execute(
            f"UPDATE {table} SET {moved} WHERE {key} = :value",  # noqa: S608 - names from the callers
            {"age": seconds, "value": value},
        ).rowcount


def backdate(target: str, job_id: str, seconds: float) -> None:
    """Make a job look `seconds` older: its updated_at and finished_at move back by that
    much, as if it had finished long ago (age is what prune and retention look at)."""
    changed = move_back(target, "jobs", ("updated_at", "finished_at"), "id", job_id, seconds)
    assert changed == 1, f"no job {job_id!r} to backdate"


def age_worker(target: str, worker_id: str, seconds: float) -> None:
    """Make a worker's last heartbeat `seconds` older, as if it had died that long ago."""
    changed = move_back(target, "workers", ("last_heartbeat",), "id", worker_id, seconds)
    assert changed == 1, f"no worker {worker_id!r} to age"


def age_claim(target: str, job_id: str, seconds: float) -> None:
    """Make a processing job's claim `seconds` older (its locked_at and started_at)."""
    changed = move_back(target, "jobs", ("locked_at", "started_at"), "id", job_id, seconds)
    assert changed == 1, f"no job {job_id!r} to age"


def age_starts(target: str, queue: str, seconds: float) -> None:
    """Make the logged starts of a rate-limited queue `seconds` older, as if that much time
    had passed since: its window moves on without the test waiting for it."""
    changed = move_back(target, "queue_starts", ("started_at",), "queue", queue, seconds)
    assert changed, f"no starts of queue {queue!r} to age"


def set_next_firing(target: str, name: str, when: datetime) -> None:
    """Move a schedule's next firing to `when`, as if no worker had run since then."""
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(target, autocommit=True) as server:
            changed = server.execute(
                "UPDATE queuectl.schedules SET next_fire_at = %s WHERE name = %s", (when, name)
            ).rowcount
    else:
        path = target.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as database, database:
            changed = database.execute(
                "UPDATE schedules SET next_fire_at = ? WHERE name = ?", (when.timestamp(), name)
            ).rowcount
    assert changed == 1, f"no schedule {name!r}"


@contextlib.contextmanager
def raw(target: str) -> Iterator[Any]:
    """A connection of our own to a store's database, committing each statement."""
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("SET search_path TO queuectl")
            yield conn
        return
    path = target.removeprefix("sqlite://")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA busy_timeout = 5000")
        yield conn


def tables(conn: Any) -> list[str]:
    """The tables of a store's schema, as its database catalog lists them."""
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return sorted(row[0] for row in rows if not row[0].startswith("sqlite_"))
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'queuectl'"
    ).fetchall()
    return sorted(row[0] for row in rows)


def columns(conn: Any, table: str) -> set[str]:
    """The columns of one table, as the database catalog lists them."""
    if isinstance(conn, sqlite3.Connection):
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'queuectl' AND table_name = %s",
        (table,),
    ).fetchall()
    return {row[0] for row in rows}
