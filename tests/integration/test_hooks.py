"""Hook commands run by real workers (issue 16, item 1): on complete, fail, dead and
cancel, with the job's facts in the environment only, within their timeout, and never
changing a job's outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.startup import traced
from tests.conftest import Queuectl, parse_time, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

# Writes the hook's QUEUECTL_* variables and its output file to DIR/EVENT.JOB.{env,out}.
FACTS = "EVENT|JOB_ID|STATE|EXIT_CODE|ATTEMPT|QUEUE|COMMAND|LAST_ERROR|OUTPUT_FILE"
RECORD = (
    f"env | grep -E '^QUEUECTL_({FACTS})=' | sort"
    ' > "{dir}/$QUEUECTL_EVENT.$QUEUECTL_JOB_ID.env";'
    ' cat "$QUEUECTL_OUTPUT_FILE" > "{dir}/$QUEUECTL_EVENT.$QUEUECTL_JOB_ID.out";'
    ' echo "$QUEUECTL_OUTPUT_FILE" > "{dir}/$QUEUECTL_EVENT.$QUEUECTL_JOB_ID.path"'
)


def burst(q: Queuectl) -> None:
    code, err = q.finish(q.start_workers("--burst"), timeout=90)
    assert code == 0, err


def recorded(folder: Path, event: str, job_id: str) -> dict[str, str]:
    lines = (folder / f"{event}.{job_id}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_hooks_run_on_complete_fail_dead_and_cancel_with_the_facts(
    q: Queuectl, tmp_path: Path
) -> None:
    for event in ("complete", "fail", "dead", "cancel"):
        q.config(f"on-{event}", RECORD.format(dir=tmp_path))
    q.config("backoff-max", "0")
    ok = q.ok("add", "--queue", "mail", "--", "echo first; echo hello").strip()
    failing = q.ok("add", "--max-retries", "2", "--", "echo broken >&2; exit 3").strip()
    cancelled = q.ok("add", "--delay", "1h", "--", "echo never").strip()
    q.ok("cancel", cancelled)
    burst(q)
    assert recorded(tmp_path, "complete", ok) == {
        "QUEUECTL_ATTEMPT": "1",
        "QUEUECTL_COMMAND": "echo first; echo hello",
        "QUEUECTL_EVENT": "complete",
        "QUEUECTL_EXIT_CODE": "0",
        "QUEUECTL_JOB_ID": ok,
        "QUEUECTL_LAST_ERROR": "",
        "QUEUECTL_OUTPUT_FILE": (tmp_path / f"complete.{ok}.path").read_text().strip(),
        "QUEUECTL_QUEUE": "mail",
        "QUEUECTL_STATE": "completed",
    }
    assert (tmp_path / f"complete.{ok}.out").read_text() == "first\nhello\n"
    fail = recorded(tmp_path, "fail", failing)
    assert (fail["QUEUECTL_STATE"], fail["QUEUECTL_ATTEMPT"]) == ("failed", "1")
    assert (fail["QUEUECTL_EXIT_CODE"], fail["QUEUECTL_LAST_ERROR"]) == (
        "3",
        "exited with code 3",
    )
    dead = recorded(tmp_path, "dead", failing)
    assert (dead["QUEUECTL_STATE"], dead["QUEUECTL_ATTEMPT"]) == ("dead", "2")
    assert (tmp_path / f"dead.{failing}.out").read_text() == "broken\n"
    cancel = recorded(tmp_path, "cancel", cancelled)
    assert (cancel["QUEUECTL_STATE"], cancel["QUEUECTL_ATTEMPT"]) == ("cancelled", "0")
    # Each output file was removed once its hook ended.
    for path in tmp_path.glob("*.path"):
        assert not Path(path.read_text().strip()).exists()
    deliveries = q.job(ok)["hook_deliveries"]
    assert [(d["event"], d["channel"], d["status"]) for d in deliveries] == [
        ("complete", "hook", "delivered")
    ]


def test_a_jobs_content_cannot_inject_commands_into_a_hook(q: Queuectl, tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    # The job itself runs only `true` (the rest is a comment): a file appears only if the
    # hook's shell ran a piece of the job's command, id or error.
    command = f"true # $(touch {marker}) `touch {marker}` \"; touch {marker}; '; touch {marker}"
    seen = tmp_path / "seen"
    q.config("on-complete", f'printf %s "$QUEUECTL_COMMAND" > {seen}')
    q.enqueue(command=command)
    burst(q)
    assert seen.read_text() == command
    assert not marker.exists()


def test_a_jobs_own_hook_replaces_the_configured_one(q: Queuectl, tmp_path: Path) -> None:
    q.config("on-dead", f"touch {tmp_path}/configured.$QUEUECTL_JOB_ID")
    own = q.enqueue(command="exit 1", max_retries=0, on_dead=f"touch {tmp_path}/own")
    other = q.ok("add", "--max-retries", "0", "--", "exit 1").strip()
    burst(q)
    assert (tmp_path / "own").exists()
    assert not (tmp_path / f"configured.{own}").exists()
    assert (tmp_path / f"configured.{other}").exists()
    assert q.job(own)["hooks"] == {"on_dead": f"touch {tmp_path}/own"}
    assert f"hooks:      on_dead: touch {tmp_path}/own\n" in q.ok("show", own)


def test_a_slow_hook_is_killed_at_its_timeout_and_holds_up_no_job(q: Queuectl) -> None:
    q.config("hook-timeout", "1")
    q.config("on-complete", "sleep 60")
    first = q.ok("add", "--", "true").strip()
    second = q.ok("add", "--", "true").strip()
    q.start_workers()
    # Each hook sleeps a minute until killed: jobs that waited for them would take that.
    done = q.wait_for_state(second, "completed", timeout=20)
    q.wait_for_state(first, "completed", timeout=5)
    started = parse_time(done["started_at"]) - parse_time(q.job(first)["finished_at"])
    assert started.total_seconds() < 10

    def failed() -> list[dict[str, object]]:
        return [d for d in q.job(first)["hook_deliveries"] if d["status"] == "failed"]

    (delivery,) = wait_until(failed, timeout=30, message="the hook to time out")
    assert delivery["error"] == "hook timed out after 1s and was killed"
    assert q.state(first) == "completed"


def test_a_failing_hook_shows_in_show_and_doctor_and_leaves_the_job_alone(q: Queuectl) -> None:
    q.config("on-dead", "echo no mail server >&2; exit 7")
    job_id = q.ok("add", "--max-retries", "0", "--", "exit 1").strip()
    burst(q)
    job = q.job(job_id)
    assert job["state"] == "dead"
    (delivery,) = job["hook_deliveries"]
    assert (delivery["status"], delivery["error"]) == ("failed", "hook exited 7: no mail server")
    shown = q.ok("show", job_id)
    assert "Hooks:" in shown
    assert "hook exited 7: no mail server" in shown
    doctor = q.run("doctor", "--json")
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks["hooks"]["status"] == "warn"
    assert checks["hooks"]["items"] == [job_id]
    assert q.state(job_id) == "dead"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["add", "--on-dead", "", "--", "true"], "on_dead must not be empty"),
        (["add", "--on-complete", " ", "--", "true"], "on_complete must not be empty"),
        (["enqueue", '{"command": "true", "on_fail": 5}'], "on_fail must be a string"),
        (["enqueue", '{"command": "true", "on_cancel": ""}'], "on_cancel must not be empty"),
        (["enqueue", '{"command": "true", "on_done": "x"}'], "unknown key 'on_done'"),
        (["config", "set", "webhook-url", "ftp://x"], "is not an http:// or https:// URL"),
        (["queue", "webhook", "q", "not a url"], "invalid webhook URL"),
    ],
)
def test_bad_hook_input_is_refused_and_changes_nothing(
    q: Queuectl, args: list[str], error: str
) -> None:
    result = q.run(*args)
    assert result.returncode == 2, result.stderr
    assert error in result.stderr
    assert result.stderr.startswith("error: ")
    assert q.job_count() == 0
    assert q.ok("config", "get", "webhook-url").strip() == "none"


def test_a_worker_without_webhooks_loads_no_http_client(q_sqlite: Queuectl) -> None:
    """urllib.request brings http.client, ssl and email: a worker loads them on its first
    webhook, not at every start."""
    job_id = q_sqlite.enqueue(command="true")
    result, modules = traced(q_sqlite.env, "worker", "start", "--burst")
    assert result.returncode == 0, result.stderr
    assert q_sqlite.state(job_id) == "completed"
    assert modules & {"urllib.request", "http.client", "ssl"} == set()
