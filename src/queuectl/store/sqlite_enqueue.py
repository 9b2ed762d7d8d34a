"""`enqueue` on a SQLite store without the Store machinery (dataclasses, models, the
migrations): a shell loop runs it once per job, so its start-up is what users feel.

It applies the rules of core.spec, inserts in one durable transaction the columns
SqliteStore.insert_jobs writes, and declines (returns None, having written nothing) whenever
the full path must decide: no store file yet, a schema older or newer than this release's,
a job field it does not write, a duplicate id (whose message names the line), a driver
error. The full path then does the whole command again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from itertools import chain

from queuectl.store.migrate import latest_version
from queuectl.store.plain_jobs import env_text, parse_plain_jobs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

BUSY_TIMEOUT = 30.0  # seconds, as SqliteStore waits for the write lock
BIG_BATCH = 1000  # rows; a batch larger than this gets a bigger page cache
BIG_BATCH_CACHE_KB = 65536  # KiB of page cache for a big batch
# Many rows a statement: a third less time per row than executemany's one row a statement.
ROWS_PER_INSERT = 500  # at most; fewer where SQLite takes fewer parameters a statement
INSERT = (
    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
    " created_at, updated_at, scheduled_at, run_at, cwd, env) VALUES "
)
ROW = "(?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
ROW_PARAMETERS = ROW.count("?")


def insert_plain_jobs(path: str, texts: Sequence[str], *, lines: bool) -> list[str] | None:
    """Validate and insert `texts` (one JSON object, or JSON lines with `lines`); the new
    ids in order, or None when the full path must do it. Bad input raises InvalidJobSpec
    exactly as the full path would, before anything is written."""
    if not os.path.exists(path):
        return None  # created (mode 0600, folder 0700) and migrated by the full path
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        return _insert(conn, texts, lines=lines)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, texts: Sequence[str], *, lines: bool) -> list[str] | None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version != latest_version("sqlite"):
        return None
    jobs = parse_plain_jobs(
        texts, conn.execute("SELECT key, value FROM config").fetchall(), lines=lines
    )
    if jobs is None:
        return None
    now = time.time()
    rows = [
        (
            job["id"],
            job["command"],
            job["queue"],
            job["priority"],
            job["max_retries"],
            job["timeout"],
            now,
            now,
            None if job["scheduled_at"] is None else job["scheduled_at"].timestamp(),
            now if job["scheduled_at"] is None else job["scheduled_at"].timestamp(),
            job["cwd"],
            None if job["env"] is None else env_text(job["env"]),
        )
        for job in jobs
    ]
    # An acknowledged enqueue is durable (SPEC 1): fsync at commit.
    conn.execute("PRAGMA synchronous = FULL")
    if len(rows) > BIG_BATCH:
        # The id index takes random keys: with SQLite's default 2 MB cache, a large batch
        # would keep evicting and re-reading its pages.
        conn.execute(f"PRAGMA cache_size = {-BIG_BATCH_CACHE_KB}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        _insert_rows(conn, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [job["id"] for job in jobs]


def _insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """The rows, in order, in statements of up to ROWS_PER_INSERT rows each."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // ROW_PARAMETERS
    size = max(1, min(ROWS_PER_INSERT, limit))
    statement, rows_in_statement = "", 0
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        if len(chunk) != rows_in_statement:  # the first statement, and a shorter last one
            statement, rows_in_statement = INSERT + ", ".join([ROW] * len(chunk)), len(chunk)
        conn.execute(statement, list(chain.from_iterable(chunk)))
