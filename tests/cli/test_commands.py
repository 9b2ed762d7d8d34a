"""list, show, status, dlq, config and the store's location, through the real command
(SPEC 1, 2.4, 4)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queuectl, assert_error, parse_time, wait_until

pytestmark = pytest.mark.in_process

DEFAULT_CONFIG = {
    "max-retries": 3,
    "backoff-base": 2,
    "backoff-max": 3600,
    "job-timeout": 300,
    "lease-timeout": 30,
    "poll-interval": 1,
    "output-limit": 65536,
}
HISTORY_FIELDS = {"attempt", "worker_id", "started_at", "finished_at", "exit_code", "error"}
WORKER_FIELDS = {"id", "host", "pid", "status", "started_at", "last_heartbeat", "current_job_id"}
WORKER_LINE = re.compile(r"  (worker-\S+): (Processing (\S+)|Idle) \(uptime: \d+s\)")


def ids(jobs: list[dict[str, object]]) -> list[object]:
    return [job["id"] for job in jobs]


@pytest.fixture
def finished(q: Queuectl) -> Queuectl:
    """A store with one job in each of completed (ok), dead (bad), pending (later, not due)
    and pending (other, in a queue no worker served), after a burst worker ran."""
    q.config("backoff-max", "0")
    q.enqueue(id="ok", command="echo done")
    q.enqueue(id="bad", command="echo failing; exit 3", max_retries=1)
    q.enqueue(id="later", command="true", scheduled_at="2099-01-01T00:00:00Z")
    q.enqueue(id="other", command="true", queue="other")
    q.ok("worker", "start", "--burst", "--queue", "default")
    return q


# -- list ---------------------------------------------------------------------------------


def test_list_shows_jobs_in_enqueue_order(q: Queuectl) -> None:
    for name in ("c", "a", "b"):
        q.enqueue(id=name, command=f"echo {name}")
    assert ids(q.json("list")) == ["c", "a", "b"]
    text = q.ok("list")
    assert "ID" in text
    assert "STATE" in text
    rows = [
        line.split()[0] for line in text.splitlines() if line.split()[:1] in (["a"], ["b"], ["c"])
    ]
    assert rows == ["c", "a", "b"]


def test_list_of_an_empty_store(q: Queuectl) -> None:
    assert q.json("list") == []
    assert q.ok("list").strip() == "No jobs."


def test_list_limit_keeps_the_newest(q: Queuectl) -> None:
    lines = "".join(json.dumps({"id": f"j{n:03}", "command": "true"}) + "\n" for n in range(105))
    q.ok("enqueue", "-", input=lines)
    assert ids(q.json("list", "--limit", "3")) == ["j102", "j103", "j104"]
    default = ids(q.json("list"))
    assert default == [f"j{n:03}" for n in range(5, 105)]
    assert len(q.json("list", "--limit", "0")) == 105


def test_list_filters_by_queue(q: Queuectl) -> None:
    q.enqueue(id="a", command="true", queue="mail")
    q.enqueue(id="b", command="true")
    q.enqueue(id="c", command="true", queue="mail")
    assert ids(q.json("list", "--queue", "mail")) == ["a", "c"]
    assert ids(q.json("list", "--queue", "default")) == ["b"]
    assert q.json("list", "--queue", "nothing") == []


@pytest.mark.slow
def test_list_filters_by_state(finished: Queuectl) -> None:
    q = finished
    assert ids(q.json("list", "--state", "completed")) == ["ok"]
    assert ids(q.json("list", "--state", "dead")) == ["bad"]
    assert ids(q.json("list", "--state", "pending")) == ["later", "other"]
    assert ids(q.json("list", "--state", "dead,completed")) == ["ok", "bad"]
    assert ids(q.json("list", "--state", "pending", "--queue", "other")) == ["other"]
    assert q.json("list", "--state", "failed") == []


@pytest.mark.parametrize("state", ["bogus", "done", "completed,bogus", ""])
def test_list_refuses_an_unknown_state(q: Queuectl, state: str) -> None:
    assert "state" in assert_error(q.run("list", "--state", state), 2)


@pytest.mark.parametrize(("args", "usage"), [(["--limit", "-1"], False), (["--limit", "x"], True)])
def test_list_refuses_a_bad_limit(q: Queuectl, args: list[str], usage: bool) -> None:
    assert_error(q.run("list", *args), 2, usage=usage)


def test_list_refuses_a_bad_queue_name(q: Queuectl) -> None:
    assert "queue" in assert_error(q.run("list", "--queue", "a b"), 2)


# -- show -------------------------------------------------------------------------------


def test_show_of_a_new_job(q: Queuectl) -> None:
    q.enqueue(id="j", command="echo hi", priority=4)
    text = q.ok("show", "j")
    assert re.search(r"^id:\s+j$", text, re.M)
    assert re.search(r"^state:\s+pending$", text, re.M)
    assert re.search(r"^command:\s+echo hi$", text, re.M)
    assert re.search(r"^priority:\s+4$", text, re.M)
    assert "History:" in text
    assert q.job("j")["history"] == []


def test_show_of_an_unknown_job_is_not_found(q: Queuectl) -> None:
    q.enqueue(id="j", command="true")
    assert "nope" in assert_error(q.run("show", "nope"), 1)
    assert "nope" in assert_error(q.run("show", "nope", "--json"), 1)
    assert_error(q.run("show", "no such id"), 1)  # not even a valid id: still not found
    assert_error(q.run("show", "x" * 300), 1)
    assert_error(q.run("dlq", "retry", "no such id"), 1)


@pytest.mark.slow
def test_show_has_the_history_and_output(finished: Queuectl) -> None:
    q = finished
    ok = q.job("ok")
    assert ok["output"] == "done\n"
    assert ok["exit_code"] == 0
    (attempt,) = ok["history"]
    assert set(attempt) >= HISTORY_FIELDS
    assert attempt["attempt"] == 1
    assert attempt["exit_code"] == 0
    assert attempt["error"] is None
    assert attempt["worker_id"].startswith("worker-")
    assert parse_time(attempt["started_at"]) <= parse_time(attempt["finished_at"])
    assert attempt["started_at"] == ok["started_at"]
    assert attempt["finished_at"] == ok["finished_at"]
    text = q.ok("show", "ok")
    assert "History:" in text
    assert text.rstrip().endswith("done")
    bad = q.job("bad")
    assert [a["exit_code"] for a in bad["history"]] == [3]
    assert bad["last_error"] == bad["history"][0]["error"] == "exited with code 3"


# -- status -------------------------------------------------------------------------------


def test_status_of_an_empty_store(q: Queuectl) -> None:
    assert q.ok("status") == (
        "=== Job Queue Status ===\n"
        "\n"
        "Total Jobs:      0\n"
        "Pending:         0\n"
        "Processing:      0\n"
        "Completed:       0\n"
        "Failed:          0\n"
        "Dead (DLQ):      0\n"
        "\n"
        "Active Workers:  0\n"
    )
    assert q.json("status") == {
        "jobs": {
            "total": 0,
            "pending": 0,
            "processing": 0,
            "completed": 0,
            "failed": 0,
            "dead": 0,
            "cancelled": 0,
        },
        "workers": [],
    }


@pytest.mark.slow
def test_status_counts_jobs_per_state(finished: Queuectl) -> None:
    q = finished
    jobs = q.json("status")["jobs"]
    assert {key: jobs[key] for key in ("total", "pending", "completed", "dead")} == {
        "total": 4,
        "pending": 2,
        "completed": 1,
        "dead": 1,
    }
    assert jobs["processing"] == jobs["failed"] == 0
    text = q.ok("status")
    for line in ("Total Jobs:      4", "Pending:         2", "Completed:       1"):
        assert f"\n{line}\n" in text
    assert "\nDead (DLQ):      1\n" in text
    assert "\nActive Workers:  0\n" in text


@pytest.mark.slow
def test_status_shows_active_workers_and_their_jobs(q: Queuectl, tmp_path: Path) -> None:
    q.config("poll-interval", "0.2")
    gate = tmp_path / "gate"
    q.enqueue(
        id="long",
        command=f"n=0; while [ ! -e {gate} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done",
    )
    proc = q.start_workers("--count", "2")

    def two_workers_one_busy() -> list[dict[str, Any]] | None:
        workers = q.active_workers()
        busy = [worker for worker in workers if worker["current_job_id"] == "long"]
        return workers if len(workers) == 2 and busy else None

    workers = wait_until(two_workers_one_busy, timeout=20, message="two workers, one busy")
    assert all(set(worker) >= WORKER_FIELDS for worker in workers)
    assert {worker["current_job_id"] for worker in workers} == {"long", None}
    for worker in workers:
        assert worker["status"] == "running"
        assert worker["pid"] > 0
        assert worker["pid"] != proc.pid  # the worker processes register, not the supervisor
        assert worker["host"]
        assert parse_time(worker["started_at"]) <= parse_time(worker["last_heartbeat"])
    text = q.ok("status")
    assert "\nProcessing:      1\n" in text
    assert "\nActive Workers:  2\n" in text
    assert "\n--- Active Workers ---\n" in text
    lines = text.split("--- Active Workers ---\n", 1)[1].splitlines()
    matches = [WORKER_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    doing = {m.group(1): m.group(3) for m in matches if m}
    assert doing == {worker["id"]: worker["current_job_id"] for worker in workers}
    gate.touch()
    q.wait_for_state("long", "completed")
    q.signal_group(proc, 15)
    assert q.finish(proc)[0] == 0
    assert q.active_workers() == []


def test_status_watch_refreshes_until_ctrl_c(q: Queuectl) -> None:
    watch = q.run_background("status", "--watch", "--json")
    assert watch.stdout is not None
    first = json.loads(watch.stdout.readline())
    assert first["jobs"]["total"] == 0
    q.enqueue(command="true")
    for _ in range(10):
        if json.loads(watch.stdout.readline())["jobs"]["total"] == 1:
            break
    else:
        raise AssertionError("`status --watch` never showed the new job")
    q.signal_group(watch, signal.SIGINT)
    _, err = watch.communicate(timeout=20)
    assert (watch.returncode, err) == (0, "")


def test_status_watch_prints_the_block_again_and_again(q: Queuectl) -> None:
    watch = q.run_background("status", "--watch")
    assert watch.stdout is not None
    lines = [watch.stdout.readline() for _ in range(14)]  # two blocks of 10 lines, a blank
    assert lines.count("=== Job Queue Status ===\n") == 2
    q.signal_group(watch, signal.SIGINT)
    _, err = watch.communicate(timeout=20)
    assert (watch.returncode, err) == (0, "")


# -- dlq ----------------------------------------------------------------------------------


def test_dlq_of_an_empty_store(q: Queuectl) -> None:
    assert q.json("dlq", "list") == []
    assert q.ok("dlq", "list").strip() == "The DLQ is empty."


@pytest.mark.slow
def test_dlq_lists_dead_jobs_and_retries_one(finished: Queuectl) -> None:
    q = finished
    assert ids(q.json("dlq", "list")) == ["bad"]
    assert "bad" in q.ok("dlq", "list")
    job = json.loads(q.ok("dlq", "retry", "bad", "--json"))
    assert (job["id"], job["state"], job["attempts"]) == ("bad", "pending", 0)
    assert q.json("dlq", "list") == []
    assert q.state("bad") == "pending"
    assert len(q.history("bad")) == 1  # the history of the first round is kept


@pytest.mark.slow
@pytest.mark.parametrize("job_id", ["ok", "later"])
def test_dlq_retry_of_a_job_that_is_not_dead_changes_nothing(
    finished: Queuectl, job_id: str
) -> None:
    before = finished.job(job_id)
    assert "dead" in assert_error(finished.run("dlq", "retry", job_id), 1)
    assert finished.job(job_id) == before


def test_dlq_retry_of_an_unknown_job_is_not_found(q: Queuectl) -> None:
    assert "nope" in assert_error(q.run("dlq", "retry", "nope"), 1)


# -- config -------------------------------------------------------------------------------


def test_config_list_shows_every_key_with_its_default(q: Queuectl) -> None:
    listed_json = q.json("config", "list")
    assert {key: listed_json.get(key) for key in DEFAULT_CONFIG} == DEFAULT_CONFIG
    listed = dict(line.split()[:2] for line in q.ok("config", "list").splitlines())
    assert {key: listed.get(key) for key in DEFAULT_CONFIG} == {
        key: str(value) for key, value in DEFAULT_CONFIG.items()
    }
    assert set(listed) == set(listed_json)


@pytest.mark.parametrize(
    ("key", "given", "shown"),
    [
        ("max-retries", "5", "5"),
        ("backoff-base", "2.0", "2"),
        ("backoff-base", "1.5", "1.5"),
        ("poll-interval", "0.5", "0.5"),
        ("poll-interval", ".25", "0.25"),
        ("lease-timeout", "1", "1"),
        ("backoff-max", "0", "0"),
        ("output-limit", "100", "100"),
        ("job-timeout", "0.5", "0.5"),
    ],
)
def test_config_set_then_get_prints_the_bare_value(
    q: Queuectl, key: str, given: str, shown: str
) -> None:
    q.config(key, given)
    assert q.ok("config", "get", key) == f"{shown}\n"
    assert str(q.json("config", "list")[key]) == shown


def test_config_get_prints_bare_defaults(q: Queuectl) -> None:
    assert q.ok("config", "get", "max-retries") == "3\n"
    assert q.ok("config", "get", "backoff-base") == "2\n"
    q.config("poll-interval", "0.5")
    assert q.ok("config", "get", "poll-interval") == "0.5\n"


def test_config_unknown_key_is_refused(q: Queuectl) -> None:
    before = q.json("config", "list")
    assert "retries" in assert_error(q.run("config", "set", "retries", "5"), 2)
    assert "retries" in assert_error(q.run("config", "get", "retries"), 2)
    assert q.json("config", "list") == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max-retries", "-1"),
        ("max-retries", "1001"),
        ("max-retries", "2.5"),
        ("max-retries", "three"),
        ("backoff-base", "0.5"),
        ("backoff-base", "nan"),
        ("backoff-max", "-1"),
        ("job-timeout", "0"),
        ("job-timeout", "inf"),
        ("lease-timeout", "0.5"),
        ("poll-interval", "0"),
        ("poll-interval", ""),
        ("output-limit", "-1"),
        ("output-limit", "1.5"),
    ],
)
def test_config_bad_value_is_refused_and_changes_nothing(q: Queuectl, key: str, value: str) -> None:
    q.config("max-retries", "4")
    before = q.json("config", "list")
    assert key in assert_error(q.run("config", "set", key, value), 2)
    assert q.json("config", "list") == before


# -- where the store is (SPEC 1): SQLite-specific --------------------------------------


def run_env(
    q: Queuectl, changes: Mapping[str, str | None], *args: str, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    """queuectl ARGS with some variables of the environment set (or, for None, unset)."""
    env = dict(q.env)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    argv = q.argv(*args)
    if umask is not None:
        argv = ["/bin/sh", "-c", f'umask {umask:03o}; exec "$@"', "sh", *argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def ids_in(q: Queuectl, target: Path | str) -> list[object]:
    return ids(json.loads(q.ok("--db", str(target), "list", "--json")))


def test_store_db_option_beats_env_beats_home(q_sqlite: Queuectl, tmp_path: Path) -> None:
    q = q_sqlite
    home, env_db, opt_db = tmp_path / "home", tmp_path / "env.db", tmp_path / "opt.db"
    where: dict[str, str | None] = {"QUEUECTL_HOME": str(home), "QUEUECTL_DB": str(env_db)}
    enqueue = ("enqueue", '{"id": "%s", "command": "true"}')
    assert run_env(q, where, "--db", str(opt_db), enqueue[0], enqueue[1] % "opt").returncode == 0
    assert run_env(q, where, enqueue[0], enqueue[1] % "env").returncode == 0
    no_db = where | {"QUEUECTL_DB": None}
    assert run_env(q, no_db, enqueue[0], enqueue[1] % "home").returncode == 0
    assert run_env(q, where | {"QUEUECTL_DB": ""}, enqueue[0], enqueue[1] % "empty").returncode == 0
    assert ids_in(q, opt_db) == ["opt"]
    assert ids_in(q, env_db) == ["env"]
    assert ids_in(q, home / "queuectl.db") == ["home", "empty"]


def test_store_defaults_to_xdg_data_home(q_sqlite: Queuectl, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    unset = {"QUEUECTL_HOME": None, "QUEUECTL_DB": None}
    result = run_env(
        q_sqlite, unset | {"XDG_DATA_HOME": str(xdg)}, "add", "--id", "x", "--", "true"
    )
    assert result.returncode == 0, result.stderr
    assert ids_in(q_sqlite, xdg / "queuectl" / "queuectl.db") == ["x"]


def test_store_defaults_to_local_share_under_home(q_sqlite: Queuectl, tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    unset = {"QUEUECTL_HOME": None, "QUEUECTL_DB": None, "XDG_DATA_HOME": None}
    result = run_env(q_sqlite, unset | {"HOME": str(home)}, "add", "--id", "y", "--", "true")
    assert result.returncode == 0, result.stderr
    assert ids_in(q_sqlite, home / ".local" / "share" / "queuectl" / "queuectl.db") == ["y"]


def test_store_folder_is_0700_and_file_0600(q_sqlite: Queuectl, tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "queuectl"
    where = {"QUEUECTL_HOME": str(home), "QUEUECTL_DB": None}
    result = run_env(q_sqlite, where, "add", "--", "true", umask=0)  # the loosest umask
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.iterdir():  # the database and SQLite's -wal/-shm files beside it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (home / "queuectl.db").exists()


def test_store_keeps_the_mode_of_an_existing_folder(q_sqlite: Queuectl, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)  # noqa: S103 - a folder the user shares on purpose
    q_sqlite.ok("--db", str(folder / "q.db"), "add", "--", "true")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "q.db").stat().st_mode) == 0o600


def test_store_takes_a_sqlite_url(q_sqlite: Queuectl, tmp_path: Path) -> None:
    path = tmp_path / "by-url" / "jobs.db"
    path.parent.mkdir()
    q_sqlite.ok("--db", f"sqlite://{path}", "add", "--id", "u", "--", "true")
    assert path.exists()
    assert ids_in(q_sqlite, path) == ["u"]
    assert ids_in(q_sqlite, f"sqlite://{path}") == ["u"]
    assert run_env(q_sqlite, {"QUEUECTL_DB": f"sqlite://{path}"}, "show", "u").returncode == 0


@pytest.mark.parametrize("target", ["sqlite://relative.db", "sqlite:relative.db", "mysql://h/db"])
def test_store_refuses_a_target_it_cannot_read(q_sqlite: Queuectl, target: str) -> None:
    assert_error(q_sqlite.run("--db", target, "status"), 2)


def test_store_is_in_wal_mode_with_a_schema_version(q_sqlite: Queuectl) -> None:
    q_sqlite.enqueue(command="true")
    with sqlite3.connect(q_sqlite.target) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    conn.close()


def test_store_schema_is_created_once(q_sqlite: Queuectl) -> None:
    q_sqlite.enqueue(id="a", command="true")
    with sqlite3.connect(q_sqlite.target) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    q_sqlite.enqueue(id="b", command="true")
    assert ids(q_sqlite.jobs()) == ["a", "b"]
    with sqlite3.connect(q_sqlite.target) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    conn.close()


UNREACHABLE = [
    "not-a-database",
    "under-a-file",
    "a-directory",
    "missing-parent-under-proc",
    "newline-in-path",
]


def unreachable_target(kind: str, tmp_path: Path) -> Path:
    match kind:
        case "not-a-database":
            path = tmp_path / "notes.db"
            path.write_text("these are my notes, not a database\n" * 10)
        case "under-a-file":
            (tmp_path / "plain.txt").write_text("x")
            path = tmp_path / "plain.txt" / "queuectl.db"
        case "a-directory":
            path = tmp_path / "folder"
            path.mkdir()
        case "newline-in-path":  # the message quotes it: still one line
            (tmp_path / "two\nlines").write_text("x")
            path = tmp_path / "two\nlines" / "queuectl.db"
        case _:
            path = Path("/proc/no-such-process/queuectl.db")
    return path


@pytest.mark.parametrize("kind", UNREACHABLE)
@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["list"],
        ["enqueue", '{"command": "true"}'],
        ["add", "--", "true"],
        ["config", "set", "max-retries", "5"],
        ["worker", "start", "--burst"],
        ["worker", "stop"],
        ["dlq", "retry", "x"],
    ],
    ids=lambda args: "-".join(args[:2]).strip('-{ "')[:20],
)
def test_store_unreachable_is_a_one_line_error(
    q_sqlite: Queuectl, tmp_path: Path, kind: str, args: list[str]
) -> None:
    target = unreachable_target(kind, tmp_path)
    before = target.read_bytes() if target.is_file() else None
    assert_error(q_sqlite.run("--db", str(target), *args), 1)
    if before is not None:
        assert target.read_bytes() == before


def test_postgres_unreachable_is_a_one_line_error(q_sqlite: Queuectl) -> None:
    target = "postgresql://nobody@127.0.0.1:1/queuectl"  # port 1: nothing listens
    assert "PostgreSQL" in assert_error(q_sqlite.run("--db", target, "status"), 1)
    assert_error(q_sqlite.run("--db", target, "enqueue", '{"command": "true"}'), 1)
