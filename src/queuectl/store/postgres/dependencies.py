"""Job dependencies on PostgreSQL: counting what a job waits for (under its dependencies'
row locks), releasing or killing the jobs that wait for one that ended, and DLQ retries
that bring dependencies back with them."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import errors as pg_errors

from queuectl.core.errors import StoreUnavailable
from queuectl.core.models import Job, JobState, NewJob
from queuectl.store import dependencies
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, Cursor, PostgresConnection
from queuectl.store.postgres.outbox import RECORD_EVENTS
from queuectl.store.postgres.rows import job_of
from queuectl.store.rows import key_taken
from queuectl.store.sql import JOB_COLUMNS, dedupe_held

REQUEUE_TRIES = 3  # a bulk DLQ retry that races an enqueue of one of its keys tries again

# Lock a batch's dependencies (in id order: no deadlock between two such batches), mark them
# has_dependents and read their states: jobs.id (unique).
LOCK_DEPENDENCIES = (
    "UPDATE jobs SET has_dependents = true WHERE id IN (SELECT id FROM jobs"
    " WHERE id = ANY(%s) ORDER BY id FOR UPDATE) RETURNING id, state"
)
# The edges of new jobs: the primary key of job_dependencies.
INSERT_EDGES = (
    "INSERT INTO job_dependencies (job_id, depends_on_id)"
    " SELECT * FROM unnest(%s::text[], %s::text[])"
)
# Mark jobs that a job of the same batch waits for: jobs.id (unique).
MARK_DEPENDED_ON = "UPDATE jobs SET has_dependents = true WHERE id = ANY(%s)"
# One wait fewer for the jobs that wait for a completed job: job_dependencies_dependents.
RELEASE_DEPENDENTS = (
    "UPDATE jobs SET waiting_on = waiting_on - 1 WHERE waiting_on > 0 AND id IN"
    " (SELECT job_id FROM job_dependencies WHERE depends_on_id = %s)"
)
# The unfinished jobs that wait for an ended one die: job_dependencies_dependents.
KILL_DEPENDENTS = (
    "UPDATE jobs SET state = 'dead', last_error = %s, updated_at = now(),"
    " locked_by = NULL, locked_at = NULL"
    " WHERE state IN ('pending', 'failed') AND id IN"
    " (SELECT job_id FROM job_dependencies WHERE depends_on_id = %s) RETURNING id"
)
# A job's dependencies and their states, if it is in one of some states; their rows are
# locked so that none finishes before the retry commits: job_dependencies' primary key.
RETRY_EDGES = (
    "SELECT d.depends_on_id, dep.state FROM job_dependencies AS d"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id WHERE d.job_id = %s"
    " AND EXISTS (SELECT 1 FROM jobs WHERE id = %s AND state = ANY(%s))"
    " ORDER BY dep.id FOR SHARE OF dep"
)
# One job back to pending with its waits recounted, if in one of some states: jobs.id.
REQUEUE_JOB = (
    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(),"
    " updated_at = now(), locked_by = NULL, locked_at = NULL, waiting_on = %s"
    f" WHERE id = %s AND state = ANY(%s) RETURNING {JOB_COLUMNS}"
)
# The job that holds a job's dedupe key now: jobs.id, then jobs_dedupe_key.
KEY_HOLDER = (
    "SELECT held.dedupe_key, held.id, held.state FROM jobs AS mine"
    f" JOIN jobs AS held ON held.dedupe_key = mine.dedupe_key AND {dedupe_held('held')}"
    " WHERE mine.id = %s AND held.id <> mine.id LIMIT 1"
)
# Dead jobs (of a queue, or all) a bulk retry may bring back: those whose key is free, and
# of dead jobs sharing a key only the newest; jobs_state, jobs_dedupe_key.
DEAD_CANDIDATES = (
    "SELECT id FROM jobs AS dead WHERE state = 'dead' AND (%(queue)s::text IS NULL"
    " OR queue = %(queue)s) AND (dedupe_key IS NULL OR (NOT EXISTS (SELECT 1"
    "  FROM jobs AS held WHERE held.dedupe_key = dead.dedupe_key"
    f"   AND {dedupe_held('held')})"
    "  AND seq = (SELECT max(seq) FROM jobs AS twin"
    "   WHERE twin.dedupe_key = dead.dedupe_key AND twin.state = 'dead'"
    "   AND (%(queue)s::text IS NULL OR twin.queue = dead.queue))))"
)
# The dependencies of dead jobs with their states and queues, locked until the retry
# commits: jobs_state, then the primary key of job_dependencies and jobs.id.
DEAD_EDGES = (
    "SELECT d.job_id, d.depends_on_id, dep.state, dep.queue FROM jobs"
    " JOIN job_dependencies AS d ON d.job_id = jobs.id"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id"
    " WHERE jobs.state = 'dead' AND (%(queue)s::text IS NULL OR jobs.queue = %(queue)s)"
    " ORDER BY dep.id FOR SHARE OF dep"
)
# Some dead jobs back to pending: jobs.id.
REQUEUE_MANY = (
    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(),"
    " updated_at = now() WHERE state = 'dead' AND id = ANY(%s)"
)
# Recount the unfinished dependencies of some jobs: job_dependencies' primary key, jobs.id.
RECOUNT_WAITING = (
    "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
    " JOIN jobs AS dep ON dep.id = d.depends_on_id"
    " WHERE d.job_id = jobs.id AND dep.state <> 'completed') WHERE id = ANY(%s)"
)


class PostgresDependencies(PostgresConnection):
    """Dependency bookkeeping, inside the caller's transaction, and retries."""

    def _waiting_counts(self, cursor: Cursor, jobs: Sequence[NewJob]) -> list[int]:
        """Check the jobs' dependencies and count the unfinished ones. The dependencies'
        rows are locked and marked has_dependents: a finish of one of them either waits for
        this commit and then sees the mark, or ran first and the state read here is final."""
        outside = dependencies.outside_batch(jobs)
        stored: dict[str, str] = {}
        if outside:
            cursor.execute(LOCK_DEPENDENCIES, (outside,))
            stored = dict(cursor.fetchall())
        return dependencies.waiting_counts(jobs, stored)

    def _link_dependencies(self, cursor: Cursor, jobs: Sequence[NewJob]) -> None:
        edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
        cursor.execute(INSERT_EDGES, ([edge[0] for edge in edges], [edge[1] for edge in edges]))
        batch = {job.id for job in jobs}
        inside = sorted({dep for _, dep in edges if dep in batch})
        if inside:
            cursor.execute(MARK_DEPENDED_ON, (inside,))

    def _release_dependents(self, cursor: Cursor, job_id: str, state: JobState) -> None:
        """After `job_id` ended in `state`: one wait fewer for each job that depends on it
        when it completed; when it ended dead or cancelled, those jobs (and, in turn, the
        jobs that wait for them) become dead, as they could never run."""
        if state is JobState.COMPLETED:
            cursor.execute(RELEASE_DEPENDENTS, (job_id,))
            cursor.execute(NOTIFY, (CHANNEL,))
        elif state in (JobState.DEAD, JobState.CANCELLED):

            def kill(cause: str, error: str) -> list[str]:
                cursor.execute(KILL_DEPENDENTS, (error, cause))
                killed = [row[0] for row in cursor.fetchall()]
                if killed:
                    cursor.execute(RECORD_EVENTS, {"job": killed, "event": "dead"})
                return killed

            dependencies.kill_dependents(job_id, state, kill)

    def requeue_dead(self, job_id: str) -> bool:
        return self.requeue_job(job_id, (JobState.DEAD,)) is not None

    def requeue_job(self, job_id: str, states: Sequence[JobState]) -> Job | None:
        wanted = [state.value for state in states]
        try:
            with self._transaction() as cursor:
                cursor.execute(RETRY_EDGES, (job_id, job_id, wanted))
                waiting = dependencies.waiting_after_retry(job_id, cursor.fetchall())
                cursor.execute(REQUEUE_JOB, (waiting, job_id, wanted))
                row = cursor.fetchone()
                if row is None:
                    return None
                cursor.execute(NOTIFY, (CHANNEL,))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                holder = self._read(KEY_HOLDER, (job_id,))
                raise key_taken(job_id, holder[0] if holder else None) from exc.__cause__
            raise
        return job_of(row)

    def requeue_all_dead(self, queue: str | None) -> int:
        for _ in range(REQUEUE_TRIES - 1):
            try:
                return self._requeue_all_dead(queue)
            except StoreUnavailable as exc:
                # An enqueue took one of the keys between our look and our write: look again.
                if not isinstance(exc.__cause__, pg_errors.UniqueViolation):
                    raise
        return self._requeue_all_dead(queue)

    def _requeue_all_dead(self, queue: str | None) -> int:
        with self._transaction() as cursor:
            # The ids are chosen first, so none of those that come back can collide.
            cursor.execute(DEAD_CANDIDATES, {"queue": queue})
            candidates = [row[0] for row in cursor.fetchall()]
            # Jobs that wait for others: a dead one comes back only with its dependencies.
            cursor.execute(DEAD_EDGES, {"queue": queue})
            ids, waiting = dependencies.bulk_retry(candidates, cursor.fetchall(), queue)
            cursor.execute(REQUEUE_MANY, (ids,))
            count = cursor.rowcount
            if waiting:
                cursor.execute(RECOUNT_WAITING, (waiting,))
            if count:
                cursor.execute(NOTIFY, (CHANNEL,))
        return count
