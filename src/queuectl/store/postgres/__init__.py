"""The PostgreSQL backend, one module per concern; PostgresStore (store.py) puts them
together. psycopg is an optional dependency: without it, opening a PostgreSQL store says
how to install it.

Importing the package imports no driver: `status` and `show` read through psycopg2 where
they can (reads.py), and psycopg 3 alone takes 150-300 ms to import. PostgresStore loads
psycopg on first use."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from queuectl.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]


def __getattr__(name: str) -> object:
    """PostgresStore, imported on first use, or MissingDependency saying how to get psycopg."""
    if name != "PostgresStore":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from queuectl.core.errors import MissingDependency

    try:
        import psycopg  # noqa: F401 - imported here only to fail early with a clear message
    except ImportError as exc:  # SQLite users never need it
        raise MissingDependency(
            "PostgreSQL support needs psycopg: pip install 'queuectl[postgres]'"
        ) from exc
    from queuectl.store.postgres.store import PostgresStore

    return PostgresStore
