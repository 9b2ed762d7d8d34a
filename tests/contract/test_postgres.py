"""PostgresStore specifics the shared contract cannot express: reconnects, errors, imports."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from queuectl.core.errors import MissingDependency, StoreUnavailable
from queuectl.core.models import NewJob
from queuectl.store import open_store
from queuectl.store.base import JobFilter
from queuectl.store.postgres import PostgresStore
from tests import pgtools

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pgtools.fresh_database() as url:
        yield url


def _drop_other_connections(url: str) -> None:
    """What a server restart or a failover does to every client connection."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_wait_for_jobs_recovers_a_lost_listener(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, other = open_store(pg_url), open_store(pg_url)
    try:
        # The first wait starts listening and says True: a job inserted before LISTEN took
        # effect notified nobody, so the worker looks once.
        assert store.wait_for_jobs(0.01) is True
        assert store.wait_for_jobs(0.01) is False
        _drop_other_connections(pg_url)
        with caplog.at_level(logging.INFO, logger="queuectl.store"):
            # The loss is noticed without an exception; the reconnect then says True, as
            # wakeups sent meanwhile are gone and the worker must look for itself.
            assert [store.wait_for_jobs(0.5) for _ in range(2)] == [False, True]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "listener" in warnings[0].getMessage()
        with contextlib.suppress(StoreUnavailable):  # its connection was dropped too
            other.get_job("x")
        other.insert_jobs([NewJob("after", "true")])
        assert store.wait_for_jobs(5.0) is True
    finally:
        store.close()
        other.close()


def test_store_reconnects_after_the_server_drops_the_connection(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.insert_jobs([NewJob("job", "true")])
        _drop_other_connections(pg_url)
        with pytest.raises(StoreUnavailable) as raised:
            store.get_job("job")
        assert "\n" not in raised.value.message
        job = store.get_job("job")
        assert job is not None
        assert job.id == "job"
    finally:
        store.close()


def test_the_notification_probe_answers_as_soon_as_its_notification_arrives(
    pg_url: str,
) -> None:
    """What `doctor` waits on: its probe, not the probe's whole timeout."""
    store = PostgresStore(pg_url)
    try:
        started = time.monotonic()
        assert store.notifications_arrive(30.0) is True
        assert time.monotonic() - started < 15.0
    finally:
        store.close()


def test_wait_for_jobs_without_a_server_sleeps_and_warns_once(
    caplog: pytest.LogCaptureFixture, pg_url: str
) -> None:
    store = PostgresStore(pg_url)
    # The listener's server is gone (and the log names it without its password).
    store.url = "postgresql://postgres@127.0.0.1:1/none?password=s3cret"
    try:
        with caplog.at_level(logging.WARNING, logger="queuectl.store"):
            results = [store.wait_for_jobs(0.05) for _ in range(5)]
        assert results == [False] * 5
        assert len(caplog.records) == 1
        assert "postgresql://postgres@127.0.0.1:1/none?password=***" in caplog.text
        assert "s3cret" not in caplog.text
    finally:
        store.close()


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        (
            "postgresql://someone:s3cret@127.0.0.1:1/queue",
            "postgresql://someone:***@127.0.0.1:1/queue",
        ),
        ("postgresql://someone@127.0.0.1:1/queue?password=s3cret", "queue?password=***"),
        ("postgresql://127.0.0.1:1/queue?user=someone&password=s3cret", "&password=***"),
    ],
)
def test_open_store_unreachable_server_is_one_line_without_password(
    target: str, shown: str
) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        open_store(target)
    message = raised.value.message
    assert "s3cret" not in message
    assert "\n" not in message
    assert shown in message


def test_open_store_without_psycopg_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what a missing package looks like
    monkeypatch.delitem(sys.modules, "queuectl.store.postgres")
    with pytest.raises(MissingDependency, match=r"pip install 'queuectl\[postgres\]'"):
        open_store("postgresql://someone@127.0.0.1:1/queue")


def test_migrate_refuses_a_newer_schema(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO queuectl.queuectl_schema (version) VALUES (99)")
    with pytest.raises(StoreUnavailable, match="upgrade queuectl"):
        open_store(pg_url)


def test_durable_false_skips_the_wait_for_the_wal_flush(pg_url: str) -> None:
    store = PostgresStore(pg_url, durable=False)
    try:
        setting = store.conn.execute("SHOW synchronous_commit").fetchone()
        assert setting == ("off",)
        store.insert_jobs([NewJob("job", "true")])
        assert len(store.list_jobs(JobFilter())) == 1
    finally:
        store.close()
