"""The PostgreSQL backend, one module per concern; PostgresStore (store.py) puts them
together. psycopg is an optional dependency: without it, opening a PostgreSQL store says
how to install it."""

from __future__ import annotations

from queuectl.core.errors import MissingDependency

try:
    import psycopg  # noqa: F401 - imported here only to fail early with a clear message
except ImportError as exc:  # SQLite users never need it
    raise MissingDependency(
        "PostgreSQL support needs psycopg: pip install 'queuectl[postgres]'"
    ) from exc

from queuectl.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
