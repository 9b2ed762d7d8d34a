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

from queuectl.core.spec import parse_field_lines, parse_job_fields

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from typing import Any

    from queuectl.core.spec import JobDefaults

BUSY_TIMEOUT = 30.0  # seconds, as SqliteStore waits for the write lock
MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations", "sqlite")
# What SqliteStore.insert_jobs writes, by NewJob field. A field outside this set (a newer
# feature's) that is set sends the job down the full path.
# id_generated only shapes messages and is never stored.
WRITTEN_FIELDS = frozenset(
    ("id", "command", "queue", "priority", "max_retries", "timeout", "scheduled_at", "cwd", "env")
).union(("id_generated",))
BIG_BATCH = 1000  # rows; a batch larger than this gets a bigger page cache
BIG_BATCH_CACHE_KB = 65536  # KiB of page cache for a big batch
INSERT = (
    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
    " created_at, updated_at, scheduled_at, run_at, cwd, env)"
    " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Defaults:
    """JobDefaults of a store with nothing configured: Settings' own defaults."""

    def __init__(self, max_retries: int, job_timeout: float) -> None:
        self.max_retries = max_retries
        self.job_timeout = job_timeout


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
    if version != _latest_schema():
        return None
    defaults = _defaults(conn)
    if lines:
        jobs = [fields for _, fields in parse_field_lines(texts, defaults)]
    else:
        jobs = [parse_job_fields(texts[0], defaults)]
    if any(_has_unwritten_field(fields) for fields in jobs):
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
            _timestamp(job["scheduled_at"]),
            _timestamp(job["scheduled_at"]) or now,
            job["cwd"],
            _env_text(job["env"]),
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
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [job["id"] for job in jobs]


def _env_text(env: dict[str, str] | None) -> str | None:
    if env is None:
        return None
    import json

    return json.dumps(env)


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _has_unwritten_field(fields: dict[str, Any]) -> bool:
    """Set means anything but None or an empty list (no exit policy, no dependency)."""
    return any(
        value is not None and value != ()
        for key, value in fields.items()
        if key not in WRITTEN_FIELDS
    )


def _latest_schema() -> int:
    """The number of the newest migration (SqliteStore.SCHEMA_VERSION), from the file
    names: importing the store module would cost what this path exists to save."""
    try:
        names = os.listdir(MIGRATIONS)
    except OSError:
        return -1
    numbers = [int(name.split("_", 1)[0]) for name in names if name.endswith(".sql")]
    return max(numbers, default=-1)


def _defaults(conn: sqlite3.Connection) -> JobDefaults:
    """The defaults of new jobs: Settings' own while nothing is configured, else whatever
    Settings makes of the config table (any key may shape a new job, now or later)."""
    stored = conn.execute("SELECT key, value FROM config").fetchall()
    if not stored:
        from queuectl.core.defaults import DEFAULT_JOB_TIMEOUT, DEFAULT_MAX_RETRIES

        return _Defaults(DEFAULT_MAX_RETRIES, DEFAULT_JOB_TIMEOUT)
    from queuectl.core.settings import Settings  # a configured store: the full parsers

    return Settings.from_stored(dict(stored))
