"""Jobs on SQLite: adding them (ids, dedupe keys, dependencies), reading and deleting them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from queuectl.core.errors import DuplicateDedupeKey, DuplicateJobId
from queuectl.core.models import Attempt, Job, JobState, NewJob
from queuectl.store.records import AttemptOutput, JobFilter
from queuectl.store.rows import (
    attempt_from_row,
    exit_codes_to_column,
    first_repeated_key,
    state_counts,
)
from queuectl.store.sql import ATTEMPT_COLUMNS, DEDUPE_HELD, JOB_COLUMNS
from queuectl.store.sqlite.dependencies import SqliteDependencies
from queuectl.store.sqlite.rows import job_of, moment, new_job, queue_filter, stamp

DELETE_BATCH = 500  # jobs deleted per write transaction


# An edge of a new job: the primary key of job_dependencies.
INSERT_EDGE = "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (?, ?)"
# The unfinished job that holds a dedupe key: jobs_dedupe_key.
KEY_HOLDER_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE dedupe_key = ? AND {DEDUPE_HELD}"
# One job as stored: jobs.id (unique).
GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
# A job's history in order: attempts_job.
LIST_ATTEMPTS = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ? ORDER BY seq"


class SqliteJobs(SqliteDependencies):
    """Adding, reading and deleting jobs."""

    def insert_jobs(
        self, jobs: Sequence[NewJob], *, skip_duplicate_keys: bool = False
    ) -> list[Job]:
        now = self._now()
        rows = [
            (
                job.id,
                job.command,
                JobState.PENDING.value,
                job.queue,
                job.priority,
                job.max_retries,
                job.timeout,
                now,
                now,
                stamp(job.scheduled_at),
                stamp(job.scheduled_at) if job.scheduled_at else now,
                job.cwd,
                json.dumps(job.env) if job.env is not None else None,
                exit_codes_to_column(job.retry_on_exit),
                exit_codes_to_column(job.fatal_on_exit),
                job.dedupe_key,
                json.dumps(job.depends_on) if job.depends_on else None,
                json.dumps(job.hooks) if job.hooks else None,
            )
            for job in jobs
        ]
        insert = (
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, scheduled_at, run_at, cwd, env, retry_on_exit,"
            " fatal_on_exit, dedupe_key, depends_on, hooks, waiting_on)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        has_dependencies = any(job.depends_on for job in jobs)
        try:
            with self._write() as conn:
                waiting = self._waiting_counts(conn, jobs) if has_dependencies else [0] * len(jobs)
                values: list[tuple[Any, ...]] = [
                    (*row, count) for row, count in zip(rows, waiting, strict=True)
                ]
                if skip_duplicate_keys:
                    added = self._insert_new_keys(conn, insert, values, jobs, now)
                    inserted = {job.id for job in added}
                else:
                    conn.executemany(insert, values)
                    added, inserted = [new_job(job, now) for job in jobs], None
                if has_dependencies:
                    conn.executemany(
                        INSERT_EDGE,
                        [
                            (job.id, dep)
                            for job in jobs
                            if inserted is None or job.id in inserted
                            for dep in job.depends_on
                        ],
                    )
                return added
        except sqlite3.IntegrityError as exc:
            existing = self._existing_ids([job.id for job in jobs])
            if "dedupe_key" in str(exc) and not existing:  # a taken id is named first
                raise self._duplicate_key(jobs) from exc
            which = f"job id {existing[0]!r}" if existing else "a job id"
            raise DuplicateJobId(f"{which} already exists") from exc

    def _insert_new_keys(
        self,
        conn: sqlite3.Connection,
        insert: str,
        rows: list[tuple[Any, ...]],
        jobs: Sequence[NewJob],
        now: float,
    ) -> list[Job]:
        """Insert each job unless an unfinished job holds its dedupe key; that job stands in
        its place. Inside the caller's write transaction, so no enqueuer can slip between."""
        result = []
        for row, job in zip(rows, jobs, strict=True):
            added = conn.execute(
                f"{insert} ON CONFLICT (dedupe_key) WHERE {DEDUPE_HELD} DO NOTHING RETURNING seq",
                row,
            ).fetchone()
            if added is not None:
                result.append(new_job(job, now))
                continue
            held = conn.execute(KEY_HOLDER_JOB, (job.dedupe_key,)).fetchone()
            result.append(job_of(held))
        return result

    def _duplicate_key(self, jobs: Sequence[NewJob]) -> DuplicateDedupeKey:
        """Name the key that broke the batch and the job that holds it."""
        keys = list({job.dedupe_key for job in jobs if job.dedupe_key is not None})
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT dedupe_key, id, state FROM jobs WHERE dedupe_key IN ({marks})"
                f" AND {DEDUPE_HELD} ORDER BY seq LIMIT 1",
                chunk,
            )
            if rows:
                return DuplicateDedupeKey(rows[0][0], rows[0][1], rows[0][2])
        return DuplicateDedupeKey(first_repeated_key(jobs) or "?", None)

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += [r[0] for r in self._read(f"SELECT id FROM jobs WHERE id IN ({marks})", chunk)]
        return found

    def get_job(self, job_id: str) -> Job | None:
        rows = self._read(GET_JOB, (job_id,))
        return job_of(rows[0]) if rows else None

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        clause, params = self._where(job_filter)
        if job_filter.limit > 0:
            sql = (
                f"SELECT * FROM (SELECT seq, {JOB_COLUMNS} FROM jobs {clause}"
                f" ORDER BY seq DESC LIMIT {int(job_filter.limit)}) ORDER BY seq"
            )
            return [job_of(row[1:]) for row in self._read(sql, params)]
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY seq"
        return [job_of(row) for row in self._read(sql, params)]

    def _where(self, job_filter: JobFilter) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if job_filter.states:
            where.append(f"state IN ({','.join('?' * len(job_filter.states))})")
            params += [state.value for state in job_filter.states]
        if job_filter.queue is not None:
            where.append("queue = ?")
            params.append(job_filter.queue)
        if job_filter.ids:
            where.append(f"id IN ({','.join('?' * len(job_filter.ids))})")
            params += job_filter.ids
        if job_filter.updated_since is not None:
            where.append("updated_at >= ?")
            params.append(job_filter.updated_since.timestamp())
        return (f"WHERE {' AND '.join(where)}" if where else ""), params

    def count_jobs_by_state(self, job_filter: JobFilter | None = None) -> dict[JobState, int]:
        clause, params = self._where(job_filter or JobFilter())
        sql = f"SELECT state, count(*) FROM jobs {clause} GROUP BY state"
        return state_counts(self._read(sql, params))

    def list_attempts(self, job_id: str) -> list[Attempt]:
        rows = self._read(LIST_ATTEMPTS, (job_id,))
        return [attempt_from_row(row, moment) for row in rows]

    def get_attempt_output(self, job_id: str, attempt: int | None) -> AttemptOutput | None:
        which = "" if attempt is None else " AND attempt = ?"
        params = (job_id,) if attempt is None else (job_id, attempt)
        rows = self._read(
            "SELECT attempt, worker_id, finished_at IS NOT NULL, output FROM attempts"
            f" WHERE job_id = ?{which} ORDER BY seq DESC LIMIT 1",
            params,
        )
        if not rows:
            return None
        number, worker_id, finished, output = rows[0]
        return AttemptOutput(job_id, number, worker_id, bool(finished), output or "")

    def delete_jobs(
        self,
        states: Sequence[JobState],
        older_than: float,
        *,
        queue: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
    ) -> int:
        cutoff = self._now() - older_than
        marks = ",".join("?" * len(states))
        queue_clause, queue_params = queue_filter([queue] if queue else None)
        where = f"state IN ({marks}) AND updated_at <= ?{queue_clause}"
        params = [*[state.value for state in states], cutoff, *queue_params]
        if dry_run:
            (count,) = self._read(f"SELECT count(*) FROM jobs WHERE {where}", params)[0]
            return min(int(count), limit) if limit is not None else int(count)
        deleted = 0
        # In batches, each its own short transaction: a big prune never holds the write
        # lock for long, so workers keep claiming meanwhile.
        while limit is None or deleted < limit:
            batch = DELETE_BATCH if limit is None else min(DELETE_BATCH, limit - deleted)
            with self._write() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM jobs WHERE {where} ORDER BY seq LIMIT {batch}", params
                    )
                ]
                if not ids:
                    break
                chunk = ",".join("?" * len(ids))
                conn.execute(f"DELETE FROM attempts WHERE job_id IN ({chunk})", ids)
                conn.execute(f"DELETE FROM job_dependencies WHERE job_id IN ({chunk})", ids)
                conn.execute(f"DELETE FROM jobs WHERE id IN ({chunk})", ids)
            deleted += len(ids)
        return deleted
