"""Job dependencies on SQLite: counting what a job waits for, releasing or killing the jobs
that wait for one that ended, and DLQ retries that bring dependencies back with them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from queuectl.core.models import Job, JobState, NewJob
from queuectl.store import dependencies
from queuectl.store.rows import key_taken
from queuectl.store.sql import JOB_COLUMNS, dedupe_held
from queuectl.store.sqlite.outbox import SqliteOutbox
from queuectl.store.sqlite.rows import job_of

# The states of a batch's dependencies (a chunk of ids: ? marks appended); jobs.id (unique).
DEPENDENCY_STATES = "SELECT id, state FROM jobs WHERE id IN "
# One wait fewer for the jobs that wait for a completed job: job_dependencies_dependents.
RELEASE_DEPENDENTS = (
    "UPDATE jobs SET waiting_on = waiting_on - 1 WHERE waiting_on > 0 AND id IN"
    " (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?)"
)
# The unfinished jobs that wait for an ended one die: job_dependencies_dependents.
KILL_DEPENDENTS = (
    "UPDATE jobs SET state = 'dead', last_error = ?, updated_at = ?,"
    " locked_by = NULL, locked_at = NULL"
    " WHERE state IN ('pending', 'failed') AND id IN"
    " (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?) RETURNING id"
)
# Recount the unfinished dependencies of some jobs (? marks appended): the primary key of
# job_dependencies, then jobs.id.
RECOUNT_WAITING = (
    "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id"
    " WHERE d.job_id = jobs.id AND dep.state != 'completed') WHERE id IN "
)
# A job's dependencies and their states, if the job is in one of some states (? marks
# formatted in): the primary key of job_dependencies, then jobs.id.
RETRY_EDGES = (
    "SELECT d.depends_on_id, dep.state FROM job_dependencies AS d"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id WHERE d.job_id = ?"
    " AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND state IN ({marks}))"
)
# One job back to pending with its waits recounted, if in one of some states: jobs.id.
REQUEUE_JOB = (
    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?,"
    " locked_by = NULL, locked_at = NULL, waiting_on = ?"
    f" WHERE id = ? AND state IN ({{marks}}) RETURNING {JOB_COLUMNS}"
)
# The job that holds a job's dedupe key now: jobs.id, then jobs_dedupe_key.
KEY_HOLDER = (
    "SELECT held.dedupe_key, held.id, held.state FROM jobs AS mine"
    f" JOIN jobs AS held ON held.dedupe_key = mine.dedupe_key AND {dedupe_held('held')}"
    " WHERE mine.id = ? AND held.id != mine.id LIMIT 1"
)
# Dead jobs a bulk retry may bring back (of one queue: {queue} filled in): those whose key is
# free, and of dead jobs sharing a key only the newest; jobs_state, jobs_dedupe_key.
DEAD_CANDIDATES = (
    "SELECT id FROM jobs AS dead WHERE state = 'dead'{queue}"
    " AND (dedupe_key IS NULL OR (NOT EXISTS (SELECT 1 FROM jobs AS held"
    f"   WHERE held.dedupe_key = dead.dedupe_key AND {dedupe_held('held')})"
    "  AND seq = (SELECT max(seq) FROM jobs AS twin"
    "   WHERE twin.dedupe_key = dead.dedupe_key AND twin.state = 'dead'{twin_queue})))"
)
# The dependencies of dead jobs with their states and queues: jobs_state, then the primary
# key of job_dependencies and jobs.id.
DEAD_EDGES = (
    "SELECT d.job_id, d.depends_on_id, dep.state, dep.queue FROM jobs"
    " JOIN job_dependencies AS d ON d.job_id = jobs.id"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id"
    " WHERE jobs.state = 'dead'{queue}"
)
# Some dead jobs back to pending (? marks appended): jobs.id.
REQUEUE_MANY = (
    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ? WHERE id IN "
)
CHUNK = 500  # ids per IN (...) list: SQLite allows at most 999 parameters by default


def marks(count: int) -> str:
    """`(?, ?, ...)` for an IN list of `count` values."""
    return f"({','.join('?' * count)})"


class SqliteDependencies(SqliteOutbox):
    """Dependency bookkeeping, inside the caller's write transaction, and retries."""

    def _waiting_counts(self, conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[int]:
        """Check the jobs' dependencies and count the unfinished ones, under the write lock."""
        outside = dependencies.outside_batch(jobs)
        stored: dict[str, str] = {}
        for start in range(0, len(outside), CHUNK):
            chunk = outside[start : start + CHUNK]
            stored.update(conn.execute(DEPENDENCY_STATES + marks(len(chunk)), chunk))
        return dependencies.waiting_counts(jobs, stored)

    def _release_dependents(self, conn: sqlite3.Connection, job_id: str, state: JobState) -> None:
        """After `job_id` ended in `state`: one wait fewer for each job that depends on it
        when it completed; when it ended dead or cancelled, those jobs (and, in turn, the
        jobs that wait for them) become dead, as they could never run."""
        if state is JobState.COMPLETED:
            conn.execute(RELEASE_DEPENDENTS, (job_id,))
        elif state in (JobState.DEAD, JobState.CANCELLED):
            now = self._now()

            def kill(cause: str, error: str) -> list[str]:
                killed = [row[0] for row in conn.execute(KILL_DEPENDENTS, (error, now, cause))]
                for dependent in killed:
                    self._record_events(conn, dependent, JobState.DEAD)
                return killed

            dependencies.kill_dependents(job_id, state, kill)

    def _recount_waiting(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None:
        """Recount how many unfinished dependencies each of these jobs has (after a retry)."""
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            conn.execute(RECOUNT_WAITING + marks(len(chunk)), chunk)

    def requeue_dead(self, job_id: str) -> bool:
        return self.requeue_job(job_id, (JobState.DEAD,)) is not None

    def requeue_job(self, job_id: str, states: Sequence[JobState]) -> Job | None:
        now = self._now()
        wanted = [state.value for state in states]
        in_states = ",".join("?" * len(states))
        try:
            with self._write() as conn:
                edges = conn.execute(
                    RETRY_EDGES.format(marks=in_states), (job_id, job_id, *wanted)
                ).fetchall()
                waiting = dependencies.waiting_after_retry(job_id, edges)
                row = conn.execute(
                    REQUEUE_JOB.format(marks=in_states), (now, now, waiting, job_id, *wanted)
                ).fetchone()
        except sqlite3.IntegrityError as exc:  # only the dedupe index can object
            holder = self._read(KEY_HOLDER, (job_id,))
            raise key_taken(job_id, holder[0] if holder else None) from exc
        return job_of(row) if row else None

    def requeue_all_dead(self, queue: str | None) -> int:
        now = self._now()
        params = [queue] if queue else []
        in_queue = " AND {}queue = ?" if queue else ""
        with self._write() as conn:
            # The ids are chosen first, so none of those that come back can collide.
            candidates = [
                row[0]
                for row in conn.execute(
                    DEAD_CANDIDATES.format(
                        queue=in_queue.format(""),
                        twin_queue=" AND twin.queue = dead.queue" if queue else "",
                    ),
                    params,
                )
            ]
            # Jobs that wait for others: a dead one comes back only with its dependencies.
            edges = conn.execute(DEAD_EDGES.format(queue=in_queue.format("jobs.")), params)
            ids, waiting = dependencies.bulk_retry(candidates, edges.fetchall(), queue)
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                conn.execute(REQUEUE_MANY + marks(len(chunk)), (now, now, *chunk))
            self._recount_waiting(conn, waiting)
            return len(ids)
