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
from functools import lru_cache
from typing import Any

import psycopg

from queuectl.store.postgres_url import APPLICATION_NAME, ConnectOptions, parse_url

__all__ = ["APPLICATION_NAME", "SCHEMA", "ConnectOptions", "connect_kwargs", "parse_url", "qualify"]

SCHEMA = "queuectl"  # every table lives here, clear of the application's own tables
TABLES = (
    "jobs",
    "attempts",
    "workers",
    "config",
    "queues",
    "schedules",
    "job_dependencies",
    "job_events",
    "queuectl_schema",
)
# A table named where a statement reads or writes it. Keywords are upper case in all of
# queuectl's SQL, which keeps this off string literals and off column names (workers has
# a column `queues`; extract(epoch FROM finished_at) names a column after FROM).
TABLE_REFERENCE = re.compile(rf"\b(FROM|JOIN|UPDATE|INTO|TABLE|COPY)\s+({'|'.join(TABLES)})\b")


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
