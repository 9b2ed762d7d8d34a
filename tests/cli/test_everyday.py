"""The rough edges a new user hit in the first hour (issue 14): workers' records, input
copied from other QueueCTL designs, and errors that read well."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from queuectl.cli import main
from queuectl.core.fields import MAX_COMMAND_BYTES
from tests.cli.test_doctor import checks_of, doctor_json, plant_stuck_job, store_of
from tests.conftest import Queuectl, assert_error
from tests.terminal import COLUMNS, run_on_terminal

pytestmark = pytest.mark.in_process

# -- 2. seeing and forgetting workers -------------------------------------------------------


def test_doctor_only_warns_once_a_dead_workers_jobs_are_rescued_and_forget_clears_it(
    q: Queuectl,
) -> None:
    q.config("lease-timeout", "5")
    plant_stuck_job(q, "held", "worker-killed", heartbeat_age=60)
    code, report = doctor_json(q)
    assert code == 1  # the job is still held by the dead worker
    assert checks_of(report)["workers"]["status"] == "fail"
    listed = {worker["id"]: worker for worker in q.json("worker", "list")}
    assert listed["worker-killed"]["state"] == "stale"
    q.ok("status")  # rescues the job, as any command does
    assert q.state("held") == "failed"
    code, report = doctor_json(q)
    assert code == 0, report  # history now, not a failure, though it died a minute ago
    workers = checks_of(report)["workers"]
    assert workers["status"] == "warn"
    assert workers["items"] == ["worker-killed"]
    assert "worker forget --stale" in workers["reason"]
    assert q.ok("worker", "forget", "--stale") == "Forgot 1 worker: worker-killed.\n"
    assert checks_of(doctor_json(q)[1])["workers"]["status"] == "ok"
    assert q.json("worker", "list") == []


def test_worker_forget_refuses_an_active_or_unknown_worker(q: Queuectl) -> None:
    with store_of(q) as store:
        store.register_worker("worker-alive", "here", 1234, None)
    assert "worker stop" in assert_error(q.run("worker", "forget", "worker-alive"), 1)
    assert "worker-nope" in assert_error(q.run("worker", "forget", "worker-nope"), 1)
    assert assert_error(q.run("worker", "forget"), 2)
    (listed,) = q.json("worker", "list")
    assert (listed["id"], listed["state"], listed["host"], listed["pid"]) == (
        "worker-alive",
        "active",
        "here",
        1234,
    )
    assert "worker-alive" in q.ok("worker", "list")


# -- 3. wait never hangs silently ---------------------------------------------------------


def test_wait_says_when_no_active_worker_serves_the_queue(q_sqlite: Queuectl) -> None:
    job_id = q_sqlite.enqueue(command="true", queue="nightly")
    started = time.monotonic()
    result = q_sqlite.run("wait", job_id, "--timeout", "5")
    assert result.returncode == 124  # it kept waiting until its own timeout
    assert time.monotonic() - started >= 4
    assert "no active worker serves queue nightly" in result.stderr
    assert "queuectl worker start" in result.stderr


# -- 4. config keys spelled with _ ------------------------------------------------------------


def test_config_accepts_underscored_keys_and_get_without_key_lists_all(q: Queuectl) -> None:
    assert q.ok("config", "set", "max_retries", "5") == "max-retries = 5\n"
    assert q.ok("config", "get", "max_retries") == "5\n"
    assert q.ok("config", "get", "backoff_base") == "2\n"
    assert q.json("config", "list")["max-retries"] == 5
    assert "max_retries" not in q.json("config", "list")
    assert q.ok("config", "get") == q.ok("config", "list")
    assert q.json("config", "get") == q.json("config", "list")


# -- 5. a job in the record's shape -------------------------------------------------------------

RECORD = {
    "id": "j1",
    "command": "echo hi",
    "state": "pending",
    "attempts": 0,
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
}


def test_a_job_in_the_records_shape_enqueues(q: Queuectl) -> None:
    assert q.ok("enqueue", json.dumps(RECORD)) == "j1\n"  # the lean path (the store exists)
    lines = json.dumps(RECORD | {"id": "j2"}) + "\n"
    assert q.ok("enqueue", "-", input=lines) == "j2\n"
    job = q.job("j1")
    assert (job["state"], job["attempts"]) == ("pending", 0)
    assert not job["created_at"].startswith("2025")  # timestamps are queuectl's own


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [("state", "completed", "queuectl sets"), ("attempts", 2, "queuectl counts")],
)
def test_a_record_that_is_not_a_new_job_is_refused(
    q_shared: Queuectl, field: str, value: object, said: str
) -> None:
    text = json.dumps(RECORD | {"id": "not-new", field: value})
    assert said in assert_error(q_shared.run("enqueue", text), 2)
    assert said in assert_error(q_shared.run("enqueue", "-", input=text + "\n"), 2)
    assert q_shared.run("show", "not-new").returncode == 1


# -- 6. dlq list --limit, enqueue --file ----------------------------------------------------


def test_dlq_list_limit_keeps_the_newest(q_sqlite: Queuectl) -> None:
    q_sqlite.config("backoff-max", "0")
    for name in ("d1", "d2", "d3"):
        q_sqlite.enqueue(id=name, command="exit 1", max_retries=1)
    q_sqlite.ok("worker", "start", "--burst")
    assert [job["id"] for job in q_sqlite.json("dlq", "list", "--limit", "2")] == ["d2", "d3"]
    assert len(q_sqlite.json("dlq", "list")) == 3
    assert "d1" not in q_sqlite.ok("dlq", "list", "--limit", "1")


def test_enqueue_reads_a_file(q_sqlite: Queuectl, tmp_path: Path) -> None:
    lines = tmp_path / "jobs.ndjson"
    lines.write_text('{"id": "f1", "command": "true"}\n\n{"id": "f2", "command": "true"}\n')
    assert q_sqlite.ok("enqueue", "--file", str(lines)) == "f1\nf2\n"
    pretty = tmp_path / "job.json"
    pretty.write_text(json.dumps({"id": "f3", "command": "true"}, indent=2))
    assert q_sqlite.ok("enqueue", "--file", str(pretty)) == "f3\n"
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"id": "f4", "command": "true"}\n{"command": ""}\n')
    assert "line 2" in assert_error(q_sqlite.run("enqueue", "--file", str(bad)), 2)
    missing = assert_error(q_sqlite.run("enqueue", "--file", str(tmp_path / "none")), 2)
    assert "cannot read" in missing
    assert [job["id"] for job in q_sqlite.jobs()] == ["f1", "f2", "f3"]


# -- 7. cron expressions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("0 3 31 2 *", "never fires"),
        ("61 * * * *", "minute field '61': 61 is outside 0-59"),
        ("0 25 * * *", "hour field '25': 25 is outside 0-23"),
        ("*/0 * * * *", "minute field '*/0': a step must be at least 1"),
    ],
)
def test_schedule_add_names_what_is_wrong_with_the_cron(
    q_shared: Queuectl, cron: str, said: str
) -> None:
    message = assert_error(q_shared.run("schedule", "add", "x", "--cron", cron, "--", "true"), 2)
    assert said in message
    assert "5 fields" not in message
    assert q_shared.json("schedule", "list") == []


# -- 8. commands over the kernel's limit for one argument ----------------------------------------


def test_a_command_over_128_kib_is_refused_on_every_path(
    q_sqlite: Queuectl, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUECTL_DB", q_sqlite.target)
    big = "echo " + "x" * MAX_COMMAND_BYTES
    fits = "echo " + "x" * (MAX_COMMAND_BYTES - len("echo "))
    # In-process: the argument itself would be too long for this test to pass to a child.
    assert main(["enqueue", json.dumps({"command": big})]) == 2  # the lean path
    assert main(["enqueue", "--json", json.dumps({"command": big})]) == 2  # the full path
    assert main(["add", "--", big]) == 2
    assert main(["schedule", "add", "s", "--cron", "* * * * *", "--", big]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 4
    assert all("128 KiB" in line and line.startswith("error: ") for line in errors)
    line = json.dumps({"command": big}) + "\n"
    assert "128 KiB" in assert_error(q_sqlite.run("enqueue", "-", input=line), 2)
    assert q_sqlite.jobs() == []
    assert main(["enqueue", json.dumps({"id": "fits", "command": fits})]) == 0
    capsys.readouterr()
    q_sqlite.ok("worker", "start", "--burst")
    assert q_sqlite.state("fits") == "completed"  # the kernel took the longest allowed


def test_list_cuts_long_commands_to_the_terminal(q_sqlite: Queuectl) -> None:
    command = "echo " + "word " * 400
    job_id = q_sqlite.enqueue(command=command)
    code, shown = run_on_terminal(q_sqlite.argv("list"), q_sqlite.env)
    assert code == 0, shown
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    row = next(line for line in plain.splitlines() if job_id in line)
    assert "…" in row
    assert all(len(line) <= COLUMNS for line in plain.splitlines())
    assert command in q_sqlite.ok("show", job_id)
    assert q_sqlite.job(job_id)["command"] == command


# -- 9. a store that does not exist --------------------------------------------------------------

READERS = [
    ["status"],
    ["list"],
    ["show", "x"],
    ["why", "x"],
    ["logs", "x"],
    ["wait"],
    ["dlq", "list"],
    ["export"],
    ["dashboard", "--port", "0"],
    ["queue", "list"],
    ["worker", "list"],
]


@pytest.mark.parametrize("words", READERS, ids=" ".join)
def test_a_command_that_only_reads_refuses_a_missing_store(
    q_sqlite: Queuectl, tmp_path: Path, words: list[str]
) -> None:
    missing = tmp_path / "nonexistent" / "q.db"
    message = assert_error(q_sqlite.run("--db", str(missing), *words), 1)
    assert message == f"no queue at {missing}; `enqueue` or `worker start` creates it"
    assert not missing.parent.exists()


def test_top_refuses_a_missing_store(q_sqlite: Queuectl, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "q.db"
    code, shown = run_on_terminal(q_sqlite.argv("--db", str(missing), "top"), q_sqlite.env)
    assert code == 1
    assert f"error: no queue at {missing}" in shown
    assert not missing.parent.exists()


def test_writers_create_a_store_but_folders_only_at_the_default_location(
    q_sqlite: Queuectl, tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "q.db"
    message = assert_error(q_sqlite.run("--db", str(missing), "add", "--", "true"), 1)
    assert "does not exist" in message
    assert not missing.parent.exists()
    (tmp_path / "here").mkdir()
    q_sqlite.ok("--db", str(tmp_path / "here" / "q.db"), "add", "--", "true")
    assert len(json.loads(q_sqlite.ok("--db", str(tmp_path / "here" / "q.db"), "list", "--json")))
    home = tmp_path / "fresh" / "home"
    env = {k: v for k, v in q_sqlite.env.items() if k != "QUEUECTL_DB"} | {
        "QUEUECTL_HOME": str(home)
    }
    result = subprocess.run(
        q_sqlite.argv("add", "--", "true"), env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (home / "queuectl.db").is_file()
    # Reading the settings of a store that does not exist shows the defaults, creating nothing.
    assert q_sqlite.ok("--db", str(missing), "config", "get", "max-retries") == "3\n"
    assert not missing.parent.exists()


# -- 10. messages ---------------------------------------------------------------------------------


def test_an_unknown_dependency_of_a_generated_id_says_this_job(q_shared: Queuectl) -> None:
    text = json.dumps({"command": "true", "depends_on": ["nosuch"]})
    message = assert_error(q_shared.run("enqueue", text), 2)
    assert message.startswith("this job depends on 'nosuch'"), message
    message = assert_error(q_shared.run("add", "--after", "nosuch", "--", "true"), 2)
    assert message.startswith("this job depends on 'nosuch'"), message
    named = json.dumps({"id": "mine", "command": "true", "depends_on": ["nosuch"]})
    assert assert_error(q_shared.run("enqueue", named), 2).startswith("job 'mine' depends")


def test_counts_of_one_are_singular(q_sqlite: Queuectl, tmp_path: Path) -> None:
    q_sqlite.enqueue(id="one", command="true")
    q_sqlite.ok("schedule", "add", "nightly", "--cron", "0 3 * * *", "--", "true")
    export = tmp_path / "export.ndjson"
    q_sqlite.ok("export", "--output", str(export))
    (tmp_path / "other").mkdir()
    other = Queuectl(str(tmp_path / "other" / "q.db"), tmp_path / "home2")
    assert other.ok("import", str(export)) == "Imported 1 job and 1 schedule.\n"
    q_sqlite.config("max-retries", "1")
    q_sqlite.enqueue(id="dies", command="exit 1")
    q_sqlite.ok("worker", "start", "--burst")
    message = assert_error(q_sqlite.run("dlq", "purge", input=""), 2)
    assert "1 dead job" in message
    assert "1 dead jobs" not in message


def test_help_puts_every_command_beside_its_help_line(q_sqlite: Queuectl) -> None:
    text = q_sqlite.ok("--help")
    assert re.search(r"^\s+completion\s+print a shell completion script$", text, re.M)
    assert not re.search(r"^\s+completion$", text, re.M)


# -- 11. show, queue list --json ---------------------------------------------------------------


def test_show_prints_cwd_env_and_where_a_retry_started_a_new_run(
    q_sqlite: Queuectl, tmp_path: Path
) -> None:
    q_sqlite.config("backoff-max", "0")
    job = {"id": "r", "command": "exit 3", "max_retries": 1, "cwd": str(tmp_path)}
    q_sqlite.enqueue(**job, env={"GREETING": "hello"})
    q_sqlite.ok("worker", "start", "--burst")
    q_sqlite.ok("dlq", "retry", "r")
    q_sqlite.ok("worker", "start", "--burst")
    text = q_sqlite.ok("show", "r")
    assert re.search(rf"^cwd:\s+{re.escape(str(tmp_path))}$", text, re.M)
    assert re.search(r"^env:\s+GREETING=hello$", text, re.M)
    history = text.split("History:")[1].split("Output:")[0].strip().splitlines()
    assert [line.split()[0] for line in history] == ["#1", "--", "#1"]
    assert "retried" in history[1]


def test_queue_list_json_uses_the_api_field_names(q: Queuectl) -> None:
    from queuectl.web.schemas import Queue

    q.enqueue(command="true", queue="mail")
    (listed,) = q.json("queue", "list")
    assert set(listed) == set(Queue.model_fields)
    assert listed["counts"]["pending"] == 1
