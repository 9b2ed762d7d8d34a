"""`enqueue` on PostgreSQL without the Store machinery, for what a shell loop runs once per
job: its start-up is what users feel.

It uses psycopg2 when it is installed (store/postgres_lean.py says why), like
store/sqlite_enqueue.py: the rules of core.spec, the columns PostgresStore.insert_jobs
writes for a plain job, one durable transaction, and None (having written nothing) whenever
the full path must decide: no psycopg2, a server that does not answer, a schema older or
newer than this release's, a job field it does not write, a duplicate id or dedupe key
(whose message names the line). The full path then does the whole command again, with the
same rules.
"""

from __future__ import annotations

from queuectl.store import postgres_lean as lean
from queuectl.store.plain_jobs import env_text, parse_plain_jobs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from psycopg2.extensions import connection

COPY_MIN_JOBS = 200  # as PostgresStore: from this many jobs on, COPY is quicker
CHANNEL = "queuectl_jobs"  # as store.postgres.connection.CHANNEL (whose package imports psycopg)
COLUMNS = (
    "id, command, state, queue, priority, max_retries, timeout, created_at, updated_at,"
    " scheduled_at, run_at, cwd, env"
)
INSERT = (
    f"INSERT INTO queuectl.jobs ({COLUMNS})"
    " SELECT id, command, 'pending', queue, priority, max_retries, timeout, now(), now(),"
    " scheduled_at, coalesce(scheduled_at, now()), cwd, env"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::float8[],"
    " %s::timestamptz[], %s::text[], %s::text[]) WITH ORDINALITY AS new (id, command, queue,"
    " priority, max_retries, timeout, scheduled_at, cwd, env, position) ORDER BY position;"
    f" SELECT pg_notify('{CHANNEL}', '')"
)
COPY = f"COPY queuectl.jobs ({COLUMNS}) FROM STDIN"
# COPY's text format: these characters are written as escapes, NULL as \N.
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_plain_jobs(url: str, texts: Sequence[str], *, lines: bool) -> list[str] | None:
    """Validate and insert `texts`; the new ids in order, or None when the full path must
    do it. Bad input raises InvalidJobSpec exactly as the full path would, before anything
    is written."""
    conn = lean.connect(url)
    if conn is None:
        return None
    import psycopg2  # imported by connect()

    try:
        return _insert(conn, texts, lines=lines)
    except (psycopg2.Error, ValueError):  # ValueError: text psycopg2 cannot send (a NUL)
        return None
    finally:
        conn.close()


def _insert(conn: connection, texts: Sequence[str], *, lines: bool) -> list[str] | None:
    with conn.cursor() as cursor:
        stored = lean.current_config(cursor)
        if stored is None:
            return None
        jobs = parse_plain_jobs(texts, stored, lines=lines)
        if jobs is None:
            return None
        if len(jobs) < COPY_MIN_JOBS:
            # One round trip; both statements in one transaction; the wake-up of idle
            # workers is delivered at its commit.
            cursor.execute(
                INSERT,
                [
                    [job[field] for job in jobs]
                    for field in ("id", "command", "queue", "priority", "max_retries")
                ]
                + [
                    [float(job["timeout"]) for job in jobs],
                    [job["scheduled_at"] for job in jobs],
                    [job["cwd"] for job in jobs],
                    [env_text(job["env"]) for job in jobs],
                ],
            )
        else:
            _copy(conn, jobs)
    return [job["id"] for job in jobs]


def _copy(conn: connection, jobs: list[dict[str, Any]]) -> None:
    """A bulk load: COPY in one transaction, at the transaction's clock like INSERT."""
    import io

    conn.autocommit = False
    with conn, conn.cursor() as cursor:  # commits at the end, rolls back on an error
        cursor.execute("SELECT now()")
        row = cursor.fetchone()
        assert row is not None
        now = str(row[0])
        data = io.StringIO(
            "".join(
                "\t".join(
                    (
                        _text(job["id"]),
                        _text(job["command"]),
                        "pending",
                        _text(job["queue"]),
                        str(job["priority"]),
                        str(job["max_retries"]),
                        repr(float(job["timeout"])),
                        now,
                        now,
                        _text(job["scheduled_at"]),
                        _text(job["scheduled_at"] or now),
                        _text(job["cwd"]),
                        _text(env_text(job["env"])),
                    )
                )
                + "\n"
                for job in jobs
            )
        )
        cursor.copy_expert(COPY, data)
        cursor.execute(f"SELECT pg_notify('{CHANNEL}', '')")


def _text(value: object) -> str:
    return "\\N" if value is None else str(value).translate(COPY_ESCAPES)
