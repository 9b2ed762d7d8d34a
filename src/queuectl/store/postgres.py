"""PostgresStore: the shared store for workers on several machines, claims by SKIP LOCKED."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from queuectl.core.errors import (
    DuplicateDedupeKey,
    DuplicateJobId,
    MissingDependency,
    QueuectlError,
    StoreUnavailable,
    WrongState,
)
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, AttemptOutcome, Job, JobState, NewJob, WorkerInfo
from queuectl.store import dependencies
from queuectl.store.base import (
    AttemptOutput,
    AttemptRecord,
    JobFilter,
    QueueInfo,
    ThroughputBucket,
)
from queuectl.store.rows import (
    ATTEMPT_COLUMNS,
    DEDUPE_HELD,
    attempt_from_row,
    dedupe_held,
    exit_codes_to_column,
    first_repeated_key,
    job_from_row,
    outcome_class,
    queue_infos,
    state_counts,
)

if TYPE_CHECKING:
    from queuectl.core.health import StoreFacts

if TYPE_CHECKING:
    from queuectl.core.schedule import Schedule
    from queuectl.store.base import JobRecord, QueueSetting, StoreContents

try:
    import psycopg
    from psycopg import errors as pg_errors

    from queuectl.store import postgres_session
    from queuectl.store.postgres_copy import COPY_MIN_JOBS, copy_plain_jobs
    from queuectl.store.postgres_listen import CHANNEL, JobListener
except ImportError as exc:  # an optional dependency: SQLite users never need it
    raise MissingDependency(
        "PostgreSQL support needs psycopg: pip install 'queuectl[postgres]'"
    ) from exc

log = logging.getLogger("queuectl.store")

Connection: TypeAlias = "psycopg.Connection[tuple[Any, ...]]"
Cursor: TypeAlias = "psycopg.Cursor[tuple[Any, ...]]"

SCHEMA_VERSION = 5  # the number of the newest file in migrations/postgres
MIGRATION_LOCK = 0x71756575  # pg_advisory_xact_lock key ("queu"): one migrator at a time
SCHEMA = postgres_session.SCHEMA  # every table lives here, named with it in every statement
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise (libpq default: forever)
LISTEN_CONNECT_TIMEOUT = 5  # seconds; short, as an idle worker waits on it
NOTIFY_PROBE_TIMEOUT = 3.0  # seconds doctor waits for its probe notification
RECONNECT_FIRST = 0.1  # seconds before the second try to reopen a lost main connection
RECONNECT_MAX = 5.0  # seconds; cap of the main connection's reconnect backoff

JOB_COLUMNS = (
    "id, command, state, queue, priority, attempts, max_retries, timeout, created_at,"
    " updated_at, scheduled_at, run_at, started_at, finished_at, exit_code, last_error,"
    " output, locked_by, locked_at, cwd, env, retry_on_exit, fatal_on_exit, dedupe_key,"
    " depends_on"
)
# A queue is closed to claims while paused or while it runs as many jobs as its limit.
CLOSED_QUEUES = (
    "SELECT name FROM queues WHERE paused OR (max_running IS NOT NULL AND max_running <="
    " (SELECT count(*) FROM jobs AS running"
    "  WHERE running.state = 'processing' AND running.queue = queues.name))"
)
LIMITS_MAX_AGE = 1.0  # seconds a store trusts its list of queues that have a limit
DELETE_BATCH = 500  # jobs deleted per transaction
CANCELLED_WHILE_RUNNING = "cancelled while running"
REQUEUE_TRIES = 3  # a bulk DLQ retry that races an enqueue of one of its keys tries again
WORKER_COLUMNS = "id, host, pid, status, started_at, last_heartbeat, current_job_id, queues"

# The claim in one statement, so one round trip: pick and lock the next due job (rows
# other workers hold are skipped, not waited for), mark it, open its attempt row and
# record it as the worker's current job. All of it commits or none of it does. The start
# is the clock read while the statement runs, not now() (when the transaction began, which
# may be before it waited for a queue limit's lock): so a run never seems to start before
# the run it waited for had ended.
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
            AND queue NOT IN ({CLOSED_QUEUES})
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
# number), so a rescued or cancelled job is left alone and zero rows come back.
FINISH_SQL = """
WITH finished AS (
    UPDATE jobs SET state = %(state)s,
        run_at = coalesce(now() + %(delay)s * interval '1 second', run_at),
        finished_at = now(), exit_code = %(exit_code)s, last_error = %(error)s,
        output = coalesce(%(output)s, output), locked_by = NULL, locked_at = NULL,
        updated_at = now()
    WHERE id = %(job)s AND state = 'processing' AND locked_by = %(worker)s
        AND attempts = %(attempt)s
    RETURNING id, has_dependents
), attempt AS (
    UPDATE attempts SET finished_at = now(), exit_code = %(exit_code)s, error = %(error)s,
        output = coalesce(%(output)s, output), outcome = %(outcome)s, signal = %(signal)s
    FROM finished
    WHERE attempts.job_id = finished.id AND attempts.attempt = %(attempt)s
        AND attempts.finished_at IS NULL
), holder AS (
    UPDATE workers SET current_job_id = NULL
    FROM finished
    WHERE workers.id = %(worker)s AND workers.current_job_id = finished.id
)
SELECT id, has_dependents FROM finished
"""


class PostgresStore:
    """A PostgreSQL database shared by workers on any number of hosts. `durable=False`
    turns off the wait for the WAL flush per commit (worker bookkeeping; losing the last
    writes to a server crash only re-runs a job, which at-least-once allows)."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.durable = durable
        self._closed = False
        self.options = postgres_session.parse_url(url)
        # Behind a transaction pooler no notification reaches a listener: poll instead.
        self.supports_notify = not self.options.transaction_pooling
        self.conn = self._connect()
        # The listener is a second connection, opened on the first wait_for_jobs, so
        # stores that never wait (the CLI, the heartbeat thread) never pay for it.
        self._listener = JobListener(
            self._connect_listener,
            lambda channel: self._execute("SELECT pg_notify(%s, '')", (channel,)),
            lambda: redact(self.url),
            available=self.supports_notify,
        )
        self._limits: list[str] = []
        self._limits_read_at = float("-inf")
        self._reconnect_failures = 0
        self._reconnect_at = 0.0  # monotonic time before which no reconnect is tried
        # Set when the main connection was reopened: a claim whose reply the old one lost
        # may have committed, leaving a job held by this worker that it never ran.
        self._may_hold_lost_claim = False

    # -- plumbing ---------------------------------------------------------------------

    def _connect(self) -> Connection:
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.url:
            options["connect_timeout"] = CONNECT_TIMEOUT
        try:
            conn: Connection = psycopg.connect(
                self.options.conninfo, **options, **postgres_session.connect_kwargs(self.options)
            )
            # A session setting: through a transaction pooler it would stay on the server
            # connection and make other clients' commits non-durable, so never there.
            if not self.durable and not self.options.transaction_pooling:
                conn.execute("SET synchronous_commit = off")
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {redact(self.url)}: {first_line(exc)}"
            ) from exc
        return conn

    def _connect_listener(self) -> Connection:
        conn: Connection = psycopg.connect(
            postgres_session.parse_url(self.url).conninfo,
            autocommit=True,
            connect_timeout=LISTEN_CONNECT_TIMEOUT,
            **postgres_session.connect_kwargs(self.options),
        )
        return conn

    def _unavailable(self, exc: psycopg.Error) -> StoreUnavailable:
        return StoreUnavailable(f"PostgreSQL at {redact(self.url)}: {first_line(exc)}")

    def _connection(self) -> Connection:
        """The main connection, reopened if the server dropped it (a restart, a failover),
        so a long-lived worker recovers instead of failing every call from then on."""
        if self.conn.closed and not self._closed:
            self._reconnect()
        return self.conn

    def _reconnect(self) -> None:
        """Reopen the main connection; after failures, wait a jittered backoff (capped at
        RECONNECT_MAX) between tries, so that many workers do not hammer a server that is
        starting up. The callers' own retries pace the tries."""
        if time.monotonic() < self._reconnect_at:
            raise StoreUnavailable(
                f"PostgreSQL at {redact(self.url)}: connection lost; reconnecting"
            )
        try:
            self.conn = self._connect()
        except StoreUnavailable:
            self._reconnect_failures += 1
            delay = min(RECONNECT_MAX, RECONNECT_FIRST * 2 ** (self._reconnect_failures - 1))
            self._reconnect_at = time.monotonic() + random.uniform(delay / 2, delay)  # noqa: S311
            raise
        log.info("reconnected to PostgreSQL at %s", redact(self.url))
        self._reconnect_failures = 0
        self._reconnect_at = 0.0
        self._may_hold_lost_claim = True

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """A cursor inside one transaction; driver errors become StoreUnavailable."""
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cursor:
                yield cursor
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        """One statement, which autocommit makes its own transaction: no BEGIN/COMMIT
        round trips. The result is already in memory when this returns."""
        try:
            return self._connection().execute(sql, params)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self._execute(sql, params).fetchall()

    def now(self) -> datetime:
        return _utc(self._read("SELECT now()")[0][0])

    def migrate(self) -> None:
        if self._schema_version() == SCHEMA_VERSION:
            return
        from queuectl.store.migrate import migration_scripts, statements

        with self._transaction() as cursor:
            # Serialise concurrent first starts: the others wait here, then find the
            # schema current. The lock ends with the transaction.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            # The scripts name tables without their schema: for this transaction only.
            cursor.execute(f"SET LOCAL search_path TO {SCHEMA}")
            cursor.execute("SELECT to_regclass('queuectl_schema') IS NOT NULL")
            exists = _one(cursor)[0]
            version = 0
            if exists:
                cursor.execute("SELECT coalesce(max(version), 0) FROM queuectl_schema")
                version = _one(cursor)[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"the store at {redact(self.url)} has schema version {version}, newer "
                    f"than this queuectl understands ({SCHEMA_VERSION}): upgrade queuectl"
                )
            for number, script in migration_scripts("postgres"):
                if number > version:
                    for statement in statements(script):
                        cursor.execute(statement)
                    cursor.execute("INSERT INTO queuectl_schema (version) VALUES (%s)", (number,))

    def _schema_version(self) -> int:
        """The fast path of every start: one small query, 0 for an empty database."""
        try:
            row = self._connection().execute("SELECT max(version) FROM queuectl_schema").fetchone()
        except pg_errors.UndefinedTable:
            return 0
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        self._closed = True
        self.conn.close()
        self._listener.close()

    # -- jobs -------------------------------------------------------------------------

    def insert_jobs(
        self, jobs: Sequence[NewJob], *, skip_duplicate_keys: bool = False
    ) -> list[Job]:
        if not jobs:
            return []
        plain = not skip_duplicate_keys and not any(job.depends_on for job in jobs)
        if plain and len(jobs) >= COPY_MIN_JOBS:
            try:  # a bulk load: COPY, in one transaction
                return copy_plain_jobs(self, jobs)
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
                rows = self._read(
                    "WITH new_jobs AS (INSERT INTO jobs (id, command, state, queue, priority,"
                    " max_retries, timeout, created_at, updated_at, scheduled_at, run_at, cwd,"
                    " env, retry_on_exit, fatal_on_exit, dedupe_key, depends_on)"
                    " SELECT id, command, 'pending', queue, priority, max_retries, timeout,"
                    " now(), now(), scheduled_at, coalesce(scheduled_at, now()), cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[],"
                    " %s::float8[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],"
                    " %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS new (id, command,"
                    " queue, priority, max_retries, timeout, scheduled_at, cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, position)"
                    f" ORDER BY position RETURNING {JOB_COLUMNS})"
                    f" SELECT {JOB_COLUMNS} FROM new_jobs, (SELECT pg_notify(%s, '')) AS wake",
                    (*columns, CHANNEL),
                )
                return [_job(row) for row in rows]
            with self._transaction() as cursor:
                waiting = (
                    self._waiting_counts(cursor, jobs) if has_dependencies else [0] * len(jobs)
                )
                # One statement for the whole batch: arrays unnested server-side, in order.
                cursor.execute(
                    "INSERT INTO jobs (id, command, state, queue, priority, max_retries,"
                    " timeout, created_at, updated_at, scheduled_at, run_at, cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, waiting_on)"
                    " SELECT id, command, 'pending', queue, priority, max_retries, timeout,"
                    " now(), now(), scheduled_at, coalesce(scheduled_at, now()), cwd, env,"
                    " retry_on_exit, fatal_on_exit, dedupe_key, depends_on, waiting_on"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[],"
                    " %s::float8[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],"
                    " %s::text[], %s::text[], %s::text[], %s::int[]) WITH ORDINALITY AS new"
                    " (id, command, queue, priority, max_retries, timeout, scheduled_at, cwd,"
                    " env, retry_on_exit, fatal_on_exit, dedupe_key, depends_on, waiting_on,"
                    " position)"
                    f" ORDER BY position{skip if skip_duplicate_keys else ''}"
                    f" RETURNING {JOB_COLUMNS}",
                    (*columns, waiting),
                )
                inserted = {row[0]: _job(row) for row in cursor.fetchall()}
                created = len(inserted)
                if has_dependencies:
                    self._link_dependencies(cursor, [job for job in jobs if job.id in inserted])
                if created < len(jobs):
                    inserted |= self._key_holders(cursor, jobs, inserted)
                if created:
                    # Delivered at commit, to every idle worker: no one waits for a poll.
                    cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
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
        cursor.execute(
            f"SELECT {JOB_COLUMNS}, {DEDUPE_HELD} FROM jobs WHERE dedupe_key = ANY(%s)"
            " ORDER BY seq",
            ([job.dedupe_key for job in skipped],),
        )
        holders: dict[str, Job] = {}
        held: set[str] = set()
        for row in cursor.fetchall():
            job, key, is_held = _job(row), row[23], bool(row[-1])
            if is_held or key not in held:
                holders[key] = job
            if is_held:
                held.add(key)
        return {job.id: holders[job.dedupe_key] for job in skipped if job.dedupe_key}

    def _duplicate_key(self, jobs: Sequence[NewJob]) -> DuplicateDedupeKey:
        """Name the key that broke the batch and the job that holds it."""
        keys = list({job.dedupe_key for job in jobs if job.dedupe_key is not None})
        rows = self._read(
            f"SELECT dedupe_key, id, state FROM jobs WHERE dedupe_key = ANY(%s) AND {DEDUPE_HELD}"
            " ORDER BY seq LIMIT 1",
            (keys,),
        )
        if rows:
            return DuplicateDedupeKey(rows[0][0], rows[0][1], rows[0][2])
        return DuplicateDedupeKey(first_repeated_key(jobs) or "?", None)

    def _waiting_counts(self, cursor: Cursor, jobs: Sequence[NewJob]) -> list[int]:
        """Check the jobs' dependencies and count the unfinished ones. The dependencies'
        rows are locked and marked has_dependents: a finish of one of them either waits for
        this commit and then sees the mark, or ran first and the state read here is final."""
        outside = dependencies.outside_batch(jobs)
        stored: dict[str, str] = {}
        if outside:
            cursor.execute(
                "UPDATE jobs SET has_dependents = true WHERE id IN (SELECT id FROM jobs"
                " WHERE id = ANY(%s) ORDER BY id FOR UPDATE) RETURNING id, state",
                (outside,),
            )
            stored = dict(cursor.fetchall())
        return dependencies.waiting_counts(jobs, stored)

    def _link_dependencies(self, cursor: Cursor, jobs: Sequence[NewJob]) -> None:
        edges = [(job.id, dep) for job in jobs for dep in job.depends_on]
        cursor.execute(
            "INSERT INTO job_dependencies (job_id, depends_on_id)"
            " SELECT * FROM unnest(%s::text[], %s::text[])",
            ([edge[0] for edge in edges], [edge[1] for edge in edges]),
        )
        batch = {job.id for job in jobs}
        inside = sorted({dep for _, dep in edges if dep in batch})
        if inside:
            cursor.execute("UPDATE jobs SET has_dependents = true WHERE id = ANY(%s)", (inside,))

    def _release_dependents(self, cursor: Cursor, job_id: str, state: JobState) -> None:
        """After `job_id` ended in `state`: one wait fewer for each job that depends on it
        when it completed; when it ended dead or cancelled, those jobs (and, in turn, the
        jobs that wait for them) become dead, as they could never run."""
        if state is JobState.COMPLETED:
            cursor.execute(
                "UPDATE jobs SET waiting_on = waiting_on - 1 WHERE waiting_on > 0 AND id IN"
                " (SELECT job_id FROM job_dependencies WHERE depends_on_id = %s)",
                (job_id,),
            )
            cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            return
        if state not in (JobState.DEAD, JobState.CANCELLED):
            return
        ended = [(job_id, state.value)]
        while ended:
            cause, how = ended.pop()
            cursor.execute(
                "UPDATE jobs SET state = 'dead', last_error = %s, updated_at = now(),"
                " locked_by = NULL, locked_at = NULL"
                " WHERE state IN ('pending', 'failed') AND id IN"
                " (SELECT job_id FROM job_dependencies WHERE depends_on_id = %s) RETURNING id",
                (dependencies.dependency_error(cause, how), cause),
            )
            ended += [(row[0], JobState.DEAD.value) for row in cursor.fetchall()]

    def _duplicate(self, ids: list[str]) -> DuplicateJobId:
        """Name the id that broke the batch: one already stored, or one given twice."""
        taken = self._read("SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY seq LIMIT 1", (ids,))
        if taken:
            return DuplicateJobId(f"job id {taken[0][0]!r} already exists")
        seen: set[str] = set()
        for job_id in ids:
            if job_id in seen:
                return DuplicateJobId(f"job id {job_id!r} already exists")
            seen.add(job_id)
        return DuplicateJobId("a job id already exists")

    def get_job(self, job_id: str) -> Job | None:
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        return _job(rows[0]) if rows else None

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
            return [_job(row) for row in self._read(sql, [*params, job_filter.limit])]
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY seq"
        return [_job(row) for row in self._read(sql, params)]

    def count_jobs_by_state(self, job_filter: JobFilter | None = None) -> dict[JobState, int]:
        clause, params = self._where(job_filter or JobFilter())
        sql = f"SELECT state, count(*) FROM jobs {clause} GROUP BY state"
        return state_counts(self._read(sql, params))

    def list_attempts(self, job_id: str) -> list[Attempt]:
        rows = self._read(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = %s ORDER BY seq", (job_id,)
        )
        return [attempt_from_row(row, _utc) for row in rows]

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
            return _job(rows[0]) if rows else None
        with self._transaction() as cursor:
            # A queue limit counts running jobs, which concurrent claims cannot see: lock
            # the limited queues' rows first, so such claims take turns. The claim that
            # follows gets a fresh snapshot (READ COMMITTED) that sees the turns before.
            cursor.execute(
                "SELECT name FROM queues WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
                (limited,),
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return _job(row) if row else None

    def _held_after_reconnect(self, worker_id: str) -> Job | None:
        """A job this worker holds although it is claiming (so it runs none): a claim
        that committed while the connection broke, its reply lost. It is handed back to
        the worker as its claim; left alone, it would stay `processing` for as long as the
        worker's heartbeat kept its lease alive."""
        rows = self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND locked_by = %s"
            " ORDER BY seq LIMIT 1",
            (worker_id,),
        )
        self._may_hold_lost_claim = False
        if rows:
            log.warning("job %s was claimed as the connection broke; running it", rows[0][0])
            return _job(rows[0])
        return None

    def _limited_queues(self) -> list[str]:
        """Names of queues with a limit, re-read at most every LIMITS_MAX_AGE seconds."""
        if time.monotonic() - self._limits_read_at > LIMITS_MAX_AGE:
            self._limits = [
                r[0] for r in self._read("SELECT name FROM queues WHERE max_running IS NOT NULL")
            ]
            self._limits_read_at = time.monotonic()
        return self._limits

    def finish_attempt(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        rows = self._read(FINISH_SQL, _finish_params(job, worker_id, outcome, record))
        if not rows:
            return False
        if rows[0][1] and outcome.state in (JobState.COMPLETED, JobState.DEAD):
            # Its own transaction, after the finish: that one's snapshot may predate a
            # dependent whose insert held this job's row (see _waiting_counts).
            with self._transaction() as cursor:
                self._release_dependents(cursor, job.id, outcome.state)
        if outcome.state is JobState.FAILED:
            # A hint, sent after the commit: idle workers re-read when the retry is due.
            self._execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return True

    def finish_and_claim(
        self,
        job: Job,
        worker_id: str,
        outcome: Outcome,
        record: AttemptRecord,
        queues: Sequence[str] | None,
    ) -> tuple[bool, Job | None]:
        """The finish and the next claim sent together (pipeline mode): one round trip
        per job instead of two. Queue limits need the claim's own transaction."""
        conn = self._connection()  # reopened first if it broke, so the check below sees that
        if (
            outcome.state is JobState.FAILED
            or self._may_hold_lost_claim
            or any(not queues or name in queues for name in self._limited_queues())
        ):
            finished = self.finish_attempt(job, worker_id, outcome, record)
            return finished, self.claim_job(worker_id, queues)
        sql, params = self._claim_statement(worker_id, queues)
        try:
            with conn.pipeline():
                finish = conn.execute(FINISH_SQL, _finish_params(job, worker_id, outcome, record))
                claim = conn.execute(sql, params)
            finished_rows = finish.fetchall()
            rows = claim.fetchall()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        if finished_rows and finished_rows[0][1]:
            # As in finish_attempt: the dependents are released in their own transaction.
            with self._transaction() as cursor:
                self._release_dependents(cursor, job.id, outcome.state)
        return bool(finished_rows), _job(rows[0]) if rows else None

    def find_stale_jobs(self, lease_timeout: float) -> list[Job]:
        # The cutoff is the server's now(): hosts with skewed clocks still agree.
        rows = self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND NOT EXISTS ("
            " SELECT 1 FROM workers WHERE workers.id = jobs.locked_by"
            " AND workers.status <> 'stopped'"
            " AND workers.last_heartbeat >= now() - %s * interval '1 second')"
            " ORDER BY seq",
            (float(lease_timeout),),
        )
        return [_job(row) for row in rows]

    def requeue_dead(self, job_id: str) -> bool:
        return self.requeue_job(job_id, (JobState.DEAD,)) is not None

    def requeue_job(self, job_id: str, states: Sequence[JobState]) -> Job | None:
        wanted = [state.value for state in states]
        try:
            with self._transaction() as cursor:
                # The dependencies' rows are locked, so none finishes between this count and
                # the commit (its release would miss a job that is not pending yet).
                cursor.execute(
                    "SELECT d.depends_on_id, dep.state FROM job_dependencies AS d"
                    " JOIN jobs AS dep ON dep.id = d.depends_on_id WHERE d.job_id = %s"
                    " AND EXISTS (SELECT 1 FROM jobs WHERE id = %s AND state = ANY(%s))"
                    " ORDER BY dep.id FOR SHARE OF dep",
                    (job_id, job_id, wanted),
                )
                edges = cursor.fetchall()
                dependencies.ended_dependency(job_id, edges)
                waiting = sum(state != JobState.COMPLETED.value for _, state in edges)
                cursor.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(),"
                    " updated_at = now(), locked_by = NULL, locked_at = NULL, waiting_on = %s"
                    f" WHERE id = %s AND state = ANY(%s) RETURNING {JOB_COLUMNS}",
                    (waiting, job_id, wanted),
                )
                row = cursor.fetchone()
                if row is None:
                    return None
                cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise self._key_taken(job_id) from exc.__cause__
            raise
        return _job(row)

    def _key_taken(self, job_id: str) -> WrongState:
        """Why a job cannot go back to pending: another holds its dedupe key now."""
        rows = self._read(
            "SELECT held.dedupe_key, held.id, held.state FROM jobs AS mine"
            f" JOIN jobs AS held ON held.dedupe_key = mine.dedupe_key AND {dedupe_held('held')}"
            " WHERE mine.id = %s AND held.id <> mine.id LIMIT 1",
            (job_id,),
        )
        if not rows:
            return WrongState(f"job {job_id!r} cannot be retried now: its dedupe key is taken")
        key, holder, state = rows[0]
        return WrongState(
            f"job {job_id!r} cannot be retried: a job with dedupe key {key!r} is already"
            f" {state} ({holder})"
        )

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
            # Jobs whose dedupe key is held stay dead, and of dead jobs sharing a key only
            # the newest comes back: the ids are chosen first, so none can collide.
            cursor.execute(
                "SELECT id FROM jobs AS dead WHERE state = 'dead' AND (%(queue)s::text IS NULL"
                " OR queue = %(queue)s) AND (dedupe_key IS NULL OR (NOT EXISTS (SELECT 1"
                "  FROM jobs AS held WHERE held.dedupe_key = dead.dedupe_key"
                f"   AND {dedupe_held('held')})"
                "  AND seq = (SELECT max(seq) FROM jobs AS twin"
                "   WHERE twin.dedupe_key = dead.dedupe_key AND twin.state = 'dead'"
                "   AND (%(queue)s::text IS NULL OR twin.queue = dead.queue))))",
                {"queue": queue},
            )
            candidates = [row[0] for row in cursor.fetchall()]
            # Jobs that wait for others: a dead one comes back only with its dependencies.
            cursor.execute(
                "SELECT d.job_id, d.depends_on_id, dep.state, dep.queue FROM jobs"
                " JOIN job_dependencies AS d ON d.job_id = jobs.id"
                " JOIN jobs AS dep ON dep.id = d.depends_on_id"
                " WHERE jobs.state = 'dead' AND (%s::text IS NULL OR jobs.queue = %s)"
                " ORDER BY dep.id FOR SHARE OF dep",
                (queue, queue),
            )
            # A dead dependency that stays dead (its key is held) blocks like a cancelled one.
            coming_back = set(candidates)
            edges = [
                (job, dep, "cancelled" if state == "dead" and dep not in coming_back else state, q)
                for job, dep, state, q in cursor.fetchall()
            ]
            blocked = dependencies.blocked_by_ended(edges, queue)
            ids = [job_id for job_id in candidates if job_id not in blocked]
            cursor.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(),"
                " updated_at = now() WHERE state = 'dead' AND id = ANY(%s)",
                (ids,),
            )
            count = cursor.rowcount
            waiting = sorted({edge[0] for edge in edges} & set(ids))
            if waiting:
                cursor.execute(
                    "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
                    " JOIN jobs AS dep ON dep.id = d.depends_on_id"
                    " WHERE d.job_id = jobs.id AND dep.state <> 'completed')"
                    " WHERE id = ANY(%s)",
                    (waiting,),
                )
            if count:
                cursor.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return count

    def cancel_job(self, job_id: str) -> Job | None:
        with self._transaction() as cursor:
            cursor.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            job = _job(row)
            if job.state not in (JobState.PENDING, JobState.FAILED, JobState.PROCESSING):
                return None
            running = job.state is JobState.PROCESSING
            cursor.execute(
                "UPDATE jobs SET state = 'cancelled', updated_at = now(), locked_by = NULL,"
                " locked_at = NULL, finished_at = CASE WHEN %(running)s THEN now()"
                " ELSE finished_at END, last_error = CASE WHEN %(running)s THEN %(error)s"
                " ELSE last_error END WHERE id = %(job)s",
                {"running": running, "error": CANCELLED_WHILE_RUNNING, "job": job_id},
            )
            if running:
                cursor.execute(
                    "UPDATE attempts SET finished_at = now(), error = %s, outcome = %s"
                    " WHERE job_id = %s AND attempt = %s AND finished_at IS NULL",
                    (CANCELLED_WHILE_RUNNING, AttemptOutcome.KILLED.value, job_id, job.attempts),
                )
                # Its worker's finish will be refused, so it would never clear this itself:
                # `status` would show the worker busy with a job that is over.
                cursor.execute(
                    "UPDATE workers SET current_job_id = NULL"
                    " WHERE id = %s AND current_job_id = %s",
                    (job.locked_by, job_id),
                )
            self._release_dependents(cursor, job_id, JobState.CANCELLED)
        return job

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

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM jobs WHERE id = %s AND state = 'processing' AND locked_by = %s"
                " AND attempts = %s",
                (job.id, worker_id, job.attempts),
            )
        )

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        cursor = self._execute(
            "UPDATE attempts SET output = %s WHERE job_id = %s AND attempt = %s"
            " AND worker_id = %s AND finished_at IS NULL",
            (_without_nul(output), job.id, job.attempts, worker_id),
        )
        return cursor.rowcount == 1

    def get_attempt_output(self, job_id: str, attempt: int | None) -> AttemptOutput | None:
        rows = self._read(
            "SELECT attempt, worker_id, finished_at IS NOT NULL, output FROM attempts"
            " WHERE job_id = %s AND (%s::int IS NULL OR attempt = %s)"
            " ORDER BY seq DESC LIMIT 1",
            (job_id, attempt, attempt),
        )
        if not rows:
            return None
        number, worker_id, finished, output = rows[0]
        return AttemptOutput(job_id, number, worker_id, bool(finished), output or "")

    def list_queues(self) -> list[QueueInfo]:
        return queue_infos(
            self._read("SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"),
            self._read("SELECT name, paused, max_running FROM queues"),
        )

    def set_queue_paused(self, name: str, paused: bool) -> None:
        self._execute(
            "INSERT INTO queues (name, paused) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
            (name, paused),
        )
        if not paused:
            self._execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    def set_queue_limit(self, name: str, max_running: int | None) -> None:
        self._execute(
            "INSERT INTO queues (name, max_running) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running",
            (name, max_running),
        )
        self._limits_read_at = float("-inf")
        # A raised or removed limit may open the queue: idle workers should look now.
        self._execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        rows = self._read(
            "SELECT floor(extract(epoch FROM finished_at) / 60)::bigint AS minute,"
            " count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL)"
            " FROM attempts WHERE finished_at >= now() - %s * interval '1 second'"
            " GROUP BY minute ORDER BY minute",
            (float(since),),
        )
        return [
            ThroughputBucket(datetime.fromtimestamp(minute * 60.0, UTC), ok, failed)
            for minute, ok, failed in rows
        ]

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
            f"{queue_clause} AND queue NOT IN ({CLOSED_QUEUES})",
            params,
        )
        return None if not rows or rows[0][0] is None else max(0.0, float(rows[0][0]))

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block on LISTEN until a NOTIFY or `timeout`; where notifications cannot arrive
        (a transaction pooler, the server unreachable) sleep like a poll instead."""
        return self._listener.wait(timeout)

    def notifications_arrive(self, timeout: float) -> bool:
        """Whether a notification sent now reaches a listener within `timeout` (doctor)."""
        return self._listener.probe(timeout)

    # -- workers ----------------------------------------------------------------------

    def register_worker(
        self, worker_id: str, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        with self._transaction() as cursor:
            # Keep the table small: forget workers that stopped more than a day ago.
            cursor.execute(
                "DELETE FROM workers WHERE status = 'stopped'"
                " AND last_heartbeat < now() - interval '1 day'"
            )
            cursor.execute(
                "INSERT INTO workers (id, host, pid, queues, status, started_at, last_heartbeat)"
                " VALUES (%s, %s, %s, %s, 'running', now(), now())",
                (worker_id, host, pid, list(queues) if queues else None),
            )

    def heartbeat(
        self, worker_id: str, current_job_id: str | None, status: str = "running"
    ) -> bool:
        # current_job_id is not written: claim and finish keep it exact, and a copy read
        # by the heartbeat thread could be stale by the time it lands.
        rows = self._read(
            "UPDATE workers SET last_heartbeat = now(), status = %s WHERE id = %s"
            " RETURNING stop_requested",
            (status, worker_id),
        )
        return bool(rows[0][0]) if rows else True

    def deregister_worker(self, worker_id: str) -> None:
        self._execute(
            "UPDATE workers SET status = 'stopped', current_job_id = NULL,"
            " last_heartbeat = now() WHERE id = %s",
            (worker_id,),
        )

    def list_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(
            f"SELECT {WORKER_COLUMNS} FROM workers WHERE status <> 'stopped'"
            " AND last_heartbeat >= now() - %s * interval '1 second' ORDER BY started_at, id",
            (float(lease_timeout),),
        )
        return [_worker(row) for row in rows]

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        rows = self._read(f"SELECT {WORKER_COLUMNS} FROM workers WHERE id = %s", (worker_id,))
        return _worker(rows[0]) if rows else None

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        if worker_ids:
            self._execute(
                "UPDATE workers SET stop_requested = true WHERE id = ANY(%s)",
                (list(worker_ids),),
            )

    # -- config -----------------------------------------------------------------------

    def get_config(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM config"))

    def set_config(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO config (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- health (`queuectl doctor`) ---------------------------------------------------

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(
            f"SELECT {WORKER_COLUMNS} FROM workers WHERE status <> 'stopped'"
            " AND last_heartbeat < now() - %s * interval '1 second' ORDER BY last_heartbeat, id",
            (float(lease_timeout),),
        )
        return [_worker(row) for row in rows]

    def inspect_storage(self) -> StoreFacts:
        """The server's version, this connection, the schema version, the connections in
        use and whether notifications reach a listener here."""
        from queuectl.core.health import Connections, Notifications, StoreFacts

        version, user, database, connections, limit, ours, total = self._read(
            "SELECT current_setting('server_version'), current_user, current_database(),"
            " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),"
            " current_setting('max_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE application_name = %s),"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
            (postgres_session.APPLICATION_NAME,),
        )[0]
        if not self.supports_notify:
            notifications = Notifications.OFF
        elif self.notifications_arrive(NOTIFY_PROBE_TIMEOUT):
            notifications = Notifications.LISTEN
        else:
            notifications = Notifications.LOST
        return StoreFacts(
            backend="postgresql",
            location=redact(self.url),
            schema_version=self._schema_version(),
            current_schema_version=SCHEMA_VERSION,
            server=(
                f"PostgreSQL {version} at {redact(self.url)} (user {user}, database {database};"
                f" connections to it: {connections}, max_connections {limit})"
            ),
            connections=Connections(queuectl=ours, total=total, limit=limit),
            notifications=notifications,
        )

    # -- schedules and moving between stores (postgres_transfer.py) -----------------------

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        postgres_transfer.insert_schedule(self, schedule)

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.list_schedules(self, name)

    def delete_schedule(self, name: str) -> bool:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.delete_schedule(self, name)

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.set_schedule_paused(self, name, paused, next_fire_at)

    def list_due_schedules(self) -> list[Schedule]:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.list_due_schedules(self)

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.fire_schedule(self, schedule, jobs, next_fire_at)

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.iter_job_records(self, states)

    def list_queue_settings(self) -> list[QueueSetting]:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.list_queue_settings(self)

    def count_attempts(self) -> int:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.count_attempts(self)

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        from queuectl.store import postgres_transfer  # lazily: off the enqueue path

        return postgres_transfer.insert_contents(self, contents, skip_existing=skip_existing)


def redact(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1@", url)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one(cursor: Cursor) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None
    return row


def _finish_params(
    job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
) -> dict[str, Any]:
    return {
        "state": outcome.state.value,
        "delay": outcome.retry_delay,
        "exit_code": record.exit_code,
        "error": _without_nul(outcome.last_error),
        "output": _without_nul(record.output),
        "outcome": outcome_class(record, outcome),
        "signal": record.signal,
        "job": job.id,
        "worker": worker_id,
        "attempt": job.attempts,
    }


def _without_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, which binary job output often has: store U+FFFD,
    what the runner already shows for any byte that is not UTF-8."""
    return text.replace("\x00", "\ufffd") if text is not None else None


def _worker(row: Sequence[Any]) -> WorkerInfo:
    """A WorkerInfo from the columns of WORKER_COLUMNS (queues are a text[] here)."""
    queues = tuple(row[7]) if row[7] else None
    return WorkerInfo(row[0], row[1], row[2], row[3], _utc(row[4]), _utc(row[5]), row[6], queues)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, _utc)
