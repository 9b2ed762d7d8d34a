"""Claims on SQLite: taking the next job, finishing it (its dependents released in the same
transaction), keeping and losing a claim."""

from __future__ import annotations

from collections.abc import Sequence

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import AttemptOutcome, Job, JobState
from queuectl.crashpoint import crash_point
from queuectl.store.records import AttemptRecord
from queuectl.store.rows import outcome_class
from queuectl.store.sql import JOB_COLUMNS, closed_queues
from queuectl.store.sqlite.dependencies import SqliteDependencies
from queuectl.store.sqlite.rates import SqliteRates
from queuectl.store.sqlite.rows import job_of, queue_filter

CANCELLED_WHILE_RUNNING = "cancelled while running"

# Queues closed to claims at the time given as the last parameter.
CLOSED_QUEUES = closed_queues("? - queues.rate_period")
# The next claimable job (SPEC 2.2 order; {queues} filled in; the time twice, first and
# last): jobs_claimable, read in claim order up to the first due row.
PICK_NEXT = (
    "SELECT seq FROM jobs INDEXED BY jobs_claimable"
    " WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND run_at <= ?"
    f"{{queues}} AND queue NOT IN ({CLOSED_QUEUES})"
    " ORDER BY priority DESC, run_at, seq LIMIT 1"
)
# Take the job PICK_NEXT found ({pick} filled in): the jobs primary key (seq).
CLAIM = (
    "UPDATE jobs SET state = 'processing', locked_by = ?, locked_at = ?,"
    " started_at = ?, finished_at = NULL, exit_code = NULL,"
    " attempts = attempts + 1, updated_at = ?"
    f" WHERE seq = ({{pick}}) RETURNING {JOB_COLUMNS}"
)
# Open the attempt a claim starts: appends to attempts (attempts_job for later reads).
OPEN_ATTEMPT = "INSERT INTO attempts (job_id, attempt, worker_id, started_at) VALUES (?, ?, ?, ?)"
# Log a start, if its queue has a rate limit: the queues primary key.
LOG_START = (
    "INSERT INTO queue_starts (queue, started_at)"
    " SELECT name, ? FROM queues WHERE name = ? AND rate_count IS NOT NULL"
)
# Drop the starts that have left the queue's window: queue_starts_queue.
DROP_OLD_STARTS = (
    "DELETE FROM queue_starts WHERE queue = ?"
    " AND started_at < ? - (SELECT rate_period FROM queues WHERE name = ?)"
)
# The worker's current job: the workers primary key.
SET_CURRENT_JOB = "UPDATE workers SET current_job_id = ? WHERE id = ?"
# Clear it, if it still names this job: the workers primary key.
CLEAR_CURRENT_JOB = "UPDATE workers SET current_job_id = NULL WHERE id = ? AND current_job_id = ?"
# Record the outcome, guarded by the claim it ends (state, holder, attempt): jobs.id.
FINISH = (
    "UPDATE jobs SET state = ?, run_at = coalesce(?, run_at), finished_at = ?,"
    " exit_code = ?, last_error = ?, output = coalesce(?, output),"
    " locked_by = NULL, locked_at = NULL, updated_at = ?"
    " WHERE id = ? AND state = 'processing' AND locked_by = ? AND attempts = ?"
)
# Close the attempt the finish ends: attempts_job.
CLOSE_ATTEMPT = (
    "UPDATE attempts SET finished_at = ?, exit_code = ?, error = ?,"
    " output = coalesce(?, output), outcome = ?, signal = ?"
    " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL"
)
# Processing jobs whose worker stopped or went silent: jobs_state, then the workers key.
STALE_JOBS = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND NOT EXISTS ("
    " SELECT 1 FROM workers WHERE workers.id = jobs.locked_by"
    " AND workers.status != 'stopped' AND workers.last_heartbeat >= ?)"
    " ORDER BY seq"
)
# Whether a claim is still held: jobs.id.
HOLDS_CLAIM = (
    "SELECT 1 FROM jobs WHERE id = ? AND state = 'processing' AND locked_by = ? AND attempts = ?"
)
# The output so far of a running attempt: attempts_job.
SAVE_OUTPUT = (
    "UPDATE attempts SET output = ? WHERE job_id = ? AND attempt = ?"
    " AND worker_id = ? AND finished_at IS NULL"
)
# The earliest run_at of the claimable jobs ({queues} filled in, the time last):
# jobs_claimable.
NEXT_RUN_AT = (
    "SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed')"
    f" AND waiting_on = 0{{queues}} AND queue NOT IN ({CLOSED_QUEUES})"
)
# One job as stored: jobs.id.
GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
# Cancel a job, ending its run if it has one: jobs.id.
CANCEL = (
    "UPDATE jobs SET state = 'cancelled', updated_at = ?, locked_by = NULL,"
    " locked_at = NULL, finished_at = CASE WHEN ? THEN ? ELSE finished_at END,"
    " last_error = CASE WHEN ? THEN ? ELSE last_error END WHERE id = ?"
)
# Close the attempt a cancel ends: attempts_job.
CLOSE_CANCELLED_ATTEMPT = (
    "UPDATE attempts SET finished_at = ?, error = ?, outcome = ?"
    " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL"
)


class SqliteClaims(SqliteDependencies, SqliteRates):
    """What a worker does with jobs, and the cancel that ends a claim."""

    def claim_job(self, worker_id: str, queues: Sequence[str] | None) -> Job | None:
        now = self._now()
        queue_clause, params = queue_filter(queues)
        pick = PICK_NEXT.format(queues=queue_clause)
        # A lock-free look first: idle workers then never queue up for the write lock.
        if not self._read(pick, [now, *params, now]):
            return None
        with self._write() as conn:
            # The start is read once the write lock is held: taken before, it could fall
            # before the finish of a run this claim had to wait for (a queue limit).
            now = self._now()
            row = conn.execute(
                CLAIM.format(pick=pick), [worker_id, now, now, now, now, *params, now]
            ).fetchone()
            if row is None:
                return None
            job = job_of(row)
            conn.execute(OPEN_ATTEMPT, (job.id, job.attempts, worker_id, now))
            if conn.execute(LOG_START, (now, job.queue)).rowcount:
                conn.execute(DROP_OLD_STARTS, (job.queue, now, job.queue))
            conn.execute(SET_CURRENT_JOB, (job.id, worker_id))
        return job

    def finish_attempt(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        now = self._now()
        run_at = now + outcome.retry_delay if outcome.retry_delay is not None else None
        with self._write() as conn:
            cursor = conn.execute(
                FINISH,
                (
                    outcome.state.value,
                    run_at,
                    now,
                    record.exit_code,
                    outcome.last_error,
                    record.output,
                    now,
                    job.id,
                    worker_id,
                    job.attempts,
                ),
            )
            if cursor.rowcount != 1:
                return False
            conn.execute(
                CLOSE_ATTEMPT,
                (
                    now,
                    record.exit_code,
                    outcome.last_error,
                    record.output,
                    outcome_class(record, outcome),
                    record.signal,
                    job.id,
                    job.attempts,
                ),
            )
            conn.execute(CLEAR_CURRENT_JOB, (worker_id, job.id))
            self._record_events(conn, job.id, outcome.state)
            crash_point("between-finish-and-release")
            self._release_dependents(conn, job.id, outcome.state)
        return True

    def finish_and_claim(
        self,
        job: Job,
        worker_id: str,
        outcome: Outcome,
        record: AttemptRecord,
        queues: Sequence[str] | None,
    ) -> tuple[bool, Job | None]:
        """finish_attempt, then claim_job, in one write transaction: a busy worker takes
        the write lock and commits once per job instead of twice."""
        with self._write():
            finished = self.finish_attempt(job, worker_id, outcome, record)
            return finished, self.claim_job(worker_id, queues)

    def find_stale_jobs(self, lease_timeout: float) -> list[Job]:
        cutoff = self._now() - lease_timeout
        rows = self._read(STALE_JOBS, (cutoff,))
        return [job_of(row) for row in rows]

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        return bool(self._read(HOLDS_CLAIM, (job.id, worker_id, job.attempts)))

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(SAVE_OUTPUT, (output, job.id, job.attempts, worker_id))
            return cursor.rowcount == 1

    def seconds_until_next_job(self, queues: Sequence[str] | None) -> float | None:
        queue_clause, params = queue_filter(queues)
        # Jobs of a paused or full queue are not claimable: counting them as due would make
        # an idle worker spin on claims that find nothing.
        now = self._now()
        rows = self._read(NEXT_RUN_AT.format(queues=queue_clause), [*params, now])
        due = [float(rows[0][0])] if rows and rows[0][0] is not None else []
        due += self._next_rate_slots(queues, now)
        return max(0.0, min(due) - now) if due else None

    def cancel_job(self, job_id: str) -> Job | None:
        now = self._now()
        with self._write() as conn:
            row = conn.execute(GET_JOB, (job_id,)).fetchone()
            if row is None:
                return None
            job = job_of(row)
            if job.state not in (JobState.PENDING, JobState.FAILED, JobState.PROCESSING):
                return None
            running = job.state is JobState.PROCESSING
            conn.execute(CANCEL, (now, running, now, running, CANCELLED_WHILE_RUNNING, job_id))
            if running:
                conn.execute(
                    CLOSE_CANCELLED_ATTEMPT,
                    (now, CANCELLED_WHILE_RUNNING, AttemptOutcome.KILLED, job_id, job.attempts),
                )
                # Its worker's finish will be refused, so it would never clear this itself:
                # `status` would show the worker busy with a job that is over.
                conn.execute(CLEAR_CURRENT_JOB, (job.locked_by, job_id))
            self._record_events(conn, job_id, JobState.CANCELLED)
            self._release_dependents(conn, job_id, JobState.CANCELLED)
            return job
