"""Jobs on PostgreSQL: adding them (ids, dedupe keys, dependencies), reading and deleting
them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import errors as pg_errors

from queuectl.core.errors import (
    DuplicateDedupeKey,
    DuplicateJobId,
    QueuectlError,
    StoreUnavailable,
)
from queuectl.core.models import Attempt, Job, JobState, NewJob
from queuectl.store.postgres.bulk import COPY_MIN_JOBS, copy_plain_jobs
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, Cursor
from queuectl.store.postgres.dependencies import PostgresDependencies
from queuectl.store.postgres.rows import job_of, utc
from queuectl.store.postgres.statements import COUNT_BY_STATE, GET_JOB, LIST_ATTEMPTS
from queuectl.store.records import AttemptOutput, JobFilter
from queuectl.store.rows import (
    attempt_from_row,
    exit_codes_to_column,
    first_repeated_key,
    state_counts,
)
from queuectl.store.sql import DEDUPE_HELD, JOB_COLUMNS

DELETE_BATCH = 500  # jobs deleted per transaction


# A batch of plain jobs in one statement (its own transaction): arrays unnested in order,
# and a wake-up at commit; jobs.id and jobs_dedupe_key check the ids and keys.
INSERT_PLAIN_JOBS = (
    "WITH new_jobs AS (INSERT INTO jobs (id, command, state, queue, priority,"
    " max_retries, timeout, created_at, updated_at, scheduled_at, run_at, cwd,"
    " env, retry_on_exit, fatal_on_exit, dedupe_key, depends_on, hooks)"
    " SELECT id, command, 'pending', queue, priority, max_retries, timeout,"
    " now(), now(), scheduled_at, coalesce(scheduled_at, now()), cwd, env,"
    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, hooks"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[],"
    " %s::float8[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS new (id,"
    " command, queue, priority, max_retries, timeout, scheduled_at, cwd, env,"
    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, hooks, position)"
    f" ORDER BY position RETURNING {JOB_COLUMNS})"
    f" SELECT {JOB_COLUMNS} FROM new_jobs, (SELECT pg_notify(%s, '')) AS wake"
)
# The jobs with some dedupe keys, the one holding each marked: a rare path (a skipped
# enqueue); jobs_dedupe_key covers only held keys.
KEY_HOLDERS = (
    f"SELECT {JOB_COLUMNS}, {DEDUPE_HELD} FROM jobs WHERE dedupe_key = ANY(%s) ORDER BY seq"
)
# The first unfinished job that holds one of some dedupe keys: jobs_dedupe_key.
KEY_HOLDER = (
    f"SELECT dedupe_key, id, state FROM jobs WHERE dedupe_key = ANY(%s) AND {DEDUPE_HELD}"
    " ORDER BY seq LIMIT 1"
)
# The first of some ids already taken: jobs.id (unique).
FIRST_TAKEN_ID = "SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY seq LIMIT 1"
# The output of one attempt of a job, or of its latest: attempts_job.
ATTEMPT_OUTPUT = (
    "SELECT attempt, worker_id, finished_at IS NOT NULL, output FROM attempts"
    " WHERE job_id = %s AND (%s::int IS NULL OR attempt = %s)"
    " ORDER BY seq DESC LIMIT 1"
)


class PostgresJobs(PostgresDependencies):
    """Adding, reading and deleting jobs."""

    def insert_jobs(
        self, jobs: Sequence[NewJob], *, skip_duplicate_keys: bool = False
    ) -> list[Job]:
        if not jobs:
            return []
        plain = not skip_duplicate_keys and not any(job.depends_on for job in jobs)
        if plain and len(jobs) >= COPY_MIN_JOBS:
            try:  # a bulk load: COPY, in one transaction
                with self._transaction() as cursor:
                    return copy_plain_jobs(cursor, jobs)
            except StoreUnavailable as exc:
                raise self._insert_error(exc, jobs) from exc.__cause__
        columns = (
            [job.id for job in jobs],
            [job.command for job in jobs],
            [job.queue for job in jobs],
            [job.priority for job in jobs],
            [job.max_retries for job in jobs],
            [float(job.timeout) for job in jobs],
            [job.scheduled_at for job in jobs],
            [job.cwd for job in jobs],
            [json.dumps(job.env) if job.env is not None else None for job in jobs],
            [exit_codes_to_column(job.retry_on_exit) for job in jobs],
            [exit_codes_to_column(job.fatal_on_exit) for job in jobs],
            [job.dedupe_key for job in jobs],
            [json.dumps(job.depends_on) if job.depends_on else None for job in jobs],
            [json.dumps(job.hooks) if job.hooks else None for job in jobs],
        )
        has_dependencies = any(job.depends_on for job in jobs)
        # A job whose key is held is skipped, not an error: the unique index arbitrates,
        # so of concurrent enqueuers of one key exactly one inserts.
        skip = f" ON CONFLICT (dedupe_key) WHERE {DEDUPE_HELD} DO NOTHING"
        try:
            if not has_dependencies and not skip_duplicate_keys:
                # The common case in one statement, so one round trip and its own
                # transaction (autocommit): arrays unnested server-side, in order, and the
                # wake-up of idle workers, which PostgreSQL delivers at commit.
                rows = self._read(INSERT_PLAIN_JOBS, (*columns, CHANNEL))
                return [job_of(row) for row in rows]
            with self._transaction() as cursor:
                waiting = (
                    self._waiting_counts(cursor, jobs) if has_dependencies else [0] * len(jobs)
                )
                # One statement for the whole batch: arrays unnested server-side, in order.
                cursor.execute(
                    "INSERT INTO jobs (id, command, state, queue, priority, max_retries,"
                    " timeout, created_at, updated_at, scheduled_at, run_at, cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, hooks,"
                    " waiting_on)"
                    " SELECT id, command, 'pending', queue, priority, max_retries, timeout,"
                    " now(), now(), scheduled_at, coalesce(scheduled_at, now()), cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, hooks, waiting_on"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[],"
                    " %s::float8[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],"
                    " %s::text[], %s::text[], %s::text[], %s::text[], %s::int[])"
                    " WITH ORDINALITY AS new (id, command, queue, priority, max_retries,"
                    " timeout, scheduled_at, cwd, env, retry_on_exit, fatal_on_exit,"
                    " dedupe_key, depends_on, hooks, waiting_on, position)"
                    f" ORDER BY position{skip if skip_duplicate_keys else ''}"
                    f" RETURNING {JOB_COLUMNS}",
                    (*columns, waiting),
                )
                inserted = {row[0]: job_of(row) for row in cursor.fetchall()}
                created = len(inserted)
                if has_dependencies:
                    self._link_dependencies(cursor, [job for job in jobs if job.id in inserted])
                if created < len(jobs):
                    inserted |= self._key_holders(cursor, jobs, inserted)
                if created:
                    # Delivered at commit, to every idle worker: no one waits for a poll.
                    cursor.execute(NOTIFY, (CHANNEL,))
        except StoreUnavailable as exc:
            raise self._insert_error(exc, jobs) from exc.__cause__
        return [inserted[job.id] for job in jobs]

    def _insert_error(self, exc: StoreUnavailable, jobs: Sequence[NewJob]) -> QueuectlError:
        """What an insert's failure means: a taken id or dedupe key, or the store's error."""
        if isinstance(exc.__cause__, pg_errors.UniqueViolation):
            if exc.__cause__.diag.constraint_name == "jobs_dedupe_key":
                return self._duplicate_key(jobs)
            return self._duplicate([job.id for job in jobs])
        return exc

    def _key_holders(
        self, cursor: Cursor, jobs: Sequence[NewJob], inserted: dict[str, Job]
    ) -> dict[str, Job]:
        """For each skipped job (by its id), the job that holds its dedupe key: the one that
        is unfinished, else (it finished a moment ago) the newest with that key."""
        skipped = [job for job in jobs if job.id not in inserted]
        cursor.execute(KEY_HOLDERS, ([job.dedupe_key for job in skipped],))
        holders: dict[str, Job] = {}
        held: set[str] = set()
        for row in cursor.fetchall():
            job, key, is_held = job_of(row), row[23], bool(row[-1])
            if is_held or key not in held:
                holders[key] = job
            if is_held:
                held.add(key)
        return {job.id: holders[job.dedupe_key] for job in skipped if job.dedupe_key}

    def _duplicate_key(self, jobs: Sequence[NewJob]) -> DuplicateDedupeKey:
        """Name the key that broke the batch and the job that holds it."""
        keys = list({job.dedupe_key for job in jobs if job.dedupe_key is not None})
        rows = self._read(KEY_HOLDER, (keys,))
        if rows:
            return DuplicateDedupeKey(rows[0][0], rows[0][1], rows[0][2])
        return DuplicateDedupeKey(first_repeated_key(jobs) or "?", None)

    def _duplicate(self, ids: list[str]) -> DuplicateJobId:
        """Name the id that broke the batch: one already stored, or one given twice."""
        taken = self._read(FIRST_TAKEN_ID, (ids,))
        if taken:
            return DuplicateJobId(f"job id {taken[0][0]!r} already exists")
        seen: set[str] = set()
        for job_id in ids:
            if job_id in seen:
                return DuplicateJobId(f"job id {job_id!r} already exists")
            seen.add(job_id)
        return DuplicateJobId("a job id already exists")

    def get_job(self, job_id: str) -> Job | None:
        rows = self._read(GET_JOB, (job_id,))
        return job_of(rows[0]) if rows else None

    def _where(self, job_filter: JobFilter) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if job_filter.states:
            where.append("state = ANY(%s)")
            params.append([state.value for state in job_filter.states])
        if job_filter.queue is not None:
            where.append("queue = %s")
            params.append(job_filter.queue)
        if job_filter.ids:
            where.append("id = ANY(%s)")
            params.append(list(job_filter.ids))
        if job_filter.updated_since is not None:
            where.append("updated_at >= %s")
            params.append(job_filter.updated_since)
        return (f"WHERE {' AND '.join(where)}" if where else ""), params

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        clause, params = self._where(job_filter)
        if job_filter.limit > 0:
            sql = (
                f"SELECT {JOB_COLUMNS} FROM (SELECT seq, {JOB_COLUMNS} FROM jobs {clause}"
                " ORDER BY seq DESC LIMIT %s) AS newest ORDER BY seq"
            )
            return [job_of(row) for row in self._read(sql, [*params, job_filter.limit])]
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY seq"
        return [job_of(row) for row in self._read(sql, params)]

    def count_jobs_by_state(self, job_filter: JobFilter | None = None) -> dict[JobState, int]:
        clause, params = self._where(job_filter or JobFilter())
        return state_counts(self._read(COUNT_BY_STATE.format(where=clause), params))

    def list_attempts(self, job_id: str) -> list[Attempt]:
        rows = self._read(LIST_ATTEMPTS, (job_id,))
        return [attempt_from_row(row, utc) for row in rows]

    def get_attempt_output(self, job_id: str, attempt: int | None) -> AttemptOutput | None:
        rows = self._read(ATTEMPT_OUTPUT, (job_id, attempt, attempt))
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
        where = (
            "state = ANY(%(states)s) AND updated_at <= now() - %(age)s * interval '1 second'"
            " AND (%(queue)s::text IS NULL OR queue = %(queue)s)"
        )
        params: dict[str, Any] = {
            "states": [state.value for state in states],
            "age": float(older_than),
            "queue": queue,
        }
        if dry_run:
            count = int(self._read(f"SELECT count(*) FROM jobs WHERE {where}", params)[0][0])
            return min(count, limit) if limit is not None else count
        deleted = 0
        # In batches, each its own transaction, so that a big prune holds no long locks.
        while limit is None or deleted < limit:
            batch = DELETE_BATCH if limit is None else min(DELETE_BATCH, limit - deleted)
            with self._transaction() as cursor:
                cursor.execute(
                    f"WITH doomed AS (SELECT id FROM jobs WHERE {where} ORDER BY seq"
                    " LIMIT %(batch)s FOR UPDATE SKIP LOCKED),"
                    " history AS (DELETE FROM attempts WHERE job_id IN (SELECT id FROM doomed)),"
                    " edges AS (DELETE FROM job_dependencies"
                    " WHERE job_id IN (SELECT id FROM doomed))"
                    " DELETE FROM jobs WHERE id IN (SELECT id FROM doomed)",
                    {**params, "batch": batch},
                )
                count = cursor.rowcount
            if count <= 0:
                break
            deleted += count
        return deleted
