"""`queuectl doctor` end to end on both backends: a healthy store passes, planted problems
(a stuck job, a stale worker, a full DLQ, an open SQLite file) are named and exit 1 (issue 4)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import JobState, NewJob
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord, Store
from tests.conftest import Queuectl, assert_error
from tests.storetools import age_claim, age_worker

pytestmark = pytest.mark.in_process

STATUSES = {"ok", "warn", "fail"}


@contextmanager
def store_of(q: Queuectl) -> Iterator[Store]:
    store = open_store(q.target)
    try:
        yield store
    finally:
        store.close()


def plant_stuck_job(q: Queuectl, job_id: str, worker_id: str, *, heartbeat_age: float) -> None:
    """A job `processing` under a worker that then stopped beating `heartbeat_age` s ago."""
    with store_of(q) as store:
        store.insert_jobs([NewJob(id=job_id, command="sleep 1000", priority=1000)])
        store.register_worker(worker_id, socket.gethostname(), 999_999, None)
        claimed = store.claim_job(worker_id, None)
        assert claimed is not None
        assert claimed.id == job_id
    age_worker(q.target, worker_id, heartbeat_age)


def plant_dead_jobs(q: Queuectl, count: int) -> None:
    with store_of(q) as store:
        store.insert_jobs([NewJob(id=f"dead-{n}", command="false") for n in range(count)])
        for _ in range(count):
            job = store.claim_job("worker-planter", None)
            assert job is not None
            outcome = Outcome(JobState.DEAD, None, "exited with code 1")
            assert store.finish_attempt(job, "worker-planter", outcome, AttemptRecord(1, ""))


def doctor_json(q: Queuectl, *args: str) -> tuple[int, dict[str, Any]]:
    result = q.run("doctor", "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    return result.returncode, report


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def text_line(output: str, name: str) -> str:
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[1] == name:
            return line
    raise AssertionError(f"no {name!r} line in:\n{output}")


def test_doctor_on_a_healthy_store_exits_0(q: Queuectl) -> None:
    q.enqueue(id="fine", command="true")
    q.ok("worker", "start", "--burst")
    result = q.run("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[-1] == "No problems found."
    for line in lines[:-1]:
        assert line.split()[0] in STATUSES, line
        assert line.split()[0] != "fail", line
    for name in ("store", "workers", "stuck-jobs", "dlq"):
        assert text_line(result.stdout, name).startswith("ok "), result.stdout


def test_doctor_json_is_machine_readable(q: Queuectl) -> None:
    q.enqueue(id="fine", command="true")
    code, report = doctor_json(q)
    assert code == 0
    assert report["ok"] is True
    names = [check["name"] for check in report["checks"]]
    assert names[:4] == ["store", "workers", "stuck-jobs", "dlq"]
    for check in report["checks"]:
        assert set(check) == {"name", "status", "reason", "items"}
        assert check["status"] in STATUSES
        assert isinstance(check["reason"], str)
        assert check["reason"]
        assert isinstance(check["items"], list)
    store = checks_of(report)["store"]
    assert "schema version" in store["reason"]
    if q.target.startswith("postgresql://"):
        assert store["reason"].startswith("PostgreSQL 15")
        assert "wal" not in names
        assert "permissions" not in names
    else:
        assert names[4:] == ["wal", "permissions", "hooks"]


def test_doctor_reports_a_stuck_job_by_id(q: Queuectl) -> None:
    q.config("lease-timeout", "30")
    q.enqueue(id="innocent", command="true")
    plant_stuck_job(q, "stuck-1", "worker-dead", heartbeat_age=120)
    result = q.run("doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    line = text_line(result.stdout, "stuck-jobs")
    assert line.startswith("fail ")
    assert "stuck-1" in line
    assert "worker-dead" in line
    assert "innocent" not in line
    assert result.stdout.splitlines()[-1].endswith("found.")
    workers = text_line(result.stdout, "workers")
    assert workers.startswith("fail ")
    assert "worker-dead" in workers

    code, report = doctor_json(q)
    assert code == 1
    assert report["ok"] is False
    checks = checks_of(report)
    assert checks["stuck-jobs"]["status"] == "fail"
    assert checks["stuck-jobs"]["items"] == ["stuck-1"]
    assert checks["workers"]["items"] == ["worker-dead"]
    # doctor only looks; `show`, like a live worker, rescues the job.
    assert q.state("stuck-1") == "failed"
    assert checks_of(doctor_json(q)[1])["stuck-jobs"]["status"] == "ok"


def test_doctor_reports_a_job_held_by_no_registered_worker(q: Queuectl) -> None:
    with store_of(q) as store:
        store.insert_jobs([NewJob(id="orphan", command="true")])
        assert store.claim_job("worker-never-registered", None) is not None
    code, report = doctor_json(q)
    assert code == 1
    stuck = checks_of(report)["stuck-jobs"]
    assert stuck["items"] == ["orphan"]
    assert "worker-never-registered" in stuck["reason"]
    assert checks_of(report)["workers"]["status"] == "ok"


def test_doctor_leaves_a_job_of_a_live_worker_alone(q: Queuectl) -> None:
    plant_stuck_job(q, "running", "worker-alive", heartbeat_age=0)
    code, report = doctor_json(q)
    assert code == 0, report
    assert checks_of(report)["stuck-jobs"]["status"] == "ok"
    assert "1 active" in checks_of(report)["workers"]["reason"]


def test_doctor_reports_a_claim_its_live_worker_no_longer_runs(q: Queuectl) -> None:
    """A worker that could not record a result moves on to its next job, alive: no rescue
    takes the old job back from a live worker, so doctor is what notices it."""
    plant_stuck_job(q, "forgotten", "worker-busy", heartbeat_age=0)
    with store_of(q) as store:
        store.insert_jobs([NewJob(id="next", command="sleep 1000")])
        claimed = store.claim_job("worker-busy", None)
        assert claimed is not None
        assert claimed.id == "next"
    code, report = doctor_json(q)
    assert code == 0, report  # within the lease: its result may still be on the way
    age_claim(q.target, "forgotten", 120)
    code, report = doctor_json(q)
    assert code == 1, report
    stuck = checks_of(report)["stuck-jobs"]
    assert stuck["items"] == ["forgotten"]
    assert "worker-busy is alive but not running it" in stuck["reason"]
    assert checks_of(report)["workers"]["status"] == "ok"


def test_doctor_warns_only_of_workers_that_died_long_ago(q: Queuectl) -> None:
    with store_of(q) as store:
        store.register_worker("worker-ancient", "elsewhere", 4242, None)
    age_worker(q.target, "worker-ancient", 3 * 86400)
    code, report = doctor_json(q)
    assert code == 0, report
    workers = checks_of(report)["workers"]
    assert workers["status"] == "warn"
    assert workers["items"] == ["worker-ancient"]


def test_doctor_reports_a_dlq_over_its_threshold(q: Queuectl) -> None:
    plant_dead_jobs(q, 3)
    code, report = doctor_json(q)
    assert code == 0  # the default threshold is 100
    assert "3 dead jobs" in checks_of(report)["dlq"]["reason"]

    result = q.run("doctor", "--dlq-threshold", "2")
    assert result.returncode == 1
    line = text_line(result.stdout, "dlq")
    assert line.startswith("fail ")
    assert "3 dead jobs" in line
    assert "threshold of 2" in line
    assert q.run("doctor", "--dlq-threshold", "3").returncode == 0

    q.config("dlq-threshold", "1")
    code, report = doctor_json(q)
    assert code == 1
    assert checks_of(report)["dlq"]["status"] == "fail"


def test_doctor_refuses_a_negative_threshold(q: Queuectl) -> None:
    assert "dlq-threshold" in assert_error(q.run("doctor", "--dlq-threshold", "-1"), 2)


def test_doctor_reports_a_store_open_to_other_users(q_sqlite: Queuectl) -> None:
    q = q_sqlite
    q.enqueue(id="secret", command="echo $TOKEN")
    database = Path(q.target)
    os.chmod(database, 0o666)  # noqa: S103 - the misconfiguration under test
    result = q.run("doctor")
    assert result.returncode == 1, result.stdout
    line = text_line(result.stdout, "permissions")
    assert line.startswith("fail ")
    assert str(database) in line
    assert "0666" in line
    assert f"chmod 600 {database}" in line
    code, report = doctor_json(q)
    assert code == 1
    assert str(database) in checks_of(report)["permissions"]["items"]


def test_doctor_reports_a_folder_writable_by_others(q_sqlite: Queuectl) -> None:
    q = q_sqlite
    q.enqueue(command="true")
    folder = Path(q.target).parent
    os.chmod(folder, 0o777)  # noqa: S103 - the misconfiguration under test
    try:
        code, report = doctor_json(q)
    finally:
        os.chmod(folder, 0o700)
    assert code == 1
    assert checks_of(report)["permissions"]["items"] == [str(folder)]


def test_doctor_warns_of_a_folder_others_can_list(q_sqlite: Queuectl) -> None:
    q = q_sqlite
    q.enqueue(command="true")
    folder = Path(q.target).parent
    os.chmod(folder, 0o755)  # noqa: S103 - the misconfiguration under test
    code, report = doctor_json(q)
    assert code == 0
    assert checks_of(report)["permissions"]["status"] == "warn"


def test_store_files_are_private_from_the_start(q_sqlite: Queuectl) -> None:
    """What doctor checks is what queuectl creates: folder 0700 and file 0600 even under a
    permissive umask; SQLite gives its -wal and -shm files the database's mode."""
    import sqlite3

    q = q_sqlite
    database = Path(q.target)
    old_umask = os.umask(0)
    try:
        q.enqueue(id="a", command="true")
        reader = sqlite3.connect(database)  # keeps the -wal and -shm files in place
        try:
            reader.execute("SELECT count(*) FROM jobs").fetchone()
            modes = {
                path.name: path.stat().st_mode & 0o777
                for path in database.parent.iterdir()
                if path.name.startswith(database.name)
            }
            code, report = doctor_json(q)
        finally:
            reader.close()
    finally:
        os.umask(old_umask)
    assert set(modes) == {database.name, f"{database.name}-wal", f"{database.name}-shm"}
    assert set(modes.values()) == {0o600}, modes
    assert database.parent.stat().st_mode & 0o777 == 0o700
    assert code == 0, report
    assert checks_of(report)["permissions"]["status"] == "ok"


def test_doctor_reports_an_oversized_wal(q_sqlite: Queuectl) -> None:
    q = q_sqlite
    q.enqueue(command="true")
    code, report = doctor_json(q)
    assert code == 0
    assert checks_of(report)["wal"]["status"] == "ok"
    # A WAL that checkpoints could not shrink, as a long-lived reader would leave it.
    import sqlite3

    keep = sqlite3.connect(q.target)
    try:
        keep.execute("PRAGMA wal_autocheckpoint = 0")
        keep.execute("CREATE TABLE ballast (data BLOB)")
        for _ in range(70):
            keep.execute("INSERT INTO ballast VALUES (zeroblob(1024 * 1024))")
        keep.commit()
        assert Path(f"{q.target}-wal").stat().st_size > 64 * 1024 * 1024
        code, report = doctor_json(q)
    finally:
        keep.execute("DROP TABLE ballast")
        keep.commit()
        keep.close()
    assert code == 1
    assert checks_of(report)["wal"]["status"] == "fail"
    assert "MB" in checks_of(report)["wal"]["reason"]


def test_doctor_does_not_create_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "queuectl.db"
    q = Queuectl(str(missing), tmp_path / "home", in_process=True)
    code, report = doctor_json(q)
    assert code == 1
    assert report["ok"] is False
    assert report["checks"] == [
        {"name": "store", "status": "fail", "reason": f"no store at {missing}", "items": []}
    ]
    assert not missing.parent.exists()


def test_doctor_reports_an_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    q = Queuectl(f"postgresql://nobody@127.0.0.1:{port}/none", tmp_path / "home", in_process=True)
    result = q.run("doctor")
    assert result.returncode == 1
    assert text_line(result.stdout, "store").startswith("fail ")
    assert "cannot connect" in result.stdout


def test_doctor_reports_a_database_without_queuectl(tmp_path: Path) -> None:
    from tests import pgtools

    with pgtools.fresh_database(migrated=False) as url:
        q = Queuectl(url, tmp_path / "home", in_process=True)
        code, report = doctor_json(q)
    assert code == 1
    assert "no queuectl schema" in report["checks"][0]["reason"]
