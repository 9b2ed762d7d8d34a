"""PostgreSQL under faults: connections killed under the workers, a server restart.

The shared server's connections are killed with pg_terminate_backend; a restart is done
only on a private throwaway cluster started here, never on the shared server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from queuectl.core.errors import StoreUnavailable
from tests import pgtools
from tests.conftest import Queuectl, parse_time, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WORKERS_APP = "queuectl-faults-worker"  # application_name of the workers' connections
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def with_application_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return parts._replace(query=f"{query}application_name={name}").geturl()


def enqueue_lines(q: Queuectl, jobs: list[dict[str, Any]]) -> list[str]:
    return q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs)).split()


def pickup_delays(jobs: list[dict[str, Any]]) -> list[float]:
    return [
        (parse_time(job["started_at"]) - parse_time(job["created_at"])).total_seconds()
        for job in jobs
    ]


def assert_each_ran_once(q: Queuectl, expected: dict[str, str]) -> list[dict[str, Any]]:
    """Every job completed on its first attempt, with the output its command prints."""
    jobs = {job["id"]: job for job in q.jobs()}
    assert sorted(jobs) == sorted(expected)
    for job_id, output in expected.items():
        job = jobs[job_id]
        assert (job["state"], job["attempts"], job["output"]) == ("completed", 1, output), job
    return list(jobs.values())


class Killer(threading.Thread):
    """Every `every` seconds, run `which`: a query that terminates some backends."""

    def __init__(self, database: str, which: str, every: float) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.which = which
        self.every = every
        self.killed = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(pgtools.DEFAULT_SERVER, autocommit=True) as admin:
            while not self.done.wait(self.every):
                row = admin.execute(self.which, (self.database, WORKERS_APP)).fetchone()
                self.killed += int(row[0]) if row else 0


def count_listeners(database: str) -> int:
    import psycopg

    with psycopg.connect(pgtools.DEFAULT_SERVER, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = %s AND query LIKE 'LISTEN%%'",
            (database, WORKERS_APP),
        ).fetchone()
    return int(row[0]) if row else 0


# The workers' connections of one database (the killer's own excluded), to terminate.
EVERY_CONNECTION = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()"
)
LISTENERS = EVERY_CONNECTION + " AND query LIKE 'LISTEN%%'"


@pytest.mark.parametrize("which", [LISTENERS, EVERY_CONNECTION], ids=["listeners", "all"])
def test_connections_killed_every_two_seconds_lose_and_strand_nothing(
    tmp_path: Path, which: str
) -> None:
    with pgtools.fresh_database() as url:
        database = urlsplit(url).path.lstrip("/")
        feeder = Queuectl(url, tmp_path / "home")
        workers = Queuectl(with_application_name(url, WORKERS_APP), tmp_path / "home")
        try:
            proc = workers.start_workers("--count", "2")
            wait_until(lambda: count_listeners(database) == 2, timeout=30, message="listeners")
            killer = Killer(database, which, every=2.0)
            killer.start()
            expected: dict[str, str] = {}
            started = time.monotonic()
            batch = 0
            while time.monotonic() - started < 12:
                jobs = [{"id": f"job-{batch}-{n}", "command": f"echo {batch}-{n}"} for n in (0, 1)]
                for job_id in enqueue_lines(feeder, jobs):
                    expected[job_id] = f"{job_id.removeprefix('job-')}\n"
                batch += 1
                time.sleep(0.2)
            killer.done.set()
            killer.join(timeout=10)
            wait_until(
                lambda: feeder.json("status")["jobs"]["completed"] == len(expected),
                timeout=60,
                interval=0.5,
                message="every job to complete",
            )
            jobs = assert_each_ran_once(feeder, expected)
            assert killer.killed >= 5, killer.killed
            # Pickup went on throughout: no job waited more than a poll interval or so,
            # even while its worker had no listener.
            delays = pickup_delays(jobs)
            assert max(delays) < 3.0, (max(delays), statistics.median(delays))
            assert proc.poll() is None, "the workers must survive lost connections"
            wait_until(lambda: count_listeners(database) == 2, timeout=30, message="relisten")
            assert len(feeder.active_workers()) == 2
        finally:
            workers.stop_all()


# -- a server restart, on a private cluster ---------------------------------------------


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    as_user: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            **self.as_user,
        )

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.root),
        }

    def restart(self) -> None:
        self.pg_ctl("-l", str(self.root / "log"), "-w", "-t", "30", "-m", "fast", "restart")


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL 15 cluster in a temporary folder, on a free port."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN} for a private cluster")
    account = pgtools._server_account()
    root = Path(tempfile.mkdtemp(prefix="queuectl-restart-"))
    as_user: dict[str, Any] = {}
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    cluster = Cluster(PG_BIN, root, pgtools._free_port(), as_user)
    try:
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            cwd=root, env=cluster.env(), capture_output=True, check=True, timeout=120, **as_user,
        )  # fmt: skip
        options = (
            f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off"
        )
        cluster.pg_ctl("-l", str(root / "log"), "-w", "-t", "30", "-o", options, "start")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_server_restart_with_jobs_in_flight_completes_every_job_once(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        q = Queuectl(cluster.url, tmp_path / "home")
        try:
            expected: dict[str, str] = {}
            first = [{"id": f"slow-{n}", "command": f"sleep 1.5; echo slow-{n}"} for n in range(6)]
            for job_id in enqueue_lines(q, first):
                expected[job_id] = f"{job_id}\n"
            proc = q.start_workers("--count", "3")
            wait_until(
                lambda: q.json("status")["jobs"]["processing"] == 3,
                timeout=30,
                message="three jobs running",
            )
            cluster.restart()  # while three jobs run and three wait
            restarted_at = time.time()
            second = [{"id": f"after-{n}", "command": f"echo after-{n}"} for n in range(3)]
            for job_id in enqueue_lines(q, second):
                expected[job_id] = f"{job_id}\n"
            wait_until(
                lambda: q.json("status")["jobs"]["processing"] >= 1,
                timeout=30,
                message="work to go on",
            )
            cluster.restart()  # again, with jobs in flight
            wait_until(
                lambda: q.json("status")["jobs"]["completed"] == len(expected),
                timeout=90,
                interval=0.5,
                message="every job to complete",
            )
            jobs = assert_each_ran_once(q, expected)
            for job in jobs:
                assert len(q.history(job["id"])) == 1, job["id"]
            after = [job for job in jobs if job["id"].startswith("after-")]
            assert all(
                parse_time(job["started_at"]).timestamp() >= restarted_at - 1 for job in after
            )
            assert proc.poll() is None, "the workers must outlive the restarts"
            assert len(q.active_workers()) == 3
            # Pickup after the restarts is immediate again (the listeners are back).
            started = time.monotonic()
            job_id = q.enqueue(command="echo late")
            q.wait_for_state(job_id, "completed", timeout=30)
            assert time.monotonic() - started < 10
        finally:
            q.stop_all()


def test_claim_whose_reply_was_lost_is_handed_back_after_reconnecting() -> None:
    """A claim can commit just as the connection breaks: the worker never learns of it.
    After reconnecting, its next claim returns that job instead of leaving it
    `processing` under the worker's live heartbeat forever."""
    import psycopg

    from queuectl.core.models import NewJob
    from queuectl.store.postgres import PostgresStore

    with pgtools.fresh_database() as url:
        store = PostgresStore(url)
        try:
            store.register_worker("w1", "host", 1, None)
            store.insert_jobs(
                [NewJob(id="first", command="true"), NewJob(id="second", command="true")]
            )
            lost = store.claim_job("w1", None)  # as if its reply never came back
            assert lost is not None
            backend = store.conn.info.backend_pid
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            with pytest.raises(StoreUnavailable):
                store.claim_job("w1", None)  # the broken connection fails once
            handed_back = store.claim_job("w1", None)
            assert handed_back is not None
            assert (handed_back.id, handed_back.attempts) == (lost.id, 1)
            assert store.get_job("second").state.value == "pending"  # type: ignore[union-attr]
            # Once handed back, claims are ordinary again.
            following = store.claim_job("w1", None)
            assert following is not None
            assert following.id == "second"
        finally:
            store.close()
