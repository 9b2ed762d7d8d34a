"""Claims on PostgreSQL: taking the next job (SKIP LOCKED), finishing it with the release of
its dependents and the next claim in one transaction, keeping and losing a claim."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import AttemptOutcome, Job, JobState
from queuectl.crashpoint import crash_point
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, Cursor
from queuectl.store.postgres.dependencies import PostgresDependencies
from queuectl.store.postgres.outbox import EVENT_SQL, RECORD_EVENTS
from queuectl.store.postgres.rates import PostgresRates
from queuectl.store.postgres.rows import job_of, without_nul
from queuectl.store.postgres.statements import STALE_JOBS
from queuectl.store.records import AttemptRecord
from queuectl.store.rows import outcome_class
from queuectl.store.sql import EVENT_OF_STATE, JOB_COLUMNS, closed_queues, record_events

CANCELLED_WHILE_RUNNING = "cancelled while running"
log = logging.getLogger("queuectl.store")


# Queues closed to claims at the claim's clock (the CTE in CLAIM_SQL).
CLOSED_AT_CLOCK = closed_queues("(SELECT at FROM clock) - queues.rate_period * interval '1 second'")
# Queues closed to claims now: what an idle worker's look for the next due job skips.
CLOSED_NOW = closed_queues("now() - queues.rate_period * interval '1 second'")


# The claim in one statement, so one round trip: pick and lock the next due job (rows
# other workers hold are skipped, not waited for), mark it, open its attempt row and
# record it as the worker's current job. All of it commits or none of it does. The start
# is the clock read while the statement runs, not now() (when the transaction began, which
# may be before it waited for a queue limit's lock): so a run never seems to start before
# the run it waited for had ended. A queue's rate limit counts its starts up to that same
# clock (_claim_in logs the start). The pick reads jobs_claimable in claim order.
CLAIM_SQL = f"""
WITH clock AS (
    SELECT clock_timestamp() AS at
), claimed AS (
    UPDATE jobs SET state = 'processing', locked_by = %(worker)s, locked_at = clock.at,
        started_at = clock.at, finished_at = NULL, exit_code = NULL,
        attempts = attempts + 1, updated_at = clock.at
    FROM clock
    WHERE seq = (
        SELECT seq FROM jobs
        WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND run_at <= now() {{queues}}
            AND queue NOT IN ({CLOSED_AT_CLOCK})
        ORDER BY priority DESC, run_at, seq
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {JOB_COLUMNS}
), attempt AS (
    INSERT INTO attempts (job_id, attempt, worker_id, started_at)
    SELECT id, attempts, %(worker)s, started_at FROM claimed
), holder AS (
    UPDATE workers SET current_job_id = claimed.id FROM claimed WHERE workers.id = %(worker)s
)
SELECT {JOB_COLUMNS} FROM claimed
"""


# Finish in one statement too; guarded by the claim it ends (state, holder, attempt
# number), so a rescued or cancelled job is left alone and zero rows come back. Its hook
# and webhook rows go to the outbox in the same statement. jobs.id, attempts_job and the
# workers key find the rows.
FINISH_SQL = """
WITH finished AS (
    UPDATE jobs SET state = %(state)s,
        run_at = coalesce(now() + %(delay)s * interval '1 second', run_at),
        finished_at = now(), exit_code = %(exit_code)s, last_error = %(error)s,
        output = coalesce(%(output)s, output), locked_by = NULL, locked_at = NULL,
        updated_at = now()
    WHERE id = %(job)s AND state = 'processing' AND locked_by = %(worker)s
        AND attempts = %(attempt)s
    RETURNING id, has_dependents, state, exit_code, attempts, queue, command, last_error,
        output, hooks
), events AS (
    {events}
), attempt AS (
    UPDATE attempts SET finished_at = now(), exit_code = %(exit_code)s, error = %(error)s,
        output = coalesce(%(output)s, attempts.output), outcome = %(outcome)s,
        signal = %(signal)s
    FROM finished
    WHERE attempts.job_id = finished.id AND attempts.attempt = %(attempt)s
        AND attempts.finished_at IS NULL
), holder AS (
    UPDATE workers SET current_job_id = NULL
    FROM finished
    WHERE workers.id = %(worker)s AND workers.current_job_id = finished.id
)
SELECT id, has_dependents,
    CASE WHEN has_dependents AND %(state)s = 'completed'
        THEN set_config('queuectl.released_by', id, true) END
FROM finished
""".format(events=record_events("finished AS j", **EVENT_SQL))


# The release of a completed job's dependents, run in the finish's transaction right after
# FINISH_SQL: that names the job in a transaction-local setting only when it finished it and
# it has dependents, so this changes nothing otherwise. A statement of its own, so a
# snapshot of its own: it sees a dependent whose insert the finish had to wait for (see
# _waiting_counts). Finds the dependents by job_dependencies_dependents; wakes idle workers.
RELEASE_FINISHED_SQL = """
WITH released AS (
    UPDATE jobs SET waiting_on = waiting_on - 1
    WHERE waiting_on > 0 AND id IN (
        SELECT job_id FROM job_dependencies
        WHERE depends_on_id = nullif(current_setting('queuectl.released_by', true), '')
    )
    RETURNING id
)
SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM released LIMIT 1) AS any_released
"""


# The bounds of the transaction _finish_completed sends in one pipeline.
BEGIN = "BEGIN"
COMMIT = "COMMIT"
# Lock the limited queues' rows, so that claims from them take turns: the queues key.
LOCK_LIMITED_QUEUES = "SELECT name FROM queues WHERE name = ANY(%s) ORDER BY name FOR UPDATE"
# A job a worker holds: jobs_state (state, seq).
HELD_BY = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND locked_by = %s"
    " ORDER BY seq LIMIT 1"
)
# Whether a claim is still held: jobs.id.
HOLDS_CLAIM = (
    "SELECT 1 FROM jobs WHERE id = %s AND state = 'processing' AND locked_by = %s AND attempts = %s"
)
# The output so far of a running attempt: attempts_job.
SAVE_OUTPUT = (
    "UPDATE attempts SET output = %s WHERE job_id = %s AND attempt = %s"
    " AND worker_id = %s AND finished_at IS NULL"
)
# One job, its row locked until the cancel commits: jobs.id.
LOCK_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s FOR UPDATE"
# Cancel a job, ending its run if it has one: jobs.id.
CANCEL = (
    "UPDATE jobs SET state = 'cancelled', updated_at = now(), locked_by = NULL,"
    " locked_at = NULL, finished_at = CASE WHEN %(running)s THEN now()"
    " ELSE finished_at END, last_error = CASE WHEN %(running)s THEN %(error)s"
    " ELSE last_error END WHERE id = %(job)s"
)
# Close the attempt a cancel ends: attempts_job.
CLOSE_CANCELLED_ATTEMPT = (
    "UPDATE attempts SET finished_at = now(), error = %s, outcome = %s"
    " WHERE job_id = %s AND attempt = %s AND finished_at IS NULL"
)
# Clear a worker's current job, if it still names this one: the workers key.
CLEAR_CURRENT_JOB = "UPDATE workers SET current_job_id = NULL WHERE id = %s AND current_job_id = %s"


class PostgresClaims(PostgresDependencies, PostgresRates):
    """What a worker does with jobs, and the cancel that ends a claim."""

    def _claim_statement(
        self, worker_id: str, queues: Sequence[str] | None
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"worker": worker_id}
        queue_clause = ""
        if queues:
            queue_clause = "AND queue = ANY(%(queues)s)"
            params["queues"] = list(queues)
        return CLAIM_SQL.format(queues=queue_clause), params

    def claim_job(self, worker_id: str, queues: Sequence[str] | None) -> Job | None:
        self._connection()  # reopened first if it broke, so the check below sees that
        if self._may_hold_lost_claim:
            held = self._held_after_reconnect(worker_id)
            if held is not None:
                return held
        sql, params = self._claim_statement(worker_id, queues)
        limited = [name for name in self._limited_queues() if not queues or name in queues]
        if not limited:
            rows = self._read(sql, params)  # the common case: one statement, one round trip
            return job_of(rows[0]) if rows else None
        with self._transaction() as cursor:
            return self._claim_in(cursor, worker_id, queues, limited)

    def _claim_in(
        self, cursor: Cursor, worker_id: str, queues: Sequence[str] | None, limited: list[str]
    ) -> Job | None:
        """The claim inside the caller's transaction."""
        if limited:
            # A queue limit counts running jobs (a rate limit, starts), which concurrent
            # claims cannot see: lock the limited queues' rows first, so such claims take
            # turns. The claim that follows gets a fresh snapshot (READ COMMITTED) that
            # sees the turns before.
            cursor.execute(LOCK_LIMITED_QUEUES, (limited,))
        cursor.execute(*self._claim_statement(worker_id, queues))
        row = cursor.fetchone()
        job = job_of(row) if row else None
        if job is not None and job.queue in self._rated:
            self._log_start(cursor, job)  # under the lock, so the next claim counts it
        return job

    def _held_after_reconnect(self, worker_id: str) -> Job | None:
        """A job this worker holds although it is claiming (so it runs none): a claim
        that committed while the connection broke, its reply lost. It is handed back to
        the worker as its claim; left alone, it would stay `processing` for as long as the
        worker's heartbeat kept its lease alive."""
        rows = self._read(HELD_BY, (worker_id,))
        self._may_hold_lost_claim = False
        if rows:
            log.warning("job %s was claimed as the connection broke; running it", rows[0][0])
            return job_of(rows[0])
        return None

    def finish_attempt(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        if outcome.state is JobState.DEAD:
            return self._finish_dead(job, worker_id, outcome, record)
        if outcome.state is JobState.FAILED:
            # Nothing waits for a job that will run again: one statement, no release.
            rows = self._read(FINISH_SQL, _finish_params(job, worker_id, outcome, record))
            if rows:
                # A hint, sent after the commit: idle workers re-read when the retry is due.
                self._execute(NOTIFY, (CHANNEL,))
            return bool(rows)
        finished, _ = self._finish_completed(job, worker_id, outcome, record, None)
        return finished

    def _finish_completed(
        self,
        job: Job,
        worker_id: str,
        outcome: Outcome,
        record: AttemptRecord,
        claim: tuple[str, dict[str, Any]] | None,
    ) -> tuple[bool, Job | None]:
        """The finish, the release of the dependents and (given `claim`) the next claim:
        one transaction, sent together in one round trip: BEGIN, the statements and COMMIT
        go out in pipeline mode followed by a single Sync. (The driver's transaction block
        would wait for the server after BEGIN and twice at COMMIT: four round trips.) When
        anything fails before COMMIT is sent, the Sync leaves the transaction open and the
        rollback below ends it, so nothing of it is kept."""
        conn = self._connection()
        try:
            try:
                with conn.pipeline():
                    conn.execute(BEGIN)
                    finish = conn.execute(
                        FINISH_SQL, _finish_params(job, worker_id, outcome, record)
                    )
                    crash_point("between-finish-and-release")
                    conn.execute(RELEASE_FINISHED_SQL, {"channel": CHANNEL})
                    claimed = conn.execute(*claim) if claim is not None else None
                    conn.execute(COMMIT)
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()  # sends ROLLBACK only if the transaction is still open
                raise
            finished_rows = finish.fetchall()
            rows = claimed.fetchall() if claimed is not None else []
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        return bool(finished_rows), job_of(rows[0]) if rows else None

    def _finish_dead(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        """The last failure: its dependents (and theirs) die with it, in its transaction."""
        with self._transaction() as cursor:
            return self._finish_in(cursor, job, worker_id, outcome, record)

    def _finish_in(
        self, cursor: Cursor, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        """The finish and the release of its dependents, inside the caller's transaction."""
        cursor.execute(FINISH_SQL, _finish_params(job, worker_id, outcome, record))
        rows = cursor.fetchall()
        if not rows:
            return False
        crash_point("between-finish-and-release")
        if outcome.state is JobState.COMPLETED:
            cursor.execute(RELEASE_FINISHED_SQL, {"channel": CHANNEL})
        elif outcome.state is JobState.DEAD and rows[0][1]:
            # A statement after the finish, so a snapshot after it: it sees a dependent
            # whose insert the finish had to wait for (see _waiting_counts).
            self._release_dependents(cursor, job.id, JobState.DEAD)
        elif outcome.state is JobState.FAILED:
            # Delivered at commit: idle workers re-read when the retry is due.
            cursor.execute(NOTIFY, (CHANNEL,))
        return True

    def finish_and_claim(
        self,
        job: Job,
        worker_id: str,
        outcome: Outcome,
        record: AttemptRecord,
        queues: Sequence[str] | None,
    ) -> tuple[bool, Job | None]:
        """The finish, the release of its dependents and the next claim in one transaction;
        in the common case (a job completed, no queue limits) sent together in pipeline
        mode: one round trip per job instead of two."""
        self._connection()  # reopened first if it broke, so the check below sees that
        if self._may_hold_lost_claim:
            # The claim may hand back a job held since the reconnect: after this finish.
            finished = self.finish_attempt(job, worker_id, outcome, record)
            return finished, self.claim_job(worker_id, queues)
        limited = [name for name in self._limited_queues() if not queues or name in queues]
        if outcome.state is JobState.COMPLETED and not limited:
            claim = self._claim_statement(worker_id, queues)
            return self._finish_completed(job, worker_id, outcome, record, claim)
        with self._transaction() as cursor:
            finished = self._finish_in(cursor, job, worker_id, outcome, record)
            return finished, self._claim_in(cursor, worker_id, queues, limited)

    def find_stale_jobs(self, lease_timeout: float) -> list[Job]:
        # The cutoff is the server's now(): hosts with skewed clocks still agree.
        rows = self._read(STALE_JOBS, (float(lease_timeout),))
        return [job_of(row) for row in rows]

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        return bool(self._read(HOLDS_CLAIM, (job.id, worker_id, job.attempts)))

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        cursor = self._execute(SAVE_OUTPUT, (without_nul(output), job.id, job.attempts, worker_id))
        return cursor.rowcount == 1

    def seconds_until_next_job(self, queues: Sequence[str] | None) -> float | None:
        queue_clause, params = "", []
        if queues:
            queue_clause = " AND queue = ANY(%s)"
            params.append(list(queues))
        rows = self._read(
            # Not greatest(0, ...): it skips NULLs, and NULL here means "no job at all".
            # Jobs of a paused or full queue are not claimable: counting them as due would
            # make an idle worker spin on claims that find nothing.
            "SELECT extract(epoch FROM min(run_at) - now())::float8 FROM jobs"
            " WHERE state IN ('pending', 'failed') AND waiting_on = 0"
            f"{queue_clause} AND queue NOT IN ({CLOSED_NOW})",
            params,
        )
        due = [float(rows[0][0])] if rows and rows[0][0] is not None else []
        due += self._next_rate_slots(queues)  # a queue out of starts: when it has one again
        return max(0.0, min(due)) if due else None

    def cancel_job(self, job_id: str) -> Job | None:
        with self._transaction() as cursor:
            cursor.execute(LOCK_JOB, (job_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            job = job_of(row)
            if job.state not in (JobState.PENDING, JobState.FAILED, JobState.PROCESSING):
                return None
            running = job.state is JobState.PROCESSING
            cursor.execute(
                CANCEL,
                {"running": running, "error": CANCELLED_WHILE_RUNNING, "job": job_id},
            )
            if running:
                cursor.execute(
                    CLOSE_CANCELLED_ATTEMPT,
                    (CANCELLED_WHILE_RUNNING, AttemptOutcome.KILLED.value, job_id, job.attempts),
                )
                # Its worker's finish will be refused, so it would never clear this itself:
                # `status` would show the worker busy with a job that is over.
                cursor.execute(CLEAR_CURRENT_JOB, (job.locked_by, job_id))
            cursor.execute(RECORD_EVENTS, {"job": [job_id], "event": "cancel"})
            self._release_dependents(cursor, job_id, JobState.CANCELLED)
        return job


def _finish_params(
    job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
) -> dict[str, Any]:
    return {
        "state": outcome.state.value,
        "delay": outcome.retry_delay,
        "exit_code": record.exit_code,
        "error": without_nul(outcome.last_error),
        "output": without_nul(record.output),
        "outcome": outcome_class(record, outcome),
        "signal": record.signal,
        "job": job.id,
        "worker": worker_id,
        "attempt": job.attempts,
        "event": EVENT_OF_STATE[outcome.state.value],
    }
