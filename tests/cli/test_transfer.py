"""Moving between stores (issue 8, item 6): NDJSON export and import, and `store migrate`,
through the real command on both backends and across them."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl.cli import main
from tests import pgtools
from tests.conftest import Queuectl, assert_error, parse_time, wait_until

NEVER = "2099-01-01T00:00:00Z"
# everything() runs commands in-process; a command leaves closing its store to the end of
# its process, so PostgreSQL connections are collected, not closed, here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.in_process,
]


@pytest.fixture
def other(backend: str, tmp_path: Path) -> Iterator[Queuectl]:
    """A second, empty store of the same backend as `q`."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            (tmp_path / "other").mkdir()
            target = str(tmp_path / "other" / "queuectl.db")
        else:
            target = stack.enter_context(pgtools.fresh_database())
        handle = Queuectl(target, tmp_path / "other-home", in_process=True)
        yield handle
        handle.stop_all()


@pytest.fixture
def sqlite_other(tmp_path: Path) -> Iterator[Queuectl]:
    (tmp_path / "sqlite-other").mkdir()
    handle = Queuectl(
        str(tmp_path / "sqlite-other" / "queuectl.db"), tmp_path / "home2", in_process=True
    )
    yield handle
    handle.stop_all()


@pytest.fixture
def postgres_other(tmp_path: Path) -> Iterator[Queuectl]:
    with pgtools.fresh_database() as url:
        handle = Queuectl(url, tmp_path / "home3", in_process=True)
        yield handle
        handle.stop_all()


def fill(q: Queuectl, tmp_path: Path) -> None:
    """A store with something of everything: jobs completed, dead twice over (two
    attempts in its history), cancelled, pending with cwd and env, plus config, queue
    settings and schedules."""
    q.config("backoff-base", "1000")
    q.config("output-limit", "4096")
    lines = [
        {"id": "done", "command": "echo done; echo more", "priority": 3},
        {"id": "dead", "command": "echo oops >&2; exit 3", "max_retries": 1},
        {"id": "gone", "command": "true", "scheduled_at": NEVER},
        {
            "id": "later",
            "command": "pwd",
            "scheduled_at": NEVER,
            "queue": "reports",
            "cwd": str(tmp_path),
            "env": {"MODE": "x y"},
            "timeout": 12.5,
        },
    ]
    q.ok("enqueue", "-", input="".join(json.dumps(line) + "\n" for line in lines))
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    q.ok("dlq", "retry", "dead")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    q.ok("cancel", "gone")
    q.ok("queue", "limit", "reports", "2")
    q.ok("queue", "pause", "slow")
    q.ok("schedule", "add", "nightly", "--cron", "0 3 * * *", "--tz", "Asia/Tokyo", "--",
         "echo", "nightly")  # fmt: skip
    q.ok("schedule", "add", "held", "--cron", "*/10 * * * *", "--paused", "--catch-up",
         "--", "true")  # fmt: skip
    assert len(q.history("dead")) == 2


def everything(q: Queuectl) -> dict[str, Any]:
    """All a user can see of a store: every job as `show --json` has it (with history),
    attempt outputs, config, queues and schedules. In-process: dozens of commands."""

    def out(*args: str) -> str:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = main(["--db", q.target, *args])
        assert code == 0, args
        return buffer.getvalue()

    order = [job["id"] for job in json.loads(out("list", "--limit", "0", "--json"))]
    jobs = {job_id: json.loads(out("show", job_id, "--json")) for job_id in order}
    logs = {
        job_id: [
            out("logs", job_id, "--attempt", str(entry["attempt"])) for entry in job["history"]
        ]
        for job_id, job in jobs.items()
    }
    return {
        "order": order,
        "jobs": jobs,
        "logs": logs,
        "config": out("config", "list"),
        "queues": json.loads(out("queue", "list", "--json")),
        "schedules": json.loads(out("schedule", "list", "--json")),
    }


@pytest.mark.slow
def test_export_import_round_trip_keeps_everything(
    q: Queuectl, other: Queuectl, tmp_path: Path
) -> None:
    fill(q, tmp_path)
    exported = q.ok("export")
    header = json.loads(exported.splitlines()[0])
    assert (header["type"], header["version"]) == ("header", 2)
    kinds = [json.loads(line)["type"] for line in exported.splitlines()]
    assert (kinds.count("job"), kinds.count("schedule")) == (4, 2)
    assert other.ok("import", input=exported) == "Imported 4 jobs and 2 schedules.\n"
    assert everything(other) == everything(q)


@pytest.mark.slow
def test_import_across_backends_keeps_everything(
    q: Queuectl, sqlite_other: Queuectl, tmp_path: Path
) -> None:
    fill(q, tmp_path)
    path = tmp_path / "jobs.ndjson"
    q.ok("export", "--output", str(path))
    sqlite_other.ok("import", str(path))
    assert everything(sqlite_other) == everything(q)


@pytest.mark.slow
def test_export_by_state(q: Queuectl, other: Queuectl, tmp_path: Path) -> None:
    fill(q, tmp_path)
    other.ok("import", input=q.ok("export", "--state", "dead,cancelled"))
    assert [job["id"] for job in other.jobs()] == ["dead", "gone"]
    assert other.job("dead") == q.job("dead")


@pytest.mark.slow
def test_import_refuses_existing_ids_unless_told_to_skip(
    q: Queuectl, other: Queuectl, tmp_path: Path
) -> None:
    fill(q, tmp_path)
    exported = q.ok("export")
    other.enqueue(id="dead", command="echo mine")
    message = assert_error(other.run("import", input=exported), 2)
    assert "job id 'dead' already exists" in message
    assert [job["id"] for job in other.jobs()] == ["dead"]
    assert other.json("schedule", "list") == []
    out = other.ok("import", "--skip-existing", input=exported)
    assert out == "Imported 3 jobs (1 already there, skipped) and 2 schedules.\n"
    assert other.job("dead")["command"] == "echo mine"
    assert other.job("done") == q.job("done")


HEADER = '{"type":"header","format":"queuectl-export","version":1}\n'
GOOD_JOB = json.dumps(
    {
        "type": "job",
        "job": {
            "id": "j1", "command": "true", "state": "pending", "queue": "default",
            "priority": 0, "attempts": 0, "max_retries": 3, "timeout": 300,
            "created_at": "2026-01-01T00:00:00.000000Z",
            "updated_at": "2026-01-01T00:00:00.000000Z", "scheduled_at": None,
            "run_at": "2026-01-01T00:00:00.000000Z", "started_at": None, "finished_at": None,
            "exit_code": None, "last_error": None, "output": "", "locked_by": None,
            "locked_at": None,
        },
    },
    separators=(",", ":"),
)  # fmt: skip


def bad_job(old: str, new: str) -> str:
    """HEADER and one job line with `old` replaced by `new` in it."""
    return HEADER + GOOD_JOB.replace(old, new) + "\n"


BAD_EXPORTS = [
    ("", "empty input"),
    ('{"type":"job"}\n', "line 1: not a queuectl export"),
    (HEADER.replace('"version":1', '"version":9'), "line 1: export format version 9"),
    (HEADER + GOOD_JOB + "\n{oops\n", "line 3: invalid JSON"),
    (HEADER + "\n" + GOOD_JOB + "\n" + GOOD_JOB + "\n", "line 4: duplicate job id 'j1'"),
    (bad_job('"pending"', '"sleeping"'), "line 2: job: state"),
    (bad_job('"priority":0', '"priority":"high"'), "line 2: job: priority"),
    (bad_job('"command":"true",', ""), "line 2: job: missing field 'command'"),
    (bad_job('"id":"j1"', '"id":"j 1"'), "line 2: job id 'j 1' is not a valid id"),
    (bad_job('"output":""', '"colour":"red"'), "line 2: job: unknown field 'colour'"),
    (HEADER + '{"type":"config","values":{"max-retries":"-4"}}\n', "line 2: invalid value"),
    (HEADER + '{"type":"spaceship"}\n', "line 2: unknown record type 'spaceship'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_EXPORTS)
def test_import_refuses_bad_input_and_writes_nothing(
    q_shared: Queuectl, text: str, message: str
) -> None:
    good_first = HEADER + GOOD_JOB.replace('"j1"', '"first"') + "\n"
    payload = text if not text.startswith(HEADER) else good_first + text[len(HEADER) :]
    if text.startswith(HEADER):  # the good job now takes line 2: shift the expectation
        number = int(message.split(":")[0].removeprefix("line "))
        message = f"line {number + 1}:" + message.split(":", 1)[1]
    assert message in assert_error(q_shared.run("import", input=payload), 2)
    assert q_shared.jobs() == []
    assert q_shared.ok("config", "get", "max-retries") == "3\n"


def test_import_then_workers_run_the_pending_jobs(q: Queuectl, other: Queuectl) -> None:
    q.enqueue(id="a", command="echo a")
    other.ok("import", input=q.ok("export"))
    code, err = other.finish(other.start_workers("--burst"))
    assert code == 0, err
    assert other.job("a")["output"] == "a\n"
    assert q.state("a") == "pending"


@pytest.mark.slow
def test_an_imported_dependent_still_waits_for_its_dependency(q: Queuectl, other: Queuectl) -> None:
    """The repro of issue 13: after an import, two workers started `b` beside `a`."""
    q.ok("add", "--id", "a", "--", "sleep", "1")
    q.ok("add", "--id", "b", "--after", "a", "--", "echo", "hi")
    other.ok("import", input=q.ok("export"))
    code, err = other.finish(other.start_workers("--count", "2", "--burst"))
    assert code == 0, err
    a, b = other.job("a"), other.job("b")
    assert (a["state"], b["state"]) == ("completed", "completed")
    assert parse_time(b["started_at"]) >= parse_time(a["finished_at"])


@pytest.mark.slow
@pytest.mark.postgres
def test_store_migrate_sqlite_to_postgresql(
    q_sqlite: Queuectl, postgres_other: Queuectl, tmp_path: Path
) -> None:
    fill(q_sqlite, tmp_path)
    before = everything(q_sqlite)
    out = q_sqlite.ok("store", "migrate", "--to", postgres_other.target)
    assert "Copied 4 jobs (1 pending, 1 completed, 1 dead, 1 cancelled), 3 attempts" in out
    assert "the counts per state match" in out
    assert f"export QUEUECTL_DB='{postgres_other.target}'" in out
    assert everything(postgres_other) == before
    assert everything(q_sqlite) == before  # the source is left as it was
    # A second run finds the target taken.
    message = assert_error(q_sqlite.run("store", "migrate", "--to", postgres_other.target), 1)
    assert "the target store is not empty (4 jobs, 2 schedules)" in message
    # Workers on the new store run what was pending there.
    postgres_other.ok("queue", "resume", "reports")
    postgres_other.ok("retry", "gone")
    code, err = postgres_other.finish(postgres_other.start_workers("--burst"))
    assert code == 0, err
    assert postgres_other.state("gone") == "completed"


@pytest.mark.slow
@pytest.mark.postgres
def test_store_migrate_postgresql_to_sqlite(
    postgres_other: Queuectl, sqlite_other: Queuectl, tmp_path: Path
) -> None:
    fill(postgres_other, tmp_path)
    before = everything(postgres_other)
    postgres_other.ok("store", "migrate", "--to", sqlite_other.target)
    assert everything(sqlite_other) == before


def test_store_migrate_refuses_while_workers_run(q: Queuectl, sqlite_other: Queuectl) -> None:
    q.enqueue(id="a", command="true", scheduled_at=NEVER)
    q.start_workers()
    wait_until(q.active_workers, timeout=30, message="a worker to register")
    message = assert_error(q.run("store", "migrate", "--to", sqlite_other.target), 1)
    assert "1 worker(s) are running on the source store" in message
    assert "--pause" in message
    assert sqlite_other.jobs() == []


@pytest.mark.slow
def test_store_migrate_pause_waits_for_running_jobs(
    q: Queuectl, sqlite_other: Queuectl, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    q.start_workers()
    job = q.enqueue(command=f"while [ ! -e {release} ]; do sleep 0.05; done; echo slept")
    q.wait_for_state(job, "processing")
    q.enqueue(id="waiting", command="echo later")
    migrate = q.run_background(
        "store", "migrate", "--to", sqlite_other.target, "--pause", "--timeout", "60"
    )
    wait_until(
        lambda: all(queue["paused"] for queue in q.json("queue", "list")),
        message="the source queues to be paused",
    )
    assert migrate.poll() is None  # waiting for the running job
    release.touch()
    out, err = migrate.communicate(timeout=60)
    assert migrate.returncode == 0, err
    assert "stay paused" in out
    moved = sqlite_other.job(job)
    assert (moved["state"], moved["output"]) == ("completed", "slept\n")
    # The paused source never ran the second job; the target has it pending, unpaused.
    assert q.state("waiting") == "pending"
    assert sqlite_other.job("waiting") == q.job("waiting")
    assert not any(queue["paused"] for queue in sqlite_other.json("queue", "list"))


def test_store_migrate_refuses_the_same_store(q: Queuectl) -> None:
    assert "names the current store" in assert_error(q.run("store", "migrate", "--to", q.target), 2)
