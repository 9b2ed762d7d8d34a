"""The verdicts of `queuectl doctor` on hand-made facts (core/health.py, issue 4)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest

from queuectl.core.health import (
    WAL_LIMIT,
    Check,
    FileMode,
    Status,
    check_dlq,
    check_permissions,
    check_wal,
    check_workers,
    has_problem,
)
from queuectl.core.models import WorkerInfo

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def worker(worker_id: str, heartbeat_age: float) -> WorkerInfo:
    beat = NOW - timedelta(seconds=heartbeat_age)
    return WorkerInfo(worker_id, "host", 1, "running", beat, beat, None, None)


def file(path: str, mode: int, *, is_dir: bool = False) -> FileMode:
    kind = stat.S_IFDIR if is_dir else stat.S_IFREG
    return FileMode(path, kind | mode, is_dir)


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ([file("/s", 0o700, is_dir=True), file("/s/q.db", 0o600)], Status.OK),
        ([file("/s/q.db", 0o640)], Status.FAIL),  # group can read the jobs
        ([file("/s/q.db", 0o604)], Status.FAIL),
        ([file("/s/q.db-wal", 0o620)], Status.FAIL),
        ([file("/s", 0o755, is_dir=True)], Status.WARN),  # others see names only
        ([file("/s", 0o730, is_dir=True)], Status.FAIL),  # group may replace files
        ([file("/tmp", 0o1777, is_dir=True)], Status.FAIL),  # sticky, still writable
    ],
)
def test_check_permissions_classifies_modes(files: list[FileMode], status: Status) -> None:
    assert check_permissions(files).status is status


def test_check_permissions_names_each_file_and_its_fix() -> None:
    found = check_permissions([file("/s/q.db", 0o666), file("/s", 0o777, is_dir=True)])
    assert found.items == ("/s/q.db", "/s")
    assert "readable and writable by group and others (mode 0666)" in found.reason
    assert "chmod 600 /s/q.db; chmod 700 /s" in found.reason


def test_check_dlq_fails_only_above_the_threshold() -> None:
    assert check_dlq(100, 100).status is Status.OK
    assert check_dlq(101, 100).status is Status.FAIL
    assert check_dlq(1, 0).status is Status.FAIL
    assert check_dlq(0, 0).reason == "0 dead jobs (threshold 0)"


def test_check_wal_fails_over_the_limit() -> None:
    assert check_wal(WAL_LIMIT).status is Status.OK
    over = check_wal(WAL_LIMIT + 1)
    assert over.status is Status.FAIL
    assert "64.0 MB" in over.reason


def test_check_workers_fails_on_recent_deaths_and_names_a_few() -> None:
    stale = [worker(f"worker-{n}", 60 + n) for n in range(5)]
    found = check_workers(2, stale, 30, NOW)
    assert found.status is Status.FAIL
    assert found.items == tuple(f"worker-{n}" for n in range(5))
    assert "worker-0 (host, pid 1, last heartbeat 1m ago)" in found.reason
    assert "and 2 more" in found.reason
    assert found.reason.endswith("; 2 active")


def test_check_workers_only_warns_of_deaths_older_than_a_day() -> None:
    found = check_workers(0, [worker("worker-old", 2 * 86400)], 30, NOW)
    assert found.status is Status.WARN
    assert not has_problem([found])


def test_has_problem_means_a_failed_check() -> None:
    assert has_problem([Check("a", Status.OK, "x"), Check("b", Status.FAIL, "y")])
    assert not has_problem([Check("a", Status.WARN, "x")])
