"""The tests' PostgreSQL databases are reused: a test must still get what a new database
would give it, and nothing an earlier test left behind."""

from __future__ import annotations

import psycopg
import pytest

from queuectl.core.models import NewJob
from queuectl.store.postgres import PostgresStore
from tests import pgtools

pytestmark = pytest.mark.postgres


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'queuectl'"
        ).fetchall()
    return {name for (name,) in rows}


def _number(url: str, query: str) -> int:
    """The one number `query` selects in the database at `url`."""
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else -1


def _job_count(url: str) -> int:
    return _number(url, "SELECT count(*) FROM queuectl.jobs")


def test_the_next_test_gets_no_rows_of_an_earlier_one() -> None:
    with pgtools.fresh_database() as url:
        store = PostgresStore(url)
        store.insert_jobs([NewJob(id="left-behind", command="true")])
        store.close()
    with pgtools.fresh_database() as url:
        assert _job_count(url) == 0


def test_the_next_test_gets_no_schema_an_earlier_one_changed() -> None:
    with pgtools.fresh_database() as url:
        migrated = _tables(url)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE queuectl.extra (n int)")
    with pgtools.fresh_database() as url, pgtools.fresh_database() as other:
        assert _tables(url) == _tables(other) == migrated


def test_a_process_left_connected_cannot_reach_the_next_test() -> None:
    with pgtools.fresh_database() as url:
        left = psycopg.connect(url, autocommit=True)
    with pytest.raises(psycopg.OperationalError):
        left.execute("SELECT 1")  # its session was ended
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(url, connect_timeout=pgtools.CONNECT_TIMEOUT)  # and the name is gone


def test_an_unmigrated_database_is_empty() -> None:
    with pgtools.fresh_database(migrated=False) as url:
        assert _tables(url) == set()


def _next_job_number(url: str) -> int:
    return _number(url, "SELECT nextval('queuectl.jobs_seq_seq')")


def test_the_next_test_counts_from_where_a_new_database_does() -> None:
    with pgtools.fresh_database() as url:
        first = _next_job_number(url)
        for _ in range(5):
            _next_job_number(url)
    with pgtools.fresh_database() as url:
        assert _next_job_number(url) == first


SCHEMA_CHANGES = [
    "CREATE TABLE queuectl.extra (n int)",
    "ALTER TABLE queuectl.jobs ADD COLUMN extra int",
    "ALTER TABLE queuectl.jobs ALTER COLUMN priority SET DEFAULT 7",
    "DROP INDEX queuectl.jobs_state",
    "ALTER TABLE queuectl.config DROP CONSTRAINT config_pkey",
    "GRANT SELECT ON queuectl.jobs TO PUBLIC",
    "CREATE FUNCTION queuectl.extra() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DELETE FROM queuectl.queuectl_schema",
]


# What leaves the schema as it was: the database is kept.
HARMLESS = [
    None,
    "INSERT INTO queuectl.config (key, value) VALUES ('max-retries', '9')",
    "CREATE TEMPORARY TABLE scratch (n int)",  # its session's schema stays in the catalog
]


@pytest.mark.parametrize(
    ("change", "kept"),
    [(change, True) for change in HARMLESS] + [(change, False) for change in SCHEMA_CHANGES],
)
def test_a_database_is_kept_for_the_next_test_only_if_its_schema_is_unchanged(
    change: str | None, kept: bool
) -> None:
    session = pgtools._get_session()
    with pgtools.fresh_database() as url:
        ready_meanwhile = list(session.ready)
        if change is not None:
            with psycopg.connect(url) as conn:
                conn.execute(change)
    added = [name for name in session.ready if name not in ready_meanwhile]
    assert len(added) == (1 if kept else 0)
