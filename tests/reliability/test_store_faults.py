"""SQLite under faults: lock contention, a growing WAL, a read-only store, a full disk.

Each fault must give one clear `error:` line (exit 1) or be waited out, and never lose a
job whose enqueue was acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl.core.errors import StoreUnavailable
from queuectl.core.lifecycle import Outcome
from queuectl.core.models import JobState, NewJob
from queuectl.store import sqlite_enqueue
from queuectl.store.base import AttemptRecord, JobFilter
from queuectl.store.sqlite import SqliteStore
from queuectl.store.sqlite import connection as sqlite_connection
from queuectl.store.sqlite import wakeup as sqlite_wakeup
from tests.conftest import Queuectl, assert_error, wait_until

pytestmark = pytest.mark.in_process

MIB = 1024 * 1024  # bytes


def open_sqlite(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    store.migrate()
    return store


def wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def write_lock_held(path: Path, seconds: float) -> Iterator[threading.Thread]:
    """Another connection holds the write lock for `seconds`, as a long writer would."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        yield release
    finally:
        release.join()
        holder.close()


def bloat_wal(path: Path, megabytes: int) -> None:
    """Grow the WAL past `megabytes` while a reader pins an old snapshot, so that no
    automatic checkpoint can reset it; the reader is gone when this returns."""
    reader = sqlite3.connect(path, isolation_level=None)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jobs").fetchall()
        writer.execute("CREATE TABLE IF NOT EXISTS ballast (data BLOB)")
        while wal_size(path) < megabytes * MIB:
            writer.execute("INSERT INTO ballast VALUES (zeroblob(256 * 1024))")
        writer.execute("DROP TABLE ballast")
        reader.execute("COMMIT")
    finally:
        reader.close()
        writer.close()


# -- busy: the lock is waited out, with a clear error only past the deadline -----------


def test_write_waits_out_a_lock_held_longer_than_sqlites_own_wait(tmp_path: Path) -> None:
    path = tmp_path / "queuectl.db"
    store = open_sqlite(path)
    started = time.monotonic()
    with write_lock_held(path, 1.0):
        store.insert_jobs([NewJob(id="after-the-lock", command="true")])
    assert time.monotonic() - started >= 0.9
    assert store.get_job("after-the-lock") is not None
    store.close()


def test_many_writers_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    """Six connections enqueue, claim and finish as fast as they can: every call lands."""
    path = tmp_path / "queuectl.db"
    open_sqlite(path).close()
    errors: list[BaseException] = []
    finished: list[str] = []

    def churn(number: int) -> None:
        store = SqliteStore(path, durable=False)
        try:
            for step in range(40):
                store.insert_jobs([NewJob(id=f"w{number}-{step}", command="true")])
                job = store.claim_job(f"worker-{number}", None)
                if job is not None:
                    outcome = Outcome(JobState.COMPLETED, None, None)
                    assert store.finish_attempt(
                        job, f"worker-{number}", outcome, AttemptRecord(0, "")
                    )
                    finished.append(job.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=churn, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    store = open_sqlite(path)
    counts = store.count_jobs_by_state()
    assert sum(counts.values()) == 240
    assert counts[JobState.COMPLETED] == len(finished) == len(set(finished))
    assert counts[JobState.PROCESSING] == 0
    store.close()


def test_lock_held_past_the_deadline_is_one_clear_error(
    q_sqlite: Queuectl, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from queuectl.cli import main

    q_sqlite.enqueue(id="before", command="true")
    path = Path(q_sqlite.target)
    monkeypatch.setattr(sqlite_connection, "BUSY_TIMEOUT", 0.3)
    monkeypatch.setattr(sqlite_enqueue, "BUSY_TIMEOUT", 0.3)  # the lean enqueue path's wait
    with write_lock_held(path, 1.5):
        code = main(["--db", str(path), "enqueue", '{"id": "during", "command": "true"}'])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: the store at {path} is busy: another process")
    assert [job["id"] for job in q_sqlite.jobs()] == ["before"]


# -- the WAL stays bounded ---------------------------------------------------------------


@pytest.mark.slow
def test_idle_worker_truncates_a_grown_wal(q_sqlite: Queuectl) -> None:
    path = Path(q_sqlite.target)
    job_id = q_sqlite.enqueue(command="true")
    proc = q_sqlite.start_workers()
    q_sqlite.wait_for_state(job_id, "completed")
    bloat_wal(path, 6)
    assert wal_size(path) > sqlite_wakeup.WAL_TRUNCATE_SIZE
    # Idle workers checkpoint at most every CHECKPOINT_INTERVAL seconds.
    wait_until(
        lambda: wal_size(path) < MIB,
        timeout=sqlite_wakeup.CHECKPOINT_INTERVAL * 2 + 10,
        message="the idle worker to truncate the WAL",
    )
    assert q_sqlite.state(job_id) == "completed"
    proc.terminate()


def test_wal_file_shrinks_to_the_size_limit_once_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "JOURNAL_SIZE_LIMIT", MIB)
    path = tmp_path / "queuectl.db"
    store = open_sqlite(path)
    bloat_wal(path, 5)
    assert wal_size(path) > 4 * MIB
    # The next commits checkpoint the WAL (the reader is gone) and then start it over.
    for number in range(3):
        store.insert_jobs([NewJob(id=f"after-{number}", command="true")])
        store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert wal_size(path) <= MIB
    assert len(store.list_jobs(JobFilter(limit=0))) == 3
    store.close()


def test_idle_checkpoints_are_rate_limited(tmp_path: Path) -> None:
    path = tmp_path / "queuectl.db"
    store = open_sqlite(path)
    bloat_wal(path, 5)
    store.wait_for_jobs(0.01)
    assert wal_size(path) == 0
    bloat_wal(path, 5)
    store.wait_for_jobs(0.01)  # within CHECKPOINT_INTERVAL of the first: no checkpoint
    assert wal_size(path) > 4 * MIB
    store.close()


# -- a read-only store -----------------------------------------------------------------


def run_mount(*args: str) -> bool:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return result.returncode == 0


@contextlib.contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """`folder` seen read-only at `view` (a read-only bind mount), or a skip that says why."""
    view.mkdir()
    if shutil.which("mount") is None or not run_mount("--bind", str(folder), str(view)):
        pytest.skip("a read-only bind mount needs `mount` and the right to use it")
    try:
        if not run_mount("-o", "remount,bind,ro", str(view)):
            pytest.skip("this system refuses to remount a bind mount read-only")
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def make_read_only(path: Path) -> Iterator[None]:
    """`path` (a file or folder) unwritable even for root: immutable (chattr +i), else a
    chmod for other users; a skip only when neither can be had."""
    if (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode
        == 0
    ):
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        return
    if os.geteuid() == 0:
        pytest.skip(
            "running as root and this file system has no chattr +i: cannot make a "
            "file read-only for root"
        )
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        path.chmod(mode)


def enqueue_two(q: Queuectl) -> list[str]:
    return [q.enqueue(id="kept-1", command="echo one"), q.enqueue(id="kept-2", command="echo two")]


def test_read_only_file_system_is_one_clear_error_and_loses_nothing(
    q_sqlite: Queuectl, tmp_path: Path
) -> None:
    kept = enqueue_two(q_sqlite)
    folder = Path(q_sqlite.target).parent
    with read_only_view(folder, tmp_path / "read-only") as view:
        seen = Queuectl(str(view / "queuectl.db"), tmp_path / "home")
        for args in (("enqueue", '{"command": "true"}'), ("add", "--", "true"), ("list",)):
            message = assert_error(seen.run(*args), 1)
            assert "read-only file system" in message, message
    assert [job["id"] for job in q_sqlite.jobs()] == kept
    assert q_sqlite.enqueue(id="writable-again", command="true") == "writable-again"


def test_read_only_store_file_refuses_writes_clearly(q_sqlite: Queuectl) -> None:
    kept = enqueue_two(q_sqlite)
    path = Path(q_sqlite.target)
    with contextlib.contextmanager(make_read_only)(path):
        message = assert_error(q_sqlite.run("enqueue", '{"command": "true"}'), 1)
        assert message.startswith(f"cannot write to the store at {path}: the file is read-only")
        # Reading still works: the store is intact, only unwritable.
        assert [job["id"] for job in q_sqlite.jobs()] == kept
    assert q_sqlite.enqueue(id="writable-again", command="true") == "writable-again"


def test_read_only_store_folder_is_one_clear_error(q_sqlite: Queuectl) -> None:
    kept = enqueue_two(q_sqlite)
    path = Path(q_sqlite.target)
    assert not Path(f"{path}-wal").exists()  # no process has it open: SQLite must create it
    with contextlib.contextmanager(make_read_only)(path.parent):
        message = assert_error(q_sqlite.run("enqueue", '{"command": "true"}'), 1)
        assert f"its folder {path.parent} is read-only" in message, message
    assert [job["id"] for job in q_sqlite.jobs()] == kept


# -- a full disk -----------------------------------------------------------------------


@contextlib.contextmanager
def tiny_file_system(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    if shutil.which("mount") is None or not run_mount(
        "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)
    ):
        pytest.skip(
            "a tiny tmpfs needs `mount` and the right to use it "
            "(test_full_database_* simulates a full disk without it)"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system holding `folder` to the last byte."""
    filler = folder / f"filler-{uuid.uuid4().hex}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_full_disk_is_one_clear_error_and_a_running_job_is_recorded_once_freed(
    tmp_path: Path,
) -> None:
    disk = tiny_file_system(tmp_path / "disk", "4m")
    with disk as folder:
        q = Queuectl(str(folder / "queuectl.db"), tmp_path / "home")
        try:
            kept = enqueue_two(q)
            gate = tmp_path / "gate"
            q.enqueue(id="running", command=f"while [ ! -e {gate} ]; do sleep 0.05; done; echo ran")
            q.start_workers()
            wait_until(lambda: q.state("running") == "processing", timeout=30, message="a claim")
            q.ok("queue", "pause", "default")  # the kept jobs wait; only `running` runs
            filler = fill(folder)
            message = assert_error(q.run("enqueue", '{"command": "echo too much"}'), 1)
            assert "the disk is full" in message, message
            assert "this change was not saved" in message
            gate.touch()  # the run ends now; its result cannot be written yet
            time.sleep(1.5)
            assert q.state("running") == "processing"
            filler.unlink()
            job = q.wait_for_state("running", "completed", timeout=30)
            assert (job["attempts"], job["output"]) == (1, "ran\n")
            assert [job["id"] for job in q.jobs()] == [*kept, "running"]
            assert all(job["state"] == "pending" for job in q.jobs("--state", "pending"))
            assert q.enqueue(id="space-again", command="true") == "space-again"
        finally:
            q.stop_all()


def test_full_database_refuses_the_write_and_keeps_what_it_had(tmp_path: Path) -> None:
    """A full disk simulated without mounting: the store may not grow by one page."""
    path = tmp_path / "queuectl.db"
    store = open_sqlite(path)
    store.insert_jobs([NewJob(id="kept", command="true")])
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (pages,) = store.conn.execute("PRAGMA page_count").fetchone()
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailable, match="the disk is full") as raised:
        store.insert_jobs([NewJob(id=f"big-{n}", command="x" * 100_000) for n in range(3)])
    assert "\n" not in raised.value.message
    store.close()
    store = open_sqlite(path)
    assert [job.id for job in store.list_jobs(JobFilter(limit=0))] == ["kept"]
    store.close()
