"""queuectl behind a PgBouncer in transaction pooling mode (issue 15): no session state,
no notifications, and the workers and `doctor` say how idle workers learn of new jobs.

The lifecycle, `worker stop` across hosts and the chaos test run through the pooler too:
they are parametrised with it in test_workers.py, test_multihost.py and test_chaos.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from queuectl.core.models import NewJob
from queuectl.store import open_store
from queuectl.store.postgres import PostgresStore
from queuectl.store.postgres import listener as postgres_listen
from tests import pgtools
from tests.conftest import Queuectl, wait_until
from tests.pgbouncer import PgBouncer, pooled_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.in_process]

POLLING = "idle workers poll every poll-interval"


def test_idle_worker_behind_the_pooler_polls_and_says_so_once(
    pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    with pooled_database(pgbouncer) as url:
        q = Queuectl(url, tmp_path / "home")
        try:
            q.config("poll-interval", "0.5")
            proc = q.start_workers()
            wait_until(q.active_workers, timeout=20, message="the worker to register")
            time.sleep(1.5)  # idle for a few polls before the job comes
            job_id = q.enqueue(command="echo polled")
            job = q.wait_for_state(job_id, "completed", timeout=20)
            assert job["output"] == "polled\n"
            q.signal_group(proc, 15)
            code, err = q.finish(proc)
            assert code == 0, err
            said = [line for line in err.splitlines() if POLLING in line]
            assert len(said) == 1, err
            assert "pool_mode=transaction" in said[0]
        finally:
            q.stop_all()


def test_a_store_finds_that_notifications_do_not_arrive_through_the_pooler(
    pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(postgres_listen, "PROBE_TIMEOUT", 0.5)
    with pooled_database(pgbouncer) as url:
        unmarked = url.replace("?pool_mode=transaction", "")  # the pooler, not said so
        store = PostgresStore(unmarked)
        other = open_store(url)
        try:
            with caplog.at_level(logging.WARNING, logger="queuectl.store"):
                deadline = time.monotonic() + 10
                while store._listener.available and time.monotonic() < deadline:
                    store.wait_for_jobs(0.2)
                assert not store._listener.available
                # From now on a wait is a poll: it sleeps its time, and a new job does not
                # cut it short (a worker then claims at its next poll).
                other.insert_jobs([NewJob("after", "true")])
                started = time.monotonic()
                assert store.wait_for_jobs(0.3) is False
                assert time.monotonic() - started >= 0.25
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, warnings
            assert "do not arrive" in warnings[0]
            assert "pool_mode=transaction" in warnings[0]
        finally:
            store.close()
            other.close()


def test_a_direct_store_keeps_listening(caplog: pytest.LogCaptureFixture) -> None:
    with pgtools.fresh_database() as url:
        store, other = PostgresStore(url), open_store(url)
        try:
            with caplog.at_level(logging.WARNING, logger="queuectl.store"):
                assert store.notifications_arrive(5.0) is True
                other.insert_jobs([NewJob("job", "true")])
                assert store.wait_for_jobs(5.0) is True
            assert caplog.records == []
        finally:
            store.close()
            other.close()


def test_concurrent_first_starts_migrate_once_through_the_pooler(pgbouncer: PgBouncer) -> None:
    with pgtools.fresh_database(migrated=False) as direct:
        url = pgbouncer.pooled(direct)
        errors: list[BaseException] = []

        def start() -> None:
            try:
                open_store(url).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        store = open_store(url)
        try:
            store.insert_jobs([NewJob("job", "true")])
            assert store.get_job("job") is not None
        finally:
            store.close()


def test_bulk_enqueue_with_dependencies_and_keys_through_the_pooler(
    pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    with pooled_database(pgbouncer) as url:
        q = Queuectl(url, tmp_path / "home")
        lines = [
            {"id": "a", "command": "true", "dedupe_key": "k"},
            {"id": "b", "command": "true", "depends_on": ["a"]},
            *({"command": "true"} for _ in range(500)),
        ]
        text = "".join(json.dumps(line) + "\n" for line in lines)
        ids = q.ok("enqueue", "-", input=text).split()
        assert len(ids) == 502
        assert ids[:2] == ["a", "b"]
        assert q.job("b")["depends_on"] == ["a"]


@pytest.mark.parametrize("route", ["direct", "pgbouncer"])
def test_doctor_says_how_idle_workers_learn_of_jobs_and_counts_connections(
    route: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with pgtools.fresh_database() as direct:
        url = direct
        if route == "pgbouncer":
            url = request.getfixturevalue("pgbouncer").pooled(direct)
        q = Queuectl(url, tmp_path / "home")
        q.config("poll-interval", "2")
        report = json.loads(q.ok("doctor", "--json"))
        checks = {check["name"]: check for check in report["checks"]}
        notifications = checks["notifications"]
        assert notifications["status"] == "ok"
        if route == "pgbouncer":
            assert notifications["reason"].startswith("off (pool_mode=transaction)")
            assert "poll every 2s" in notifications["reason"]
        else:
            assert notifications["reason"].startswith("LISTEN/NOTIFY")
        connections = checks["connections"]["reason"]
        assert "queuectl holds " in connections
        assert " of max_connections " in connections
