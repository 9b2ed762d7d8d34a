"""psycopg2 connections for the lean paths: `enqueue` (store/postgres_enqueue.py), `status`
and `show` (reads.py). psycopg 3, which PostgresStore needs for workers and the dashboard
(notifications, pipeline mode), takes 150-300 ms to import; psycopg2 on the same libpq
about 40 ms. A lean path declines (None) whenever it cannot be sure to do what the full
path does: then PostgresStore does the whole command, with the same rules and messages.

No session state, no prepared statements: this works through a transaction-pooling
PgBouncer, like PostgresStore."""

from __future__ import annotations

from queuectl.store.migrate import latest_version
from queuectl.store.postgres_url import APPLICATION_NAME, parse_url

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from psycopg2.extensions import connection, cursor

CONNECT_TIMEOUT = 10  # seconds, as PostgresStore waits, unless the URL says otherwise
# The schema version and the config table in one round trip.
SCHEMA_AND_CONFIG = (
    "SELECT (SELECT max(version) FROM queuectl.queuectl_schema),"
    " array(SELECT ARRAY[key, value] FROM queuectl.config)"
)


def connect(url: str) -> connection | None:
    """An autocommit psycopg2 connection to the store at `url`; None without psycopg2 or
    when the server does not answer (the full path then words the error)."""
    try:
        import psycopg2
    except ImportError:
        return None
    options = parse_url(url)
    settings: dict[str, Any] = {}
    if "connect_timeout" not in url:
        settings["connect_timeout"] = CONNECT_TIMEOUT
    if not options.has_application_name:
        settings["application_name"] = APPLICATION_NAME
    try:
        conn: connection = psycopg2.connect(options.conninfo, **settings)
    except psycopg2.Error:
        return None
    conn.autocommit = True  # each statement its own transaction, unless one is begun
    return conn


def current_config(cur: cursor) -> list[tuple[str, str]] | None:
    """The config rows of a store whose schema is this release's; None for any other
    (an empty database, an older or newer schema): the full path migrates or refuses."""
    cur.execute(SCHEMA_AND_CONFIG)
    row = cur.fetchone()
    assert row is not None
    version, stored = row
    if version != latest_version("postgres"):
        return None
    return [(key, value) for key, value in stored]
