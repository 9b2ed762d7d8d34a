"""How PostgresStore connects so that nothing depends on session state: the store URL's
own options, schema-qualified table names, and psycopg's connection settings.

A transaction-pooling PgBouncer hands each transaction to whichever server connection is
free, so anything a session sets (`SET search_path`, LISTEN, prepared statements) may be
gone, or be another client's, at the next transaction. Table names are therefore
qualified with the schema in every statement, and a URL that says `pool_mode=transaction`
also turns off prepared statements and LISTEN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from queuectl.store.postgres.statements import SCHEMA, qualify
from queuectl.store.postgres_url import APPLICATION_NAME, ConnectOptions, parse_url

__all__ = ["APPLICATION_NAME", "SCHEMA", "ConnectOptions", "connect_kwargs", "parse_url", "qualify"]


def connect_kwargs(options: ConnectOptions) -> dict[str, Any]:
    """psycopg.connect's keyword arguments besides autocommit and timeouts."""
    kwargs: dict[str, Any] = {"cursor_factory": QualifiedCursor}
    if not options.has_application_name:
        kwargs["application_name"] = APPLICATION_NAME
    if options.transaction_pooling:
        # A statement prepared on one server connection is unknown on the next.
        kwargs["prepare_threshold"] = None
    return kwargs


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
