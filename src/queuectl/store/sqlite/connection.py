"""The SQLite file: opening it (folder and file modes, pragmas, WAL mode), write transactions
that take the lock up front, retries while another process holds it, the schema, and driver
errors as one line a user can act on."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from queuectl.core.clock import Clock, SystemClock
from queuectl.core.errors import StoreUnavailable
from queuectl.store.migrate import latest_version

SCHEMA_VERSION = latest_version("sqlite")  # the number of the newest file in migrations/sqlite
BUSY_TIMEOUT = 30.0  # seconds a writer waits for the lock before giving up
# SQLite's own busy handler polls on a fixed schedule, so waiters that started together
# keep colliding: it gets a short slice, then a randomised (jittered) pause of ours.
BUSY_WAIT_SLICE = 0.1  # seconds SQLite itself waits for a lock before we pause and retry
BUSY_PAUSE_FIRST = 0.002  # seconds; upper bound of the first jittered pause
BUSY_PAUSE_MAX = 0.1  # seconds; cap of the jittered pause
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes the WAL keeps on disk once a checkpoint resets it
SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 8, 10, 13, 14

T = TypeVar("T")


class SqliteConnection:
    """The connection to one SQLite file and the plumbing every other part uses.
    `durable=False` skips the per-commit fsync (for worker bookkeeping, where a write lost
    to a power cut only re-runs a job, which at-least-once allows)."""

    supports_notify = False

    def __init__(self, path: Path, *, durable: bool = True, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._write_depth = 0  # > 0 inside a _write(): nested ones join it
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
