"""What the reliability tests look at from outside: processes by their job environment,
a supervisor's worker processes, a worker's resources, and the store's own integrity."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from tests import pgtools
from tests.conftest import Queuectl


def job_processes(prefix: str) -> dict[int, tuple[str, int]]:
    """Live processes started by a job run whose id begins with `prefix`: pid ->
    (job id, attempt), read from the environment each run gets (zombies have none)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError, ValueError):
            variables = dict(
                item.split(b"=", 1)
                for item in (entry / "environ").read_bytes().split(b"\0")
                if b"=" in item
            )
            job_id = variables.get(b"QUEUECTL_JOB_ID", b"").decode()
            attempt = variables.get(b"QUEUECTL_ATTEMPT")
            if job_id.startswith(prefix) and attempt and is_running(int(entry.name)):
                found[int(entry.name)] = (job_id, int(attempt))
    return found


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    return process_state(pid) not in (None, "Z", "X")


def process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2]


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux: /proc/PID/task/*/children)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def zombie_children(pid: int) -> list[int]:
    return [child for child in children(pid) if process_state(child) == "Z"]


def worker_pids(supervisor: subprocess.Popen[str]) -> list[int]:
    """The worker processes a `worker start` has forked (and not yet lost); not its guard."""
    return [
        pid
        for pid in children(supervisor.pid)
        if is_running(pid) and pid not in guard_pids(supervisor)
    ]


def guard_pids(supervisor: subprocess.Popen[str]) -> list[int]:
    """The guard process of a `worker start` (a list: none while it is being replaced)."""
    found = []
    for pid in children(supervisor.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"queuectl.worker.guard" in cmdline:
            found.append(pid)
    return found


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/PID/status in KiB (VmRSS now, VmHWM the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_workers_with(q: Queuectl, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`worker start ARGS` with extra environment variables; stopped at teardown."""
    saved = q.env
    q.env = dict(saved, **env)
    try:
        return q.start_workers(*args)
    finally:
        q.env = saved


def assert_sqlite_intact(q: Queuectl) -> None:
    """PRAGMA integrity_check says ok (a no-op for PostgreSQL, which checks itself)."""
    if q.target.startswith(("postgresql://", "postgres://")):
        return
    path = q.target.removeprefix("sqlite://")
    with contextlib.closing(sqlite3.connect(path)) as database:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def read_workers_table(q: Queuectl) -> dict[str, int]:
    """Every worker ever registered in the store, dead ones too: id -> pid."""
    if q.target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(pgtools.libpq_url(q.target), autocommit=True) as server:
            rows = server.execute("SELECT id, pid FROM queuectl.workers").fetchall()
    else:
        path = q.target.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as database:
            rows = database.execute("SELECT id, pid FROM workers").fetchall()
    return {str(worker_id): int(pid) for worker_id, pid in rows}


def peek_job(q: Queuectl, job_id: str) -> tuple[str, int]:
    """A job's (state, attempts) read straight from the store: unlike every command, this
    rescues nothing."""
    if q.target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(pgtools.libpq_url(q.target), autocommit=True) as server:
            row = server.execute(
                "SELECT state, attempts FROM queuectl.jobs WHERE id = %s", (job_id,)
            ).fetchone()
    else:
        path = q.target.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as database:
            row = database.execute(
                "SELECT state, attempts FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
    assert row is not None, f"no job {job_id!r}"
    return str(row[0]), int(row[1])


def processing_jobs(q: Queuectl) -> dict[str, str]:
    """Jobs in `processing`, id -> locked_by, read without rescuing anything."""
    query = "SELECT id, locked_by FROM {}jobs WHERE state = 'processing'"
    if q.target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(pgtools.libpq_url(q.target), autocommit=True) as server:
            rows = server.execute(query.format("queuectl.")).fetchall()
    else:
        path = q.target.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as database:
            rows = database.execute(query.format("")).fetchall()
    return {str(job_id): str(locked_by) for job_id, locked_by in rows}


def read_jobs(q: Queuectl) -> dict[str, dict[str, Any]]:
    """Every job's state, attempts and history (attempt, worker_id, error), read in two
    queries: thousands of `show` commands would take minutes."""
    jobs_query = "SELECT id, state, attempts FROM {}jobs"
    attempts_query = "SELECT job_id, attempt, worker_id, error FROM {}attempts ORDER BY seq"
    if q.target.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(pgtools.libpq_url(q.target), autocommit=True) as server:
            job_rows = server.execute(jobs_query.format("queuectl.")).fetchall()
            attempt_rows = server.execute(attempts_query.format("queuectl.")).fetchall()
    else:
        path = q.target.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path)) as database:
            job_rows = database.execute(jobs_query.format("")).fetchall()
            attempt_rows = database.execute(attempts_query.format("")).fetchall()
    jobs: dict[str, dict[str, Any]] = {
        job_id: {"state": state, "attempts": attempts, "history": []}
        for job_id, state, attempts in job_rows
    }
    for job_id, attempt, worker_id, error in attempt_rows:
        jobs[job_id]["history"].append({"attempt": attempt, "worker_id": worker_id, "error": error})
    return jobs
