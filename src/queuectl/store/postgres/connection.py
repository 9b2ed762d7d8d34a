"""The PostgreSQL connection: its options (store URL, PgBouncer's transaction pooling),
transactions, reconnects after a lost server, the schema, and driver errors as one line
without the password. No statement relies on session state (session.py): table names are
schema-qualified as they are sent, so a transaction-pooling PgBouncer can sit in between."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeAlias

import psycopg
from psycopg import errors as pg_errors

from queuectl.core.errors import StoreUnavailable
from queuectl.core.redact import redact
from queuectl.store.migrate import latest_version
from queuectl.store.postgres import session
from queuectl.store.postgres.rows import utc

log = logging.getLogger("queuectl.store")

Connection: TypeAlias = "psycopg.Connection[tuple[Any, ...]]"
Cursor: TypeAlias = "psycopg.Cursor[tuple[Any, ...]]"

SCHEMA_VERSION = latest_version("postgres")  # the newest file in migrations/postgres
MIGRATION_LOCK = 0x71756575  # pg_advisory_xact_lock key ("queu"): one migrator at a time
SCHEMA = session.SCHEMA  # every table lives here, named with it in every statement
CHANNEL = "queuectl_jobs"  # NOTIFY channel: a job may have become claimable
# Wake idle workers (delivered at commit): a job may have become claimable.
NOTIFY = "SELECT pg_notify(%s, '')"
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise (libpq default: forever)
RECONNECT_FIRST = 0.1  # seconds before the second try to reopen a lost main connection
RECONNECT_MAX = 5.0  # seconds; cap of the main connection's reconnect backoff


class PostgresConnection:
    """The main connection and the plumbing every other part uses. `durable=False` turns
    off the wait for the WAL flush per commit (worker bookkeeping; losing the last writes
    to a server crash only re-runs a job, which at-least-once allows)."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.durable = durable
        self._closed = False
        self.options = session.parse_url(url)
        # Behind a transaction pooler no notification reaches a listener: poll instead.
        self.supports_notify = not self.options.transaction_pooling
        self.conn = self._connect()
        # The queues that have a limit, as claims last read them; a limit set through
        # this store makes them read again at once.
        self._limits: list[str] = []
        self._rated: set[str] = set()  # those of them with a rate limit
        self._limits_read_at = float("-inf")
        self._reconnect_failures = 0
        self._reconnect_at = 0.0  # monotonic time before which no reconnect is tried
        # Set when the main connection was reopened: a claim whose reply the old one lost
        # may have committed, leaving a job held by this worker that it never ran.
        self._may_hold_lost_claim = False

    def _connect(self) -> Connection:
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.url:
            options["connect_timeout"] = CONNECT_TIMEOUT
        try:
            conn: Connection = psycopg.connect(
                self.options.conninfo, **options, **session.connect_kwargs(self.options)
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
        return utc(self._read("SELECT now()")[0][0])

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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one(cursor: Cursor) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None
    return row
