"""SqliteStore: the embedded default, one file in WAL mode shared by every local process."""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from queuectl.core.clock import Clock, SystemClock
from queuectl.core.errors import DuplicateDedupeKey, DuplicateJobId, StoreUnavailable, WrongState
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
from queuectl.store.filewatch import FileWatch, open_file_watch
from queuectl.store.rows import (
    ATTEMPT_COLUMNS,
    DEDUPE_HELD,
    attempt_from_row,
    dedupe_held,
    exit_codes_to_column,
    first_repeated_key,
    job_from_row,
    outcome_class,
    pending_job,
    queue_infos,
    state_counts,
)

if TYPE_CHECKING:
    from queuectl.core.health import StoreFacts
    from queuectl.core.schedule import Schedule
    from queuectl.store.base import JobRecord, QueueSetting, StoreContents

SCHEMA_VERSION = 5  # the number of the newest file in migrations/sqlite
DELETE_BATCH = 500  # jobs deleted per write transaction
CANCELLED_WHILE_RUNNING = "cancelled while running"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before giving up
# SQLite's own busy handler polls on a fixed schedule, so waiters that started together
# keep colliding: it gets a short slice, then a randomised (jittered) pause of ours.
BUSY_WAIT_SLICE = 0.1  # seconds SQLite itself waits for a lock before we pause and retry
BUSY_PAUSE_FIRST = 0.002  # seconds; upper bound of the first jittered pause
BUSY_PAUSE_MAX = 0.1  # seconds; cap of the jittered pause
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes the WAL keeps on disk once a checkpoint resets it
CHECKPOINT_INTERVAL = 10.0  # seconds between two checkpoints by an idle worker
WAL_TRUNCATE_SIZE = 4 * 1024 * 1024  # bytes; a larger WAL is truncated, not only checkpointed
SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 8, 10, 13, 14
CHANGE_CHECK_INTERVAL = 0.005  # seconds between data_version checks of an idle worker
WATCHED_CHECK_INTERVAL = 0.1  # seconds between them when the WAL's writes wake it too
SETTLE_TIME = 1.0  # seconds of quick checks after a write to the WAL (an fsync may be slow)
SETTLE_CHECK_INTERVAL = 0.002  # seconds between those quick checks, until a commit shows

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
WORKER_COLUMNS = "id, host, pid, status, started_at, last_heartbeat, current_job_id, queues"

log = logging.getLogger("queuectl.store")
T = TypeVar("T")


class SqliteStore:
    """A SQLite file. `durable=False` skips the per-commit fsync (for worker bookkeeping,
    where a write lost to a power cut only re-runs a job, which at-least-once allows)."""

    supports_notify = False

    def __init__(self, path: Path, *, durable: bool = True, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._data_version: int | None = None
        self._checkpoint_at = 0.0  # monotonic time of the next idle checkpoint
        self._write_depth = 0  # > 0 inside a _write(): nested ones join it
        self._watch: FileWatch | None = None
        self._wal_watch_tried = False
        self._settle_until = 0.0  # until then, a write to the WAL may be a commit on its way
        try:
            _prepare_file(path)
            self.conn = sqlite3.connect(
                path, timeout=BUSY_WAIT_SLICE, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            # Without a limit a WAL that once grew (a long reader held back checkpoints)
            # keeps its size on disk forever; with it, the file shrinks once reset.
            self.conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        except OSError as exc:
            raise StoreUnavailable(f"cannot open the store at {path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise self._failure(exc, opening=True) from exc

    # -- plumbing ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (BEGIN IMMEDIATE), so a
        read-then-write never fails half-way with `database is locked`."""
        if self._write_depth:  # inside finish_and_claim: part of the outer transaction
            yield self.conn
            return
        try:
            self._retry_busy(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        try:
            self._write_depth += 1
            try:
                yield self.conn
            finally:
                self._write_depth -= 1
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            # A constraint is the caller's to explain (a duplicate id); any other driver
            # error (I/O, a file that is not a database, locked too long) means no store.
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise self._failure(exc) from exc
            raise

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            return self._retry_busy(lambda: self.conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _retry_busy(self, action: Callable[[], T]) -> T:
        """Run `action`, retrying while the database is locked by another process, with
        jittered pauses that grow to BUSY_PAUSE_MAX, until BUSY_TIMEOUT has passed."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = BUSY_PAUSE_FIRST
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if _error_code(exc) != SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(random.uniform(0.0, pause))  # noqa: S311 - jitter, not a secret
            pause = min(pause * 2, BUSY_PAUSE_MAX)

    def _failure(self, exc: sqlite3.Error, *, opening: bool = False) -> StoreUnavailable:
        """A driver error as one line a user can act on: read-only, full disk, busy."""
        return StoreUnavailable(describe_failure(self.path, exc, opening=opening))

    def migrate(self) -> None:
        try:
            (version,) = self._retry_busy(
                lambda: self.conn.execute("PRAGMA user_version").fetchone()
            )
            if version == SCHEMA_VERSION:
                return
            self._switch_to_wal()
        except sqlite3.Error as exc:
            raise self._failure(exc, opening=True) from exc
        from queuectl.store.migrate import migration_scripts, statements

        with self._write() as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"the store at {self.path} has schema version {version}, newer than this "
                    f"queuectl understands ({SCHEMA_VERSION}): upgrade queuectl"
                )
            for number, script in migration_scripts("sqlite"):
                if number > version:
                    for statement in statements(script):
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _switch_to_wal(self) -> None:
        """WAL mode, which lets readers and one writer work at once. The switch cannot wait
        on the busy timeout, and fails while another process creates the schema: retry."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                (mode,) = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                mode = None
            if mode == "wal":
                return
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (mode is {mode})")
            time.sleep(0.02)

    def close(self) -> None:
        self.conn.close()
        if self._watch is not None:
            self._watch.close()

    # -- jobs -------------------------------------------------------------------------

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
                _ts(job.scheduled_at),
                _ts(job.scheduled_at) if job.scheduled_at else now,
                job.cwd,
                json.dumps(job.env) if job.env is not None else None,
                exit_codes_to_column(job.retry_on_exit),
                exit_codes_to_column(job.fatal_on_exit),
                job.dedupe_key,
                json.dumps(job.depends_on) if job.depends_on else None,
            )
            for job in jobs
        ]
        insert = (
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, scheduled_at, run_at, cwd, env, retry_on_exit,"
            " fatal_on_exit, dedupe_key, depends_on, waiting_on)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                    added, inserted = [_new_job_row(job, now) for job in jobs], None
                if has_dependencies:
                    conn.executemany(
                        "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (?, ?)",
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
                result.append(_new_job_row(job, now))
                continue
            held = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE dedupe_key = ? AND {DEDUPE_HELD}",
                (job.dedupe_key,),
            ).fetchone()
            result.append(_job(held))
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

    def _waiting_counts(self, conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[int]:
        """Check the jobs' dependencies and count the unfinished ones, under the write lock."""
        outside = dependencies.outside_batch(jobs)
        stored: dict[str, str] = {}
        for start in range(0, len(outside), 500):
            chunk = outside[start : start + 500]
            marks = ",".join("?" * len(chunk))
            stored.update(conn.execute(f"SELECT id, state FROM jobs WHERE id IN ({marks})", chunk))
        return dependencies.waiting_counts(jobs, stored)

    def _release_dependents(self, conn: sqlite3.Connection, job_id: str, state: JobState) -> None:
        """After `job_id` ended in `state`: one wait fewer for each job that depends on it
        when it completed; when it ended dead or cancelled, those jobs (and, in turn, the
        jobs that wait for them) become dead, as they could never run."""
        if state is JobState.COMPLETED:
            conn.execute(
                "UPDATE jobs SET waiting_on = waiting_on - 1 WHERE waiting_on > 0 AND id IN"
                " (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?)",
                (job_id,),
            )
            return
        if state not in (JobState.DEAD, JobState.CANCELLED):
            return
        now = self._now()
        ended = [(job_id, state.value)]
        while ended:
            cause, how = ended.pop()
            rows = conn.execute(
                "UPDATE jobs SET state = 'dead', last_error = ?, updated_at = ?,"
                " locked_by = NULL, locked_at = NULL"
                " WHERE state IN ('pending', 'failed') AND id IN"
                " (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?) RETURNING id",
                (dependencies.dependency_error(cause, how), now, cause),
            ).fetchall()
            ended += [(row[0], JobState.DEAD.value) for row in rows]

    def _recount_waiting(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None:
        """Recount how many unfinished dependencies each of these jobs has (after a retry)."""
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            conn.execute(
                "UPDATE jobs SET waiting_on = (SELECT count(*) FROM job_dependencies AS d"
                " JOIN jobs AS dep ON dep.id = d.depends_on_id"
                " WHERE d.job_id = jobs.id AND dep.state != 'completed')"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += [r[0] for r in self._read(f"SELECT id FROM jobs WHERE id IN ({marks})", chunk)]
        return found

    def get_job(self, job_id: str) -> Job | None:
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(self, job_filter: JobFilter) -> list[Job]:
        clause, params = self._where(job_filter)
        if job_filter.limit > 0:
            sql = (
                f"SELECT * FROM (SELECT seq, {JOB_COLUMNS} FROM jobs {clause}"
                f" ORDER BY seq DESC LIMIT {int(job_filter.limit)}) ORDER BY seq"
            )
            return [_job(row[1:]) for row in self._read(sql, params)]
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY seq"
        return [_job(row) for row in self._read(sql, params)]

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
        rows = self._read(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ? ORDER BY seq", (job_id,)
        )
        return [attempt_from_row(row, _dt) for row in rows]

    def claim_job(self, worker_id: str, queues: Sequence[str] | None) -> Job | None:
        now = self._now()
        queue_clause, params = _queue_clause(queues)
        pick = (
            "SELECT seq FROM jobs INDEXED BY jobs_claimable"
            " WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND run_at <= ?"
            f"{queue_clause} AND queue NOT IN ({CLOSED_QUEUES})"
            " ORDER BY priority DESC, run_at, seq LIMIT 1"
        )
        # A lock-free look first: idle workers then never queue up for the write lock.
        if not self._read(pick, [now, *params]):
            return None
        with self._write() as conn:
            # The start is read once the write lock is held: taken before, it could fall
            # before the finish of a run this claim had to wait for (a queue limit).
            now = self._now()
            row = conn.execute(
                "UPDATE jobs SET state = 'processing', locked_by = ?, locked_at = ?,"
                " started_at = ?, finished_at = NULL, exit_code = NULL,"
                " attempts = attempts + 1, updated_at = ?"
                f" WHERE seq = ({pick}) RETURNING {JOB_COLUMNS}",
                [worker_id, now, now, now, now, *params],
            ).fetchone()
            if row is None:
                return None
            job = _job(row)
            conn.execute(
                "INSERT INTO attempts (job_id, attempt, worker_id, started_at) VALUES (?, ?, ?, ?)",
                (job.id, job.attempts, worker_id, now),
            )
            conn.execute("UPDATE workers SET current_job_id = ? WHERE id = ?", (job.id, worker_id))
        return job

    def finish_attempt(
        self, job: Job, worker_id: str, outcome: Outcome, record: AttemptRecord
    ) -> bool:
        now = self._now()
        run_at = now + outcome.retry_delay if outcome.retry_delay is not None else None
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = ?, run_at = coalesce(?, run_at), finished_at = ?,"
                " exit_code = ?, last_error = ?, output = coalesce(?, output),"
                " locked_by = NULL, locked_at = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'processing' AND locked_by = ? AND attempts = ?",
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
                "UPDATE attempts SET finished_at = ?, exit_code = ?, error = ?,"
                " output = coalesce(?, output), outcome = ?, signal = ?"
                " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL",
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
            conn.execute(
                "UPDATE workers SET current_job_id = NULL WHERE id = ? AND current_job_id = ?",
                (worker_id, job.id),
            )
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
        rows = self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND NOT EXISTS ("
            " SELECT 1 FROM workers WHERE workers.id = jobs.locked_by"
            " AND workers.status != 'stopped' AND workers.last_heartbeat >= ?)"
            " ORDER BY seq",
            (cutoff,),
        )
        return [_job(row) for row in rows]

    def requeue_dead(self, job_id: str) -> bool:
        return self.requeue_job(job_id, (JobState.DEAD,)) is not None

    def requeue_job(self, job_id: str, states: Sequence[JobState]) -> Job | None:
        now = self._now()
        marks = ",".join("?" * len(states))
        try:
            with self._write() as conn:
                edges = conn.execute(
                    "SELECT d.depends_on_id, dep.state FROM job_dependencies AS d"
                    " JOIN jobs AS dep ON dep.id = d.depends_on_id WHERE d.job_id = ?"
                    f" AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND state IN ({marks}))",
                    (job_id, job_id, *[state.value for state in states]),
                ).fetchall()
                dependencies.ended_dependency(job_id, edges)
                waiting = sum(state != JobState.COMPLETED.value for _, state in edges)
                row = conn.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?,"
                    " locked_by = NULL, locked_at = NULL, waiting_on = ?"
                    f" WHERE id = ? AND state IN ({marks}) RETURNING {JOB_COLUMNS}",
                    (now, now, waiting, job_id, *[state.value for state in states]),
                ).fetchone()
        except sqlite3.IntegrityError as exc:  # only the dedupe index can object
            raise self._key_taken(job_id) from exc
        return _job(row) if row else None

    def _key_taken(self, job_id: str) -> WrongState:
        """Why a job cannot go back to pending: another holds its dedupe key now."""
        rows = self._read(
            "SELECT held.dedupe_key, held.id, held.state FROM jobs AS mine"
            f" JOIN jobs AS held ON held.dedupe_key = mine.dedupe_key AND {dedupe_held('held')}"
            " WHERE mine.id = ? AND held.id != mine.id LIMIT 1",
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
        now = self._now()
        queue_clause, params = _queue_clause([queue] if queue else None)
        with self._write() as conn:
            # Jobs whose dedupe key is held stay dead, and of dead jobs sharing a key only
            # the newest comes back: the ids are chosen first, so none can collide.
            candidates = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM jobs AS dead WHERE state = 'dead'{queue_clause}"
                    " AND (dedupe_key IS NULL OR (NOT EXISTS (SELECT 1 FROM jobs AS held"
                    f"   WHERE held.dedupe_key = dead.dedupe_key AND {dedupe_held('held')})"
                    "  AND seq = (SELECT max(seq) FROM jobs AS twin"
                    "   WHERE twin.dedupe_key = dead.dedupe_key AND twin.state = 'dead'"
                    f"{' AND twin.queue = dead.queue' if queue else ''})))",
                    params,
                )
            ]
            # Jobs that wait for others: a dead one comes back only with its dependencies.
            edges = conn.execute(
                "SELECT d.job_id, d.depends_on_id, dep.state, dep.queue FROM jobs"
                " JOIN job_dependencies AS d ON d.job_id = jobs.id"
                " JOIN jobs AS dep ON dep.id = d.depends_on_id"
                f" WHERE jobs.state = 'dead'{queue_clause.replace('queue', 'jobs.queue')}",
                params,
            ).fetchall()
            # A dead dependency that stays dead (its key is held) blocks like a cancelled one.
            coming_back = set(candidates)
            edges = [
                (job, dep, "cancelled" if state == "dead" and dep not in coming_back else state, q)
                for job, dep, state, q in edges
            ]
            blocked = dependencies.blocked_by_ended(edges, queue)
            ids = [job_id for job_id in candidates if job_id not in blocked]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?"
                    f" WHERE id IN ({','.join('?' * len(chunk))})",
                    (now, now, *chunk),
                )
            self._recount_waiting(conn, sorted({edge[0] for edge in edges} & set(ids)))
            return len(ids)

    def cancel_job(self, job_id: str) -> Job | None:
        now = self._now()
        with self._write() as conn:
            row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            job = _job(row)
            if job.state not in (JobState.PENDING, JobState.FAILED, JobState.PROCESSING):
                return None
            running = job.state is JobState.PROCESSING
            conn.execute(
                "UPDATE jobs SET state = 'cancelled', updated_at = ?, locked_by = NULL,"
                " locked_at = NULL, finished_at = CASE WHEN ? THEN ? ELSE finished_at END,"
                " last_error = CASE WHEN ? THEN ? ELSE last_error END WHERE id = ?",
                (now, running, now, running, CANCELLED_WHILE_RUNNING, job_id),
            )
            if running:
                conn.execute(
                    "UPDATE attempts SET finished_at = ?, error = ?, outcome = ?"
                    " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL",
                    (now, CANCELLED_WHILE_RUNNING, AttemptOutcome.KILLED, job_id, job.attempts),
                )
                # Its worker's finish will be refused, so it would never clear this itself:
                # `status` would show the worker busy with a job that is over.
                conn.execute(
                    "UPDATE workers SET current_job_id = NULL WHERE id = ? AND current_job_id = ?",
                    (job.locked_by, job_id),
                )
            self._release_dependents(conn, job_id, JobState.CANCELLED)
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
        cutoff = self._now() - older_than
        marks = ",".join("?" * len(states))
        queue_clause, queue_params = _queue_clause([queue] if queue else None)
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

    def holds_claim(self, job: Job, worker_id: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM jobs WHERE id = ? AND state = 'processing' AND locked_by = ?"
                " AND attempts = ?",
                (job.id, worker_id, job.attempts),
            )
        )

    def save_output(self, job: Job, worker_id: str, output: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE attempts SET output = ? WHERE job_id = ? AND attempt = ?"
                " AND worker_id = ? AND finished_at IS NULL",
                (output, job.id, job.attempts, worker_id),
            )
            return cursor.rowcount == 1

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

    def list_queues(self) -> list[QueueInfo]:
        return queue_infos(
            self._read("SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"),
            self._read("SELECT name, paused, max_running FROM queues"),
        )

    def set_queue_paused(self, name: str, paused: bool) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO queues (name, paused) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                (name, paused),
            )

    def set_queue_limit(self, name: str, max_running: int | None) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO queues (name, max_running) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running",
                (name, max_running),
            )

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        rows = self._read(
            "SELECT CAST(finished_at / 60 AS INTEGER) AS minute, sum(error IS NULL),"
            " sum(error IS NOT NULL) FROM attempts WHERE finished_at >= ?"
            " GROUP BY minute ORDER BY minute",
            (self._now() - since,),
        )
        return [ThroughputBucket(_dt(minute * 60.0), ok, failed) for minute, ok, failed in rows]

    def seconds_until_next_job(self, queues: Sequence[str] | None) -> float | None:
        queue_clause, params = _queue_clause(queues)
        # Jobs of a paused or full queue are not claimable: counting them as due would make
        # an idle worker spin on claims that find nothing.
        rows = self._read(
            "SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed')"
            f" AND waiting_on = 0{queue_clause}"
            f" AND queue NOT IN ({CLOSED_QUEUES})",
            params,
        )
        if not rows or rows[0][0] is None:
            return None
        return max(0.0, float(rows[0][0]) - self._now())

    def wait_for_jobs(self, timeout: float) -> bool:
        """Check `PRAGMA data_version`, which moves when another connection commits, each
        time the write-ahead log is written to (inotify); where that cannot be watched,
        poll it: a read of shared memory, so checking often keeps pickup fast."""
        deadline = time.monotonic() + timeout
        self._checkpoint_if_idle()
        watch = self._wal_watch()  # before the first check: no commit falls in between
        if self._data_version is None:
            self._data_version = self._current_data_version()
        while True:
            version = self._current_data_version()
            if version != self._data_version:
                self._data_version = version
                self._settle_until = 0.0  # the commit showed: back to sleeping on the watch
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if watch is None:
                time.sleep(min(CHANGE_CHECK_INTERVAL, left))
            elif time.monotonic() < self._settle_until:
                # The log was written to, but a commit shows only after its fsync, in the
                # -shm index, which sends no event: look again shortly until it does.
                time.sleep(min(SETTLE_CHECK_INTERVAL, left))
            elif watch.wait(min(WATCHED_CHECK_INTERVAL, left)):
                self._settle_until = time.monotonic() + SETTLE_TIME

    def _wal_watch(self) -> FileWatch | None:
        """A watch on the -wal file, opened on the first wait (only idle workers wait)."""
        if not self._wal_watch_tried:
            self._wal_watch_tried = True
            wal = f"{self.path}-wal"
            if os.path.exists(wal):
                self._watch = open_file_watch(wal)
        return self._watch

    def _current_data_version(self) -> int:
        return int(self._read("PRAGMA data_version")[0][0])

    def _checkpoint_if_idle(self) -> None:
        """Copy the WAL back into the database while this worker has nothing to do, at
        most every CHECKPOINT_INTERVAL seconds; a WAL grown past WAL_TRUNCATE_SIZE is also
        truncated. It never waits for a lock (busy timeout 0): housekeeping must not hold
        up claims, and another idle worker will try again."""
        now = time.monotonic()
        if now < self._checkpoint_at:
            return
        self._checkpoint_at = now + CHECKPOINT_INTERVAL
        try:
            size = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        if size == 0:
            return
        mode = "TRUNCATE" if size > WAL_TRUNCATE_SIZE else "PASSIVE"
        try:
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_WAIT_SLICE * 1000)}")
        except sqlite3.Error as exc:
            log.debug("checkpoint of %s skipped: %s", self.path, exc)

    # -- workers ----------------------------------------------------------------------

    def register_worker(
        self, worker_id: str, host: str, pid: int, queues: Sequence[str] | None
    ) -> None:
        now = self._now()
        with self._write() as conn:
            # Keep the table small: forget workers that stopped more than a day ago.
            conn.execute(
                "DELETE FROM workers WHERE status = 'stopped' AND last_heartbeat < ?",
                (now - 86400,),
            )
            conn.execute(
                "INSERT INTO workers (id, host, pid, queues, status, started_at, last_heartbeat)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (worker_id, host, pid, ",".join(queues) if queues else None, now, now),
            )

    def heartbeat(
        self, worker_id: str, current_job_id: str | None, status: str = "running"
    ) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "UPDATE workers SET last_heartbeat = ?, status = ? WHERE id = ?"
                " RETURNING stop_requested",
                (self._now(), status, worker_id),
            ).fetchone()
        return bool(row[0]) if row else True

    def deregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE workers SET status = 'stopped', current_job_id = NULL,"
                " last_heartbeat = ? WHERE id = ?",
                (self._now(), worker_id),
            )

    def list_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(
            f"SELECT {WORKER_COLUMNS} FROM workers WHERE status != 'stopped'"
            " AND last_heartbeat >= ? ORDER BY started_at, id",
            (self._now() - lease_timeout,),
        )
        return [_worker(row) for row in rows]

    def get_worker(self, worker_id: str) -> WorkerInfo | None:
        rows = self._read(f"SELECT {WORKER_COLUMNS} FROM workers WHERE id = ?", (worker_id,))
        return _worker(rows[0]) if rows else None

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE workers SET stop_requested = 1 WHERE id = ?",
                [(worker_id,) for worker_id in worker_ids],
            )

    # -- config -----------------------------------------------------------------------

    def get_config(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM config"))

    def set_config(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO config (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- health (`queuectl doctor`) ---------------------------------------------------

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(
            f"SELECT {WORKER_COLUMNS} FROM workers WHERE status != 'stopped'"
            " AND last_heartbeat < ? ORDER BY last_heartbeat, id",
            (self._now() - lease_timeout,),
        )
        return [_worker(row) for row in rows]

    def inspect_storage(self) -> StoreFacts:
        """The schema version, the WAL's size and the modes of the store's files."""
        from queuectl.core.health import FileMode, StoreFacts

        (version,) = self._read("PRAGMA user_version")[0]
        files = []
        for path, is_dir in (
            (self.path.parent, True),
            (self.path, False),
            (Path(f"{self.path}-wal"), False),
            (Path(f"{self.path}-shm"), False),
        ):
            with suppress(FileNotFoundError):
                files.append(FileMode(str(path), path.stat().st_mode, is_dir))
        try:
            wal_bytes = Path(f"{self.path}-wal").stat().st_size
        except FileNotFoundError:
            wal_bytes = 0
        return StoreFacts(
            backend="sqlite",
            location=str(self.path),
            schema_version=int(version),
            current_schema_version=SCHEMA_VERSION,
            wal_bytes=wal_bytes,
            files=tuple(files),
        )

    # -- schedules and moving between stores (sqlite_transfer.py) -----------------------

    def insert_schedule(self, schedule: Schedule) -> None:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        sqlite_transfer.insert_schedule(self, schedule)

    def list_schedules(self, name: str | None = None) -> list[Schedule]:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.list_schedules(self, name)

    def delete_schedule(self, name: str) -> bool:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.delete_schedule(self, name)

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> bool:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.set_schedule_paused(self, name, paused, next_fire_at)

    def list_due_schedules(self) -> list[Schedule]:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.list_due_schedules(self)

    def fire_schedule(
        self, schedule: Schedule, jobs: Sequence[NewJob], next_fire_at: datetime
    ) -> bool:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.fire_schedule(self, schedule, jobs, next_fire_at)

    def iter_job_records(self, states: Sequence[JobState] = ()) -> Iterator[JobRecord]:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.iter_job_records(self, states)

    def list_queue_settings(self) -> list[QueueSetting]:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.list_queue_settings(self)

    def count_attempts(self) -> int:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.count_attempts(self)

    def insert_contents(self, contents: StoreContents, *, skip_existing: bool) -> tuple[int, int]:
        from queuectl.store import sqlite_transfer  # lazily: off the enqueue path

        return sqlite_transfer.insert_contents(self, contents, skip_existing=skip_existing)


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and the database file (0600) before SQLite opens it."""
    if not path.parent.exists():
        # exist_ok: several workers may create a new store at the same moment.
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path.parent, 0o700)
    if not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.fchmod(fd, 0o600)
        os.close(fd)


def describe_failure(path: Path, exc: sqlite3.Error, *, opening: bool = False) -> str:
    """One line that says why the store at `path` failed, and so what a user can do."""
    code = _error_code(exc)
    verb = "open" if opening else "write to"
    if code == SQLITE_FULL or (code in (SQLITE_IOERR, SQLITE_CANTOPEN) and _disk_full(path)):
        return (
            f"cannot {verb} the store at {path}: the disk is full ({exc}); "
            "this change was not saved: free some space and try again"
        )
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_IOERR):
        reason = _read_only_reason(path)
        if reason is not None:
            return f"cannot {verb} the store at {path}: {reason} ({exc})"
    if code == SQLITE_BUSY:
        return (
            f"the store at {path} is busy: another process has held its lock for more "
            f"than {BUSY_TIMEOUT:g}s ({exc})"
        )
    return f"{'cannot open the store at' if opening else 'store'} {path}: {exc}"


def _error_code(exc: sqlite3.Error) -> int | None:
    """The primary SQLite result code of `exc` (extended codes folded), if it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _read_only_reason(path: Path) -> str | None:
    """Why SQLite cannot write the store, if the file system says it cannot."""
    folder = path.parent
    with suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"it is on a read-only file system ({folder})"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK):
        # WAL mode keeps two files beside the database, created by the first process.
        return (
            f"its folder {folder} is read-only (SQLite needs to create {path.name}-wal"
            f" and {path.name}-shm there)"
        )
    return None


def _disk_full(path: Path) -> bool:
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024  # bytes: less than a few pages


def _queue_clause(queues: Sequence[str] | None) -> tuple[str, list[str]]:
    if not queues:
        return "", []
    return f" AND queue IN ({','.join('?' * len(queues))})", list(queues)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, _dt)


def _new_job_row(job: NewJob, now: float) -> Job:
    return pending_job(job, _dt(now))


def _worker(row: Sequence[Any]) -> WorkerInfo:
    queues = tuple(row[7].split(",")) if row[7] else None
    return WorkerInfo(row[0], row[1], row[2], row[3], _dt(row[4]), _dt(row[5]), row[6], queues)
