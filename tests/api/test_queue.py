"""queuectl.Queue on both backends: what a program sees when it adds, reads, changes and
waits for jobs, and the errors it gets."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import queuectl
from queuectl import (
    DependencyEnded,
    DuplicateDedupeKey,
    DuplicateJobId,
    InvalidJobSpec,
    JobNotFound,
    JobState,
    Queue,
    QueuectlError,
    StoreUnavailable,
    UnknownDependency,
    UsageError,
    WaitTimedOut,
    WrongState,
)
from tests.conftest import Queuectl

LATER = timedelta(hours=1)  # scheduled this far ahead, a job stays pending in any test


def test_enqueue_stores_every_option(queue: Queue) -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    job = queue.enqueue(
        "make report",
        id="report-1",
        queue="reports",
        priority=7,
        max_retries=1,
        timeout=timedelta(minutes=2),
        scheduled_at=at,
        cwd=Path("/tmp"),
        env={"MONTH": "12"},
        retry_on_exit=(75, 11),
        fatal_on_exit=[2],
        dedupe_key="report:12",
    )
    assert job.state is JobState.PENDING
    assert (job.id, job.command, job.queue, job.priority) == (
        "report-1",
        "make report",
        "reports",
        7,
    )
    assert (job.max_retries, job.timeout, job.scheduled_at, job.run_at) == (1, 120.0, at, at)
    assert (job.cwd, job.env, job.dedupe_key) == ("/tmp", {"MONTH": "12"}, "report:12")
    assert (job.retry_on_exit, job.fatal_on_exit) == ((11, 75), (2,))
    assert queue.get("report-1") == job


def test_enqueue_takes_an_iso_time_and_uses_the_configured_defaults(queue: Queue) -> None:
    job = queue.enqueue("true", scheduled_at="2030-01-02T03:04:05Z")
    assert job.scheduled_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (job.queue, job.priority, job.max_retries, job.timeout) == ("default", 0, 3, 300.0)
    assert len(job.id) > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": "high"}, "priority must be an integer"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"queue": "no spaces"}, "invalid queue"),
        ({"timeout": float("nan")}, "timeout:"),
        ({"env": {"A": object()}}, "env:"),
        ({"retry_on_exit": [1], "fatal_on_exit": [1]}, "in both retry_on_exit and fatal_on_exit"),
        ({"id": "has space"}, "invalid id"),
    ],
)
def test_bad_options_are_refused_as_the_command_line_refuses_them(
    queue: Queue, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidJobSpec, match=message) as raised:
        queue.enqueue("true", **options)  # type: ignore[arg-type]
    assert raised.value.exit_code == 2
    assert queue.jobs(limit=None) == []


def test_an_empty_command_is_refused(queue: Queue) -> None:
    with pytest.raises(InvalidJobSpec, match="command must not be empty"):
        queue.enqueue("  ")


def test_enqueue_many_takes_commands_mappings_and_pairs_in_order(queue: Queue) -> None:
    jobs = queue.enqueue_many(
        ["echo a", {"command": "echo b", "id": "b"}, ("echo c", {"depends_on": ("b",)})]
    )
    assert [job.command for job in jobs] == ["echo a", "echo b", "echo c"]
    assert jobs[2].depends_on == ("b",)
    assert [job.id for job in queue.jobs()] == [job.id for job in jobs]
    assert queue.enqueue_many([]) == []


def test_enqueue_many_adds_nothing_when_one_item_is_bad(queue: Queue) -> None:
    with pytest.raises(InvalidJobSpec, match=r"^line 3: max_retries must be >= 0") as raised:
        queue.enqueue_many(["echo a", "echo b", ("echo c", {"max_retries": -1})])
    assert raised.value.line == 3
    with pytest.raises(InvalidJobSpec, match=r"^line 2: expected a command, a mapping"):
        queue.enqueue_many(["echo a", 42])  # type: ignore[list-item]
    assert queue.jobs(limit=None) == []


def test_enqueue_many_adds_nothing_when_an_id_is_taken(queue: Queue) -> None:
    queue.enqueue("true", id="taken")
    with pytest.raises(DuplicateJobId, match="line 2: job id 'taken' already exists"):
        queue.enqueue_many(["echo new", ("echo again", {"id": "taken"})])
    assert [job.id for job in queue.jobs(limit=None)] == ["taken"]


def test_enqueue_many_refuses_a_cycle_and_a_repeated_id(queue: Queue) -> None:
    cycle = [
        {"id": "a", "command": "true", "depends_on": ["b"]},
        {"id": "b", "command": "true", "depends_on": ["a"]},
    ]
    with pytest.raises(InvalidJobSpec, match="dependency cycle"):
        queue.enqueue_many(cycle)
    with pytest.raises(InvalidJobSpec, match="duplicate id 'x'"):
        queue.enqueue_many([("true", {"id": "x"}), ("true", {"id": "x"})])
    assert queue.jobs(limit=None) == []


def test_dedupe_keys_refuse_or_skip(queue: Queue) -> None:
    first = queue.enqueue("sync", dedupe_key="sync")
    with pytest.raises(DuplicateDedupeKey, match="dedupe key 'sync'"):
        queue.enqueue("sync", dedupe_key="sync")
    assert queue.enqueue("sync", dedupe_key="sync", if_exists="skip") == first
    with pytest.raises(UsageError, match="if_exists"):
        queue.enqueue("sync", if_exists="maybe")  # type: ignore[arg-type]
    assert len(queue.jobs()) == 1


def test_dependencies_must_exist_and_be_alive(queue: Queue) -> None:
    with pytest.raises(UnknownDependency):
        queue.enqueue("true", depends_on=["ghost"])
    gone = queue.enqueue("true")
    queue.cancel(gone.id)
    with pytest.raises(DependencyEnded):
        queue.enqueue("true", depends_on=[gone.id])
    assert len(queue.jobs()) == 1


def test_jobs_filters_by_state_queue_and_limit(queue: Queue) -> None:
    a, b, c, d = queue.enqueue_many(
        [("true", {"queue": "mail"}), ("true", {"queue": "mail"}), "true", "true"]
    )
    queue.cancel(c.id)
    assert [job.id for job in queue.jobs(queue="mail")] == [a.id, b.id]
    assert [job.id for job in queue.jobs(state="cancelled")] == [c.id]
    assert [job.id for job in queue.jobs(state=JobState.PENDING, limit=2)] == [b.id, d.id]
    assert [job.id for job in queue.jobs(state=["cancelled", JobState.PENDING], limit=None)] == [
        a.id,
        b.id,
        c.id,
        d.id,
    ]
    assert queue.jobs(limit=0) == []
    assert len(queue.jobs(limit=2**63)) == 4
    with pytest.raises(UsageError, match="unknown state 'done'"):
        queue.jobs(state="done")
    with pytest.raises(UsageError, match="limit"):
        queue.jobs(limit=-1)
    with pytest.raises(InvalidJobSpec, match="invalid queue"):
        queue.jobs(queue="")


def test_get_an_unknown_job(queue: Queue) -> None:
    with pytest.raises(JobNotFound, match="no job with id 'nope'") as raised:
        queue.get("nope")
    assert raised.value.exit_code == 1


def test_cancel_and_retry(queue: Queue) -> None:
    job = queue.enqueue("sleep 60")
    cancelled = queue.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    with pytest.raises(WrongState, match="is cancelled"):
        queue.cancel(job.id)
    again = queue.retry(job.id)
    assert (again.state, again.attempts) == (JobState.PENDING, 0)
    with pytest.raises(WrongState, match="only dead or cancelled jobs can be retried"):
        queue.retry(job.id)
    with pytest.raises(JobNotFound):
        queue.cancel("nope")
    with pytest.raises(JobNotFound):
        queue.retry("nope")


def test_status_counts_every_state(queue: Queue) -> None:
    jobs = queue.enqueue_many(["true", "true", "true"])
    queue.cancel(jobs[0].id)
    status = queue.status()
    assert status.counts[JobState.PENDING] == 2
    assert status.counts[JobState.CANCELLED] == 1
    assert status.counts[JobState.DEAD] == 0
    assert status.total == 3
    assert status.workers == ()
    assert status.now.tzinfo is not None


def test_jobs_and_status_are_read_only(queue: Queue) -> None:
    job = queue.enqueue("true")
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.state = JobState.COMPLETED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.command = "rm -rf /"  # type: ignore[misc]
    status = queue.status()
    with pytest.raises(TypeError):
        status.counts[JobState.PENDING] = 0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.workers = ()  # type: ignore[misc]
    assert queue.get(job.id).state is JobState.PENDING


def test_wait_returns_finished_jobs_in_the_order_given(queue: Queue) -> None:
    a, b = queue.enqueue_many(["true", "true"])
    queue.cancel(b.id)
    queue.cancel(a.id)
    assert [job.id for job in queue.wait([b.id, a.id, b.id])] == [b.id, a.id]
    assert [job.state for job in queue.wait(a.id)] == [JobState.CANCELLED]
    assert queue.wait([]) == []


def test_wait_times_out_on_unfinished_jobs(queue: Queue) -> None:
    done = queue.enqueue("true")
    queue.cancel(done.id)
    later = queue.enqueue("true", scheduled_at=datetime.now(UTC) + LATER)
    with pytest.raises(WaitTimedOut, match=rf"1 of 2 jobs unfinished \({later.id}\)") as raised:
        queue.wait([done.id, later.id], timeout=0.3, poll_interval=0.05)
    assert isinstance(raised.value, TimeoutError)
    assert raised.value.exit_code == 124
    with pytest.raises(WaitTimedOut):
        queue.wait(later.id, timeout=timedelta(0))
    assert queue.get(later.id).state is JobState.PENDING


def test_wait_refuses_unknown_ids_and_bad_arguments(queue: Queue) -> None:
    job = queue.enqueue("true", scheduled_at=datetime.now(UTC) + LATER)
    with pytest.raises(JobNotFound, match="'ghost'"):
        queue.wait([job.id, "ghost"])
    with pytest.raises(UsageError, match="timeout"):
        queue.wait(job.id, timeout=-1)
    with pytest.raises(UsageError, match="poll_interval"):
        queue.wait(job.id, poll_interval=0)


def test_a_closed_queue_refuses_every_call(target: str) -> None:
    with Queue(target) as queue:
        job = queue.enqueue("true")
    with pytest.raises(StoreUnavailable, match="closed"):
        queue.get(job.id)
    queue.close()  # closing twice is fine
    with Queue(target) as reopened:
        assert reopened.get(job.id) == job


def test_errors_are_the_command_lines_own(queue: Queue) -> None:
    """Every exported error is the class the command line maps to an exit status."""
    from queuectl.core import errors

    for name in queuectl.__all__:
        value = getattr(queuectl, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert value is getattr(errors, name)
            assert issubclass(value, QueuectlError)


@pytest.mark.slow
def test_a_job_enqueued_from_python_is_run_by_a_worker(target: str, tmp_path: Path) -> None:
    cli = Queuectl(target, tmp_path / "home")
    try:
        with Queue(target) as queue:
            ok, failing = queue.enqueue_many(
                [("echo from python", {}), ("exit 3", {"max_retries": 0})]
            )
            code, err = cli.finish(cli.start_workers("--burst"), timeout=60)
            assert code == 0, err
            done = queue.wait([ok.id, failing.id], timeout=30)
        assert [job.state for job in done] == [JobState.COMPLETED, JobState.DEAD]
        assert done[0].output == "from python\n"
        assert done[1].exit_code == 3
        assert cli.state(ok.id) == "completed"
    finally:
        cli.stop_all()


@pytest.mark.slow
def test_wait_follows_a_worker_that_runs_meanwhile(target: str, tmp_path: Path) -> None:
    cli = Queuectl(target, tmp_path / "home")
    try:
        with Queue(target) as queue:
            job = queue.enqueue("sleep 0.5; echo slept")
            cli.start_workers("--burst")
            (done,) = queue.wait(job.id, timeout=60, poll_interval=0.05)
        assert (done.state, done.output) == (JobState.COMPLETED, "slept\n")
    finally:
        cli.stop_all()


def test_the_default_store_is_the_command_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUECTL_DB", raising=False)
    monkeypatch.setenv("QUEUECTL_HOME", str(tmp_path / "home"))
    with Queue() as queue:
        job = queue.enqueue("true")
        assert queue.target == str(tmp_path / "home" / "queuectl.db")
    shown = subprocess.run(
        [sys.executable, "-m", "queuectl", "show", job.id, "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    assert json.loads(shown.stdout)["id"] == job.id

    chosen = tmp_path / "chosen.db"
    monkeypatch.setenv("QUEUECTL_DB", str(chosen))
    for default in (None, ""):
        with Queue(default) as queue:
            assert queue.target == str(chosen)
            assert queue.jobs() == []
    with Queue(tmp_path / "explicit.db") as queue:  # an explicit target wins
        assert queue.target == str(tmp_path / "explicit.db")
    assert (tmp_path / "explicit.db").is_file()


def test_a_bad_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown store 'ftp://host/q'"):
        Queue("ftp://host/q")


def test_import_queuectl_loads_nothing_until_a_name_is_used() -> None:
    """`queuectl enqueue` starts by importing the package: it must stay that cheap."""
    probe = (
        "import sys; before = set(sys.modules); import queuectl; "
        "print(sorted(set(sys.modules) - before)); queuectl.Queue; "
        "print('queuectl.service' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded, service_after = result.stdout.splitlines()
    assert set(json.loads(loaded.replace("'", '"'))) <= {"queuectl", "__future__"}
    assert service_after == "True"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = queuectl.Nope
