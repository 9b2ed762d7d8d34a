"""Large batches of plain jobs (`enqueue -`, `import`) inserted with COPY.

COPY streams the rows in PostgreSQL's own text format: no statement parameters to bind,
no arrays to build and unnest, no RETURNING rows to send back and parse. The Job records
the caller gets are built here from the rows sent and the transaction's clock, the same
values the database stored. One transaction: a duplicate id or dedupe key aborts the whole
batch with the unique index's error, which PostgresJobs.insert_jobs turns into the same
messages as for its other paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from queuectl.core.models import Job, NewJob
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, Cursor
from queuectl.store.rows import exit_codes_to_column, pending_job

# Below this many jobs one INSERT ... SELECT FROM unnest() statement is quicker: it needs
# one round trip, where COPY needs a transaction, the clock and the copy itself.
COPY_MIN_JOBS = 200
COPIED = "id, command, state, queue, priority, max_retries, timeout, created_at, updated_at, run_at"
# Columns that are NULL unless a job sets them: copied only when one in the batch does.
OPTIONAL_COLUMNS: tuple[tuple[str, Callable[[NewJob], object]], ...] = (
    ("scheduled_at", lambda job: job.scheduled_at),
    ("cwd", lambda job: job.cwd),
    ("env", lambda job: json.dumps(job.env) if job.env is not None else None),
    ("retry_on_exit", lambda job: exit_codes_to_column(job.retry_on_exit)),
    ("fatal_on_exit", lambda job: exit_codes_to_column(job.fatal_on_exit)),
    ("dedupe_key", lambda job: job.dedupe_key),
    ("hooks", lambda job: json.dumps(job.hooks) if job.hooks else None),
)


def copy_plain_jobs(cursor: Cursor, jobs: Sequence[NewJob]) -> list[Job]:
    """Insert jobs without dependencies in the cursor's transaction; the stored jobs, in
    order."""
    optional = [
        (name, value_of)
        for name, value_of in OPTIONAL_COLUMNS
        if any(value_of(job) is not None for job in jobs)
    ]
    columns = ", ".join([COPIED, *(name for name, _ in optional)])
    cursor.execute("SELECT now()")
    row = cursor.fetchone()
    assert row is not None
    now: datetime = row[0]
    # Sent as the text PostgreSQL gave it: the same instant, formatted once, not per row.
    stamp = now.isoformat()
    with cursor.copy(f"COPY jobs ({columns}) FROM STDIN") as copy:
        for job in jobs:
            copy.write_row(
                (
                    job.id,
                    job.command,
                    "pending",
                    job.queue,
                    job.priority,
                    job.max_retries,
                    float(job.timeout),
                    stamp,
                    stamp,
                    job.scheduled_at or stamp,
                    *[value_of(job) for _, value_of in optional],
                )
            )
    # Delivered at commit, to every idle worker: no one waits for a poll.
    cursor.execute(NOTIFY, (CHANNEL,))
    at = now.astimezone(UTC)
    return [pending_job(job, at) for job in jobs]  # what RETURNING would have said
