"""How PostgresStore connects so that nothing depends on session state: the store URL's
own options, schema-qualified table names, and psycopg's connection settings.

A transaction-pooling PgBouncer hands each transaction to whichever server connection is
free, so anything a session sets (`SET search_path`, LISTEN, prepared statements) may be
gone, or be another client's, at the next transaction. Table names are therefore
qualified with the schema in every statement, and a URL that says `pool_mode=transaction`
also turns off prepared statements and LISTEN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg

from queuectl.core.errors import UsageError

SCHEMA = "queuectl"  # every table lives here, clear of the application's own tables
APPLICATION_NAME = "queuectl"  # how doctor tells queuectl's connections from others
POOL_MODE = "pool_mode"  # the URL parameter queuectl reads and libpq never sees
POOL_MODES = ("session", "transaction")
TABLES = (
    "jobs",
    "attempts",
    "workers",
    "config",
    "queues",
    "schedules",
    "job_dependencies",
    "queuectl_schema",
)
# A table named where a statement reads or writes it. Keywords are upper case in all of
# queuectl's SQL, which keeps this off string literals and off column names (workers has
# a column `queues`; extract(epoch FROM finished_at) names a column after FROM).
TABLE_REFERENCE = re.compile(rf"\b(FROM|JOIN|UPDATE|INTO|TABLE|COPY)\s+({'|'.join(TABLES)})\b")


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """The store URL split into what libpq gets and what queuectl does with the rest."""

    conninfo: str  # the URL without queuectl's own parameters
    transaction_pooling: bool  # True: no LISTEN, no prepared statements, no session SETs
    has_application_name: bool  # the URL names the application itself


def parse_url(url: str) -> ConnectOptions:
    """Read and strip `pool_mode`; refuse a value queuectl does not know (bad usage)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    modes = [value for key, value in params if key == POOL_MODE]
    for mode in modes:
        if mode not in POOL_MODES:
            raise UsageError(
                f"invalid {POOL_MODE}={mode!r} in the store URL: use session or transaction"
            )
    kept = [(key, value) for key, value in params if key != POOL_MODE]
    conninfo = parts._replace(query=urlencode(kept)).geturl() if modes else url
    return ConnectOptions(
        conninfo=conninfo,
        transaction_pooling="transaction" in modes,
        has_application_name=any(key == "application_name" for key, _ in kept),
    )


def connect_kwargs(options: ConnectOptions) -> dict[str, Any]:
    """psycopg.connect's keyword arguments besides autocommit and timeouts."""
    kwargs: dict[str, Any] = {"cursor_factory": QualifiedCursor}
    if not options.has_application_name:
        kwargs["application_name"] = APPLICATION_NAME
    if options.transaction_pooling:
        # A statement prepared on one server connection is unknown on the next.
        kwargs["prepare_threshold"] = None
    return kwargs


@lru_cache(maxsize=512)
def qualify(sql: str) -> str:
    """`sql` with every queuectl table named with its schema, so that it needs no
    search_path. Cached: the store sends the same few statements over and over."""
    return TABLE_REFERENCE.sub(rf"\1 {SCHEMA}.\2", sql)


class QualifiedCursor(psycopg.Cursor[tuple[Any, ...]]):
    """A cursor that qualifies the table names of the SQL text it is given."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> QualifiedCursor:
        if isinstance(query, str):
            query = qualify(query)
        super().execute(query, params, **kwargs)
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        if isinstance(query, str):
            query = qualify(query)
        super().executemany(query, params_seq, **kwargs)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[psycopg.Copy]:
        if isinstance(statement, str):
            statement = qualify(statement)
        with super().copy(statement, params, **kwargs) as copy:
            yield copy
