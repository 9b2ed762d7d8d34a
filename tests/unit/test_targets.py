"""Which backend a store target names (SPEC 1): URLs and libpq key=value strings are
PostgreSQL; anything else is a SQLite file."""

from __future__ import annotations

import pytest

from queuectl.store import is_postgres


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://u@h/db",
        "postgres://u:p@h:5432/db?sslmode=require",
        "host=db1 dbname=jobs user=q password=secret",
        " dbname=jobs",
        "service=queue",
    ],
)
def test_postgres_targets(target: str) -> None:
    assert is_postgres(target)


@pytest.mark.parametrize(
    "target",
    ["/var/lib/q.db", "q.db", "sqlite:///tmp/q.db", "./a=b.db", "notes=1.db"],
)
def test_sqlite_targets(target: str) -> None:
    assert not is_postgres(target)
