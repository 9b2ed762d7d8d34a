"""Operating the queue day to day, through the real command: cancel and retry, the DLQ in
bulk, prune, wait, logs, job cwd and env, queues, completion and --version. Workers appear
here only as `worker start --burst`, to bring jobs into the states the commands act on."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from queuectl import __version__
from queuectl.store import open_store
from queuectl.store.base import JobFilter
from tests.conftest import Queuectl, assert_error
from tests.storetools import DAY, backdate
from tests.terminal import run_on_terminal

pytestmark = pytest.mark.in_process

NEVER = "2099-01-01T00:00:00Z"  # a scheduled_at no test reaches: the job stays pending


def enqueue_many(q: Queuectl, jobs: list[dict[str, Any]]) -> list[str]:
    return q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs)).split()


def run_burst(q: Queuectl, *args: str) -> None:
    code, err = q.finish(q.start_workers("--burst", *args))
    assert code == 0, err


def states(q: Queuectl) -> dict[str, str]:
    return {job["id"]: job["state"] for job in q.jobs()}


def snapshot(q: Queuectl) -> tuple[object, ...]:
    """Everything a refused command must leave as it was: jobs (with updated_at), their
    histories, the queues' settings and the config, read straight from the store."""
    store = open_store(q.target)
    try:
        jobs = store.list_jobs(JobFilter(limit=0))
        histories = [store.list_attempts(job.id) for job in jobs]
        return jobs, histories, store.list_queues(), store.get_config()
    finally:
        store.close()


@pytest.fixture
def mixed(q: Queuectl) -> Queuectl:
    """One job in each of pending (`pend`, not due), completed (`done`), failed (`failed`,
    its retry 1000 s away) and dead (`dead`), after a burst worker ran."""
    q.config("backoff-base", "1000")
    enqueue_many(
        q,
        [
            {"id": "pend", "command": "echo pend", "scheduled_at": NEVER},
            {"id": "done", "command": "echo done"},
            {"id": "failed", "command": "echo failing; exit 1", "max_retries": 5},
            {"id": "dead", "command": "echo boom; exit 3", "max_retries": 1},
        ],
    )
    run_burst(q)
    assert states(q) == {"pend": "pending", "done": "completed", "failed": "failed", "dead": "dead"}
    return q


@pytest.fixture(scope="module")
def refusing(q_shared: Queuectl) -> Queuectl:
    """The same four jobs as `mixed`, in one store per module and backend: every case that
    uses it must change nothing."""
    if q_shared.job_count() == 0:
        q_shared.config("backoff-base", "1000")
        enqueue_many(
            q_shared,
            [
                {"id": "pend", "command": "echo pend", "scheduled_at": NEVER},
                {"id": "done", "command": "echo done"},
                {"id": "failed", "command": "exit 1", "max_retries": 5},
                {"id": "dead", "command": "exit 3", "max_retries": 1},
            ],
        )
        run_burst(q_shared)
    return q_shared


# -- refused input changes nothing ---------------------------------------------------------

# (arguments, exit status, a fragment of the error, whether argparse shows its usage line)
REFUSED: list[tuple[list[str], int, str, bool]] = [
    (["cancel", "nope"], 1, "'nope'", False),
    (["cancel", "pend", "nope"], 1, "'nope'", False),  # a typo cancels nothing at all
    (["cancel", "pend", "done"], 1, "completed", False),
    (["cancel", "dead"], 1, "dead", False),
    (["retry", "pend"], 1, "pending", False),
    (["retry", "done"], 1, "completed", False),
    (["retry", "failed"], 1, "failed", False),
    (["retry", "nope"], 1, "'nope'", False),
    (["dlq", "retry"], 2, "--all", False),
    (["dlq", "retry", "dead", "--all"], 2, "--all", False),
    (["dlq", "retry", "dead", "--queue", "default"], 2, "--queue", False),
    (["dlq", "retry", "--all", "--queue", "a b"], 2, "queue", False),
    (["dlq", "retry", "pend"], 1, "not dead", False),
    (["dlq", "purge"], 2, "--yes", False),  # stdin is not a terminal: nobody can confirm
    (["dlq", "purge", "--json"], 2, "--yes", False),
    (["dlq", "purge", "--yes", "--older-than", "7x"], 2, "duration", False),
    (["dlq", "purge", "--yes", "--older-than", "soon"], 2, "duration", False),
    (["dlq", "purge", "--yes", "--queue", "a b"], 2, "queue", False),
    (["prune", "--older-than", "0s", "--state", "pending"], 2, "pending", False),
    (["prune", "--older-than", "0s", "--state", "completed,processing"], 2, "processing", False),
    (["prune", "--older-than", "0s", "--state", "bogus"], 2, "bogus", False),
    (["prune", "--older-than", "7x"], 2, "duration", False),
    (["prune", "--older-than=-1d"], 2, "duration", False),
    (["prune", "--dry-run"], 2, "--older-than", True),
    (["queue", "limit", "default", "-1"], 2, ">= 0", False),
    (["queue", "limit", "default", "x"], 2, "'x'", False),
    (["queue", "limit", "default", "1.5"], 2, "'1.5'", False),
    (["queue", "limit", "a b", "1"], 2, "queue", False),
    (["queue", "rate", "default", "0/m"], 2, "from 1 to", False),
    (["queue", "rate", "default", "30"], 2, "'30'", False),
    (["queue", "rate", "default", "30/d"], 2, "N/s, N/m or N/h", False),
    (["queue", "rate", "default", "1.5/s"], 2, "whole number", False),
    (["queue", "rate", "default", "x/m"], 2, "'x/m'", False),
    (["queue", "rate", "a b", "5/s"], 2, "queue", False),
    (["queue", "pause", "a b"], 2, "queue", False),
    (["queue", "resume", ""], 2, "queue", False),
    (["wait", "nope"], 1, "'nope'", False),
    (["wait", "done", "nope"], 1, "'nope'", False),
    (["wait", "--timeout", "x"], 2, "duration", False),
    (["wait", "--queue", "a b"], 2, "queue", False),
    (["logs", "nope"], 1, "'nope'", False),
    (["logs", "pend"], 1, "not run yet", False),
    (["logs", "-f", "nope"], 1, "'nope'", False),
    (["logs", "done", "--attempt", "2"], 1, "attempt 2", False),
    (["add", "--env", "NOEQUALS", "--", "true"], 2, "NAME=VALUE", False),
    (["add", "--env", "1X=y", "--", "true"], 2, "'1X'", False),
    (["add", "--cwd", "/tmp", "--here", "--", "true"], 2, "--here", True),
    (["enqueue", '{"command": "true", "env": {"A": 1}}'], 2, "env", False),
    (["enqueue", '{"command": "true", "env": ["A=1"]}'], 2, "env", False),
    (["enqueue", '{"command": "true", "env": {"A=B": "1"}}'], 2, "env", False),
    (["enqueue", '{"command": "true", "cwd": ""}'], 2, "cwd", False),
    (["enqueue", '{"command": "true", "cwd": 5}'], 2, "cwd", False),
    (["config", "set", "retention-completed", "soon"], 2, "retention-completed", False),
    (["config", "set", "retention-dead", "7x"], 2, "retention-dead", False),
    (["completion", "tcsh"], 2, "tcsh", True),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "code", "fragment", "usage"), REFUSED, ids=[" ".join(c[0]) for c in REFUSED]
)
def test_refused_command_says_why_and_changes_nothing(
    refusing: Queuectl, args: list[str], code: int, fragment: str, usage: bool
) -> None:
    before = snapshot(refusing)
    message = assert_error(refusing.run(*args, input=""), code, usage=usage)
    assert fragment in message
    assert snapshot(refusing) == before


# -- cancel and retry ----------------------------------------------------------------------


@pytest.mark.slow
def test_cancel_pending_and_failed_jobs_for_good(mixed: Queuectl) -> None:
    q = mixed
    due = q.enqueue(id="due", command="echo should not run")
    assert q.ok("cancel", "pend", "failed", due) == (
        "Cancelled pend.\nCancelled failed.\nCancelled due.\n"
    )
    assert states(q) == {
        "pend": "cancelled",
        "done": "completed",
        "failed": "cancelled",
        "dead": "dead",
        "due": "cancelled",
    }
    assert q.json("status")["jobs"]["cancelled"] == 3
    assert "\nCancelled:       3\n" in q.ok("status")
    run_burst(q)  # a worker finds nothing to run: cancelled jobs never run again
    job = q.job("due")
    assert (job["state"], job["attempts"], job["history"]) == ("cancelled", 0, [])
    assert len(q.history("failed")) == 1
    assert q.job("failed")["last_error"] == "exited with code 1"  # why it failed, still there


def test_cancel_json_prints_the_cancelled_jobs(q: Queuectl) -> None:
    q.enqueue(id="a", command="true")
    q.enqueue(id="b", command="true")
    cancelled = json.loads(q.ok("cancel", "b", "a", "--json"))
    assert [(job["id"], job["state"]) for job in cancelled] == [
        ("b", "cancelled"),
        ("a", "cancelled"),
    ]


@pytest.mark.slow
def test_retry_runs_a_cancelled_or_dead_job_again_from_scratch(mixed: Queuectl) -> None:
    q = mixed
    q.ok("cancel", "pend")
    assert q.ok("retry", "pend") == "Job pend is pending again (attempts reset to 0).\n"
    job = json.loads(q.ok("retry", "dead", "--json"))
    assert (job["id"], job["state"], job["attempts"]) == ("dead", "pending", 0)
    assert q.json("dlq", "list") == []
    run_burst(q)
    pend = q.job("pend")  # it was scheduled for 2099: a retry makes it due now
    assert (pend["state"], pend["output"], len(pend["history"])) == ("completed", "pend\n", 1)
    dead = q.job("dead")
    assert (dead["state"], dead["attempts"]) == ("dead", 1)
    assert [attempt["attempt"] for attempt in dead["history"]] == [1, 1]


# -- the DLQ in bulk -----------------------------------------------------------------------


@pytest.mark.slow
def test_dlq_retry_all_moves_every_dead_job_of_a_queue_or_all(q: Queuectl) -> None:
    enqueue_many(
        q,
        [
            {"id": "a1", "command": "exit 1", "max_retries": 1, "queue": "a"},
            {"id": "a2", "command": "exit 1", "max_retries": 1, "queue": "a"},
            {"id": "b1", "command": "exit 1", "max_retries": 1, "queue": "b"},
            {"id": "ok", "command": "true", "queue": "a"},
        ],
    )
    run_burst(q)
    assert q.ok("dlq", "retry", "--all", "--queue", "a") == (
        "Moved 2 jobs from the DLQ to pending.\n"
    )
    assert [job["id"] for job in q.json("dlq", "list")] == ["b1"]
    for job_id in ("a1", "a2"):
        job = q.job(job_id)
        assert (job["state"], job["attempts"], len(job["history"])) == ("pending", 0, 1)
    assert q.ok("dlq", "retry", "--all") == "Moved 1 job from the DLQ to pending.\n"
    assert json.loads(q.ok("dlq", "retry", "--all", "--json")) == {"retried": 0}
    assert states(q) == {"a1": "pending", "a2": "pending", "b1": "pending", "ok": "completed"}


@pytest.mark.slow
def test_dlq_purge_deletes_dead_jobs_with_their_history(q: Queuectl) -> None:
    enqueue_many(
        q,
        [
            {"id": "old", "command": "exit 1", "max_retries": 1},
            {"id": "new", "command": "exit 1", "max_retries": 1},
            {"id": "other", "command": "exit 1", "max_retries": 1, "queue": "other"},
            {"id": "ok", "command": "true"},
        ],
    )
    run_burst(q)
    backdate(q.target, "old", 10 * DAY)
    assert q.ok("dlq", "purge", "--older-than", "7d", "--yes") == ("Deleted 1 job from the DLQ.\n")
    assert json.loads(q.ok("dlq", "purge", "--queue", "other", "--yes", "--json")) == {"deleted": 1}
    assert states(q) == {"new": "dead", "ok": "completed"}
    assert q.ok("dlq", "purge", "--yes") == "Deleted 1 job from the DLQ.\n"
    assert states(q) == {"ok": "completed"}
    assert "'old'" in assert_error(q.run("show", "old"), 1)
    q.enqueue(id="old", command="true")  # the id is free again, with a clean history
    assert q.history("old") == []


@pytest.mark.slow
def test_dlq_purge_asks_first_on_a_terminal(q: Queuectl) -> None:
    q.enqueue(id="dead", command="exit 1", max_retries=1)
    run_burst(q)
    code, shown = run_on_terminal(q.argv("dlq", "purge"), q.env, answer="n\n")
    assert code == 0, shown
    assert "Delete 1 dead job? [y/N]" in shown
    assert shown.rstrip().endswith("Nothing deleted.")
    assert q.state("dead") == "dead"
    code, shown = run_on_terminal(q.argv("dlq", "purge"), q.env, answer="y\n")
    assert code == 0, shown
    assert shown.rstrip().endswith("Deleted 1 job from the DLQ.")
    assert q.jobs() == []


def test_dlq_purge_without_yes_is_refused_off_a_terminal_even_when_empty(q: Queuectl) -> None:
    # A script must not work only as long as the DLQ happens to be empty.
    assert "--yes" in assert_error(q.run("dlq", "purge", input=""), 2)
    assert q.ok("dlq", "purge", "--yes") == "Deleted 0 jobs from the DLQ.\n"


# -- prune ---------------------------------------------------------------------------------


@pytest.fixture
def aged(q: Queuectl) -> Queuectl:
    """Completed, dead and cancelled jobs, one of each ten days old and one fresh, plus a
    pending job just as old (never pruned: it has not finished)."""
    jobs: list[dict[str, Any]] = []
    for age in ("old", "new"):
        jobs += [
            {"id": f"completed-{age}", "command": "true"},
            {"id": f"dead-{age}", "command": "exit 1", "max_retries": 1},
            {"id": f"cancelled-{age}", "command": "true", "scheduled_at": NEVER},
        ]
    jobs.append({"id": "pending-old", "command": "true", "scheduled_at": NEVER})
    enqueue_many(q, jobs)
    q.ok("cancel", "cancelled-old", "cancelled-new")
    run_burst(q)
    for job_id in ("completed-old", "dead-old", "cancelled-old", "pending-old"):
        backdate(q.target, job_id, 10 * DAY)
    return q


@pytest.mark.slow
def test_prune_deletes_finished_jobs_older_than_the_age(aged: Queuectl) -> None:
    q = aged
    assert q.ok("prune", "--older-than", "7d", "--state", "completed") == "Deleted 1 job.\n"
    assert "completed-old" not in states(q)
    assert json.loads(q.ok("prune", "--older-than", "7d", "--json")) == {
        "deleted": 2,
        "matched": 2,
    }
    assert states(q) == {
        "completed-new": "completed",
        "dead-new": "dead",
        "cancelled-new": "cancelled",
        "pending-old": "pending",
    }
    assert q.ok("prune", "--older-than", "7d") == "Deleted 0 jobs.\n"


@pytest.mark.slow
def test_prune_state_takes_several_states(aged: Queuectl) -> None:
    q = aged
    assert q.ok("prune", "--older-than", "1w", "--state", "dead,cancelled") == "Deleted 2 jobs.\n"
    assert sorted(states(q)) == [
        "cancelled-new",
        "completed-new",
        "completed-old",
        "dead-new",
        "pending-old",
    ]


@pytest.mark.slow
def test_prune_dry_run_counts_and_deletes_nothing(aged: Queuectl) -> None:
    q = aged
    before = snapshot(q)
    assert q.ok("prune", "--older-than", "7d", "--dry-run") == "Would delete 3 jobs.\n"
    assert json.loads(q.ok("prune", "--older-than", "7d", "--dry-run", "--json")) == {
        "deleted": 0,
        "matched": 3,
    }
    # Every unit people type; the fresh jobs are seconds old, the old ones ten days.
    for age, matched in [("600s", 3), ("15m", 3), ("2h", 3), ("7d", 3), ("11d", 0)]:
        out = q.ok("prune", "--older-than", age, "--dry-run", "--json")
        assert json.loads(out)["matched"] == matched, age
    assert snapshot(q) == before


@pytest.mark.slow
def test_prune_deletes_the_history_too(q: Queuectl) -> None:
    q.enqueue(id="again", command="echo first life")
    run_burst(q)
    assert len(q.history("again")) == 1
    backdate(q.target, "again", 2 * DAY)
    assert q.ok("prune", "--older-than", "1d") == "Deleted 1 job.\n"
    q.enqueue(id="again", command="echo second life")
    job = q.job("again")
    assert (job["state"], job["attempts"], job["history"], job["output"]) == ("pending", 0, [], "")
    assert "not run yet" in assert_error(q.run("logs", "again"), 1)
    run_burst(q)
    assert [attempt["attempt"] for attempt in q.history("again")] == [1]
    assert q.ok("logs", "again") == "second life\n"


def test_retention_keys_have_defaults_and_take_durations(q: Queuectl) -> None:
    assert q.ok("config", "get", "retention-completed") == "7d\n"
    assert q.ok("config", "get", "retention-dead") == "30d\n"
    listed = q.json("config", "list")
    assert (listed["retention-completed"], listed["retention-dead"]) == (604800, 2592000)
    assert q.ok("config", "set", "retention-completed", "36h") == "retention-completed = 36h\n"
    assert q.ok("config", "get", "retention-completed") == "36h\n"
    q.config("retention-dead", "0")  # 0 keeps them forever
    assert q.ok("config", "get", "retention-dead") == "0\n"


# -- wait (without workers: what is already decided) ------------------------------------


@pytest.mark.slow
def test_wait_for_finished_jobs_returns_at_once_with_their_outcome(mixed: Queuectl) -> None:
    q = mixed
    result = q.run("wait", "done")
    assert (result.returncode, result.stdout) == (0, "1 of 1 job finished, 0 dead or cancelled.\n")
    result = q.run("wait", "done", "dead")
    assert (result.returncode, result.stdout) == (1, "2 of 2 jobs finished, 1 dead or cancelled.\n")
    q.ok("cancel", "pend")
    result = q.run("wait", "pend")
    assert (result.returncode, result.stdout) == (1, "1 of 1 job finished, 1 dead or cancelled.\n")


def test_wait_times_out_with_124(q: Queuectl) -> None:
    job_id = q.enqueue(command="true")
    started = time.monotonic()
    result = q.run("wait", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert assert_error(result, 124) == "timed out with 1 job unfinished"
    assert 1 <= elapsed < 15
    assert assert_error(q.run("wait", job_id, "--timeout", "0.3s"), 124).startswith("timed out")
    assert q.state(job_id) == "pending"


def test_wait_with_nothing_unfinished_returns_at_once(q: Queuectl) -> None:
    assert q.ok("wait") == "0 of 0 jobs finished, 0 dead or cancelled.\n"
    q.enqueue(command="true", queue="elsewhere")
    assert q.ok("wait", "--queue", "default", "--timeout", "30") == (
        "0 of 0 jobs finished, 0 dead or cancelled.\n"
    )


# -- logs (of finished attempts) -----------------------------------------------------------


@pytest.mark.slow
def test_logs_prints_the_output_of_each_attempt(q: Queuectl) -> None:
    q.config("backoff-max", "0")
    q.enqueue(id="j", command="echo attempt $QUEUECTL_ATTEMPT; exit 1", max_retries=2)
    run_burst(q)
    assert q.ok("logs", "j") == "attempt 2\n"
    assert q.ok("logs", "j", "--attempt", "1") == "attempt 1\n"
    assert q.ok("logs", "j", "--attempt", "2") == "attempt 2\n"
    assert q.ok("logs", "j", "-f") == "attempt 2\n"  # finished: nothing to follow
    assert "attempt 3" in assert_error(q.run("logs", "j", "--attempt", "3"), 1)


@pytest.mark.slow
def test_logs_strips_colours_unless_on_a_terminal_or_raw(q: Queuectl) -> None:
    q.enqueue(id="c", command=r"printf '\033[1;31mred\033[0m plain \033]0;title\007end\n'")
    run_burst(q)
    assert q.ok("logs", "c") == "red plain end\n"
    raw = q.ok("logs", "c", "--raw")
    assert raw == "\x1b[1;31mred\x1b[0m plain \x1b]0;title\x07end\n"
    code, shown = run_on_terminal(q.argv("logs", "c"), q.env)
    assert code == 0
    assert "\x1b[1;31mred\x1b[0m" in shown


def test_logs_follow_of_a_job_cancelled_before_it_ran_ends(q: Queuectl) -> None:
    job_id = q.enqueue(command="echo never", scheduled_at=NEVER)
    follower = q.run_background("logs", "-f", job_id)  # waits for the job to start
    q.ok("cancel", job_id)
    try:
        out, err = follower.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("`logs -f` kept waiting for a job that will never run") from None
    assert (follower.returncode, out) == (1, "")
    assert err == f"error: job '{job_id}' is cancelled and never ran\n"


# -- job cwd and env ------------------------------------------------------------------------


def test_add_records_the_cwd_and_env(q: Queuectl, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    job = json.loads(
        q.ok(
            "add",
            "--json",
            "--cwd",
            str(folder),
            "--env",
            "GREETING=hello world",
            "--env",
            "EQUATION=a=b",
            "--env",
            "EMPTY=",
            "--",
            "true",
        )
    )
    assert job["cwd"] == str(folder)
    assert job["env"] == {"GREETING": "hello world", "EQUATION": "a=b", "EMPTY": ""}
    assert q.job(job["id"])["env"] == job["env"]
    # --here: the folder `add` runs in; a relative --cwd is taken from there too.
    here = subprocess.run(
        q.argv("add", "--here", "--json", "--", "pwd"),
        cwd=folder,
        env=q.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(here.stdout)["cwd"] == str(folder)
    relative = subprocess.run(
        q.argv("add", "--cwd", "sub", "--json", "--", "pwd"),
        cwd=folder,
        env=q.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(relative.stdout)["cwd"] == str(folder / "sub")
    plain = q.job(q.ok("add", "--", "true").strip())
    assert (plain["cwd"], plain["env"]) == (None, None)


def test_enqueue_records_the_cwd_and_env(q: Queuectl) -> None:
    job_id = q.enqueue(command="true", cwd="/srv/app", env={"MODE": "fast", "N": "3"})
    job = q.job(job_id)
    assert (job["cwd"], job["env"]) == ("/srv/app", {"MODE": "fast", "N": "3"})
    nulls = q.job(q.enqueue(command="true", cwd=None, env=None))
    assert (nulls["cwd"], nulls["env"]) == (None, None)


# -- queues ---------------------------------------------------------------------------------


def counts(**given: int) -> dict[str, int]:
    every = ("pending", "processing", "completed", "failed", "dead", "cancelled")
    return {state: given.get(state, 0) for state in every}


def test_queue_list_pause_resume_and_limit(q: Queuectl) -> None:
    assert q.json("queue", "list") == []
    assert q.ok("queue", "list") == "No queues yet.\n"
    jobs: list[dict[str, Any]] = [{"command": "true", "queue": "mail"}] * 2
    enqueue_many(q, [*jobs, {"command": "true"}])
    q.ok("cancel", q.jobs()[-1]["id"])
    assert q.ok("queue", "pause", "mail") == "Queue mail paused.\n"
    assert q.ok("queue", "limit", "default", "2") == "Queue default: at most 2 running at once.\n"
    assert q.ok("queue", "pause", "idle") == "Queue idle paused.\n"  # no jobs yet: listed too
    assert q.json("queue", "list") == [
        {
            "name": "default",
            "paused": False,
            "max_running": 2,
            "rate": None,
            "counts": counts(cancelled=1),
        },
        {"name": "idle", "paused": True, "max_running": None, "rate": None, "counts": counts()},
        {
            "name": "mail",
            "paused": True,
            "max_running": None,
            "rate": None,
            "counts": counts(pending=2),
        },
    ]
    table = [line.split() for line in q.ok("queue", "list").splitlines()]
    rows = {words[0]: words[1:] for words in table if words[:1] in (["default"], ["mail"])}
    assert rows["default"] == ["no", "2", "-", "0", "0", "0", "0", "0", "1"]
    assert rows["mail"] == ["yes", "-", "-", "2", "0", "0", "0", "0", "0"]
    assert q.ok("queue", "resume", "mail") == "Queue mail resumed.\n"
    assert q.ok("queue", "limit", "default", "none") == "Queue default: no limit.\n"
    listed = {queue["name"]: queue for queue in q.json("queue", "list")}
    assert (listed["mail"]["paused"], listed["default"]["max_running"]) == (False, None)
    assert q.ok("queue", "limit", "mail", "0") == "Queue mail: at most 0 running at once.\n"


def test_queue_rate_is_set_listed_and_removed(q: Queuectl) -> None:
    said = q.ok("queue", "rate", "api", "30/m")
    assert said == "Queue api: at most 30 job starts per minute.\n"
    assert q.ok("queue", "rate", "mail", "1/Hour") == "Queue mail: at most 1 job start per hour.\n"
    assert q.ok("queue", "rate", "mail", "5/s") == "Queue mail: at most 5 job starts per second.\n"
    q.ok("queue", "limit", "mail", "2")
    listed = {queue["name"]: queue for queue in q.json("queue", "list")}
    assert (listed["api"]["rate"], listed["api"]["max_running"]) == ("30/m", None)
    assert (listed["mail"]["rate"], listed["mail"]["max_running"]) == ("5/s", 2)
    table = [line.split() for line in q.ok("queue", "list").splitlines()]
    rows = {words[0]: words[1:4] for words in table if words[:1] in (["api"], ["mail"])}
    assert rows == {"api": ["no", "-", "30/m"], "mail": ["no", "2", "5/s"]}
    assert q.ok("queue", "rate", "api", "none") == "Queue api: no rate limit.\n"
    listed = {queue["name"]: queue for queue in q.json("queue", "list")}
    assert listed["api"]["rate"] is None


# -- completion and --version ---------------------------------------------------------------


def test_version_prints_the_version(q_sqlite: Queuectl) -> None:
    assert q_sqlite.ok("--version") == f"queuectl {__version__}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(q_sqlite: Queuectl, shell: str) -> None:
    script = q_sqlite.ok("completion", shell)
    assert "queuectl" in script
    assert "_ARGCOMPLETE" in script


def test_completion_script_registers_with_bash(q_sqlite: Queuectl) -> None:
    script = q_sqlite.ok("completion", "bash")
    registered = subprocess.run(
        ["bash", "--norc", "-c", 'eval "$1" && complete -p queuectl', "bash", script],
        capture_output=True,
        text=True,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.rstrip().endswith(" queuectl")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("queuectl ca", ["cancel"]),
        ("queuectl dlq ", ["list", "purge", "retry"]),
        ("queuectl queue ", ["limit", "list", "pause", "rate", "resume"]),
        ("queuectl prune --d", ["--dry-run"]),
        ("queuectl --d", ["--db"]),
    ],
)
def test_completion_completes_commands_and_options(
    q_sqlite: Queuectl, tmp_path: Path, line: str, expected: list[str]
) -> None:
    out = tmp_path / "completions"
    q_sqlite = Queuectl(str(tmp_path / "none" / "queuectl.db"), tmp_path / "home")  # no store
    env = dict(
        q_sqlite.env,
        _ARGCOMPLETE="1",
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        _ARGCOMPLETE_IFS="\n",
        _ARGCOMPLETE_STDOUT_FILENAME=str(out),
    )
    result = subprocess.run(
        q_sqlite.argv(), env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    offered = sorted(word.strip() for word in out.read_text().split("\n") if word.strip())
    assert [word for word in offered if word in expected] == expected
    assert not os.path.exists(q_sqlite.target)  # completing never opens the store
