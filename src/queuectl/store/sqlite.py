"""SqliteStore: the embedded default, one file in WAL mode shared by every local process."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from queuectl.core.clock import Clock, SystemClock
from queuectl.core.errors import DuplicateJobId, StoreUnavailable
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import Attempt, Job, JobState, NewJob, WorkerInfo
from queuectl.store.base import (
    AttemptOutput,
    AttemptRecord,
    JobFilter,
    QueueInfo,
    ThroughputBucket,
)
from queuectl.store.filewatch import FileWatch, open_file_watch
from queuectl.store.rows import attempt_from_row, job_from_row, queue_infos, state_counts

SCHEMA_VERSION = 2  # the number of the newest file in migrations/sqlite
DELETE_BATCH = 500  # jobs deleted per write transaction
CANCELLED_WHILE_RUNNING = "cancelled while running"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before giving up
CHANGE_CHECK_INTERVAL = 0.005  # seconds between data_version checks of an idle worker
WATCHED_CHECK_INTERVAL = 0.1  # seconds between them when the WAL's writes wake it too
SETTLE_TIME = 1.0  # seconds of quick checks after a write to the WAL (an fsync may be slow)
SETTLE_CHECK_INTERVAL = 0.002  # seconds between those quick checks, until a commit shows

JOB_COLUMNS = (
    "id, command, state, queue, priority, attempts, max_retries, timeout, created_at,"
    " updated_at, scheduled_at, run_at, started_at, finished_at, exit_code, last_error,"
    " output, locked_by, locked_at, cwd, env"
)
# A queue is closed to claims while paused or while it runs as many jobs as its limit.
CLOSED_QUEUES = (
    "SELECT name FROM queues WHERE paused OR (max_running IS NOT NULL AND max_running <="
    " (SELECT count(*) FROM jobs AS running"
    "  WHERE running.state = 'processing' AND running.queue = queues.name))"
)
WORKER_COLUMNS = "id, host, pid, status, started_at, last_heartbeat, current_job_id, queues"


class SqliteStore:
    """A SQLite file. `durable=False` skips the per-commit fsync (for worker bookkeeping,
    where a write lost to a power cut only re-runs a job, which at-least-once allows)."""

    supports_notify = False

    def __init__(self, path: Path, *, durable: bool = True, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._data_version: int | None = None
        self._write_depth = 0  # > 0 inside a _write(): nested ones join it
        self._watch: FileWatch | None = None
        self._wal_watch_tried = False
        self._settle_until = 0.0  # until then, a write to the WAL may be a commit on its way
        try:
            _prepare_file(path)
            self.conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the store at {path}: {exc}") from exc

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
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"store {self.path}: {exc}") from exc
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
                raise StoreUnavailable(f"store {self.path}: {exc}") from exc
            raise

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"store {self.path}: {exc}") from exc

    def migrate(self) -> None:
        try:
            (version,) = self.conn.execute("PRAGMA user_version").fetchone()
            if version == SCHEMA_VERSION:
                return
            self._switch_to_wal()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the store at {self.path}: {exc}") from exc
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

    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
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
            )
            for job in jobs
        ]
        try:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
                    " created_at, updated_at, scheduled_at, run_at, cwd, env)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.IntegrityError as exc:
            existing = self._existing_ids([job.id for job in jobs])
            which = f"job id {existing[0]!r}" if existing else "a job id"
            raise DuplicateJobId(f"{which} already exists") from exc
        return [_new_job_row(job, now) for job in jobs]

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
            "SELECT job_id, attempt, worker_id, started_at, finished_at, exit_code, error"
            " FROM attempts WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
        return [attempt_from_row(row, _dt) for row in rows]

    def claim_job(self, worker_id: str, queues: Sequence[str] | None) -> Job | None:
        now = self._now()
        queue_clause, params = _queue_clause(queues)
        pick = (
            "SELECT seq FROM jobs INDEXED BY jobs_claimable"
            " WHERE state IN ('pending', 'failed') AND run_at <= ?"
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
                " output = coalesce(?, output)"
                " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL",
                (now, record.exit_code, outcome.last_error, record.output, job.id, job.attempts),
            )
            conn.execute(
                "UPDATE workers SET current_job_id = NULL WHERE id = ? AND current_job_id = ?",
                (worker_id, job.id),
            )
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
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?,"
                f" locked_by = NULL, locked_at = NULL WHERE id = ? AND state IN ({marks})"
                f" RETURNING {JOB_COLUMNS}",
                (now, now, job_id, *[state.value for state in states]),
            ).fetchone()
        return _job(row) if row else None

    def requeue_all_dead(self, queue: str | None) -> int:
        now = self._now()
        queue_clause, params = _queue_clause([queue] if queue else None)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?"
                f" WHERE state = 'dead'{queue_clause}",
                (now, now, *params),
            )
            return cursor.rowcount

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
                    "UPDATE attempts SET finished_at = ?, error = ?"
                    " WHERE job_id = ? AND attempt = ? AND finished_at IS NULL",
                    (now, CANCELLED_WHILE_RUNNING, job_id, job.attempts),
                )
                # Its worker's finish will be refused, so it would never clear this itself:
                # `status` would show the worker busy with a job that is over.
                conn.execute(
                    "UPDATE workers SET current_job_id = NULL WHERE id = ? AND current_job_id = ?",
                    (job.locked_by, job_id),
                )
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
            f"SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed'){queue_clause}"
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
        return [
            WorkerInfo(
                row[0],
                row[1],
                row[2],
                row[3],
                _dt(row[4]),
                _dt(row[5]),
                row[6],
                tuple(row[7].split(",")) if row[7] else None,
            )
            for row in rows
        ]

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
    created = _dt(now)
    return Job(
        id=job.id,
        command=job.command,
        state=JobState.PENDING,
        queue=job.queue,
        priority=job.priority,
        attempts=0,
        max_retries=job.max_retries,
        timeout=job.timeout,
        created_at=created,
        updated_at=created,
        scheduled_at=job.scheduled_at,
        run_at=job.scheduled_at or created,
        started_at=None,
        finished_at=None,
        exit_code=None,
        last_error=None,
        output="",
        locked_by=None,
        locked_at=None,
        cwd=job.cwd,
        env=job.env,
    )
